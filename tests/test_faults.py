"""Numbers survive crashes and bad disks: real `bench matrix` processes, killed with SIGKILL at
chosen points (the ``BENCH_FAULT`` test hook, :mod:`harness.faults`), then rerun to completion.

Every test compares against an uninterrupted run of the same cells with the same seed: after a
kill and a rerun, the cells that had finished before the kill are byte-identical and untouched
(same mtime) and reported as skipped, no temporary of an atomic write survives the rerun, and
every cell's metrics and predictions equal the uninterrupted run's. The default run covers the
MFCC cells of the ``smoke`` profile; ``--slow`` adds the whole profile (small-model training).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import faults
from tests.bench_process import (
    BenchSandbox,
    describe,
    killed,
    outcomes,
    result_files,
    snapshot,
    temporaries,
)

# one worker: cells run in a fixed order, so "killed at the n-th epoch" leaves a known number of
# finished cells (feature extraction still runs in its own process); the parallel path has its test
MFCC = ("matrix", "--profile", "smoke", "--no-progress", "--workers", "1", "--only", "upstream=mfcc")
GENDER = ("matrix", "--profile", "smoke", "--no-progress", "--workers", "1", "--only",
          "upstream=mfcc,downstream=gender")
FULL = ("matrix", "--profile", "smoke", "--no-progress", "--workers", "1")
PARALLEL = ("matrix", "--profile", "smoke", "--no-progress", "--workers", "2")


@dataclass
class Reference:
    sandbox: BenchSandbox
    outcomes: dict[str, dict]


def _reference(base: Path, args: tuple[str, ...]) -> Reference:
    sb = BenchSandbox.create(base)
    proc = sb.run(*args)
    assert proc.returncode == 0, describe(proc)
    return Reference(sb, outcomes(sb.results))


@pytest.fixture(scope="module")
def mfcc_reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """An uninterrupted run of the smoke profile's MFCC cells (synthesis, extraction, 3 cells)."""
    return _reference(tmp_path_factory.mktemp("mfcc-reference"), MFCC)


@pytest.fixture(scope="module")
def full_reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """An uninterrupted run of the whole smoke profile (also trains the Siamese small model)."""
    return _reference(tmp_path_factory.mktemp("full-reference"), FULL)


def gender_only(reference: Reference) -> Reference:
    """The reference restricted to the gender cell (what the ``GENDER`` command runs)."""
    return Reference(reference.sandbox, {k: v for k, v in reference.outcomes.items() if "/gender/" in k})


def finished_cells(sb: BenchSandbox) -> dict[str, tuple[bytes, int]]:
    return {rel: (p.read_bytes(), p.stat().st_mtime_ns) for rel, p in result_files(sb.results).items()}


def kill_then_resume(sb: BenchSandbox, args: tuple[str, ...], fault: str) -> tuple[dict, list[str], subprocess.CompletedProcess]:
    """Run ``args`` with ``BENCH_FAULT=fault`` (must die by SIGKILL), then again without.

    Returns (finished cells at the kill, temporaries left by the kill, the rerun)."""
    proc = sb.run(*args, fault=fault)
    assert killed(proc), f"the {fault} fault did not kill the run: {describe(proc)}"
    before = finished_cells(sb)
    torn = temporaries(sb.base / "out")
    rerun = sb.run(*args)
    assert rerun.returncode == 0, describe(rerun)
    return before, torn, rerun


def assert_resumed(sb: BenchSandbox, before: dict, rerun: subprocess.CompletedProcess, reference: Reference) -> None:
    """Finished cells kept byte for byte and untouched, reported skipped; nothing torn left; same numbers."""
    after = finished_cells(sb)
    for rel, (data, mtime) in before.items():
        assert after[rel][0] == data, f"{rel} changed on the rerun"
        assert after[rel][1] == mtime, f"{rel} was rewritten on the rerun"
    assert f"skipped {len(before)} finished" in rerun.stdout, describe(rerun)
    assert temporaries(sb.base / "out") == []
    assert outcomes(sb.results) == reference.outcomes


