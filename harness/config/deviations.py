"""The deviations table: where a profile departs from the paper, generated from its settings.

``reference/deviations.yaml`` holds, per element, what the paper's text and its authors' code say
and where a profile sets it; :func:`deviation_table` reads each element's value in one profile
(the ``probe`` named in the file, a function of :data:`PROBES`) and compares it with the row's
``reference`` (the text's value, else the code's where the text is silent). A row is ``same``,
``differs`` or ``paper silent`` (neither the text nor the code decides). The leaderboards print
the table in every ``index.md`` and every result record carries it (``CellResult.deviations``).

A setting that can move a profile away from the paper and has no row here is a bug:
``tests/test_deviations.py`` checks the rows against the settings that can deviate
(:data:`DEVIATING_SETTINGS`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import BenchError, ConfigError, Problem, did_you_mean
from ..schema import ADDED_DOWNSTREAM_SETTINGS, KEYED_PROFILE_SETTINGS
from .problems import load_problems, problems_from_validation
from .snapshot import Snapshot, read_yaml

DEVIATIONS_FILE = Path("reference") / "deviations.yaml"
Status = Literal["same", "differs", "paper silent"]

# Settings that can move a profile away from the paper: each must be the `setting` of a row
# (tests/test_deviations.py). Profile and downstream settings added for fidelity are listed from
# the schema, so a new one without a row fails the test.
DEVIATING_SETTINGS: tuple[str, ...] = (
    *(f"profiles.<profile>.{k}" for k in KEYED_PROFILE_SETTINGS),
    *(f"downstreams/gender.yaml {k}" for k in ADDED_DOWNSTREAM_SETTINGS),
    "downstreams/gender.yaml pool_window_s", "downstreams/gender.yaml head_args.bias",
    "downstreams/gender.yaml training.max_epochs", "downstreams/gender.yaml training.patience",
    "downstreams/<task>.yaml training.grad_clip", "downstreams/<task>.yaml head_args",
    "downstreams/<task>.yaml training",
    "downstreams/word_discrimination.yaml options.rule",
    "profiles.<profile>.small_models.lee_loss", "profiles.<profile>.small_models.lee_full_epochs",
    "profiles.<profile>.small_models.teacher", "profiles.<profile>.analyses.capacity_tasks",
    "profiles.<profile>.analyses.capacity_ig_steps", "profiles.<profile>.analyses.capacity_repeats",
    "profiles.<profile>.data", "profiles.<profile>.layer",
    "corpora.fesc.options.dev_speakers_from_train", "corpora.iemocap.options.dev_speakers",
    "corpora.iemocap.options.merge_excited", "corpora.lahjoita_puhetta.options.task_subsets",
    "upstreams/cards/whisper*.yaml args.window", "upstreams/cards/mfcc.yaml args.n_mels",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Fixed(_Strict):
    value: str
    differs: bool


class DeviationSpec(_Strict):
    """One row of ``reference/deviations.yaml`` (the file's comments say what each key means)."""

    id: str
    element: str
    gap: str = "-"
    paper: str
    code: str
    setting: str
    probe: str
    reference: str | None = None
    fixed: Fixed | None = None


class DeviationsFile(_Strict):
    rows: list[DeviationSpec]


class Deviation(_Strict):
    """A row of the table for one profile (also the typed section of a result record)."""

    id: str
    element: str
    gap: str = "-"
    paper: str
    code: str
    profile: str  # this profile's value, as text
    setting: str
    status: Status


@dataclass(frozen=True)
class _Ctx:
    snap: Snapshot
    profile: str

    @property
    def prof(self) -> Any:
        return self.snap.profile(self.profile)[1]

    def corpus_options(self, name: str) -> dict[str, Any] | None:
        spec = self.snap.benchmark.corpora.get(name)
        return dict(spec.options) if spec is not None else None

    def downstream(self, name: str) -> Any:
        return self.snap.resolve_downstream(name, profile=self.profile)

    def real(self) -> bool:
        return bool(self.prof.data == "real")


Probe = Callable[[_Ctx], tuple[str, Any]]  # -> (text shown, value compared with the reference)


def deviations_path(root: Path | None) -> Path:
    """``reference/deviations.yaml`` of the workspace ``root`` when it has one, else the repository's."""
    own = root / DEVIATIONS_FILE if root is not None else None
    return own if own is not None and own.is_file() else Path(__file__).resolve().parents[2] / DEVIATIONS_FILE


def load_deviation_specs(path: Path) -> DeviationsFile:
    """The rows of ``reference/deviations.yaml``, validated (ConfigError naming file and key;
    an unknown ``probe`` or a duplicate ``id`` is an error too)."""
    try:
        spec = DeviationsFile.model_validate(read_yaml(path))
    except ValidationError as e:
        raise ConfigError(problems_from_validation(e, where=str(path), model=DeviationsFile)) from None
    problems = [Problem(str(path), f"rows[{i}].probe", "a probe of harness.config.deviations", repr(r.probe),
                        did_you_mean(r.probe, PROBES))
                for i, r in enumerate(spec.rows) if r.probe != "fixed" and r.probe not in PROBES]
    problems += [Problem(str(path), f"rows[{i}].fixed", "fixed: {value, differs} for probe fixed", "nothing")
                 for i, r in enumerate(spec.rows) if r.probe == "fixed" and r.fixed is None]
    ids = [r.id for r in spec.rows]
    problems += [Problem(str(path), "rows[].id", "unique ids", f"{i!r} more than once")
                 for i in sorted({i for i in ids if ids.count(i) > 1})]
    if problems:
        raise ConfigError(problems)
    return spec


def setting_keys(setting: str) -> list[str]:
    """The keys a row's ``setting`` names ("a; b" -> ["a", "b"]); [] for a fixed element ("- ...")."""
    return [] if setting.startswith("-") else [k.strip() for k in setting.split(";") if k.strip()]


def deviations_problems(root: Path) -> list[Problem]:
    """Every problem of the workspace's deviations file (empty list: all good)."""
    return load_problems(deviations_path(root), load_deviation_specs)


def deviation_table(snap: Snapshot, profile: str) -> tuple[Deviation, ...]:
    """The deviations table of ``profile``: every row of ``reference/deviations.yaml`` with this
    profile's value and its status."""
    spec = load_deviation_specs(deviations_path(snap.root))
    ctx = _Ctx(snap, profile)
    return tuple(_row(r, ctx) for r in spec.rows)


def _row(spec: DeviationSpec, ctx: _Ctx) -> Deviation:
    if spec.probe == "fixed":
        assert spec.fixed is not None  # load_deviation_specs checked it
        shown, status = spec.fixed.value, ("differs" if spec.fixed.differs else "same")
    else:
        try:
            shown, value = PROBES[spec.probe](ctx)
        except BenchError as e:  # a profile without that downstream / card: said, never a crash
            shown, value = f"not set here ({str(e).splitlines()[0][:80]})", None
        if spec.reference is None:
            status = "paper silent"
        else:
            status = "same" if str(value) == spec.reference else "differs"
    return Deviation(id=spec.id, element=spec.element, gap=spec.gap, paper=spec.paper, code=spec.code,
                     profile=shown, setting=spec.setting, status=status)


# --------------------------------------------------------------------------- probes
def _english_layer(ctx: _Ctx) -> tuple[str, Any]:
    from ..schema import Task
    from .plan import english_downstream

    prof = ctx.prof
    for name in ("topic", "request"):
        if name in ctx.snap.downstream_files():
            ds = ctx.downstream(name)
            task: Task = ctx.snap.task(ds.task_name)
            source = english_downstream(ctx.snap, profile=prof, downstream=ds, task=task)
            return f"the English {source} cell (topic, request)", source
    return "no topic / request downstream", None


def _layer_selection(ctx: _Ctx) -> tuple[str, Any]:
    mode = getattr(ctx.prof, "layer", None)
    if mode is None:
        return "best single layer", "best single layer"
    return f"{mode} over all layers (SUPERB)", mode


def _fesc_dev(ctx: _Ctx) -> tuple[str, Any]:
    opts = ctx.corpus_options("fesc")
    if not ctx.real() or opts is None:
        return "synthetic corpus: dev speakers of its own", None
    n = int(opts.get("dev_speakers_from_train", 0))
    text = (f"{n} training speaker(s) carved as dev, SHA-256 order" if n else
            "none: the cell fails, naming the option")
    return text, n


def _iemocap_train(ctx: _Ctx) -> tuple[str, Any]:
    opts = ctx.corpus_options("iemocap")
    if not ctx.real() or opts is None:
        return "synthetic corpus", None
    dev = list(opts.get("dev_speakers") or [])
    if dev:
        return f"sessions 1-4 without {', '.join(dev)} (dev)", "smaller"
    return "sessions 1-4", "sessions 1-4"


def _iemocap_exc(ctx: _Ctx) -> tuple[str, Any]:
    opts = ctx.corpus_options("iemocap")
    if not ctx.real() or opts is None:
        return "synthetic corpus", None
    merge = bool(opts.get("merge_excited", True))
    return ("merged into happiness" if merge else "left out"), merge


def _lp_hours(ctx: _Ctx) -> tuple[str, Any]:
    opts = ctx.corpus_options("lahjoita_puhetta")
    if not ctx.real() or opts is None:
        return "synthetic corpus: one train split", None
    subsets = dict(opts.get("task_subsets") or {})
    if not subsets:
        return "one train split for every task", None
    text = ", ".join(f"{k}: {v}" for k, v in sorted(subsets.items()))
    return text, text


def _aligners(ctx: _Ctx) -> tuple[str, Any]:
    if not ctx.real():
        return "espeak-ng's own word events (synthetic corpus)", None
    return "supplied with the corpus (no aligner runs here)", None


def _gender_input(ctx: _Ctx) -> tuple[str, Any]:
    cfg = ctx.downstream("gender").config
    if cfg.input_window_s is not None:
        pooled = "all of it" if cfg.pool_window_s is None else f"its first {cfg.pool_window_s:g} s"
        text = f"{cfg.input_window_s:g} s of audio into the model, mean over {pooled}"
        return text, (f"{cfg.input_window_s:g} s of audio into the model" if cfg.pool_window_s is None
                      or cfg.pool_window_s >= cfg.input_window_s else text)
    if cfg.pool_window_s is not None:
        return f"whole utterance into the model, mean over its first {cfg.pool_window_s:g} s of frames", "pooled"
    return "whole utterance, mean over all frames", "whole"


def _gender_epochs(ctx: _Ctx) -> tuple[str, Any]:
    t = ctx.downstream("gender").training
    stop = "no early stopping" if t.patience is None else f"patience {t.patience}"
    return f"{t.max_epochs} epochs, {stop}", f"{t.max_epochs} epochs, {stop}"


def _gender_bias(ctx: _Ctx) -> tuple[str, Any]:
    bias = bool(ctx.downstream("gender").head_args.get("bias", True))
    return ("bias" if bias else "no bias"), ("bias" if bias else "no bias")


def _sequence_head(ctx: _Ctx) -> tuple[str, Any]:
    ds = ctx.downstream("emotion")
    h, t = ds.head_args, ds.training
    mlp = "-".join(str(x) for x in h.get("mlp_sizes", []))
    text = (f"{h.get('num_layers')} x {h.get('hidden_size')} BiLSTM, MLP {mlp}, lr {t.lr:g}, {t.max_epochs} epochs"
            + (f", patience {t.patience}" if t.patience else "")
            + (f", frames averaged to {h['max_frame_rate_hz']:g} Hz" if h.get("max_frame_rate_hz") else ""))
    return text, text


def _normalize(ctx: _Ctx) -> tuple[str, Any]:
    return ctx.prof.normalize, ctx.prof.normalize


def _grad_clip(ctx: _Ctx) -> tuple[str, Any]:
    values = set()
    for name in ctx.prof.downstreams:
        try:
            if ctx.snap.task(ctx.snap.downstream(name).task).kind != "classification":
                continue
        except BenchError:
            continue
        values.add(ctx.downstream(name).training.grad_clip)
    if len(values) != 1:
        return "differs between downstreams: " + ", ".join(sorted(map(str, values))), None
    clip = next(iter(values))
    return ("none" if clip is None else f"{clip:g}"), ("none" if clip is None else f"{clip:g}")


def _whisper_window(ctx: _Ctx) -> tuple[str, Any]:
    windows = {}
    for name in ctx.prof.upstreams:
        card = ctx.snap.card(name)
        if card.card.meta.family == "whisper":
            windows[name] = str(card.card.args.get("window", "padded30"))
    if not windows:
        return "no Whisper upstream", None
    text = ", ".join(f"{k}: {v}" for k, v in sorted(windows.items()))
    return text + " (frames past the real audio dropped)", text


def _extract_dtype(ctx: _Ctx) -> tuple[str, Any]:
    dtype = ctx.prof.extract_dtype
    return ("card (bf16 autocast unless a card says bf16: false)" if dtype == "card" else dtype), dtype


def _capacity_tasks(ctx: _Ctx) -> tuple[str, Any]:
    a = ctx.prof.analyses
    if not a.capacity:
        return "capacity off", None
    text = ", ".join(sorted(a.capacity_tasks))
    return text, text


def _capacity_ig_steps(ctx: _Ctx) -> tuple[str, Any]:
    a = ctx.prof.analyses
    return (f"{a.capacity_ig_steps} steps", str(a.capacity_ig_steps)) if a.capacity else ("capacity off", None)


def _capacity_repeats(ctx: _Ctx) -> tuple[str, Any]:
    a = ctx.prof.analyses
    if not a.capacity:
        return "capacity off", None
    r = a.capacity_repeats
    text = "once per seed" if r == 1 else f"{r} times per seed on the same dimensions, the mean reported"
    return text, str(r)


def _lee_loss(ctx: _Ctx) -> tuple[str, Any]:
    return ctx.prof.small_models.lee_loss, ctx.prof.small_models.lee_loss


def _lee_epochs(ctx: _Ctx) -> tuple[str, Any]:
    sm = ctx.prof.small_models
    if sm.lee_full_epochs:
        return f"every epoch ({sm.max_epochs})", "every epoch"
    return f"up to {sm.max_epochs} epochs, patience {sm.patience}", "early stopping"


def _lee_teacher(ctx: _Ctx) -> tuple[str, Any]:
    teacher = ctx.prof.small_models.teacher
    return f"{teacher} (every language)", teacher


def _mfcc_mels(ctx: _Ctx) -> tuple[str, Any]:
    card = ctx.snap.card("mfcc")
    n_mels = card.card.args.get("n_mels", 40)
    return f"{n_mels} mel bins, natural log", n_mels


def _word_triplets(ctx: _Ctx) -> tuple[str, Any]:
    rule = str(ctx.downstream("word_discrimination").config.options.get("rule", "difflib"))
    return rule, rule


def _data(ctx: _Ctx) -> tuple[str, Any]:
    data = ctx.prof.data
    return ("the real corpora" if data == "real" else "the embedded synthetic corpus (espeak-ng)"), data


PROBES: dict[str, Probe] = {
    "english_layer": _english_layer, "layer_selection": _layer_selection, "fesc_dev": _fesc_dev, "iemocap_train": _iemocap_train,
    "iemocap_exc": _iemocap_exc, "lp_hours": _lp_hours, "aligners": _aligners, "gender_input": _gender_input,
    "gender_epochs": _gender_epochs, "gender_bias": _gender_bias, "sequence_head": _sequence_head,
    "normalize": _normalize, "grad_clip": _grad_clip, "whisper_window": _whisper_window,
    "extract_dtype": _extract_dtype, "capacity_tasks": _capacity_tasks,
    "capacity_ig_steps": _capacity_ig_steps, "capacity_repeats": _capacity_repeats, "lee_loss": _lee_loss,
    "lee_epochs": _lee_epochs, "lee_teacher": _lee_teacher, "mfcc_mels": _mfcc_mels,
    "word_triplets": _word_triplets, "data": _data,
}
