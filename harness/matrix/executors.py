"""Executors: how the matrix's jobs run, apart from what they are (:mod:`harness.matrix.stages`).

Every executor follows :class:`harness.protocols.Executor`: :class:`LocalExecutor` (one after
the other in this process), :class:`ProcessExecutor` (local worker processes, surviving a worker
that dies) and :class:`harness.matrix.ray.RayExecutor` (tasks on a Ray cluster).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import BenchError

if TYPE_CHECKING:
    from ..config import Workspace
    from ..protocols import Executor


class LocalExecutor:
    """Runs jobs one after the other in this process."""

    parallel = False

    def map(self, fn: Callable[..., Any], jobs: list[Any], *, on_done: Callable[[Any, Any], None],
            resources: dict[str, float] | None = None) -> None:
        for job in jobs:
            on_done(job, fn(job))

    def close(self) -> None:
        return None


class WorkerDiedError(RuntimeError):
    """A job's worker process died under it (no Python exception to report)."""


class ProcessExecutor:
    """Runs jobs in ``workers`` local processes (spawned, one torch thread each).

    Probe heads and the small models train with one thread (their kernels are too small to gain
    from more), so on an N-core machine N jobs side by side finish about N times sooner than one
    after the other. Jobs that want every core (feature extraction) get a pool of one worker with
    ``threads=None``: torch's default, the same as in a ``bench`` process, so that features do not
    depend on the command that extracted them.

    A worker that dies (the OOM killer, a segfault in a native library, a kill) breaks the pool:
    the pool is started again and the jobs it was running are run again, each alone, so that the
    job that kills its worker is told apart from the ones that shared the pool with it; a job
    that kills a worker while running alone is reported failed, the others go on.
    """

    parallel = True

    def __init__(self, workers: int, *, threads: int | None = 1, tasks_per_worker: int | None = None):
        self.workers = workers
        self._threads = threads
        self._tasks_per_worker = tasks_per_worker
        self._pool = self._new_pool()

    def _new_pool(self) -> Any:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        return ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_worker_init, initargs=(self._threads,),
                                   max_tasks_per_child=self._tasks_per_worker)

    def map(self, fn: Callable[..., Any], jobs: list[Any], *, on_done: Callable[[Any, Any], None],
            resources: dict[str, float] | None = None) -> None:
        from collections import deque
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        queue: deque[int] = deque(range(len(jobs)))
        suspects: deque[int] = deque()  # were running when a worker died: rerun one at a time
        running: dict[Any, int] = {}
        alone: set[int] = set()
        while queue or suspects or running:
            broken = False  # a worker died: the pool refuses new jobs and fails its running ones
            if suspects:
                if not running:
                    i = suspects.popleft()
                    fut = self._submit(fn, jobs[i])
                    if fut is None:
                        suspects.appendleft(i)
                        broken = True
                    else:
                        alone.add(i)
                        running[fut] = i
            else:
                while queue and len(running) < self.workers:
                    i = queue.popleft()
                    fut = self._submit(fn, jobs[i])
                    if fut is None:  # the pool broke since the last job finished: this one never ran
                        queue.appendleft(i)
                        broken = True
                        break
                    running[fut] = i
            done = wait(running, return_when=FIRST_COMPLETED).done if running else set()
            for fut in done:
                i = running.pop(fut)
                try:
                    result = fut.result()
                except BrokenProcessPool as e:
                    broken = True
                    if i not in alone:
                        suspects.append(i)
                        continue
                    died = WorkerDiedError("its worker process died while running it alone (killed by a signal, out "
                                           "of memory or a crash in native code); rerun it with --workers 1 to see "
                                           "the error in the foreground")
                    died.__cause__ = e
                    result = {"status": "failed", "error": str(died), "executor_error": died}
                except Exception as e:  # noqa: BLE001 - a job that raised: reported, the rest go on
                    result = {"status": "failed", "error": f"worker process: {type(e).__name__}: {e}",
                              "executor_error": e}
                on_done(jobs[i], result)
            if broken:  # every job of a broken pool fails with it: collect them, then start a new pool
                for fut in wait(running).done:
                    i = running.pop(fut)
                    err = fut.exception()
                    if isinstance(err, BrokenProcessPool):
                        suspects.append(i)
                    elif err is not None:
                        on_done(jobs[i], {"status": "failed", "error": f"worker process: {type(err).__name__}: {err}",
                                          "executor_error": err})
                    else:
                        on_done(jobs[i], fut.result())
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._new_pool()

    def _submit(self, fn: Callable[..., Any], job: Any) -> Any:
        """The job's future, or None when the pool is broken (a worker died since the last submit)."""
        from concurrent.futures.process import BrokenProcessPool

        try:
            return self._pool.submit(fn, job)
        except BrokenProcessPool:
            return None

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _worker_init(threads: int | None = 1) -> None:
    """A worker's torch thread count: ``threads``, or torch's default when None."""
    import torch

    if threads is not None:
        torch.set_num_threads(max(threads, 1))


def make_executor(kind: str, *, address: str | None, ws: Workspace) -> Executor:
    """The executor ``--executor`` names (``local``: in this process; ``ray``: on a Ray cluster)."""
    if kind == "local":
        return LocalExecutor()
    if kind == "ray":
        from .ray import RayExecutor

        return RayExecutor(address=address, workspace=ws)
    raise BenchError(f"unknown executor {kind!r}; use local or ray")
