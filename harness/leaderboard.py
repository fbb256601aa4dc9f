"""Leaderboards: the paper's tables rebuilt from result files, as a pure function of them.

:func:`build_tables` turns result dicts (one per matrix cell, as :func:`harness.results.iter_results`
yields them) into :class:`Table` values; :func:`render_markdown`, :func:`table_csv` and
:func:`table_json` render one table; :func:`write_leaderboards` writes every table of a profile
(markdown, CSV and JSON beside it), copies the plots found under the profile's results and writes
an ``index.md`` linking all of it.

Layout of the tables follows the paper (Porjazovski, Grosz, Kurimo 2024): Table I gender,
II chosen layers, III emotion, IV intent / topic / request, V word discrimination, VII emotion
discrimination, VIII 10% capacity, IX parameters and inference time. Rows are grouped as the
paper groups them (small-scale, base, large, large ASR fine-tuned), then rows the paper lacks
(other models, random-init controls); the best score per group and column is in bold.

Scores are means over seeds with a 95% interval from :func:`harness.metrics.bootstrap_ci`
(test items resampled, seeds pooled), rendered ``mean [low, high]``. A cell that failed or could
not run is ``n/a`` with a numbered note giving the reason; a cell never run is ``–``.

Published numbers (``reference/paper_tables.yaml``) are shown beside ours, with the difference,
only when the results come from the real corpora: on the synthetic corpus the absolute scores
have nothing to do with the paper's, so a side-by-side column would invite reading the gap as a
reproduction error. Same input, same bytes: nothing here depends on the clock except the optional
"generated" line of the index.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .tempfiles import TMP_TAG, remove_stale, temp_sibling

if TYPE_CHECKING:
    from .config import Workspace

# --------------------------------------------------------------------------- fields read from results
# Where each value lives in a result JSON. Sections written by the analysis steps (capacity,
# inference time, discrimination) are read only through these paths: adjust them here when those
# modules change their output. A missing path reads as "not there", never as an error.
FIELDS: dict[str, tuple[str, ...]] = {
    "predictions": ("predictions",),
    "layer_chosen": ("layer", "chosen"),
    "layer_num_layers": ("layer", "num_layers"),
    "capacity_f1": ("analyses", "capacity", "metrics", "f1_micro"),
    "capacity_change_pct": ("analyses", "capacity", "relative_change_pct"),
    "capacity_predictions": ("analyses", "capacity", "predictions"),
    "capacity_k": ("analyses", "capacity", "k"),
    "inference": ("analyses", "inference_time"),
    "inference_params": ("analyses", "inference_time", "params"),
    "inference_full_s": ("analyses", "inference_time", "subsets", "full", "upstream_s"),
    "inference_head_s": ("analyses", "inference_time", "subsets", "full", "head_s"),
    "inference_short_s": ("analyses", "inference_time", "subsets", "short", "paper_style_s"),
    "inference_long_s": ("analyses", "inference_time", "subsets", "long", "paper_style_s"),
    "inference_throughput": ("analyses", "inference_time", "extraction", "audio_s_per_s"),
    "inference_device": ("analyses", "inference_time", "device"),
    "word_discrimination": ("word_discrimination",),
    "total_s": ("timings", "total_s"),
    "environment": ("environment",),
}
# Per-item correctness flags of a discrimination result (inside ``predictions`` or a setting).
CORRECT_FLAG_KEYS = ("correct", "flags", "correct_flags")

N_BOOT = 1000
LANGUAGES = ("en", "fi", "fr")
LANGUAGE_ABBR = {"en": "En", "fi": "Fi", "fr": "Fr"}
TASK_ABBR = {"gender": "Gen", "emotion": "Emo", "intent": "Int", "topic": "Top", "request": "Req"}
TASK_GROUP = {"gender": "gender", "emotion": "emotion", "intent": "semantic", "topic": "semantic",
              "request": "semantic"}
SEMANTIC_TASKS = ("intent", "topic", "request")
LAYER_GROUPS = ("gender", "emotion", "semantic")
GROUPS: tuple[tuple[str, str], ...] = (
    ("small", "Small-scale models"),
    ("base", "Base models"),
    ("large", "Large models"),
    ("large_asr_ft", "Large ASR fine-tuned models"),
    ("other", "Other models (not in the paper)"),
    ("controls", "Controls (random initialisation)"),
)
CARD_GROUP_TO_ROW_GROUP = {"baseline": "small", "small": "small", "base": "base", "large": "large",
                           "large_asr_ft": "large_asr_ft"}
PAPER_MODEL_ORDER = ("mfcc", "audio_word2vec", "speech2vec", "siamese", "lee", "wav2vec2_base", "hubert_base",
                     "wavlm_base_plus", "whisper_small", "wav2vec2_large", "hubert_large", "wavlm_large",
                     "wav2vec2_large_ft", "hubert_large_ft", "wavlm_large_ft")
PAPER_GROUPS = {m: ("small" if i < 5 else "base" if i < 9 else "large" if i < 12 else "large_asr_ft")
                for i, m in enumerate(PAPER_MODEL_ORDER)}
PLOT_KINDS: tuple[tuple[str, str], ...] = (
    ("sweeps", "Layer sweep curves"),
    ("capacity", "Capacity attribution"),
    ("overlap", "Overlap of important dimensions"),
    ("umap", "UMAP projections"),
    ("other", "Other plots"),
)
REFERENCE_FILE = Path("reference") / "paper_tables.yaml"


# --------------------------------------------------------------------------- table values
@dataclass(frozen=True)
class Column:
    """One markdown column. ``kind`` picks the renderer and the CSV fields (see :data:`CSV_FIELDS`);
    ``better`` ("higher" / "lower") marks the columns whose best value per row group is bold."""

    key: str
    header: str
    kind: str
    better: str | None = None
    digits: int = 1


@dataclass(frozen=True)
class Cell:
    """One table cell. ``status``: "ok" (a value), "n/a" (failed or unavailable, see ``notes``),
    "missing" (never run). ``delta`` is ours minus published for published cells and the relative
    change in percent for capacity cells. ``seeds`` counts the results averaged."""

    value: float | None = None
    low: float | None = None
    high: float | None = None
    delta: float | None = None
    seeds: int = 0
    text: str | None = None
    fallback: bool = False
    status: str = "missing"
    notes: tuple[int, ...] = ()
    best: bool = False


@dataclass(frozen=True)
class Row:
    key: str
    display: str
    group: str
    cells: Mapping[str, Cell]


@dataclass(frozen=True)
class Table:
    """A rendered-ready table: ``notes`` are numbered (1-based) reasons cells cite; ``footer`` explains
    the method and marks."""

    name: str
    title: str
    profile: str
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    notes: tuple[str, ...] = ()
    footer: tuple[str, ...] = ()


CSV_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "score": (("", "value"), (".low", "low"), (".high", "high"), (".seeds", "seeds")),
    "capacity": (("", "value"), (".low", "low"), (".high", "high"), (".change_pct", "delta"),
                 (".seeds", "seeds")),
    "published": (("", "value"), (".diff", "delta")),
}


# --------------------------------------------------------------------------- reading results
def _get(data: Any, path: Sequence[str]) -> Any:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _section(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """``data[key]`` when it is a mapping, else an empty one."""
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def field_of(result: Mapping[str, Any], name: str) -> Any:
    """The value at :data:`FIELDS` ``[name]`` in ``result``, or None when any step is missing."""
    return _get(result, FIELDS[name])


def _number(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(float(x)):
        return None
    return float(x)


def _paper_number(x: Any) -> Any:
    """A published leaf as a number: YAML 1.1 reads ``95e6`` (no dot) as a string."""
    if isinstance(x, str):
        try:
            return float(x)
        except ValueError:
            return x
    return x


def _pairs(pred: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """(y_true, y_pred) from a predictions section: labels, or per-item correctness flags."""
    if not isinstance(pred, Mapping):
        return None
    if isinstance(pred.get("y_true"), list) and isinstance(pred.get("y_pred"), list):
        yt, yp = np.asarray(pred["y_true"]), np.asarray(pred["y_pred"])
        return (yt, yp) if len(yt) and len(yt) == len(yp) else None
    for key in CORRECT_FLAG_KEYS:
        if isinstance(pred.get(key), list) and pred[key]:
            flags = np.asarray(pred[key]).astype(np.int64)
            return np.ones_like(flags), flags
    return None


@dataclass(frozen=True)
class Run:
    """One result, with the identity the tables group by."""

    row: str
    task: str
    paper_table: str | None
    kind: str
    task_group: str
    language: str
    seed: int
    status: str
    result: Mapping[str, Any]


@dataclass(frozen=True)
class RowMeta:
    key: str
    display: str
    group: str
    paper_row: str | None
    order: tuple[int, str]


def _run(result: Mapping[str, Any]) -> Run:
    cell = _section(result, "cell")
    task_sec = _section(result, "task")
    up = _section(result, "upstream")
    downstream = str(cell.get("downstream") or "")
    task = str(task_sec.get("name") or cell.get("task") or downstream or "?")
    paper_table = task_sec.get("paper_table") or (task if task in TASK_ABBR or task.endswith("discrimination") else None)
    kind = str(task_sec.get("kind") or (task if task.endswith("discrimination") else "classification"))
    listed = str(up.get("listed") or cell.get("upstream") or "?")
    row = listed if not downstream or downstream == task else f"{listed} [{downstream}]"
    seed = cell.get("seed")
    return Run(row=row, task=task, paper_table=str(paper_table) if paper_table else None, kind=kind,
               task_group=str(task_sec.get("group") or TASK_GROUP.get(task, task)),
               language=str(cell.get("language") or "?"), seed=seed if isinstance(seed, int) else 0,
               status=str(result.get("status") or "failed"), result=result)


def _row_meta(row: str, runs: Sequence[Run]) -> RowMeta:
    ups = [r.result["upstream"] for r in runs if isinstance(r.result.get("upstream"), Mapping)]
    listed = row.split(" [", 1)[0]
    up = ups[0] if ups else {}
    random_init = bool(up.get("random_init")) if up else listed.endswith("@random")
    paper_row = up.get("paper_row") if up else (listed if listed in PAPER_GROUPS else None)
    if random_init:
        group = "controls"
    elif up:
        group = CARD_GROUP_TO_ROW_GROUP.get(str(up.get("group")), "other")
    else:
        group = PAPER_GROUPS.get(listed, "other")
    display = str(up.get("display") or listed)
    if row != listed:
        display += row[len(listed):]
    order = PAPER_MODEL_ORDER.index(paper_row) if paper_row in PAPER_MODEL_ORDER else len(PAPER_MODEL_ORDER)
    return RowMeta(key=row, display=display, group=group, paper_row=None if random_init else paper_row,
                   order=(order, row))


class _Index:
    """Runs by (row, task, language), and what each row is."""

    def __init__(self, results: Iterable[Mapping[str, Any]]) -> None:
        runs = sorted((_run(r) for r in results), key=lambda r: (r.row, r.task, r.language, r.seed, r.status))
        self.runs = runs
        self.cells: dict[tuple[str, str, str], list[Run]] = {}
        by_row: dict[str, list[Run]] = {}
        for r in runs:
            self.cells.setdefault((r.row, r.task, r.language), []).append(r)
            by_row.setdefault(r.row, []).append(r)
        self.rows = {k: _row_meta(k, v) for k, v in by_row.items()}

    def at(self, row: str, task: str, language: str) -> list[Run]:
        return self.cells.get((row, task, language), [])

    def pairs(self, *, where: Callable[[Run], bool]) -> list[tuple[str, str]]:
        """(task, language) pairs of the runs matching ``where``, in the paper's order."""
        found = {(r.task, r.language) for r in self.runs if where(r)}
        return sorted(found, key=_task_language_order)

    def rows_with(self, *, where: Callable[[Run], bool]) -> list[RowMeta]:
        keys = {r.row for r in self.runs if where(r)}
        return sorted((self.rows[k] for k in keys), key=_row_order)

    def at_any(self, task: str, language: str) -> list[Run]:
        """Runs of (task, language) of every row."""
        return [r for r in self.runs if (r.task, r.language) == (task, language)]

    def row_runs(self, row: str) -> list[Run]:
        return [r for r in self.runs if r.row == row]


