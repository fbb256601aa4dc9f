"""The workspace: benchmark.yaml, tasks/, downstreams/, upstream cards; loading, overrides, validation.

The file stem is the registry name (``downstreams/emotion.yaml`` is ``--downstream emotion``).
:meth:`Workspace.validate` checks every file and every cross reference and returns *all*
problems; nothing expensive starts before it passes. Importing this module does not import torch.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from . import yamlio
from .errors import (
    BenchError,
    ConfigError,
    DuplicateNameError,
    Problem,
    UnknownNameError,
    did_you_mean,
)
from .registry import ADAPTERS, CORPORA, HEADS, builder_problem
from .schema import (
    LANGUAGES,
    PAPER_LAYOUT_FILE,
    Benchmark,
    Card,
    Downstream,
    PaperLayout,
    Paths,
    Profile,
    Recipe,
    Task,
    Training,
    paper_layout_problems,
)

RANDOM_SUFFIX = "@random"


# --------------------------------------------------------------------------- helpers
def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def short_hash(obj: Any, n: int = 16) -> str:
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:n]


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``over`` into a copy of ``base`` (dicts merge, everything else replaces)."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def parse_value(text: str) -> Any:
    """Typed value of a ``--set`` override: int, float, bool, null, a JSON list/object, else a string.

    Never ``eval``: the text is parsed as JSON or by explicit rules.
    """
    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("null", "none", "~"):
        return None
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    if text.strip()[:1] in "[{":
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise BenchError(f"--set value {text!r} looks like a list/object but is not valid JSON: {e}") from None
    return text


OVERRIDE_SCOPES = ("downstream", "task", "profile", "upstream")


def parse_overrides(items: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``["training.lr=1e-4", "profile.seeds=[0,1]"]`` -> ``{scope: nested dict}``.

    The first path component may name the scope (downstream, task, profile, upstream); without
    one the override applies to the downstream, so ``training.lr=1e-4`` sets the head's learning rate.
    """
    out: dict[str, dict[str, Any]] = {s: {} for s in OVERRIDE_SCOPES}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise BenchError(f"--set expects key.path=value, got {item!r}")
        parts = key.split(".")
        scope = parts[0] if parts[0] in OVERRIDE_SCOPES and len(parts) > 1 else "downstream"
        if parts[0] == scope:
            parts = parts[1:]
        node = out[scope]
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise BenchError(f"--set {item!r}: {p!r} is set both as a value and as a section")
        node[parts[-1]] = parse_value(raw)
    return out


def problems_from_validation(err: ValidationError, *, where: str, model: type[BaseModel]) -> list[Problem]:
    """Turn pydantic's errors into Problems with a did-you-mean for unknown keys."""
    problems = []
    for e in err.errors():
        loc = [str(x) for x in e["loc"]]
        key = ".".join(loc) or "<root>"
        etype = e["type"]
        if etype == "extra_forbidden":
            allowed = _allowed_keys(model, loc[:-1])
            hint = did_you_mean(loc[-1], allowed) if allowed else ""
            problems.append(Problem(where, key, "one of the known keys (" + ", ".join(sorted(allowed)) + ")",
                                    f"unknown key {loc[-1]!r}", hint))
        elif etype == "missing":
            problems.append(Problem(where, key, "a value (required key)", "nothing"))
        else:
            found = repr(e.get("input"))
            if len(found) > 80:
                found = found[:77] + "..."
            problems.append(Problem(where, key, e["msg"].replace("Input should be", "").strip() or e["msg"], found))
    return problems


def _allowed_keys(model: type[BaseModel], loc: list[str]) -> list[str]:
    """Field names of the (nested) model at ``loc``; dict keys (profile names, languages) are skipped."""
    current: Any = model
    i = 0
    while i < len(loc):
        if not _is_model(current):
            return []
        f = current.model_fields.get(loc[i])
        if f is None:
            return []
        inner, depth = _model_in(f.annotation)
        if inner is None:
            return []
        current, i = inner, i + 1 + depth
    return list(current.model_fields) if _is_model(current) else []


def _is_model(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, BaseModel)


def _model_in(annotation: Any, depth: int = 0) -> tuple[Any, int]:
    """The model inside ``annotation`` and how many dict or list levels wrap it (``dict[str, dict[str, M]]`` -> M, 2)."""
    if _is_model(annotation):
        return annotation, depth
    origin = getattr(annotation, "__origin__", None)
    args: tuple[Any, ...] = getattr(annotation, "__args__", ())
    if origin is dict and len(args) == 2:
        return _model_in(args[1], depth + 1)
    if origin is list and len(args) == 1:  # a list index is one level too (``row_groups.1.label``)
        return _model_in(args[0], depth + 1)
    for a in args:  # Optional / Union
        m, d = _model_in(a, depth)
        if m is not None:
            return m, d
    return None, depth