# --------------------------------------------------------------------------- the hook itself
def test_fault_hook_is_inert_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without BENCH_FAULT (every real run) the hook returns and keeps no state."""
    monkeypatch.delenv(faults.ENV, raising=False)
    for point in faults.POINTS:
        faults.maybe_crash(point)
    assert not faults._hits


def test_fault_hook_kills_at_the_nth_hit(tmp_path: Path) -> None:
    """BENCH_FAULT=point:n survives n-1 hits and dies by SIGKILL (no cleanup) at the n-th."""
    code = ("from harness import faults\nfor i in range(5):\n    print(i, flush=True)\n"
            "    faults.maybe_crash('other')\n    faults.maybe_crash('train')\n")
    from tests.conftest import REPO

    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          env={"BENCH_FAULT": "train:3", "PATH": "/usr/bin:/bin"}, timeout=60)
    assert killed(proc) and proc.stdout.split() == ["0", "1", "2"], describe(proc)


def test_only_temporaries_of_dead_or_old_writers_are_removed(tmp_path: Path) -> None:
    """A live writer's temporary stays; a dead local process's goes; another host's goes only once
    nothing in it changed for an hour (its folder's own mtime does not count: appends do not touch it)."""
    import os
    import time

    from harness.tempfiles import HOST, remove_stale, temp_sibling

    live = temp_sibling(tmp_path / "a.json")
    live.write_text("x")
    dead = tmp_path / f".b.json.tmp-{HOST}-999999999-abcd1234"
    dead.write_text("x")
    hour_ago = time.time() - 7200
    busy, idle = tmp_path / ".c.tmp-otherhost-1-abcd", tmp_path / ".d.tmp-otherhost-1-abcd"
    for folder, file_time in ((busy, time.time()), (idle, hour_ago)):
        folder.mkdir()
        (folder / "frames.f16").write_text("x")
        os.utime(folder / "frames.f16", (file_time, file_time))
        os.utime(folder, (hour_ago, hour_ago))
    not_temp = tmp_path / "seed0.json"
    not_temp.write_text("{}")
    os.utime(not_temp, (hour_ago, hour_ago))
    assert sorted(p.name for p in remove_stale(tmp_path)) == [dead.name, idle.name]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, busy.name, not_temp.name])


# --------------------------------------------------------------------------- kills (MFCC cells)
def test_kill_while_writing_a_result(mfcc_reference: Reference, tmp_path: Path) -> None:
    """Killed between writing a result to its temporary name and renaming it: the two cells written
    before are kept untouched, the torn temporary is never read and is cleaned, the rerun finishes."""
    sb = BenchSandbox.create(tmp_path)
    sb.copy_outputs_from(mfcc_reference.sandbox, "cache")
    before, torn, rerun = kill_then_resume(sb, MFCC, "result_write:4")
    assert len(before) == 2, sorted(before)
    assert any(re.search(r"\.seed0\.json\.tmp-", t) for t in torn), torn
    assert_resumed(sb, before, rerun, mfcc_reference)


def test_kill_while_training_a_head(mfcc_reference: Reference, tmp_path: Path) -> None:
    """Killed in the middle of a cell's training: cells finished before are kept and skipped, the
    interrupted cell is computed again from scratch with the same numbers."""
    sb = BenchSandbox.create(tmp_path)
    sb.copy_outputs_from(mfcc_reference.sandbox, "cache")
    before, _, rerun = kill_then_resume(sb, MFCC, "train:22")
    assert len(before) == 1, sorted(before)
    assert_resumed(sb, before, rerun, mfcc_reference)


def test_kill_while_extracting(mfcc_reference: Reference, tmp_path: Path) -> None:
    """Killed while the feature cache entry is being written: the half-written entry (a temporary
    folder without completion marker) is never read, is removed, and the features are recomputed."""
    sb = BenchSandbox.create(tmp_path)
    shutil.copytree(mfcc_reference.sandbox.cache / "corpora", sb.cache / "corpora", copy_function=shutil.copy2)
    before, torn, rerun = kill_then_resume(sb, GENDER, "extract:20")
    assert before == {}
    assert any("/features/" in f"/{t}" and ".tmp-" in t for t in torn), torn
    assert_resumed(sb, before, rerun, gender_only(mfcc_reference))


@pytest.mark.slow
def test_kill_while_synthesising(mfcc_reference: Reference, tmp_path: Path) -> None:
    """Killed after the corpus was generated into its temporary folder, before it was marked
    complete and renamed: the rerun removes the torn corpus and generates it again, identically."""
    sb = BenchSandbox.create(tmp_path)
    before, torn, rerun = kill_then_resume(sb, MFCC, "synth")
    assert before == {} and any("corpora/synth/." in t for t in torn), torn
    assert_resumed(sb, before, rerun, mfcc_reference)
    ref_wavs = sorted((mfcc_reference.sandbox.cache / "corpora" / "synth").rglob("*.wav"))
    new_wavs = sorted((sb.cache / "corpora" / "synth").rglob("*.wav"))
    assert [p.read_bytes() for p in new_wavs] == [p.read_bytes() for p in ref_wavs]


# --------------------------------------------------------------------------- kills (whole profile)
@pytest.mark.slow
@pytest.mark.parametrize("fault,finished", [("small_model:2", 0), ("extract:75", 0), ("train:40", 3),
                                            ("result_write:8", 5)])