def _task_language_order(pair: tuple[str, str]) -> tuple[int, int, str, str]:
    task, lang = pair
    t = list(TASK_ABBR).index(task) if task in TASK_ABBR else len(TASK_ABBR)
    la = LANGUAGES.index(lang) if lang in LANGUAGES else len(LANGUAGES)
    return t, la, task, lang


def _row_order(meta: RowMeta) -> tuple[int, int, str]:
    group_index = [g for g, _ in GROUPS].index(meta.group)
    return group_index, meta.order[0], meta.order[1]


# --------------------------------------------------------------------------- notes
class _Notes:
    """Numbered reasons, in order of first citation; each lists the cells citing it."""

    def __init__(self) -> None:
        self._numbers: dict[str, int] = {}
        self._where: dict[int, set[str]] = {}

    def add(self, text: str, where: str) -> int:
        n = self._numbers.setdefault(text, len(self._numbers) + 1)
        self._where.setdefault(n, set()).add(where)
        return n

    def rendered(self) -> tuple[str, ...]:
        return tuple(f"{text} ({'; '.join(sorted(self._where[n]))})" for text, n in self._numbers.items())


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())


def failure_reason(result: Mapping[str, Any]) -> str:
    """The note text of a failed or unavailable result: the reason, or the error type and the
    first line of its message."""
    status = str(result.get("status") or "failed")
    if status == "unavailable":
        return f"unavailable: {_one_line(result.get('reason') or 'no reason recorded')}"
    err = _section(result, "error")
    message = str(err.get("message") or "").strip().splitlines()
    first = _one_line(message[0]) if message else "no message"
    return f"{status}: {err.get('type') or 'error'}: {first}"


def _where(run: Run) -> str:
    return f"{run.row} {run.task}/{run.language}/seed {run.seed}"


def _failure_notes(runs: Sequence[Run], notes: _Notes) -> tuple[int, ...]:
    return tuple(sorted({notes.add(failure_reason(r.result), _where(r)) for r in runs if r.status != "ok"}))