def paper_layout_path(root: Path | None) -> Path:
    """``reference/paper_layout.yaml`` of the workspace ``root`` when it has one, else the repository's."""
    own = root / PAPER_LAYOUT_FILE if root is not None else None
    return own if own is not None and own.is_file() else Path(__file__).resolve().parents[1] / PAPER_LAYOUT_FILE


def load_paper_layout(path: Path) -> PaperLayout:
    """The leaderboards' layout of the paper's tables, validated: ConfigError listing every problem
    (file, key, expected, found, did-you-mean), YamlError for a file that is not plain YAML."""
    try:
        layout = PaperLayout.model_validate(yamlio.load(path, expand=False))
    except ValidationError as e:
        raise ConfigError(problems_from_validation(e, where=str(path), model=PaperLayout)) from None
    problems = paper_layout_problems(layout, where=str(path))
    if problems:
        raise ConfigError(problems)
    return layout


def _layout_problems(root: Path) -> list[Problem]:
    path = paper_layout_path(root)
    try:
        load_paper_layout(path)
    except ConfigError as e:
        return e.problems
    except BenchError as e:
        return [Problem(str(path), "<file>", "valid YAML", str(e))]
    return []


# --------------------------------------------------------------------------- resolved objects
@dataclass(frozen=True)
class ResolvedCard:
    """A card with its registry name, file and the identity that keys caches and results."""

    name: str  # as asked for, e.g. "wavlm_base_plus@random"
    base_name: str
    path: Path
    card: Card
    random_init: bool = False

    @property
    def display(self) -> str:
        d = self.card.meta.display or self.base_name
        return d + (" (random init)" if self.random_init else "")

    @property
    def args(self) -> dict[str, Any]:
        args = dict(self.card.args)
        if self.random_init:
            args["random_init"] = True
        return args

    @property
    def identity(self) -> dict[str, Any]:
        """What the features depend on: adapter, args, revision, random init, bf16 (not the card's
        display metadata or test hints, so a cosmetic edit does not recompute anything)."""
        c = self.card
        return {"adapter": c.adapter, "args": c.args, "revision": c.revision, "random_init": self.random_init,
                "bf16": c.bf16}

    @property
    def key(self) -> str:
        return short_hash(self.identity)


@dataclass(frozen=True)
class ResolvedDownstream:
    """A downstream with profile / word-level / CLI overrides applied: what one cell trains."""

    name: str
    config: Downstream
    task_name: str
    head: str | None
    head_args: dict[str, Any]
    training: Training
    profile: str
    word_level: bool

    @property
    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "config": self.config.model_dump(mode="json"), "head": self.head,
                "head_args": self.head_args, "training": self.training.model_dump(mode="json"),
                "profile": self.profile, "word_level": self.word_level}


# --------------------------------------------------------------------------- workspace
def find_root(start: str | Path | None = None) -> Path:
    """The directory holding benchmark.yaml: $BENCH_ROOT, else the nearest one above ``start``/cwd."""
    env = os.environ.get("BENCH_ROOT")
    if env:
        p = Path(env).expanduser().resolve()
        if not (p / "benchmark.yaml").is_file():
            raise BenchError(f"BENCH_ROOT={env} has no benchmark.yaml")
        return p
    here = Path(start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "benchmark.yaml").is_file():
            return d
    raise BenchError(
        f"no benchmark.yaml in {here} or any folder above it. Run bench from the repository "
        "(the folder with benchmark.yaml) or set BENCH_ROOT."
    )


