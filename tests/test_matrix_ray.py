"""The matrix on a real Ray cluster: a head started on loopback for this module, cells run as Ray
tasks that write the same result files as the local executor, and a worker that dies mid-cell
has its cell retried by Ray.

The head runs as ``ray start --head --block`` in a process of its own; teardown sends it SIGTERM
(Ray then stops the processes it started) and kills, by process id, any of its descendants still
alive. ``ray stop`` is not used: it stops every Ray process of the machine by name, including
clusters that other users or runs may have. ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` is set for the
head and the client so that Ray keeps 127.0.0.1 instead of the machine's interface address.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.config.plan import CellSpec, result_file
from harness.errors import BenchError
from harness.features.extract import STATS
from harness.matrix import extract_for_cell, run_matrix
from harness.matrix.ray import RayExecutor
from harness.results import read_json
from tests.analysis_fixtures import one_torch_thread  # noqa: F401
from tests.matrix_fixtures import REPO, add_profile, seed_corpus, tiny_hear_card, workspace

if importlib.util.find_spec("ray") is None:
    pytest.skip("ray is not installed", allow_module_level=True)

pytestmark = [pytest.mark.ray, pytest.mark.timeout(600)]

LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
HEAD_START_TIMEOUT_S = 120
COMPARED = ("key", "status", "metrics", "dev_metrics", "classes", "predictions", "layer")


def result_json(ws: Any, spec: CellSpec) -> dict | None:
    """A cell's result file as written."""
    return read_json(result_file(ws, spec))


# --------------------------------------------------------------------------- processes and sockets
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def children_of() -> dict[int, list[int]]:
    """Parent pid -> child pids, from /proc."""
    tree: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        tree.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return tree


def descendants(pid: int) -> list[int]:
    tree, out, todo = children_of(), [], [pid]
    while todo:
        kids = tree.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


def tcp_connections(pids: list[int]) -> list[tuple[str, str, str]]:
    """(local address, remote address, state) of the TCP sockets the processes ``pids`` hold (hex, as /proc has them)."""
    inodes = set()
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    rows = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            if f[9] in inodes:
                rows.append((f[1], f[2], f[3]))
    return rows


def is_loopback(hex_address: str) -> bool:
    """127.0.0.0/8, ::1 or ::ffff:127.x.x.x in /proc/net/tcp{,6} notation (host byte order per word)."""
    ip = hex_address.split(":")[0]
    if len(ip) == 8:
        return ip.endswith("7F")
    return ip == "00000000000000000000000001000000" or (ip[:24] == "0000000000000000FFFF0000" and ip[-2:] == "7F")


# --------------------------------------------------------------------------- the head
@dataclass
class RayHead:
    address: str
    process: subprocess.Popen
    log: Path

    def pids(self) -> list[int]:
        return [self.process.pid, *descendants(self.process.pid)]