# --------------------------------------------------------------------------- aggregating seeds
@dataclass(frozen=True)
class _Measure:
    """How to read one score from a result: its value and, when stored, per-item (y_true, y_pred)."""

    metric: str
    value: Callable[[Mapping[str, Any]], float | None]
    pairs: Callable[[Mapping[str, Any]], tuple[np.ndarray, np.ndarray] | None]
    note_no_pairs: bool = True  # cite a note when a result has no per-item predictions


def _metric_measure(metric: str) -> _Measure:
    return _Measure(metric, lambda r: _number(_get(r, ("metrics", metric))),
                    lambda r: _pairs(field_of(r, "predictions")))


def _capacity_measure() -> _Measure:
    return _Measure("f1_micro", lambda r: _number(field_of(r, "capacity_f1")),
                    lambda r: _pairs(field_of(r, "capacity_predictions")), note_no_pairs=False)


def _score_cell(runs: Sequence[Run], measure: _Measure, *, notes: _Notes, n_boot: int) -> Cell:
    """Mean over the ok seeds with a bootstrap interval; n/a (with notes) when none is ok."""
    from .metrics import bootstrap_ci

    bad_notes = _failure_notes(runs, notes)
    ok = [r for r in runs if r.status == "ok"]
    if not ok:
        return Cell(status="n/a" if bad_notes else "missing", notes=bad_notes)
    values = [measure.value(r.result) for r in ok]
    if all(v is None for v in values):
        return Cell(status="missing", notes=bad_notes)
    fallback = any(bool(_get(r.result, ("upstream", "language_fallback"))) for r in ok)
    pairs = [measure.pairs(r.result) for r in ok]
    if all(p is not None for p in pairs):
        mean, low, high = bootstrap_ci([p for p in pairs if p is not None], metric=measure.metric, n_boot=n_boot)
        return Cell(value=mean, low=low, high=high, seeds=len(ok), fallback=fallback, status="ok", notes=bad_notes)
    present = [v for v in values if v is not None]
    cited = set(bad_notes)
    if measure.note_no_pairs:
        cited.add(notes.add("no per-item predictions stored: mean of the seeds' scores, no interval",
                            "; ".join(sorted({_where(r) for r in ok}))))
    return Cell(value=float(np.mean(present)), seeds=len(present), fallback=fallback, status="ok",
                notes=tuple(sorted(cited)))


def _capacity_cell(runs: Sequence[Run], *, notes: _Notes, n_boot: int) -> Cell:
    cell = _score_cell(runs, _capacity_measure(), notes=notes, n_boot=n_boot)
    changes = [c for c in (_capacity_change(r.result) for r in runs if r.status == "ok") if c is not None]
    return replace(cell, delta=float(np.mean(changes)) if changes and cell.status == "ok" else None)


def _capacity_change(result: Mapping[str, Any]) -> float | None:
    """Relative change of micro-F1 in percent (+ is a gain): as reported, else recomputed."""
    reported = field_of(result, "capacity_change_pct")
    if isinstance(reported, Mapping):
        reported = reported.get("f1_micro")
    if _number(reported) is not None:
        return _number(reported)
    cap, full = _number(field_of(result, "capacity_f1")), _number(_get(result, ("metrics", "f1_micro")))
    return 100.0 * (cap - full) / full if cap is not None and full else None


def _published_cell(value: Any, ours: Cell | None, *, digits: int = 1) -> Cell:
    v = _number(value)
    if v is None:
        return Cell()
    delta = round(ours.value, digits) - v if ours is not None and ours.value is not None else None
    return Cell(value=v, delta=delta, status="ok")


def _plain_cell(value: Any) -> Cell:
    v = _number(value)
    return Cell(value=v, status="ok") if v is not None else Cell()


# --------------------------------------------------------------------------- building tables
@dataclass
class _Context:
    index: _Index
    published: Mapping[str, Any] | None
    profile: str
    n_boot: int
    notes: _Notes = field(default_factory=_Notes)

    def fresh(self) -> _Context:
        return _Context(self.index, self.published, self.profile, self.n_boot)

    def paper(self, *path: Any) -> Any:
        data: Any = self.published
        for key in path:
            if isinstance(data, Mapping):
                data = data.get(key)
            elif isinstance(data, list) and isinstance(key, int) and 0 <= key < len(data):
                data = data[key]
            else:
                return None
        return _paper_number(data)


def build_tables(results: Iterable[Mapping[str, Any]], *, published: Mapping[str, Any] | None, profile: str,
                 n_boot: int = N_BOOT, show_published: bool | None = None) -> list[Table]:
    """Every leaderboard table of ``profile`` from its result dicts (pure: reads nothing else).

    ``published`` is the content of ``reference/paper_tables.yaml``; it is shown only when
    ``show_published`` is true, or, when None, when the results come from the real corpora (some
    result's ``task.corpus`` is not "synth"). Tables without any result are left out.
    """
    results = list(results)
    idx = _Index(results)
    show = _from_real_corpora(results) if show_published is None else show_published
    ctx = _Context(idx, published if show else None, profile, n_boot)
    builders: list[Callable[[_Context], Table | None]] = [
        _gender_table, _layers_table, _emotion_table, _semantic_table, _word_table, _emotion_discrimination_table,
        _capacity_table, _inference_table,
    ]
    tables = [b(ctx.fresh()) for b in builders]
    tables += [_extra_task_table(ctx.fresh(), task) for task in _extra_tasks(idx)]
    footer = _published_footer(show=show, available=published is not None)
    return [replace(t, footer=t.footer + footer) for t in tables if t is not None and t.rows]


def _from_real_corpora(results: Sequence[Mapping[str, Any]]) -> bool:
    corpora = {_get(r, ("task", "corpus")) for r in results} - {None}
    return bool(corpora - {"synth"})


def _published_footer(*, show: bool, available: bool) -> tuple[str, ...]:
    if show and available:
        return ("paper (Δ): the published score (reference/paper_tables.yaml) and ours minus it, in points.",)
    if show:
        return ("Published numbers are not shown: reference/paper_tables.yaml was not found.",)
    return ("Published numbers are not shown: these results come from the synthetic corpus, on which the "
            "paper's real-corpus scores are not comparable (they are in reference/paper_tables.yaml).",)


def _extra_tasks(idx: _Index) -> list[str]:
    known = {"gender", "emotion", *SEMANTIC_TASKS, "word_discrimination", "emotion_discrimination"}
    return sorted({r.task for r in idx.runs if r.kind == "classification" and r.task not in known})


def _pair_prefix(task: str, language: str) -> str:
    return f"{TASK_ABBR.get(task, task.capitalize())}-{LANGUAGE_ABBR.get(language, language)}"


def _gender_table(ctx: _Context) -> Table | None:
    return _classification_table(ctx, name="table1_gender", title="Table I: Gender ID (F1 and UAR, %)",
                                 tasks=("gender",))


def _emotion_table(ctx: _Context) -> Table | None:
    return _classification_table(ctx, name="table3_emotion", title="Table III: Emotion ID (F1 and UAR, %)",
                                 tasks=("emotion",))


def _semantic_table(ctx: _Context) -> Table | None:
    return _classification_table(ctx, name="table4_intent_topic_request",
                                 title="Table IV: Intent (En), Topic (Fi) and Request (Fr) ID (F1 and UAR, %)",
                                 tasks=SEMANTIC_TASKS)