def test_kill_anywhere_in_the_whole_smoke_profile(full_reference: Reference, tmp_path: Path, fault: str,
                                                  finished: int) -> None:
    """The whole smoke profile (Siamese training included), killed at each point, resumes to the
    uninterrupted run's numbers without recomputing a finished cell."""
    sb = BenchSandbox.create(tmp_path)
    shutil.copytree(full_reference.sandbox.cache / "corpora", sb.cache / "corpora", copy_function=shutil.copy2)
    before, _, rerun = kill_then_resume(sb, FULL, fault)
    assert len(before) == finished, sorted(before)
    assert_resumed(sb, before, rerun, full_reference)


@pytest.mark.slow
def test_kill_while_two_workers_train(full_reference: Reference, tmp_path: Path) -> None:
    """Two cell workers and a fresh extraction process: a kill in one worker takes the whole run
    down; the rerun, also parallel, resumes to the serial
    uninterrupted run's numbers."""
    sb = BenchSandbox.create(tmp_path)
    shutil.copytree(full_reference.sandbox.cache / "corpora", sb.cache / "corpora", copy_function=shutil.copy2)
    before, _, rerun = kill_then_resume(sb, PARALLEL, "train:30")
    assert len(before) < len(full_reference.outcomes)
    assert_resumed(sb, before, rerun, full_reference)


# --------------------------------------------------------------------------- cache integrity
def test_corrupted_cache_file_is_recomputed_with_a_warning(mfcc_reference: Reference, tmp_path: Path) -> None:
    """Between two runs (results deleted) one byte of a cached feature file flips: the next run
    says which entry is corrupt, recomputes it and gets the same numbers."""
    sb = BenchSandbox.create(tmp_path)
    sb.copy_outputs_from(mfcc_reference.sandbox, "cache")
    frames = sorted((sb.cache / "features" / "mfcc").rglob("frames_L00.f16"))
    assert len(frames) == 1
    data = bytearray(frames[0].read_bytes())
    data[len(data) // 2] ^= 0xFF
    frames[0].write_bytes(bytes(data))
    proc = sb.run(*GENDER)
    assert proc.returncode == 0, describe(proc)
    assert "CacheCorruptWarning" in proc.stderr and "does not match its checksum" in proc.stderr, describe(proc)
    assert frames[0].parent.name in proc.stderr and "recomputed" in proc.stderr
    assert outcomes(sb.results) == gender_only(mfcc_reference).outcomes


@pytest.mark.slow
def test_truncated_cache_file_is_recomputed_with_a_warning(mfcc_reference: Reference, tmp_path: Path) -> None:
    """A cache file cut short (a full disk, a copy interrupted) is detected by its size."""
    sb = BenchSandbox.create(tmp_path)
    sb.copy_outputs_from(mfcc_reference.sandbox, "cache")
    pooled = sorted((sb.cache / "features" / "mfcc").rglob("pooled_w5.f16"))[0]
    pooled.write_bytes(pooled.read_bytes()[:-100])
    proc = sb.run(*GENDER)
    assert proc.returncode == 0, describe(proc)
    assert "truncated" in proc.stderr and pooled.parent.name in proc.stderr, describe(proc)
    assert outcomes(sb.results) == gender_only(mfcc_reference).outcomes


# --------------------------------------------------------------------------- determinism
def test_same_seed_same_numbers_in_fresh_processes(mfcc_reference: Reference, tmp_path: Path) -> None:
    """A second, independent run (new corpus, new features, new process) gives the same metrics,
    predictions, training curves and capacity dimensions."""
    sb = BenchSandbox.create(tmp_path)
    proc = sb.run(*GENDER)
    assert proc.returncode == 0, describe(proc)
    got = outcomes(sb.results)
    assert got and got == gender_only(mfcc_reference).outcomes


# --------------------------------------------------------------------------- bad disks
def test_results_path_through_a_file_fails_before_any_work(tmp_path: Path) -> None:
    """paths.results under a regular file (ENOTDIR; chmod cannot stop root): a clear error naming
    the folder, the cause and the fix, before the corpus is generated; exit code 2."""
    sb = BenchSandbox.create(tmp_path)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be\n")
    proc = sb.run(*GENDER, env={"BENCH_RESULTS": str(blocker / "results")})
    assert proc.returncode == 2, describe(proc)
    assert str(blocker / "results") in proc.stderr and "is a file, not a folder" in proc.stderr
    assert "BENCH_RESULTS" in proc.stderr and "Traceback" not in proc.stderr
    assert not (sb.cache / "corpora").exists() and not (sb.cache / "features").exists()


@pytest.fixture
def tmpfs(tmp_path: Path):
    """A 48 MiB tmpfs (needs root and CAP_SYS_ADMIN; skipped with the reason otherwise)."""
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mnt)], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or proc.returncode}): disk-full and "
                    "read-only results folders are not tested")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(folder: Path, *, leave_bytes: int) -> None:
    """Fill the file system of ``folder`` until about ``leave_bytes`` are free."""
    free = shutil.disk_usage(folder).free
    with open(folder / "filler", "wb") as f:
        f.write(b"\0" * max(free - leave_bytes, 0))


