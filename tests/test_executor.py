"""The local process executor: parallel jobs, a job that raises, and a worker that dies."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from harness.matrix import ProcessExecutor, WorkerDiedError


def job(spec: tuple[str, int]) -> dict[str, Any]:
    """``("ok", n)`` returns n squared after a short sleep; ``("raise", n)`` raises;
    ``("die", n)`` kills its own worker process, as the OOM killer would."""
    kind, n = spec
    time.sleep(0.2)
    if kind == "raise":
        raise ValueError(f"job {n} is broken")
    if kind == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    return {"status": "ok", "value": n * n, "pid": os.getpid()}


def meet(spec: tuple[int, str]) -> dict[str, Any]:
    """Job ``n`` writes its pid into the shared folder, then waits (up to 120 s) until two
    different processes have written theirs: it returns only once two jobs have run at once,
    however the machine schedules the workers (no sleep decides the outcome)."""
    n, folder = spec
    (Path(folder) / f"{n}.{os.getpid()}").write_text("")
    deadline = time.monotonic() + 120
    while len({p.suffix for p in Path(folder).iterdir()}) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    return {"status": "ok", "value": n * n, "pid": os.getpid(),
            "met": len({p.suffix for p in Path(folder).iterdir()}) >= 2}


def run(jobs: list[Any], workers: int = 2, fn: Any = job) -> dict[Any, dict[str, Any]]:
    out: dict[Any, dict[str, Any]] = {}
    ex = ProcessExecutor(workers)
    try:
        ex.map(fn, jobs, on_done=lambda j, r: out.__setitem__(j, r))
    finally:
        ex.close()
    return out


def test_jobs_run_in_worker_processes_side_by_side(tmp_path: Path) -> None:
    jobs = [(n, str(tmp_path)) for n in range(6)]
    out = run(jobs, fn=meet)
    assert {j: r["value"] for j, r in out.items()} == {j: j[0] ** 2 for j in jobs}
    assert all(r["met"] for r in out.values()), "a job waited 120 s for a second worker: jobs did not run side by side"
    pids = {r["pid"] for r in out.values()}
    assert os.getpid() not in pids and len(pids) == 2


def test_a_job_that_raises_is_reported_and_the_others_finish() -> None:
    jobs = [("ok", 1), ("raise", 2), ("ok", 3)]
    out = run(jobs)
    assert out[("ok", 1)]["value"] == 1 and out[("ok", 3)]["value"] == 9
    assert out[("raise", 2)]["status"] == "failed"
    assert "job 2 is broken" in out[("raise", 2)]["error"]


def test_a_worker_that_dies_fails_only_its_own_job() -> None:
    """The dead worker breaks the pool; its neighbours are rerun alone and succeed, the job that
    killed its worker while alone is the only one reported failed, and later jobs still run."""
    jobs = [("ok", 1), ("die", 2), ("ok", 3), ("ok", 4), ("ok", 5)]
    out = run(jobs)
    assert set(out) == set(jobs)
    assert out[("die", 2)]["status"] == "failed"
    assert isinstance(out[("die", 2)]["executor_error"], WorkerDiedError)
    assert "died while running it alone" in out[("die", 2)]["error"]
    assert {j: r.get("value") for j, r in out.items() if j[0] == "ok"} == {("ok", 1): 1, ("ok", 3): 9,
                                                                          ("ok", 4): 16, ("ok", 5): 25}