def _extra_task_table(ctx: _Context, task: str) -> Table | None:
    return _classification_table(ctx, name=f"task_{task}", title=f"Task {task} (F1 and UAR, %; not in the paper)",
                                 tasks=(task,))


def _classification_table(ctx: _Context, *, name: str, title: str, tasks: Sequence[str]) -> Table | None:
    """Score columns (F1, UAR, each with the published one), the 10%-capacity column per
    (task, language), then parameters and inference time."""
    idx = ctx.index
    pairs = idx.pairs(where=lambda r: r.task in tasks)
    if not pairs:
        return None
    columns: list[Column] = []
    for task, lang in pairs:
        columns += _score_columns(ctx, task, lang)
        if any(field_of(r.result, "capacity_f1") is not None for r in idx.at_any(task, lang)):
            columns.append(Column(f"{task}.{lang}.capacity", f"{_pair_prefix(task, lang)} 10% F1 (change)",
                                  "capacity", better="higher"))
    columns += _model_columns(ctx)
    rows = [_classification_row(ctx, meta, columns) for meta in idx.rows_with(where=lambda r: r.task in tasks)]
    footer = (_ci_footer(ctx, rows, columns), *_marks_footer(rows), *_model_columns_footer(ctx, columns))
    return _finish(ctx, name=name, title=title, columns=columns, rows=rows, footer=footer)


def _score_columns(ctx: _Context, task: str, lang: str) -> list[Column]:
    prefix = _pair_prefix(task, lang)
    cols = []
    for metric, label in (("f1_micro", "F1"), ("uar", "UAR")):
        cols.append(Column(f"{task}.{lang}.{metric}", f"{prefix} {label}", "score", better="higher"))
        if ctx.published is not None:
            cols.append(Column(f"{task}.{lang}.{metric}.paper", f"{prefix} {label} paper (Δ)", "published"))
    return cols


def _model_columns(ctx: _Context) -> list[Column]:
    cols = [Column("params", "Params", "params")]
    if any(field_of(r.result, "inference") is not None for r in ctx.index.runs):
        cols.append(Column("inference_full_s", "Inference (s)", "seconds"))
    return cols


def _model_columns_footer(ctx: _Context, columns: Sequence[Column]) -> tuple[str, ...]:
    lines = ["Params: parameters of the embedding model, counted by the inference-time analysis where it ran, "
             "else as published on the model card."]
    if any(c.key == "inference_full_s" for c in columns):
        lines.append(f"Inference (s): embedding the whole {_inference_cell_label(ctx)} test set, batch size 1 "
                     "(see Table IX).")
    if any(c.kind == "capacity" for c in columns):
        lines.append("10% F1 (change): micro-F1 of a probe on the 10% most important dimensions (Integrated "
                     "Gradients) and its relative change versus all dimensions, in % (+ is a gain; see Table VIII).")
    return tuple(lines)


def _inference_cell_label(ctx: _Context) -> str:
    timed = next((r for r in ctx.index.runs if field_of(r.result, "inference") is not None), None)
    return f"{timed.task}/{timed.language}" if timed else "?"


def _classification_row(ctx: _Context, meta: RowMeta, columns: Sequence[Column]) -> Row:
    idx = ctx.index
    cells: dict[str, Cell] = {}
    for col in columns:
        parts = col.key.split(".")
        if col.kind == "score":
            task, lang, metric = parts
            cells[col.key] = _score_cell(idx.at(meta.key, task, lang), _metric_measure(metric), notes=ctx.notes,
                                         n_boot=ctx.n_boot)
        elif col.kind == "published":
            task, lang, metric = parts[:3]
            paper = ctx.paper(task, lang, meta.paper_row, 0 if metric == "f1_micro" else 1)
            cells[col.key] = _published_cell(paper, cells.get(".".join(parts[:3])))
        elif col.kind == "capacity":
            task, lang = parts[:2]
            cells[col.key] = _capacity_cell(idx.at(meta.key, task, lang), notes=ctx.notes, n_boot=ctx.n_boot)
    cells.update(_model_cells(ctx, meta, columns))
    return Row(meta.key, meta.display, meta.group, cells)


def _model_cells(ctx: _Context, meta: RowMeta, columns: Sequence[Column]) -> dict[str, Cell]:
    """Params and inference time of a row: from its inference-time analysis, else the card."""
    runs = ctx.index.row_runs(meta.key)
    inference = next((r.result for r in runs if field_of(r.result, "inference") is not None), None)
    params = _number(field_of(inference, "inference_params")) if inference is not None else None
    if params is None:
        params = next((p for p in (_number(_get(r.result, ("upstream", "params_published"))) for r in runs)
                       if p is not None), None)
    cells = {"params": _plain_cell(params)}
    if any(c.key == "inference_full_s" for c in columns):
        cells["inference_full_s"] = _plain_cell(field_of(inference, "inference_full_s") if inference else None)
    return cells


def _layers_table(ctx: _Context) -> Table | None:
    """Table II: the layer each classification probe read, per task group and language."""
    idx = ctx.index

    def chosen(r: Run) -> bool:
        return r.kind == "classification" and r.task_group in LAYER_GROUPS

    pairs = sorted(idx.pairs(where=chosen), key=lambda p: (LAYER_GROUPS.index(TASK_GROUP.get(p[0], p[0]))
                                                             if TASK_GROUP.get(p[0]) in LAYER_GROUPS else 9,
                                                             *_task_language_order(p)))
    columns: list[Column] = []
    for task, lang in pairs:
        columns.append(Column(f"{task}.{lang}.layer", _pair_prefix(task, lang), "layer", digits=0))
        if ctx.published is not None:
            columns.append(Column(f"{task}.{lang}.layer.paper", f"{_pair_prefix(task, lang)} paper (Δ)",
                                  "published", digits=0))
    rows = [_layer_row(ctx, meta, columns) for meta in idx.rows_with(where=chosen) if _has_layers(idx, meta)]
    footer = ("Layer index: 0 = the CNN / embedding output, i = transformer layer i (the paper's 1-based "
              "index). Single-layer embeddings have no layer to choose and are not listed; – in a cell: a "
              "single-layer result or no result.", *_marks_footer(rows))
    return _finish(ctx, name="table2_layers", title="Table II: Layers used to extract the embeddings",
                   columns=columns, rows=rows, footer=footer)


def _has_layers(idx: _Index, meta: RowMeta) -> bool:
    ok = [r for r in idx.row_runs(meta.key) if r.status == "ok" and r.kind == "classification"]
    if not ok:
        return meta.group != "small"
    return any((_number(field_of(r.result, "layer_num_layers")) or 0) > 1 for r in ok)


def _layer_row(ctx: _Context, meta: RowMeta, columns: Sequence[Column]) -> Row:
    cells: dict[str, Cell] = {}
    for col in columns:
        task, lang = col.key.split(".")[:2]
        if col.kind == "layer":
            cells[col.key] = _layer_cell(ctx.index.at(meta.key, task, lang), notes=ctx.notes)
        else:
            group = TASK_GROUP.get(task, task)
            lang_pos = LANGUAGES.index(lang) if lang in LANGUAGES else -1
            cells[col.key] = _published_cell(ctx.paper("best_layer", group, meta.paper_row, lang_pos),
                                             cells.get(f"{task}.{lang}.layer"), digits=0)
    return Row(meta.key, meta.display, meta.group, cells)