def test_disk_full_results_is_a_clear_error_and_corrupts_nothing(mfcc_reference: Reference, tmp_path: Path,
                                                                  tmpfs: Path) -> None:
    """The results disk fills up: the run stops with a clear error (what, where, how to fix),
    the results already there stay byte-identical, no temporary is left, and the same command
    with a healthy results folder finishes with the reference numbers."""
    sb = BenchSandbox.create(tmp_path)
    sb.copy_outputs_from(mfcc_reference.sandbox, "cache")
    results = tmpfs / "results"
    shutil.copytree(mfcc_reference.sandbox.results, results, copy_function=shutil.copy2)
    (results / "smoke" / "mfcc" / "gender" / "en" / "seed0.json").unlink()
    kept = snapshot(results)
    fill(tmpfs, leave_bytes=2048)
    proc = sb.run(*MFCC, env={"BENCH_RESULTS": str(results)})
    assert proc.returncode == 2, describe(proc)
    assert "the disk is full" in proc.stderr and str(results) in proc.stderr and "Traceback" not in proc.stderr
    assert snapshot(results) == kept and temporaries(results) == []
    (tmpfs / "filler").unlink()
    healthy = tmp_path / "healthy"
    shutil.copytree(results, healthy, copy_function=shutil.copy2)
    proc = sb.run(*MFCC, env={"BENCH_RESULTS": str(healthy)})
    assert proc.returncode == 0 and "skipped 2 finished" in proc.stdout, describe(proc)
    assert outcomes(healthy) == mfcc_reference.outcomes


@pytest.mark.slow
def test_disk_full_cache_fails_the_cell_clearly_and_leaves_no_torn_entry(mfcc_reference: Reference,
                                                                          tmp_path: Path, tmpfs: Path) -> None:
    """The cache disk fills up during extraction: the cell fails with a clear message (recorded
    in its result), the half-written entry is removed, and once there is space
    ``--retry-failed`` finishes it with the reference numbers."""
    sb = BenchSandbox.create(tmp_path / "sb")
    cache = tmpfs / "cache"
    shutil.copytree(mfcc_reference.sandbox.cache / "corpora", cache / "corpora", copy_function=shutil.copy2)
    fill(tmpfs, leave_bytes=256 * 1024)
    proc = sb.run(*GENDER, env={"BENCH_CACHE": str(cache)})
    assert proc.returncode == 1 and "failed 1" in proc.stdout, describe(proc)
    res = json.loads(next(iter(result_files(sb.results).values())).read_text())
    assert res["status"] == "failed" and "the disk is full" in res["error"]["message"], res.get("error")
    assert str(cache) in res["error"]["message"] and "BENCH_CACHE" in res["error"]["message"]
    assert temporaries(cache) == [] and not list((cache / "features").rglob("COMPLETE"))
    (tmpfs / "filler").unlink()
    proc = sb.run(*GENDER, "--retry-failed", env={"BENCH_CACHE": str(cache)})
    assert proc.returncode == 0, describe(proc)
    assert outcomes(sb.results) == gender_only(mfcc_reference).outcomes


def test_read_only_results_fail_before_any_work(mfcc_reference: Reference, tmp_path: Path, tmpfs: Path) -> None:
    """A read-only results file system (EROFS; works as root, unlike chmod): the run refuses to
    start, says which folder and why, and the results in it stay intact."""
    results = tmpfs / "results"
    shutil.copytree(mfcc_reference.sandbox.results, results, copy_function=shutil.copy2)
    (results / "smoke" / "mfcc" / "gender" / "en" / "seed0.json").unlink()
    remount = subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], capture_output=True, text=True, check=False)
    if remount.returncode != 0:
        pytest.skip(f"cannot remount read-only: {remount.stderr.strip()}")
    kept = snapshot(results)
    sb = BenchSandbox.create(tmp_path)
    proc = sb.run(*MFCC, env={"BENCH_RESULTS": str(results)})
    assert proc.returncode == 2, describe(proc)
    assert "read-only" in proc.stderr and str(results) in proc.stderr and "nothing was started" in proc.stderr
    assert snapshot(results) == kept and not (sb.cache / "corpora").exists()


def test_result_json_is_complete_or_absent(mfcc_reference: Reference) -> None:
    """Every result file of the reference run parses and none is a temporary (sanity for the above)."""
    files = result_files(mfcc_reference.sandbox.results)
    assert len(files) == 3
    for p in files.values():
        assert json.loads(p.read_text())["status"] == "ok"
