"""Progress display: rich bars on a terminal, plain lines in a log; inner bars nest inside the outer one.

``make_progress()`` returns a context manager with ``add_task`` / ``update`` / ``advance``. The
outermost one owns the display; one opened while another is active adds its bars to the active
display and removes them when it closes, so the matrix bar, the extraction bar and the training
bar show together. Disabled progress is a silent stand-in with the same API.

Where the output goes (stderr) decides the form. On a terminal: rich live bars. Anywhere else
(``bench matrix > log 2>&1``, Slurm, CI) rich would print its bars once, when the display closes,
so the log would stay silent for the minutes a stage takes; there :class:`PlainProgress` writes
plain lines instead::

    progress: features 12/40 (30%) elapsed 0:03:05 eta 0:07:12 | ok 3 failed 0

one when an outer task advances (a finished job; at most one per task per ``min_gap_s``, the
last one always), and, from a timer thread, one per unfinished task (inner ones included) when
that task has printed nothing for ``every_s`` seconds (default 20 s), so a log shows progress
while a long job runs.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

_ACTIVE: list[Any] = []  # the live display (rich Progress or PlainProgress) of this process, if any

EVERY_S = 20.0  # plain mode: a line per unfinished task at least this often
MAX_EVERY_S = 30.0  # a log must show progress at least twice a minute
MIN_GAP_S = 1.0  # plain mode: at most one advance line per task per this many seconds


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
    """Owns the display while it is open."""

    indent = ""

    def __enter__(self) -> _Root:
        self._p.__enter__()
        _ACTIVE.append(self._p)
        return self

    def __exit__(self, *exc: Any) -> None:
        _ACTIVE.remove(self._p)
        self._p.__exit__(*exc)


@dataclass
class PlainTask:
    description: str  # without the nesting indent
    nested: bool
    total: float | None
    info: str
    started_s: float
    last_line_s: float
    completed: float = 0.0

    @property
    def finished(self) -> bool:
        return self.total is not None and self.completed >= self.total


class PlainProgress:
    """The display for a log: the subset of ``rich.progress.Progress``'s API that this module uses.

    Lines go to ``stream``; ``clock`` (seconds) times them. A task whose description starts with
    the nesting indent (an inner bar, see :class:`_Nested`) prints no line per advance, only its
    last one and the timer's. While the context is open a daemon thread calls :meth:`beat` every
    ``every_s / 5`` seconds; tests may call :meth:`beat` themselves with a fake clock.
    """

    def __init__(self, *, stream: TextIO, every_s: float = EVERY_S, min_gap_s: float = MIN_GAP_S,
                 clock: Callable[[], float] = time.monotonic):
        if not 0 < every_s <= MAX_EVERY_S:
            raise ValueError(f"every_s must be in (0, {MAX_EVERY_S:g}] seconds, got {every_s!r}")
        self._stream = stream
        self._every_s = every_s
        self._min_gap_s = min_gap_s
        self._clock = clock
        self._tasks: dict[int, PlainTask] = {}
        self._next_id = 0
        self._lock = threading.RLock()  # the timer thread and the caller's thread share tasks and stream
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PlainProgress:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run_timer, name="progress-timer", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run_timer(self) -> None:
        while not self._stop.wait(self._every_s / 5):
            self.beat()

    def beat(self) -> None:
        """A line for every unfinished task that has printed nothing for ``every_s`` seconds."""
        with self._lock:
            now = self._clock()
            for task in self._tasks.values():
                if not task.finished and now - task.last_line_s >= self._every_s:
                    self._write(task, now=now)

    def add_task(self, description: str, *, total: float | None = None, info: str = "", **_fields: Any) -> int:
        with self._lock:
            now = self._clock()
            task_id, self._next_id = self._next_id, self._next_id + 1
            self._tasks[task_id] = PlainTask(description=description.strip(), nested=description.startswith(" "),
                                              total=total, info=info, started_s=now, last_line_s=now)
            return task_id

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    def update(self, task_id: int, *, advance: float | None = None, completed: float | None = None,
               total: float | None = None, info: str | None = None, description: str | None = None,
               **_fields: Any) -> None:
        with self._lock:
            task = self._tasks[task_id]
            if total is not None:
                task.total = total
            if completed is not None:
                task.completed = completed
            if advance:
                task.completed += advance
            if info is not None:
                task.info = info
            if description is not None:
                task.description = description.strip()
            now = self._clock()
            if task.finished or (advance and not task.nested and now - task.last_line_s >= self._min_gap_s):
                self._write(task, now=now)

    def remove_task(self, task_id: int) -> None:
        with self._lock:
            del self._tasks[task_id]

    def _write(self, task: PlainTask, *, now: float) -> None:
        task.last_line_s = now
        self._stream.write(plain_line(task, now=now) + "\n")
        self._stream.flush()


def plain_line(task: PlainTask, *, now: float) -> str:
    """``progress: NAME DONE/TOTAL (P%) elapsed H:MM:SS eta H:MM:SS | INFO`` (eta ``?`` before the first step)."""
    elapsed_s = now - task.started_s
    done = f"{task.completed:g}"
    if task.total is None:
        counts, eta = done, ""
    else:
        counts = f"{done}/{task.total:g} ({100 * task.completed / task.total if task.total else 100:.0f}%)"
        left = max(task.total - task.completed, 0)
        eta = " eta " + (_hms(elapsed_s / task.completed * left) if task.completed > 0 else "?")
    info = f" | {task.info}" if task.info else ""
    return f"progress: {task.description} {counts} elapsed {_hms(elapsed_s)}{eta}{info}"


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def make_progress(*, enabled: bool = True, transient: bool = True, plain: bool | None = None,
                  stream: TextIO | None = None, every_s: float = EVERY_S,
                  clock: Callable[[], float] = time.monotonic) -> Any:
    """A progress context (bar, counts, an ``info`` text field, elapsed, ETA), nested when one is live.

    ``stream`` defaults to stderr; ``plain`` (default: ``stream`` is not a terminal) chooses
    :class:`PlainProgress` over rich bars; ``every_s`` and ``clock`` are the plain display's.
    """
    if not enabled:
        return _Silent()
    if _ACTIVE:
        return _Nested(_ACTIVE[-1])
    out = stream if stream is not None else sys.stderr
    if plain is None:
        plain = not _is_terminal(out)
    if plain:
        return _Root(PlainProgress(stream=out, every_s=every_s, clock=clock))
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
        console=Console(file=out, force_terminal=True), transient=transient,
    ))