def _layer_cell(runs: Sequence[Run], *, notes: _Notes) -> Cell:
    bad = _failure_notes(runs, notes)
    ok = [r for r in runs if r.status == "ok"]
    layers = sorted({int(v) for v in (_number(field_of(r.result, "layer_chosen")) for r in ok) if v is not None})
    multi = any((_number(field_of(r.result, "layer_num_layers")) or 0) > 1 for r in ok)
    if not ok:
        return Cell(status="n/a" if bad else "missing", notes=bad)
    if not layers or not multi:
        return Cell(notes=bad)
    fallback = any(bool(_get(r.result, ("upstream", "language_fallback"))) for r in ok)
    text = "/".join(str(la) for la in layers) if len(layers) > 1 else None
    return Cell(value=float(layers[0]), text=text, seeds=len(ok), fallback=fallback, status="ok", notes=bad)


def _word_table(ctx: _Context) -> Table | None:
    """Table V: word discrimination accuracy, matched and mismatched vocabularies."""
    idx = ctx.index
    entries = {(r.row, *e[:2]): e for r in idx.runs if r.kind == "word_discrimination" and r.status == "ok"
               for e in _word_entries(r)}
    runs = [r for r in idx.runs if r.kind == "word_discrimination"]
    if not runs:
        return None
    settings = sorted({(s, lang) for _, s, lang in entries} | {("matched", r.language) for r in runs},
                      key=lambda p: (p[0] != "matched", *_task_language_order(("", p[1]))[1:]))
    columns: list[Column] = []
    for setting, lang in settings:
        header = f"{setting.capitalize()} {LANGUAGE_ABBR.get(lang, lang)}"
        columns.append(Column(f"{setting}.{lang}", header, "score", better="higher"))
        if ctx.published is not None:
            columns.append(Column(f"{setting}.{lang}.paper", f"{header} paper (Δ)", "published"))
    rows = [_word_row(ctx, meta, columns, runs) for meta in idx.rows_with(where=lambda r: r.kind == "word_discrimination")]
    footer = (_ci_footer(ctx, rows, columns),
              "Accuracy: share of triplets with cos(anchor, positive) > cos(anchor, negative). Mismatched "
              "columns are named by the test language (the paper's convention).", *_marks_footer(rows))
    return _finish(ctx, name="table5_word_discrimination",
                   title="Table V: Word discrimination accuracy (%), matched and mismatched vocabularies",
                   columns=columns, rows=rows, footer=footer)


def _word_entries(run: Run) -> list[tuple[str, str, float | None, Any]]:
    """(setting, test language, accuracy, per-triplet flags) of a word-discrimination result."""
    section = field_of(run.result, "word_discrimination")
    out = []
    if isinstance(section, Mapping):
        for setting in ("matched", "mismatched"):
            entry = section.get(setting)
            if isinstance(entry, Mapping):
                lang = str(entry.get("test_language") or run.language)
                out.append((setting, lang, _number(entry.get("accuracy")), entry.get("predictions", entry)))
            elif _number(entry) is not None:
                out.append((setting, run.language, _number(entry), None))
    if not any(e[0] == "matched" for e in out) and _number(_get(run.result, ("metrics", "accuracy"))) is not None:
        out.append(("matched", run.language, _number(_get(run.result, ("metrics", "accuracy"))),
                    field_of(run.result, "predictions")))
    return out


def _word_row(ctx: _Context, meta: RowMeta, columns: Sequence[Column], runs: Sequence[Run]) -> Row:
    cells: dict[str, Cell] = {}
    mine = [r for r in runs if r.row == meta.key]
    for col in columns:
        setting, lang = col.key.split(".")[:2]
        if col.kind == "published":
            cells[col.key] = _published_cell(ctx.paper("word_discrimination", setting, meta.paper_row, lang),
                                             cells.get(f"{setting}.{lang}"))
            continue
        cells[col.key] = _word_cell(ctx, mine, setting=setting, lang=lang)
    return Row(meta.key, meta.display, meta.group, cells)


def _word_cell(ctx: _Context, runs: Sequence[Run], *, setting: str, lang: str) -> Cell:
    """The runs giving (setting, lang) entries, scored as pseudo-runs; failed cells of ``lang`` cited."""
    found: list[Run] = []
    for r in runs:
        for s, la, acc, flags in (_word_entries(r) if r.status == "ok" else []):
            if (s, la) == (setting, lang):
                found.append(replace(r, result={**r.result, "metrics": {"accuracy": acc},
                                                 "predictions": flags}))
    if setting == "matched":
        found += [r for r in runs if r.status != "ok" and r.language == lang]
    return _score_cell(found, _Measure("accuracy", lambda x: _number(_get(x, ("metrics", "accuracy"))),
                                       lambda x: _pairs(x.get("predictions"))), notes=ctx.notes, n_boot=ctx.n_boot)


def _emotion_discrimination_table(ctx: _Context) -> Table | None:
    """Table VII: emotion discrimination accuracy per language."""
    idx = ctx.index

    def disc(r: Run) -> bool:
        return r.kind == "emotion_discrimination"

    columns: list[Column] = []
    for task, lang in idx.pairs(where=disc):
        columns.append(Column(f"{task}.{lang}", LANGUAGE_ABBR.get(lang, lang), "score", better="higher"))
        if ctx.published is not None:
            columns.append(Column(f"{task}.{lang}.paper", f"{LANGUAGE_ABBR.get(lang, lang)} paper (Δ)", "published"))
    rows = []
    for meta in idx.rows_with(where=disc):
        cells: dict[str, Cell] = {}
        for col in columns:
            task, lang = col.key.split(".")[:2]
            if col.kind == "score":
                cells[col.key] = _score_cell(idx.at(meta.key, task, lang), _metric_measure("accuracy"),
                                             notes=ctx.notes, n_boot=ctx.n_boot)
            else:
                cells[col.key] = _published_cell(ctx.paper("emotion_discrimination", meta.paper_row, lang),
                                                 cells.get(f"{task}.{lang}"))
        rows.append(Row(meta.key, meta.display, meta.group, cells))
    footer = (_ci_footer(ctx, rows, columns), "Accuracy: share of utterance triplets whose anchor is closer (cosine) to "
              "the same-emotion utterance than to the other-emotion one.", *_marks_footer(rows))
    return _finish(ctx, name="table7_emotion_discrimination", title="Table VII: Emotion discrimination accuracy (%)",
                   columns=columns, rows=rows, footer=footer)


