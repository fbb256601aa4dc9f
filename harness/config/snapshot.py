"""The configuration as one process sees it: every YAML file read and validated once, the
``--set`` overrides applied once, the values frozen.

:class:`Snapshot` is what resolution (:func:`harness.config.plan.resolve_cell`) and validation
(:mod:`harness.config.validate`) read. Files are read through :func:`read_yaml`, which reads a
file once per process (again only when its size, mtime or inode changed, e.g. a test that edits
it), and each validated value is kept, so one ``bench run`` parses ``tasks/emotion.yaml`` once
however many steps ask for it. Folder listings are not kept (a trained model adds a user card
while the process runs).

The file stem is the registry name (``downstreams/emotion.yaml`` is ``--downstream emotion``).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from .. import yamlio
from ..errors import BenchError, ConfigError, DuplicateNameError, Problem, UnknownNameError
from ..identity import short_hash
from ..schema import (
    Benchmark,
    Card,
    Downstream,
    Paths,
    Profile,
    Recipe,
    Task,
    Training,
    downstream_layer,
)
from .overrides import deep_merge
from .problems import problems_from_validation

RANDOM_SUFFIX = "@random"
M = TypeVar("M", bound=BaseModel)

_READS: dict[Path, tuple[tuple[int, int, int], Any]] = {}


def read_yaml(path: Path) -> Any:
    """The data of a configuration file, read once per process (re-read when the file changed).

    The parsed text is what is kept; ``${VAR:-default}`` is expanded on every call, so a change of
    the environment (a test, a worker given other BENCH_* folders) is seen. Callers get a fresh
    copy: nothing they do changes what the next caller sees."""
    path = Path(path)
    try:
        st = os.stat(path)
        stamp = (st.st_size, st.st_mtime_ns, st.st_ino)
    except OSError:
        stamp = (-1, -1, -1)
    hit = _READS.get(path)
    if hit is None or hit[0] != stamp:
        hit = (stamp, yamlio.load(path, expand=False))
        _READS[path] = hit
    return yamlio.expand_env(copy.deepcopy(hit[1]), where=str(path))


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


RECIPE_KEYS = ("head_args", "training")  # the parts of a downstream that word-level and profile recipes replace


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
        return {"name": self.name, "config": self.config.key_dump(), "head": self.head,
                "head_args": self.head_args, "training": self.training.model_dump(mode="json"),
                "profile": self.profile, "word_level": self.word_level}


# --------------------------------------------------------------------------- root
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


@dataclass(frozen=True)
class Snapshot:
    """Every configuration file of the workspace at ``root``, with ``overrides`` (scope -> nested
    dict, from ``--set``) applied: benchmark.yaml, tasks/, downstreams/, upstream cards and user cards.

    Values are validated when first asked for and kept (a file is parsed once); an invalid file
    raises :class:`~harness.errors.ConfigError` with every problem in it, naming the file.
    """

    root: Path
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    _memo: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    def _kept(self, key: Any, make: Callable[[], Any]) -> Any:
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    # ---------------------------------------------------------------- files
    def _yaml_files(self, folder: str) -> dict[str, Path]:
        d = self.root / folder
        return {p.stem: p for p in sorted(d.glob("*.yaml"))} if d.is_dir() else {}

    @property
    def benchmark_raw(self) -> dict[str, Any]:
        path = self.root / "benchmark.yaml"
        data = read_yaml(path)
        if not isinstance(data, dict):
            raise ConfigError([Problem(str(path), "<root>", "a mapping", type(data).__name__)])
        return data

    @property
    def benchmark(self) -> Benchmark:
        path = self.root / "benchmark.yaml"
        return self._kept(("benchmark", _stamp(path)), lambda: _validate(Benchmark, self.benchmark_raw, where=str(path)))

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
        path = files[name]

        def make() -> Task:
            raw = read_yaml(path)
            if self.overrides.get("task"):
                raw = deep_merge(raw, self.overrides["task"])
            return _validate(Task, raw, where=str(path))

        return self._kept(("task", path, _stamp(path)), make)

    def downstream(self, name: str) -> Downstream:
        files = self.downstream_files()
        if name not in files:
            raise UnknownNameError("downstream", name, files)
        path = files[name]
        return self._kept(("downstream", path, _stamp(path)),
                          lambda: _validate(Downstream, read_yaml(path), where=str(path)))

    def resolve_downstream(self, name: str, *, profile: str, word_level: bool = False) -> ResolvedDownstream:
        """Apply, in order: word-level recipe (small models), profile overrides, CLI ``--set``."""
        path = self.downstream_files().get(name)
        key = ("resolved_downstream", name, profile, word_level, path, _stamp(path) if path else None)
        return self._kept(key, lambda: self._resolve_downstream(name, profile=profile, word_level=word_level))

    def _profile_or_none(self, name: str) -> Profile | None:
        """The profile ``name`` (overrides applied), None for a name benchmark.yaml lacks (a
        downstream file validated on its own)."""
        return self.profile(name)[1] if name and name in self.benchmark.profiles else None

    def _resolve_downstream(self, name: str, *, profile: str, word_level: bool) -> ResolvedDownstream:
        ds = self.downstream(name)
        recipe: dict[str, Any] = {"head_args": ds.head_args, "training": ds.training.model_dump(mode="json")}
        if word_level and ds.word_level:
            recipe = deep_merge(recipe, ds.word_level)
        prof = self._profile_or_none(profile)
        recipe_profile = profile if profile in ds.profiles or prof is None else prof.baseline_profile
        own = ds.profiles.get(recipe_profile, {}) if recipe_profile else {}
        recipe = deep_merge(recipe, {k: v for k, v in own.items() if k in RECIPE_KEYS})
        if prof is not None and downstream_layer(ds, prof) != ds.layer:
            ds = ds.model_copy(update={"layer": downstream_layer(ds, prof)})
        cli = self.overrides.get("downstream") or {}
        # a profile may also set the downstream's own keys (e.g. gender's input_window_s in `paper`)
        profile_top = {k: v for k, v in own.items() if k not in RECIPE_KEYS}
        top_level = {k: v for k, v in cli.items() if k not in RECIPE_KEYS}
        where = str(self.downstream_files()[name])
        for label, part in ((f"profiles.{profile}", profile_top), ("with --set", top_level)):
            if not part:
                continue
            try:
                ds = Downstream.model_validate(deep_merge(ds.model_dump(mode="json"), part))
            except ValidationError as e:
                raise ConfigError(problems_from_validation(e, where=f"{where} ({label})", model=Downstream)) from None
        recipe = deep_merge(recipe, {k: v for k, v in cli.items() if k in RECIPE_KEYS})
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
        path = files[base]

        def make() -> Card:
            raw = read_yaml(path)
            if self.overrides.get("upstream"):
                raw = deep_merge(raw, self.overrides["upstream"])
            return _validate(Card, raw, where=str(path))

        card = self._kept(("card", path, _stamp(path)), make)
        return ResolvedCard(name=name, base_name=base, path=path, card=card, random_init=random_init)


def _stamp(path: Path) -> tuple[int, int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return (-1, -1, -1)
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def _validate(model: type[M], raw: Any, *, where: str) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(problems_from_validation(e, where=where, model=model)) from None
