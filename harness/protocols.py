"""Typing protocols shared across layers: what a caller needs of a thing, not which class it is.

- :class:`Executor`: runs a function over jobs (in this process, in worker processes, on a Ray
  cluster) and reports each result as it arrives; the matrix's stages are written against it.
- :class:`PathSource`: anything that maps an output setting (``"cache"``, ``"results"``, ...) to
  a folder; lower layers take this (or plain paths), never the whole workspace.

Importing this module imports nothing beyond the standard library.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Executor(Protocol):
    """Runs ``fn(job)`` for every job and calls ``on_done(job, result)`` as each one finishes.

    ``parallel``: True when jobs run side by side (progress bars inside jobs are then off).
    ``resources``: what one job needs (``num_cpus``, ``num_gpus``), for executors that schedule.
    A job's exception is the executor's to report: it returns ``{"executor_error": exc}`` as the
    result rather than stopping the other jobs. ``close`` frees workers; calling it twice is harmless.
    """

    parallel: bool

    def map(self, fn: Callable[..., Any], jobs: list[Any], *, on_done: Callable[[Any, Any], None],
            resources: dict[str, float] | None = None) -> None: ...

    def close(self) -> None: ...


class PathSource(Protocol):
    """``path(setting) -> absolute folder`` for the settings of benchmark.yaml's ``paths``."""

    def path(self, which: str) -> Path: ...