def _capacity_table(ctx: _Context) -> Table | None:
    """Table VIII: micro-F1 with all dimensions and with the 10% most important ones."""
    idx = ctx.index
    pairs = idx.pairs(where=lambda r: field_of(r.result, "capacity_f1") is not None)
    if not pairs:
        return None
    columns: list[Column] = []
    for task, lang in pairs:
        prefix = _pair_prefix(task, lang)
        columns += [Column(f"{task}.{lang}.f1_micro", f"{prefix} F1 (all dims)", "score", better="higher"),
                    Column(f"{task}.{lang}.capacity", f"{prefix} 10% F1 (change)", "capacity", better="higher")]
        if ctx.published is not None:
            columns += [Column(f"{task}.{lang}.capacity.paper", f"{prefix} 10% F1 paper (Δ)", "published"),
                        Column(f"{task}.{lang}.capacity.paper_change", f"{prefix} paper change", "pct")]
    columns.append(Column("capacity_k", "Dims kept (k)", "text"))
    capacity_tasks = {t for t, _ in pairs}
    rows = [_capacity_row(ctx, meta, columns)
            for meta in idx.rows_with(where=lambda r: r.task in capacity_tasks and r.kind == "classification")]
    footer = (_ci_footer(ctx, rows, columns),
              "10% F1 (change): a probe trained on the 10% most important embedding dimensions (Integrated "
              "Gradients); change relative to all dimensions, in % (+ is a gain), mean over seeds. The 10% F1 has an "
              "interval only where the capacity step stored its per-item predictions.",
              *_marks_footer(rows))
    return _finish(ctx, name="table8_capacity", title="Table VIII: 10% capacity (micro-F1, %)", columns=columns,
                   rows=rows, footer=footer)


def _capacity_row(ctx: _Context, meta: RowMeta, columns: Sequence[Column]) -> Row:
    idx = ctx.index
    cells: dict[str, Cell] = {}
    for col in columns:
        if col.key == "capacity_k":
            ks = sorted({int(k) for k in (_number(field_of(r.result, "capacity_k")) for r in idx.row_runs(meta.key))
                         if k is not None})
            cells[col.key] = Cell(text="/".join(map(str, ks)), status="ok") if ks else Cell()
            continue
        task, lang = col.key.split(".")[:2]
        runs = idx.at(meta.key, task, lang)
        if col.kind == "score":
            cells[col.key] = _score_cell(runs, _metric_measure("f1_micro"), notes=ctx.notes, n_boot=ctx.n_boot)
        elif col.kind == "capacity":
            cells[col.key] = _capacity_cell(runs, notes=ctx.notes, n_boot=ctx.n_boot)
        elif col.kind == "published":
            paper = ctx.paper(f"capacity_10pct_{lang}", meta.paper_row, task, 0)
            cells[col.key] = _published_cell(paper, cells.get(f"{task}.{lang}.capacity"))
        else:
            cells[col.key] = _plain_cell(ctx.paper(f"capacity_10pct_{lang}", meta.paper_row, task, 1))
    return Row(meta.key, meta.display, meta.group, cells)


INFERENCE_COLUMNS: tuple[tuple[str, str, str, str | None], ...] = (
    ("params", "Params", "params", None),
    ("full_s", "Full: upstream (s)", "seconds", "lower"),
    ("head_s", "Full: head (s)", "seconds", "lower"),
    ("short_s", "Short (s)", "seconds", "lower"),
    ("long_s", "Long (s)", "seconds", "lower"),
    ("throughput", "Audio s / s", "number", "higher"),
    ("device", "Device", "text", None),
)


def _inference_table(ctx: _Context) -> Table | None:
    """Table IX: parameters and inference time, from each row's inference-time analysis."""
    idx = ctx.index
    timed = [r for r in idx.runs if field_of(r.result, "inference") is not None]
    if not timed:
        return None
    task, lang = timed[0].task, timed[0].language
    columns = [Column(key, header, kind, better=better, digits=0 if kind == "params" else 2)
               for key, header, kind, better in INFERENCE_COLUMNS]
    if ctx.published is not None:
        columns += [Column("paper_params", "Params paper", "params"),
                    *(Column(f"paper_{k}", f"{k.capitalize()} paper (s)", "reference") for k in ("full", "short", "long"))]
    rows = [_inference_row(ctx, meta, task=task, lang=lang)
            for meta in idx.rows_with(where=lambda r: (r.task, r.language) == (task, lang))]
    footer = (f"Embedding the {task}/{lang} test set with batch size 1, warm-up excluded: Full = every test utterance, "
              "its upstream and probe-head times apart (the paper mixed them); Short / Long = the short and long "
              "subsets (the paper: 15 utterances under 3 s and 15 over 15 s), audio loading + upstream + head as the "
              "paper's wall clock. Audio s / s: throughput of the harness's batched extraction over the corpus. "
              "Seconds depend on the device and its threads (in the result files); the paper's were measured on an "
              "NVIDIA GeForce RTX 2080, so no difference is given.",
              *_marks_footer(rows))
    return _finish(ctx, name="table9_inference_time", title="Table IX: Parameters and inference time",
                   columns=columns, rows=rows, footer=footer)


def _inference_row(ctx: _Context, meta: RowMeta, *, task: str, lang: str) -> Row:
    runs = ctx.index.at(meta.key, task, lang)
    timed = next((r.result for r in runs if field_of(r.result, "inference") is not None), None)
    cells: dict[str, Cell]
    if timed is None:
        bad = _failure_notes(runs, ctx.notes)
        empty = Cell(status="n/a" if bad else "missing", notes=bad)
        cells = {key: empty for key, *_ in INFERENCE_COLUMNS}
        params = next((_number(_get(r.result, ("upstream", "params_published"))) for r in runs), None)
        cells["params"] = _plain_cell(params)
    else:
        cells = {key: _plain_cell(field_of(timed, f"inference_{key}")) for key, *_ in INFERENCE_COLUMNS[:6]}
        device = field_of(timed, "inference_device")
        cells["device"] = Cell(text=str(device), status="ok") if device is not None else Cell()
    cells["paper_params"] = _plain_cell(ctx.paper("models", meta.paper_row, "params"))
    for k in ("full", "short", "long"):
        cells[f"paper_{k}"] = _plain_cell(ctx.paper("inference_time_s", meta.paper_row, k))
    return Row(meta.key, meta.display, meta.group, cells)


def _finish(ctx: _Context, *, name: str, title: str, columns: Sequence[Column], rows: Sequence[Row],
            footer: Sequence[str]) -> Table:
    return Table(name=name, title=title, profile=ctx.profile, columns=tuple(columns),
                 rows=tuple(_mark_best(rows, columns)), notes=ctx.notes.rendered(), footer=tuple(f for f in footer if f))


def _mark_best(rows: Sequence[Row], columns: Sequence[Column]) -> list[Row]:
    """Bold the best value per row group and column (ties: all of them), where the group has two or
    more values to compare; values are compared as displayed."""
    best: dict[tuple[str, str], float] = {}
    for col in columns:
        if col.better is None:
            continue
        for group, _ in GROUPS:
            values = [round(c.value, col.digits) for r in rows if r.group == group
                      for c in [r.cells.get(col.key)] if c is not None and c.status == "ok" and c.value is not None]
            if len(values) >= 2:
                best[(group, col.key)] = max(values) if col.better == "higher" else min(values)
    out = []
    for r in rows:
        cells = {k: replace(c, best=True) if (r.group, k) in best and c.value is not None and c.status == "ok"
                 and round(c.value, next(col.digits for col in columns if col.key == k)) == best[(r.group, k)]
                 else c for k, c in r.cells.items()}
        out.append(replace(r, cells=cells))
    return out