@dataclass
class Workspace:
    root: Path
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = Path(self.root).expanduser().resolve()

    @classmethod
    def discover(cls, start: str | Path | None = None, *, overrides: Iterable[str] = ()) -> Workspace:
        return cls(find_root(start), parse_overrides(overrides))

    # ---------------------------------------------------------------- files
    def _yaml_files(self, folder: str) -> dict[str, Path]:
        d = self.root / folder
        return {p.stem: p for p in sorted(d.glob("*.yaml"))} if d.is_dir() else {}

    @cached_property
    def benchmark_raw(self) -> dict[str, Any]:
        data = yamlio.load(self.root / "benchmark.yaml")
        if not isinstance(data, dict):
            raise ConfigError([Problem(str(self.root / "benchmark.yaml"), "<root>", "a mapping", type(data).__name__)])
        return data

    @cached_property
    def benchmark(self) -> Benchmark:
        try:
            return Benchmark.model_validate(self.benchmark_raw)
        except ValidationError as e:
            raise ConfigError(problems_from_validation(e, where=str(self.root / "benchmark.yaml"), model=Benchmark)) from None

    def path(self, which: str) -> Path:
        """An absolute path from benchmark.yaml `paths` (relative ones are relative to the root)."""
        try:
            value = getattr(self.benchmark.paths, which)
        except ConfigError:  # an invalid benchmark.yaml: still find the folders, for `bench validate`
            raw = self.benchmark_raw.get("paths")
            value = (raw if isinstance(raw, dict) else {}).get(which) or getattr(Paths(), which)
        p = Path(str(value)).expanduser()
        return p if p.is_absolute() else self.root / p

    def profile(self, name: str | None = None) -> tuple[str, Profile]:
        name = name or self.benchmark.default_profile
        profiles = self.benchmark.profiles
        if name not in profiles:
            raise UnknownNameError("profile", name, profiles)
        prof = profiles[name]
        if self.overrides.get("profile"):
            try:
                prof = Profile.model_validate(deep_merge(prof.model_dump(mode="json"), self.overrides["profile"]))
            except ValidationError as e:
                raise ConfigError(problems_from_validation(e, where="--set profile.*", model=Profile)) from None
        return name, prof

    # ---------------------------------------------------------------- tasks / downstreams
    def task_files(self) -> dict[str, Path]:
        return self._yaml_files("tasks")

    def downstream_files(self) -> dict[str, Path]:
        return self._yaml_files("downstreams")

    def task(self, name: str) -> Task:
        files = self.task_files()
        if name not in files:
            raise UnknownNameError("task", name, files)
        raw = yamlio.load(files[name])
        if self.overrides.get("task"):
            raw = deep_merge(raw, self.overrides["task"])
        try:
            return Task.model_validate(raw)
        except ValidationError as e:
            raise ConfigError(problems_from_validation(e, where=str(files[name]), model=Task)) from None

    def downstream(self, name: str) -> Downstream:
        files = self.downstream_files()
        if name not in files:
            raise UnknownNameError("downstream", name, files)
        raw = yamlio.load(files[name])
        try:
            return Downstream.model_validate(raw)
        except ValidationError as e:
            raise ConfigError(problems_from_validation(e, where=str(files[name]), model=Downstream)) from None

    def resolve_downstream(self, name: str, *, profile: str, word_level: bool = False) -> ResolvedDownstream:
        """Apply, in order: word-level recipe (small models), profile overrides, CLI ``--set``."""
        ds = self.downstream(name)
        recipe: dict[str, Any] = {"head_args": ds.head_args, "training": ds.training.model_dump(mode="json")}
        if word_level and ds.word_level:
            recipe = deep_merge(recipe, ds.word_level)
        if profile in ds.profiles:
            recipe = deep_merge(recipe, ds.profiles[profile])
        cli = self.overrides.get("downstream") or {}
        top_level = {k: v for k, v in cli.items() if k not in ("head_args", "training")}
        where = str(self.downstream_files()[name])
        if top_level:
            try:
                ds = Downstream.model_validate(deep_merge(ds.model_dump(mode="json"), top_level))
            except ValidationError as e:
                raise ConfigError(problems_from_validation(e, where=f"{where} (with --set)", model=Downstream)) from None
        recipe = deep_merge(recipe, {k: v for k, v in cli.items() if k in ("head_args", "training")})
        try:
            rec = Recipe.model_validate(recipe)
        except ValidationError as e:
            raise ConfigError(problems_from_validation(e, where=f"{where} (profile {profile})", model=Recipe)) from None
        return ResolvedDownstream(name=name, config=ds, task_name=ds.task, head=ds.head,
                                  head_args=dict(rec.head_args), training=rec.training,
                                  profile=profile, word_level=word_level)

    # ---------------------------------------------------------------- cards
    def card_files(self) -> dict[str, Path]:
        """Card name -> file, from upstreams/cards and the user cards folder (trained models)."""
        found: dict[str, Path] = {}
        for folder in (self.root / "upstreams" / "cards", self.path("user_cards")):
            if not folder.is_dir():
                continue
            for p in sorted(folder.glob("*.yaml")):
                if p.stem in found:
                    raise DuplicateNameError("upstream", p.stem, str(found[p.stem]), str(p))
                found[p.stem] = p
        return found

    def card(self, name: str) -> ResolvedCard:
        base, random_init = (name[: -len(RANDOM_SUFFIX)], True) if name.endswith(RANDOM_SUFFIX) else (name, False)
        files = self.card_files()
        if base not in files:
            raise UnknownNameError("upstream", name, files)
        raw = yamlio.load(files[base])
        if self.overrides.get("upstream"):
            raw = deep_merge(raw, self.overrides["upstream"])
        try:
            card = Card.model_validate(raw)
        except ValidationError as e:
            raise ConfigError(problems_from_validation(e, where=str(files[base]), model=Card)) from None
        return ResolvedCard(name=name, base_name=base, path=files[base], card=card, random_init=random_init)

    # ---------------------------------------------------------------- validation
    def validate(self) -> list[Problem]:
        """Every problem in every file and cross reference (empty list: all good).

        The files are checked as written: ``--set`` overrides address the upstream, downstream
        and task a command runs, and are checked by :meth:`selection_problems`."""
        if any(self.overrides.values()):
            return Workspace(self.root).validate()
        problems: list[Problem] = []
        bench_path = str(self.root / "benchmark.yaml")
        bench: Benchmark | None = None
        try:
            bench = self.benchmark
        except ConfigError as e:
            problems += e.problems
        except BenchError as e:
            problems.append(Problem(bench_path, "<file>", "valid YAML", str(e)))

        tasks: dict[str, Task] = {}
        for name, path in self.task_files().items():
            try:
                tasks[name] = self.task(name)
            except ConfigError as e:
                problems += e.problems
            except BenchError as e:
                problems.append(Problem(str(path), "<file>", "valid YAML", str(e)))

        corpora = set(bench.corpora) if bench else set()
        for name, task in tasks.items():
            where = str(self.task_files()[name])
            for kind, langs in task.sources.items():
                for lang, src in langs.items():
                    if lang not in LANGUAGES:
                        problems.append(Problem(where, f"sources.{kind}.{lang}", f"a language in {LANGUAGES}",
                                                repr(lang), did_you_mean(lang, LANGUAGES)))
                    if kind == "synth" and src.corpus != "synth":
                        problems.append(Problem(where, f"sources.{kind}.{lang}.corpus", "'synth'", repr(src.corpus)))
                    if kind == "real" and src.corpus not in corpora:
                        problems.append(Problem(where, f"sources.{kind}.{lang}.corpus",
                                                "a corpus declared in benchmark.yaml `corpora`", repr(src.corpus),
                                                did_you_mean(src.corpus, corpora)))

        downstreams: dict[str, Downstream] = {}
        for name, path in self.downstream_files().items():
            try:
                downstreams[name] = self.downstream(name)
            except ConfigError as e:
                problems += e.problems
                continue
            except BenchError as e:
                problems.append(Problem(str(path), "<file>", "valid YAML", str(e)))
                continue
            ds = downstreams[name]
            if ds.task not in self.task_files():
                problems.append(Problem(str(path), "task", "a task in tasks/", repr(ds.task),
                                        did_you_mean(ds.task, self.task_files())))
            task_kind = tasks[ds.task].kind if ds.task in tasks else None
            if ds.head is None and task_kind == "classification":
                problems.append(Problem(str(path), "head", "a head (classification tasks train one)", "nothing"))
            if ds.layer_from is not None and ds.layer_from not in self.downstream_files():
                problems.append(Problem(str(path), "layer_from", "a downstream in downstreams/", repr(ds.layer_from),
                                        did_you_mean(ds.layer_from, self.downstream_files())))
            if ds.head is not None and ds.head not in HEADS:
                problems.append(Problem(str(path), "head", "a registered head (" + ", ".join(HEADS.names()) + ")",
                                        repr(ds.head), did_you_mean(ds.head, HEADS.names())))
            profiles = list(bench.profiles) if bench else list(ds.profiles)
            for prof in [None, *ds.profiles]:
                for wl in (False, True):
                    if prof is not None and prof not in profiles:
                        problems.append(Problem(str(path), f"profiles.{prof}", "a profile of benchmark.yaml",
                                                repr(prof), did_you_mean(prof, profiles)))
                        break
                    try:
                        rd = self.resolve_downstream(name, profile=prof or "", word_level=wl)
                    except ConfigError as e:
                        problems += e.problems
                        break
                    if ds.head is not None and ds.head in HEADS:
                        problems += _bind_problems(HEADS, ds.head, rd.head_args, where=str(path),
                                                   key=f"profiles.{prof}.head_args" if prof else "head_args",
                                                   skip=("input_size", "num_classes"))

        card_names: list[str] = []
        try:
            files = self.card_files()
        except DuplicateNameError as e:
            problems.append(Problem("upstreams/cards", "<names>", "unique card names", str(e)))
            files = {}
        for name, path in files.items():
            card_names.append(name)
            try:
                rc = self.card(name)
            except ConfigError as e:
                problems += e.problems
                continue
            except BenchError as e:
                problems.append(Problem(str(path), "<file>", "valid YAML", str(e)))
                continue
            if rc.card.adapter not in ADAPTERS:
                problems.append(Problem(str(path), "adapter", "a registered adapter (" + ", ".join(ADAPTERS.names()) + ")",
                                        repr(rc.card.adapter), did_you_mean(rc.card.adapter, ADAPTERS.names())))
                continue
            problems += _bind_problems(ADAPTERS, rc.card.adapter, rc.card.args, where=str(path), key="args",
                                       skip=("language", "random_init"))
            if rc.card.test.build and builder_problem(rc.card.test.build):
                problems.append(Problem(str(path), "test.build", "a test builder of harness.testing or of a "
                                        "registered adapter's module", repr(rc.card.test.build),
                                        " A card is data: it cannot name other code to run."))

        if bench:
            for pname, prof in bench.profiles.items():
                for i, up in enumerate(prof.upstreams):
                    base = up[: -len(RANDOM_SUFFIX)] if up.endswith(RANDOM_SUFFIX) else up
                    if base not in card_names:
                        problems.append(Problem(bench_path, f"profiles.{pname}.upstreams[{i}]",
                                                "an upstream card", repr(up), did_you_mean(base, card_names)))
                for up in prof.upstream_languages:
                    if up not in prof.upstreams:
                        problems.append(Problem(bench_path, f"profiles.{pname}.upstream_languages.{up}",
                                                "an upstream listed in the profile's upstreams", repr(up),
                                                did_you_mean(up, prof.upstreams)))
                for i, ds_name in enumerate(prof.downstreams):
                    if ds_name not in self.downstream_files():
                        problems.append(Problem(bench_path, f"profiles.{pname}.downstreams[{i}]",
                                                "a downstream in downstreams/", repr(ds_name),
                                                did_you_mean(ds_name, self.downstream_files())))
                for i, lang in enumerate(prof.languages):
                    if lang not in LANGUAGES:
                        problems.append(Problem(bench_path, f"profiles.{pname}.languages[{i}]",
                                                f"one of {LANGUAGES}", repr(lang), did_you_mean(lang, LANGUAGES)))
            if bench.default_profile not in bench.profiles:
                problems.append(Problem(bench_path, "default_profile", "a profile name", repr(bench.default_profile),
                                        did_you_mean(bench.default_profile, bench.profiles)))
            from .corpora import option_problems

            for cname, spec in bench.corpora.items():
                if spec.adapter not in CORPORA:
                    problems.append(Problem(bench_path, f"corpora.{cname}.adapter",
                                            "a corpus adapter (" + ", ".join(CORPORA.names()) + ")",
                                            repr(spec.adapter), did_you_mean(spec.adapter, CORPORA.names())))
                else:
                    problems += option_problems(spec.adapter, spec.options, where=f"{bench_path}: corpora.{cname}")
        problems += _layout_problems(self.root)  # reference/paper_layout.yaml (the leaderboards' layout)
        return problems

    def check(self, *, profile: str | None = None, upstreams: Iterable[str] = (), downstreams: Iterable[str] = (),
              languages: Iterable[str] = (), selection: bool = False) -> None:
        """Raise ConfigError with every problem, or return when the workspace is valid.

        With ``selection`` (or any name given), the names a command asks for and the ``--set``
        overrides applied to them are checked too (:meth:`selection_problems`), so that a typo
        fails before any work starts."""
        problems = self.validate()
        if not problems and (selection or upstreams or downstreams or languages):
            problems = self.selection_problems(profile=profile, upstreams=upstreams, downstreams=downstreams,
                                               languages=languages)
        if problems:
            raise ConfigError(problems)

    def selection_problems(self, *, profile: str | None, upstreams: Iterable[str] = (),
                           downstreams: Iterable[str] = (), languages: Iterable[str] = ()) -> list[Problem]:
        """Problems with the profile, upstreams, downstreams and languages a command names, with the
        ``--set`` overrides applied (unknown names with a did-you-mean, overridden values that do not
        validate, card or head arguments that do not bind)."""
        problems: list[Problem] = []
        prof_name = profile or "default profile"
        try:
            prof_name, _ = self.profile(profile)
        except UnknownNameError as e:
            problems.append(Problem("--profile", "profile", "a profile of benchmark.yaml", repr(e.name),
                                    did_you_mean(e.name, e.choices)))
        except ConfigError as e:
            problems += e.problems
        for name in dict.fromkeys(upstreams):
            problems += self._upstream_problems(name)
        for name in dict.fromkeys(downstreams):
            problems += self._downstream_problems(name, profile=prof_name)
        for lang in dict.fromkeys(languages):
            if lang not in LANGUAGES:
                problems.append(Problem("--language", "language", f"one of {LANGUAGES}", repr(lang),
                                        did_you_mean(lang, LANGUAGES)))
        return problems

    def _upstream_problems(self, name: str) -> list[Problem]:
        where = f"upstream {name!r}" + (" with --set upstream.*" if self.overrides.get("upstream") else "")
        try:
            rc = self.card(name)
        except UnknownNameError as e:
            return [Problem("--upstream", "upstream", "an upstream card (`bench ls upstreams`)", repr(name),
                            did_you_mean(e.name.removesuffix(RANDOM_SUFFIX), e.choices))]
        except ConfigError as e:
            return e.problems
        if rc.card.adapter not in ADAPTERS:
            return [Problem(str(rc.path), "adapter", "a registered adapter", repr(rc.card.adapter),
                            did_you_mean(rc.card.adapter, ADAPTERS.names()))]
        from .upstream import random_init_refusal

        refusal = random_init_refusal(ADAPTERS.load(rc.card.adapter)) if rc.random_init else ""
        return _bind_problems(ADAPTERS, rc.card.adapter, rc.card.args, where=where, key="args",
                              skip=("language", "random_init")) + \
            ([Problem(where, "@random", "an adapter with a random_init option", refusal)] if refusal else [])

    def _downstream_problems(self, name: str, *, profile: str) -> list[Problem]:
        try:
            ds = self.downstream(name)
        except UnknownNameError as e:
            return [Problem("--downstream", "downstream", "a downstream in downstreams/", repr(name),
                            did_you_mean(name, e.choices))]
        problems: list[Problem] = []
        try:
            self.task(ds.task)
        except ConfigError as e:
            problems += e.problems
        except BenchError as e:
            problems.append(Problem(f"task {ds.task!r}", "<file>", "a valid task", str(e)))
        for word_level in (False, True):
            try:
                rd = self.resolve_downstream(name, profile=profile, word_level=word_level)
            except ConfigError as e:
                return problems + e.problems
            if rd.head is not None and rd.head in HEADS:
                where = f"downstream {name!r} (profile {profile}" + (", with --set)" if self.overrides.get("downstream") else ")")
                problems += _bind_problems(HEADS, rd.head, rd.head_args, where=where, key="head_args",
                                           skip=("input_size", "num_classes"))
        return list(dict.fromkeys(problems))