def _term_with_parent() -> None:
    """In the head's process before exec: SIGTERM when the test process dies (prctl PR_SET_PDEATHSIG),
    so that a killed test run does not leave a cluster behind."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def start_head(temp_dir: Path, *, num_gpus: int = 0) -> RayHead:
    """``ray start --head --block`` on loopback with free ports and its own temp dir; returns when it is up.

    ``num_gpus``: GPUs the head declares (a Ray resource only: a task holding one sees no CUDA device here)."""
    port = free_port()
    ray_cli = str(Path(sys.executable).parent / "ray")
    cmd = [ray_cli, "start", "--head", "--block", "--port", str(port), "--num-cpus", "2", "--num-gpus", str(num_gpus),
           "--include-dashboard=false",
           "--node-ip-address", "127.0.0.1", "--temp-dir", str(temp_dir), "--disable-usage-stats",
           "--dashboard-agent-listen-port", str(free_port()), "--dashboard-port", str(free_port())]
    if importlib.util.find_spec("grpc") is not None:  # with ray[client] installed the head opens a client port too
        cmd += ["--ray-client-server-port", str(free_port())]
    pythonpath = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")]))
    env = {**os.environ, **LOOPBACK_ENV, "PYTHONPATH": pythonpath}  # workers import harness and tests.hear_tiny
    log = temp_dir / "head.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                preexec_fn=_term_with_parent if sys.platform.startswith("linux") else None)
    head = RayHead(f"127.0.0.1:{port}", proc, log)
    deadline = time.monotonic() + HEAD_START_TIMEOUT_S
    while "Ray runtime started" not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_head(head)
            pytest.fail(f"the Ray head did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.5)
    return head


def stop_head(head: RayHead) -> None:
    """SIGTERM to ``ray start --block`` (it stops its processes), then SIGKILL to any descendant left."""
    pids = head.pids()
    if head.process.poll() is None:
        head.process.send_signal(signal.SIGTERM)
        try:
            head.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.process.kill()
            head.process.wait(timeout=10)
    for pid in pids[1:]:
        if _is_ray_process(pid):  # still alive, and still Ray's (not a reused pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _is_ray_process(pid: int) -> bool:
    try:
        return "ray" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


@pytest.fixture(scope="module")
def ray_head() -> Iterator[RayHead]:
    """A Ray head on loopback for this module (2 CPUs), always stopped afterwards."""
    # short path: Ray's unix sockets live under the temp dir and must stay under ~100 characters
    temp_dir = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    head = start_head(temp_dir)
    try:
        yield head
    finally:
        stop_head(head)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def ray() -> Iterator[Any]:
    """The ray module in a client that keeps 127.0.0.1 as well.

    Ray reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER when it is imported, so the variable is set first;
    if another test module imported ray earlier, the flag it read is switched off here."""
    with pytest.MonkeyPatch.context() as mp:
        for k, v in LOOPBACK_ENV.items():
            mp.setenv(k, v)
        import ray as ray_module
        from ray._private import ray_constants

        if ray_constants.ENABLE_RAY_CLUSTER:
            mp.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)
        yield ray_module


@pytest.fixture(autouse=True)
def loopback_client(ray: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The variable stays set in every test (workers get it forwarded); no test leaves the driver connected."""
    for k, v in LOOPBACK_ENV.items():
        monkeypatch.setenv(k, v)
    yield
    if ray.is_initialized():
        ray.shutdown()


# --------------------------------------------------------------------------- workspaces
def ray_workspace(workspace_dir: Path, synth_corpora: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                  name: str) -> Path:
    """Point BENCH_CACHE / BENCH_RESULTS / BENCH_LEADERBOARDS at ``tmp_path/name`` (the smoke corpus
    copied in) and return the workspace root."""
    folder = tmp_path / name
    seed_corpus(folder / "cache", synth_corpora)
    monkeypatch.setenv("BENCH_CACHE", str(folder / "cache"))
    monkeypatch.setenv("BENCH_RESULTS", str(folder / "results"))
    monkeypatch.setenv("BENCH_LEADERBOARDS", str(folder / "leaderboards"))
    return workspace_dir


def comparable(res: dict[str, Any]) -> dict[str, Any]:
    """What must not depend on the executor: the key, metrics, predictions, layer and training curve."""
    out = {k: res.get(k) for k in COMPARED}
    out["training"] = {k: v for k, v in res["training"].items() if k != "seconds"}
    return out


# --------------------------------------------------------------------------- tests
def test_unreachable_cluster_fails_at_once(workspace_dir: Path) -> None:
    """An address nobody listens on is a BenchError within seconds (``ray.init`` alone would retry forever)."""
    t0 = time.monotonic()
    with pytest.raises(BenchError, match="cannot reach the Ray cluster at 127.0.0.1:"):
        run_matrix(workspace(workspace_dir), profile="smoke", executor="ray", address=f"127.0.0.1:{free_port()}",
                   progress=False)
    assert time.monotonic() - t0 < 30
    assert not (workspace_dir / ".bench" / "results").exists()