def _ci_footer(ctx: _Context, rows: Sequence[Row], columns: Sequence[Column]) -> str:
    scored = {c.key for c in columns if c.kind in ("score", "capacity")}
    seeds = sorted({cell.seeds for r in rows for k, cell in r.cells.items() if k in scored and cell.status == "ok"})
    counted = "–" if not seeds else str(seeds[0]) if len(seeds) == 1 else f"{seeds[0]}–{seeds[-1]}"
    return (f"Scores: mean over seeds (seeds per score: {counted}) [95% confidence interval]. The interval is a "
            f"percentile bootstrap with {ctx.n_boot} replicates, each drawing one seed "
            "uniformly and resampling that seed's test items with replacement, so test-item and seed variation "
            "are pooled (harness.metrics.bootstrap_ci). Bold: the best value per model group and column.")


def _marks_footer(rows: Sequence[Row]) -> tuple[str, ...]:
    cells = [c for r in rows for c in r.cells.values()]
    lines = []
    if any(c.fallback for c in cells):
        lines.append("\\* no model for this language: the English one was used (the paper's mark).")
    if any(c.status == "n/a" for c in cells):
        lines.append("n/a: the cell failed or could not run; the numbered note gives the reason.")
    if any(c.status == "missing" for c in cells):
        lines.append("–: no result (not run, or not measured for this model).")
    return tuple(lines)


# --------------------------------------------------------------------------- rendering
def _fmt(value: float, digits: int) -> str:
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def _fmt_signed(value: float, digits: int) -> str:
    text = _fmt(value, digits)
    return text if text.startswith("-") else f"+{text}"


def _fmt_params(value: float) -> str:
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= scale:
            scaled = value / scale
            return f"{scaled:.1f}{suffix}" if scaled < 10 and scaled != int(scaled) else f"{scaled:.0f}{suffix}"
    return f"{value:.0f}"


def _fmt_seconds(value: float) -> str:
    return _fmt(value, 0 if value >= 100 else 1 if value >= 10 else 2)


def _note_refs(notes: Sequence[int]) -> str:
    return f" (note {', '.join(map(str, notes))})" if notes else ""


def render_cell(cell: Cell, column: Column) -> str:
    """The markdown text of one cell (``n/a``, ``–``, or the value with its interval and marks)."""
    if cell.status == "n/a":
        return "n/a" + _note_refs(cell.notes)
    if cell.status != "ok" or (cell.value is None and cell.text is None):
        return "–" + _note_refs(cell.notes)
    return _render_value(cell, column) + _note_refs(cell.notes)


def _render_value(cell: Cell, column: Column) -> str:
    kind, v = column.kind, cell.value
    if kind == "text" or v is None:
        return str(cell.text or "")
    if kind == "published":
        return _fmt(v, column.digits) + (f" ({_fmt_signed(cell.delta, column.digits)})" if cell.delta is not None else "")
    if kind == "pct":
        return f"{_fmt_signed(v, 1)}%"
    if kind == "params":
        return _fmt_params(v)
    main = (cell.text if kind == "layer" and cell.text else
            _fmt_seconds(v) if kind in ("seconds", "reference") else _fmt(v, column.digits))
    if cell.best:
        main = f"**{main}**"
    if cell.fallback:
        main += "\\*"
    if cell.low is not None and cell.high is not None:
        main += f" [{_fmt(cell.low, column.digits)}, {_fmt(cell.high, column.digits)}]"
    if kind == "capacity" and cell.delta is not None:
        main += f" ({_fmt_signed(cell.delta, 1)}%)"
    return main


def render_markdown(table: Table) -> str:
    """The table as GitHub markdown: title, group header rows, footer lines and numbered notes."""
    from tabulate import tabulate

    headers = ["Embeddings", *(c.header for c in table.columns)]
    body: list[list[str]] = []
    for group, label in GROUPS:
        rows = [r for r in table.rows if r.group == group]
        if not rows:
            continue
        body.append([f"**{label}**", *([""] * len(table.columns))])
        body += [[_escape(r.display), *(_escape(render_cell(r.cells.get(c.key, Cell()), c)) for c in table.columns)]
                 for r in rows]
    lines = [f"# {table.title}", "", f"Profile `{table.profile}`.", "",
             tabulate(body, headers=headers, tablefmt="github", disable_numparse=True), ""]
    lines += [f"{line}\n" for line in table.footer]
    if table.notes:
        lines += ["Notes:", ""] + [f"{i}. {_escape(n)}" for i, n in enumerate(table.notes, 1)] + [""]
    return "\n".join(lines)


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def _csv_value(value: Any) -> Any:
    if isinstance(value, float):
        return "" if not math.isfinite(value) else repr(round(value, 6))
    return "" if value is None else value


def table_csv(table: Table) -> str:
    """One line per model row: group, upstream, display, then each column's numeric fields
    (``key``, and ``key.low`` / ``key.high`` / ``key.diff`` / ... where the kind has them), then
    the fallback languages and the note numbers cited by the row."""
    header = ["group", "upstream", "display"]
    for col in table.columns:
        header += [col.key + suffix for suffix, _ in CSV_FIELDS.get(col.kind, (("", "value"),))]
    header += ["fallback", "notes"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for r in table.rows:
        line: list[Any] = [r.group, r.key, r.display]
        for col in table.columns:
            cell = r.cells.get(col.key, Cell())
            for _, attr in CSV_FIELDS.get(col.kind, (("", "value"),)):
                value = getattr(cell, attr)
                line.append(_csv_value(cell.text if attr == "value" and value is None and cell.text else value))
        fallback = sorted(c.key for c in table.columns if r.cells.get(c.key, Cell()).fallback)
        notes = sorted({n for c in r.cells.values() for n in c.notes})
        line += [" ".join(fallback), " ".join(map(str, notes))]
        writer.writerow(line)
    return buf.getvalue()


def table_json(table: Table) -> dict[str, Any]:
    """The table as plain data: columns, groups, rows with every cell field, notes and footer."""
    def cell_data(c: Cell) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in {"value": c.value, "low": c.low, "high": c.high, "delta": c.delta, "seeds": c.seeds,
                             "text": c.text, "fallback": c.fallback, "status": c.status, "notes": list(c.notes),
                             "best": c.best}.items()}

    return {"name": table.name, "title": table.title, "profile": table.profile,
            "columns": [{"key": c.key, "header": c.header, "kind": c.kind, "better": c.better} for c in table.columns],
            "groups": [{"key": g, "label": label} for g, label in GROUPS],
            "rows": [{"upstream": r.key, "display": r.display, "group": r.group,
                      "cells": {c.key: cell_data(r.cells.get(c.key, Cell())) for c in table.columns}}
                     for r in table.rows],
            "notes": list(table.notes), "footer": list(table.footer)}


