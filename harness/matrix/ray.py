"""Run matrix jobs as Ray tasks on an existing Ray cluster.

Each job is a Ray task with a resource request (``num_cpus``; ``num_gpus`` for jobs that extract
on a GPU). Results are written by the task itself to the shared results folder, exactly as the
local executor does (atomic JSON, atomic cache entries), so both executors produce the same
files. A worker that dies mid-job has its task retried by Ray (``max_retries``); a retried cell
starts from scratch and never reads a half-written file.

Start a cluster, then point the matrix at it::

    ray start --head --port=6379 --num-cpus=8          # on the head node
    ray start --address=HEAD:6379                      # on each worker node (same venv, shared FS)
    bench matrix --executor ray --address HEAD:6379
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

from ..errors import BenchError

# Environment variables forwarded to workers (offline hubs, the harness's own paths).
FORWARD_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME", "BENCH_CACHE", "BENCH_RESULTS", "BENCH_MODELS",
               "BENCH_CARDS", "BENCH_LEADERBOARDS", "BENCH_ROOT", "BENCH_MMAP_THRESHOLD", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")


CONNECT_TIMEOUT_S = 10.0


def _call(fn: Callable[[Any], Any], job: Any, num_threads: int) -> Any:
    import torch

    torch.set_num_threads(max(int(num_threads), 1))
    return fn(job)


class RayExecutor:
    """Runs each job as a Ray task (see the module docstring); jobs run side by side."""

    parallel = True

    def __init__(self, *, address: str | None, workspace: Any, max_retries: int = 3):
        try:
            import ray
        except ImportError as e:  # pragma: no cover - ray is a dependency
            raise BenchError("the ray executor needs the `ray` package (pip install ray)") from e
        if not address:
            raise BenchError("--executor ray needs --address HOST:PORT of a running Ray cluster "
                             "(start one with `ray start --head --port=6379`)")
        self.ray = ray
        check_reachable(address)
        env = {k: os.environ[k] for k in FORWARD_ENV if k in os.environ}
        try:
            ray.init(address=address, runtime_env={"env_vars": env}, log_to_driver=False,
                     include_dashboard=False, ignore_reinit_error=True)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise BenchError(f"cannot connect to the Ray cluster at {address}: {e}") from None
        self.max_retries = max_retries
        self._remote = ray.remote(_call)

    def map(self, fn: Callable[[Any], Any], jobs: list[Any], *, on_done: Callable[[Any, Any], None],
            resources: dict[str, float] | None = None) -> None:
        """Submit every job, then report each as it finishes (in completion order)."""
        res = dict(resources or {})
        num_cpus = float(res.get("num_cpus", 1))
        options = {"num_cpus": num_cpus, "num_gpus": float(res.get("num_gpus", 0)), "max_retries": self.max_retries,
                   "retry_exceptions": False}
        pending = {self._remote.options(**options).remote(fn, job, int(num_cpus)): job for job in jobs}
        while pending:
            done, _ = self.ray.wait(list(pending), num_returns=1)
            for ref in done:
                job = pending.pop(ref)
                try:
                    result = self.ray.get(ref)
                except self.ray.exceptions.RayError as e:  # the job's process died (retries spent), or Ray failed
                    result = {"status": "failed", "error": f"ray: {type(e).__name__}: {str(e).splitlines()[0]}",
                              "executor_error": e}
                on_done(job, result)

    def close(self) -> None:
        self.ray.shutdown()


def check_reachable(address: str, *, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Fail at once when the cluster's address does not accept a TCP connection.

    ``ray.init`` retries an unreachable GCS forever, so a wrong address would hang the matrix.
    The address checked is the one Ray will use: Ray replaces a loopback host with this machine's
    interface address unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` was set before ray was imported.
    """
    if address.startswith("ray://") or ":" not in address:
        return  # Ray client or "auto": Ray resolves these itself
    target = address
    try:
        from ray._private.services import canonicalize_bootstrap_address

        target = canonicalize_bootstrap_address(address) or address
    except Exception:  # noqa: BLE001 - a private Ray helper: fall back to the address as given
        pass
    host, _, port = target.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            return
    except (OSError, ValueError) as e:
        via = f" (Ray connects to {target})" if target != address else ""
        raise BenchError(
            f"cannot reach the Ray cluster at {address}{via}: {e}. Start one with `ray start --head "
            "--port=PORT` and pass its HOST:PORT; for a head on 127.0.0.1 set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 "
            "for both `ray start` and bench (Ray otherwise replaces 127.0.0.1 with this machine's address)."
        ) from None
