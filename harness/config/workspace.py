"""The workspace facade: a root folder and its ``--set`` overrides, over one :class:`Snapshot`.

Commands and tests hold a :class:`Workspace`; the library below them takes what it needs from
it: a :class:`~harness.config.plan.CellPlan` (:func:`~harness.config.plan.resolve_cell`) and
paths (``workspace.path(...)``, or any :class:`~harness.protocols.PathSource`). The loading
methods delegate to the snapshot, so every file is read once however it is asked for.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ..errors import Problem
from ..schema import Benchmark, Downstream, Profile, Task
from . import validate as _validate
from .overrides import parse_overrides
from .snapshot import ResolvedCard, ResolvedDownstream, Snapshot, find_root


@dataclass
class Workspace:
    root: Path
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = Path(self.root).expanduser().resolve()

    @classmethod
    def discover(cls, start: str | Path | None = None, *, overrides: Iterable[str] = ()) -> Workspace:
        return cls(find_root(start), parse_overrides(overrides))

    @cached_property
    def snapshot(self) -> Snapshot:
        """The configuration this workspace reads (files read and validated once)."""
        return Snapshot(self.root, self.overrides)

    # ---------------------------------------------------------------- delegated to the snapshot
    @property
    def benchmark_raw(self) -> dict[str, Any]:
        return self.snapshot.benchmark_raw

    @property
    def benchmark(self) -> Benchmark:
        return self.snapshot.benchmark

    def path(self, which: str) -> Path:
        return self.snapshot.path(which)

    def profile(self, name: str | None = None) -> tuple[str, Profile]:
        return self.snapshot.profile(name)

    def task_files(self) -> dict[str, Path]:
        return self.snapshot.task_files()

    def downstream_files(self) -> dict[str, Path]:
        return self.snapshot.downstream_files()

    def card_files(self) -> dict[str, Path]:
        return self.snapshot.card_files()

    def task(self, name: str) -> Task:
        return self.snapshot.task(name)

    def downstream(self, name: str) -> Downstream:
        return self.snapshot.downstream(name)

    def resolve_downstream(self, name: str, *, profile: str, word_level: bool = False) -> ResolvedDownstream:
        return self.snapshot.resolve_downstream(name, profile=profile, word_level=word_level)

    def card(self, name: str) -> ResolvedCard:
        return self.snapshot.card(name)

    # ---------------------------------------------------------------- validation
    def validate(self) -> list[Problem]:
        """:func:`harness.config.validate.validate` of this workspace."""
        return _validate.validate(self.snapshot)

    def check(self, *, profile: str | None = None, upstreams: Iterable[str] = (), downstreams: Iterable[str] = (),
              languages: Iterable[str] = (), selection: bool = False) -> None:
        """:func:`harness.config.validate.check` of this workspace."""
        _validate.check(self.snapshot, profile=profile, upstreams=upstreams, downstreams=downstreams,
                        languages=languages, selection=selection)

    def selection_problems(self, *, profile: str | None, upstreams: Iterable[str] = (),
                           downstreams: Iterable[str] = (), languages: Iterable[str] = ()) -> list[Problem]:
        """:func:`harness.config.validate.selection_problems` of this workspace."""
        return _validate.selection_problems(self.snapshot, profile=profile, upstreams=upstreams,
                                            downstreams=downstreams, languages=languages)


def snapshot_of(source: Workspace | Snapshot) -> Snapshot:
    """The snapshot of a workspace, or the snapshot itself (library entry points accept either)."""
    return source.snapshot if isinstance(source, Workspace) else source