def test_executor_stays_on_loopback_and_prepares_workers(ray: Any, ray_head: RayHead, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the RayExecutor: the head's node registers 127.0.0.1, every TCP socket the head's
    processes listen on is bound to loopback, every TCP connection of the head's processes, its
    workers and the driver is between loopback addresses; a job runs in a worker process with the
    BENCH_* variables forwarded and torch limited to the job's CPUs."""
    monkeypatch.setenv("BENCH_RESULTS", str(tmp_path / "forwarded"))

    def probe(job: int) -> dict[str, Any]:
        import torch

        return {"pid": os.getpid(), "results": os.environ.get("BENCH_RESULTS"), "threads": torch.get_num_threads(),
                "loopback": os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")}

    seen: list[dict[str, Any]] = []
    executor = RayExecutor(address=ray_head.address, workspace=None)
    try:
        executor.map(probe, [0], on_done=lambda job, res: seen.append(res), resources={"num_cpus": 1})
        nodes, pids = ray.nodes(), ray_head.pids()  # the job's workers exit when the driver disconnects
        conns = tcp_connections(pids + [os.getpid()])
    finally:
        executor.close()
    assert nodes and {n["NodeManagerAddress"] for n in nodes} == {"127.0.0.1"}
    assert seen == [{"pid": seen[0]["pid"], "results": str(tmp_path / "forwarded"), "threads": 1, "loopback": "0"}]
    assert seen[0]["pid"] in pids and seen[0]["pid"] != os.getpid()
    listening = [local for local, _, state in conns if state == "0A"]
    assert listening and all(is_loopback(local) for local in listening), listening
    established = [c for c in conns if c[2] == "01"]
    assert established and all(is_loopback(local) and is_loopback(remote) for local, remote, _ in established), conns


def test_ray_matrix_writes_the_same_results_as_local(ray_head: RayHead, workspace_dir: Path, synth_corpora: Path,
                                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same cells run locally and as Ray tasks (separate caches and result folders) give the
    same key, metrics, predictions, layer and training curve; the workers write the result files
    and the feature cache themselves."""
    add_profile(workspace_dir, "mt_ray", upstreams=["mfcc"], downstreams=["gender", "emotion"], seeds=[0, 1])
    specs = [CellSpec("mt_ray", "mfcc", ds, "en", seed) for ds in ("gender", "emotion") for seed in (0, 1)]
    root = ray_workspace(workspace_dir, synth_corpora, tmp_path, monkeypatch, "local")
    local = run_matrix(workspace(root), profile="mt_ray", progress=False, leaderboard=False)
    assert local.counts.get("ok") == 4, local
    expected = {s: comparable(result_json(workspace(root), s) or {}) for s in specs}

    ray_workspace(workspace_dir, synth_corpora, tmp_path, monkeypatch, "ray")
    passes = STATS["passes"]
    remote = run_matrix(workspace(root), profile="mt_ray", progress=False, executor="ray", address=ray_head.address)
    assert remote.counts.get("ok") == 4 and remote.ran == 4, remote
    assert STATS["passes"] == passes  # the upstream ran in the workers, not here
    ws = workspace(root)
    assert ws.path("results") == tmp_path / "ray" / "results"
    for spec in specs:
        assert comparable(result_json(ws, spec) or {}) == expected[spec], spec.label
    assert list((tmp_path / "ray" / "cache" / "features" / "mfcc").rglob("COMPLETE"))
    assert (Path(remote.leaderboards or "") / "table1_gender.md").is_file()


def test_ray_requests_follow_the_plan(workspace_dir: Path, synth_corpora: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """On a cluster that declares a GPU, ``--device cuda``: the extraction job asks for the GPU, the
    cells (heads on cached features) ask for one CPU and no GPU and run on the CPU; the cells are ok
    although the GPU is only declared (a cell holding it would fail: there is no CUDA device here).
    The executor is the real RayExecutor, recording the requests it is given."""
    temp_dir = Path(tempfile.mkdtemp(prefix="rayg", dir="/tmp"))
    head = start_head(temp_dir, num_gpus=1)
    try:
        add_profile(workspace_dir, "mt_res", upstreams=["mfcc"], downstreams=["gender"])
        root = ray_workspace(workspace_dir, synth_corpora, tmp_path, monkeypatch, "res")
        seen: list[tuple[str, dict[str, float], int]] = []

        class Recording(RayExecutor):
            def map(self, fn: Any, jobs: list[Any], *, on_done: Any, resources: dict[str, float] | None = None) -> None:
                seen.append((getattr(fn, "func", fn).__name__, dict(resources or {}), len(jobs)))
                super().map(fn, jobs, on_done=on_done, resources=resources)

        monkeypatch.setattr("harness.matrix.stages.make_executor",
                            lambda kind, *, address, ws: Recording(address=address, workspace=ws))
        out = run_matrix(workspace(root), profile="mt_res", progress=False, executor="ray", address=head.address,
                         device="cuda", leaderboard=False)
        assert out.counts.get("ok") == 1, (out, seen)
        assert ("_extract_job", {"num_cpus": 1, "num_gpus": 1}, 1) in seen
        assert ("_cell_job", {"num_cpus": 1, "num_gpus": 0}, 1) in seen
        assert all(r["num_gpus"] == 0 for name, r, _ in seen if name != "_extract_job")
    finally:
        stop_head(head)
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_ray_tasks_cache_and_stream_as_the_budget_plan_says(ray_head: RayHead, workspace_dir: Path,
                                                            synth_corpora: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """``features.source: auto`` under ``--disk-budget`` on Ray (tests/test_auto_source.py's two MFCC
    pairs): the plan's decisions travel with every Ray task, so the wide pair streams and the narrow
    one caches although ``stream_above_gb`` alone would cache both, and each record quotes the plan."""
    from harness.matrix import result_of
    from harness.matrix.plan import plan_for_profile
    from tests.test_auto_source import CORPUS, NARROW, PROFILE, WIDE, _between, _workspace

    root = ray_workspace(workspace_dir, synth_corpora, tmp_path, monkeypatch, "auto")
    ws = _workspace(root, synth_corpora, stream_above_gb=1000)
    _, _, budget = _between(ws)
    plan = plan_for_profile(ws, profile=PROFILE, budget_bytes=budget)
    out = run_matrix(ws, profile=PROFILE, progress=False, executor="ray", address=ray_head.address,
                     disk_budget=budget, leaderboard=False)
    assert out.counts.get("ok") == 4, out
    for up, mode in ((WIDE, "stream"), (NARROW, "cache")):
        pair = plan.pair(up, CORPUS)
        record = result_of(workspace(root), CellSpec(PROFILE, up, "emotion", "en", 0))
        assert pair is not None and pair.mode == mode
        assert record is not None and record.features is not None
        assert (record.features.source, record.features.source_reason) == (mode, pair.why)


def killer_profile(root: Path, marker: Path, *, always: bool = False) -> None:
    """Profile ``mt_kill``: the tiny HEAR upstream that SIGKILLs its process (see tests.hear_tiny) on
    gender, with the inference-time analysis on gender so that the cell itself runs the upstream."""
    load_kwargs: dict[str, Any] = {"kill_marker": str(marker), "kill_always": always}
    tiny_hear_card(root, "tiny_killer", display="Tiny killer", load_kwargs=load_kwargs)
    add_profile(root, "mt_kill", upstreams=["tiny_killer"], downstreams=["gender"],
                analyses={"capacity": False, "overlap": False, "umap": False, "inference_time": True,
                          "inference_time_task": "gender", "inference_time_warmup": 0})


def test_worker_killed_mid_cell_is_retried(ray_head: RayHead, workspace_dir: Path, synth_corpora: Path,
                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """``bench matrix --executor ray --address ...``: the worker running the cell SIGKILLs itself
    in the middle of the cell (in the inference-time analysis, after training); Ray retries the
    task on a new worker and the matrix completes with the cell ok."""
    root = ray_workspace(workspace_dir, synth_corpora, tmp_path, monkeypatch, "kill")
    marker = tmp_path / "killed"
    killer_profile(root, marker)
    spec = CellSpec("mt_kill", "tiny_killer", "gender", "en", 0)
    marker.write_text("")  # armed after the features are cached, so that only the cell runs the upstream
    assert extract_for_cell(workspace(root), spec, device="cpu", progress=False).ok
    marker.unlink()
    argv = ["--root", str(root), "matrix", "--profile", "mt_kill", "--executor", "ray", "--address",
            ray_head.address, "--no-progress", "--no-leaderboard"]
    assert main(argv) == 0
    assert "ok 1, failed 0" in capsys.readouterr().out
    kills = marker.read_text().splitlines()
    assert len(kills) == 1 and "inference_time_step" in kills[0] and "run_cell" in kills[0], kills
    res = result_json(workspace(root), spec) or {}
    assert res["status"] == "ok" and res["analyses"]["inference_time"]["subsets"]["full"]["count"] > 0


@pytest.mark.slow
def test_worker_dying_every_time_fails_the_cell_with_a_result(ray_head: RayHead, workspace_dir: Path,
                                                               synth_corpora: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A cell whose worker dies on every attempt fails once Ray's retries are spent, and the
    failure is recorded in its result file (status failed, the Ray error), like any failed cell."""
    root = ray_workspace(workspace_dir, synth_corpora, tmp_path, monkeypatch, "always")
    marker = tmp_path / "killed"
    killer_profile(root, marker, always=True)
    out = run_matrix(workspace(root), profile="mt_kill", progress=False, executor="ray", address=ray_head.address,
                     leaderboard=False)
    assert out.counts.get("failed") == 1, out
    res = result_json(workspace(root), CellSpec("mt_kill", "tiny_killer", "gender", "en", 0)) or {}
    assert res.get("status") == "failed", res
    assert "Worker" in res["error"]["type"] or "worker" in res["error"]["message"].lower()
    assert len(marker.read_text().splitlines()) >= 2