# --------------------------------------------------------------------------- run summary and plots
def run_summary(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts by status, total wall time (sum of ``timings.total_s``) and the distinct environments."""
    counts = {s: 0 for s in ("ok", "failed", "unavailable")}
    for r in results:
        status = str(r.get("status"))
        counts[status] = counts.get(status, 0) + 1
    total_s = sum(_number(field_of(r, "total_s")) or 0.0 for r in results)
    envs: dict[str, int] = {}
    for r in results:
        env = field_of(r, "environment")
        if isinstance(env, Mapping):
            envs[_environment_line(env)] = envs.get(_environment_line(env), 0) + 1
    return {"cells": len(results), "status": counts, "total_s": total_s, "environments": dict(sorted(envs.items()))}


def _environment_line(env: Mapping[str, Any]) -> str:
    packages = _section(env, "packages")
    parts = [f"Python {env.get('python', '?')}", str(env.get("platform", "?")),
             f"device {env.get('device_name') or env.get('device', '?')}", f"{env.get('cpu_count', '?')} CPUs"]
    parts += [f"{p} {packages[p]}" for p in ("torch", "transformers", "scikit-learn", "numpy") if p in packages]
    return ", ".join(parts)


def find_plots(profile_results: Path) -> list[tuple[str, Path]]:
    """(kind, path relative to ``profile_results``) of every PNG under it, sorted; the kind is one of
    :data:`PLOT_KINDS` (by top folder, or ``umap`` for ``umap*.png`` anywhere)."""
    if not profile_results.is_dir():
        return []
    out = []
    for p in sorted(profile_results.rglob("*.png")):
        rel = p.relative_to(profile_results)
        top = rel.parts[0] if len(rel.parts) > 1 else ""
        kind = "umap" if p.name.startswith("umap") else top if top in dict(PLOT_KINDS) else "other"
        out.append((kind, rel))
    return out


def _overlap_section(results_dir: Path, profile: str, out_dir: Path) -> tuple[list[Path], str]:
    """Run the overlap report into ``out_dir`` when its module exists: (files written, note)."""
    try:
        from .analysis.overlap import overlap_report  # type: ignore[import-not-found]
    except ImportError:
        return [], "The overlap report (harness.analysis.overlap) is not installed."
    try:
        overlap_report(results_dir=results_dir, profile=profile, out_dir=out_dir)
    except Exception as e:  # noqa: BLE001 - an analysis must not stop the leaderboards
        return [], f"The overlap report failed: {type(e).__name__}: {_one_line(str(e).splitlines()[0] if str(e) else '')}"
    files = sorted(p.relative_to(out_dir.parent) for p in out_dir.rglob("*") if p.is_file()) if out_dir.is_dir() else []
    return [Path(f) for f in files], ""


def render_index(tables: Sequence[Table], *, profile: str, summary: Mapping[str, Any],
                 plots: Sequence[tuple[str, Path]], overlap: Sequence[Path] = (), overlap_note: str = "",
                 generated: str | None = None) -> str:
    """``index.md``: the run summary, a link to every table (md, csv, json) and to every copied plot."""
    st = summary["status"]
    lines = [f"# Leaderboards: profile `{profile}`", ""]
    if generated:
        lines += [f"Generated {generated}.", ""]
    lines += ["## Run", "",
              f"- cells: {summary['cells']} ({st.get('ok', 0)} ok, {st.get('failed', 0)} failed, "
              f"{st.get('unavailable', 0)} unavailable)",
              f"- total wall time: {summary['total_s']:.1f} s (sum of the cells' timings.total_s)"]
    envs = summary["environments"]
    lines += [f"- environment: {env} ({n} cells)" for env, n in envs.items()] or ["- environment: not recorded"]
    lines += ["", "## Tables", ""]
    lines += [f"- [{t.title}]({t.name}.md) ([csv]({t.name}.csv), [json]({t.name}.json))" for t in tables]
    if not tables:
        lines.append("No result yet: run `bench matrix` first.")
    lines += _plot_lines(plots, overlap, overlap_note)
    return "\n".join(lines) + "\n"


def _plot_lines(plots: Sequence[tuple[str, Path]], overlap: Sequence[Path], overlap_note: str) -> list[str]:
    lines = ["", "## Plots", ""]
    if not plots and not overlap:
        lines.append("No plot found under the profile's results.")
    for kind, label in PLOT_KINDS:
        mine = [rel for k, rel in plots if k == kind]
        extra = [p for p in overlap if kind == "overlap"]
        if not mine and not extra:
            continue
        lines += [f"### {label}", ""]
        lines += [f"- [{rel.as_posix()}](plots/{rel.as_posix()})" for rel in mine]
        lines += [f"- [{p.as_posix()}]({p.as_posix()})" for p in extra]
        lines.append("")
    if overlap_note:
        lines += ["", overlap_note]
    return lines


# --------------------------------------------------------------------------- writing
def load_published(root: Path | None = None) -> dict[str, Any] | None:
    """The repository's copy of the paper's tables (``reference/paper_tables.yaml``), looked up in
    the workspace ``root`` first, then beside this package; None when neither exists."""
    from . import yamlio

    candidates = ([root / REFERENCE_FILE] if root is not None else []) + [Path(__file__).resolve().parents[1] / REFERENCE_FILE]
    for path in candidates:
        if path.is_file():
            data = yamlio.load(path, expand=False)
            return data if isinstance(data, dict) else None
    return None


def write_tables(tables: Sequence[Table], out_dir: Path) -> None:
    """``<name>.md``, ``<name>.csv`` and ``<name>.json`` of every table into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for t in tables:
        (out_dir / f"{t.name}.md").write_text(render_markdown(t), encoding="utf-8")
        (out_dir / f"{t.name}.csv").write_text(table_csv(t), encoding="utf-8")
        (out_dir / f"{t.name}.json").write_text(json.dumps(table_json(t), indent=1, ensure_ascii=False) + "\n",
                                                encoding="utf-8")


def write_leaderboards(ws: Workspace, *, profile: str, timestamp: bool = True, n_boot: int = N_BOOT,
                       show_published: bool | None = None) -> Path:
    """Write ``<paths.leaderboards>/<profile>/`` from the profile's result files and return it.

    The folder is rebuilt whole (written beside, then swapped in), so no stale table survives.
    Result files are only read. With ``timestamp=False`` the output is a function of the result
    files alone (byte-identical on rerun).
    """
    from datetime import UTC, datetime

    from .results import iter_results

    results_dir = ws.path("results")
    results = list(iter_results(results_dir, profile))
    tables = build_tables(results, published=load_published(ws.root), profile=profile, n_boot=n_boot,
                          show_published=show_published)
    out = ws.path("leaderboards") / profile
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(out.parent, prefix=f".{profile}{TMP_TAG}")
    stage = temp_sibling(out)
    stage.mkdir()
    try:
        write_tables(tables, stage)
        plots = find_plots(results_dir / profile)
        for _, rel in plots:
            (stage / "plots" / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(results_dir / profile / rel, stage / "plots" / rel)
        has_capacity = any((r.get("analyses") or {}).get("capacity") for r in results)
        overlap, overlap_note = _overlap_section(results_dir, profile, stage / "overlap") if has_capacity else ([], "")
        generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC") if timestamp else None
        index = render_index(tables, profile=profile, summary=run_summary(results), plots=plots, overlap=overlap,
                             overlap_note=overlap_note, generated=generated)
        (stage / "index.md").write_text(index, encoding="utf-8")
        _swap_in(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return out


def _swap_in(stage: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = temp_sibling(out)
        os.replace(out, old)
    os.replace(stage, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