def _bind_problems(registry: Any, name: str, args: dict[str, Any], *, where: str, key: str,
                   skip: tuple[str, ...] = ()) -> list[Problem]:
    """Check that ``args`` bind to the signature of the registered class/function ``name``."""
    try:
        target = registry.load(name)
    except BenchError as e:
        return [Problem(where, key, f"importable {registry.kind} {name!r}", str(e))]
    sig = inspect.signature(target)
    params = {n: p for n, p in sig.parameters.items() if n not in ("self",)}
    accepts_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    problems = []
    for arg in args:
        if arg not in params and not accepts_kwargs:
            allowed = [n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL]
            problems.append(Problem(where, f"{key}.{arg}", f"an argument of {registry.kind} {name!r} ("
                                    + ", ".join(allowed) + ")", f"unknown argument {arg!r}",
                                    did_you_mean(arg, allowed)))
    for n, p in params.items():
        if (p.default is inspect.Parameter.empty and p.kind in (inspect.Parameter.KEYWORD_ONLY,
                                                                 inspect.Parameter.POSITIONAL_OR_KEYWORD)
                and n not in args and n not in skip):
            problems.append(Problem(where, f"{key}.{n}", f"required argument {n!r} of {registry.kind} {name!r}",
                                    "nothing"))
    return problems
