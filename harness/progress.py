"""Progress display: one rich display per process; inner bars (extraction, training) nest inside it.

``make_progress()`` returns a context manager with ``add_task`` / ``update`` / ``advance``. The
outermost one owns the live display; one opened while another is active adds its bars to the
active display and removes them when it closes, so the matrix bar, the extraction bar and the
training bar show together. Disabled progress is a silent stand-in with the same API.
"""

from __future__ import annotations

from typing import Any

_ACTIVE: list[Any] = []  # the live rich Progress of this process, if any


class _Silent:
    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def add_task(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def advance(self, *args: Any, **kwargs: Any) -> None:
        return None

    def update(self, *args: Any, **kwargs: Any) -> None:
        return None

    def remove_task(self, *args: Any, **kwargs: Any) -> None:
        return None


class _Nested:
    """Bars added to the active display, removed on exit."""

    indent = "  "

    def __init__(self, progress: Any):
        self._p = progress
        self._tasks: list[Any] = []

    def __enter__(self) -> _Nested:
        return self

    def __exit__(self, *exc: Any) -> None:
        for t in self._tasks:
            try:
                self._p.remove_task(t)
            except KeyError:
                pass

    def add_task(self, description: str, **kwargs: Any) -> Any:
        kwargs.setdefault("info", "")
        t = self._p.add_task(self.indent + description, **kwargs)
        self._tasks.append(t)
        return t

    def advance(self, task: Any, advance: float = 1) -> None:
        self._p.advance(task, advance)

    def update(self, task: Any, **kwargs: Any) -> None:
        self._p.update(task, **kwargs)

    def remove_task(self, task: Any) -> None:
        self._p.remove_task(task)


class _Root(_Nested):
    """Owns the live display while it is open."""

    indent = ""

    def __enter__(self) -> _Root:
        self._p.__enter__()
        _ACTIVE.append(self._p)
        return self

    def __exit__(self, *exc: Any) -> None:
        _ACTIVE.remove(self._p)
        self._p.__exit__(*exc)


def make_progress(*, enabled: bool = True, transient: bool = True) -> Any:
    """A progress context (bar, counts, an ``info`` text field, elapsed, ETA), nested when one is live."""
    if not enabled:
        return _Silent()
    if _ACTIVE:
        return _Nested(_ACTIVE[-1])
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return _Root(Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=Console(stderr=True), transient=transient,
    ))
