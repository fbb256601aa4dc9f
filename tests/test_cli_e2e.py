"""The CLI end to end, in a subprocess, offline: `bench run` on the smoke corpus prints the metrics
table and writes its result file; a rerun reuses it; bad names fail before any work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def _bench(args: list[str], *, root: Path, env_root: Path, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BENCH_CACHE": str(env_root / "cache"), "BENCH_RESULTS": str(env_root / "results"),
           "BENCH_MODELS": str(env_root / "models"), "BENCH_CARDS": str(env_root / "cards"),
           "BENCH_LEADERBOARDS": str(env_root / "lb"), "HF_HUB_OFFLINE": "1", "COLUMNS": "120"}
    return subprocess.run([sys.executable, "-m", "harness.cli", "--root", str(root), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_bench_run_prints_metrics_and_writes_a_result(workspace_dir: Path, tmp_path: Path) -> None:
    args = ["run", "--profile", "smoke", "--upstream", "mfcc", "--downstream", "gender", "--language", "en",
            "--no-progress"]
    out = _bench(args, root=workspace_dir, env_root=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "micro-F1" in out.stdout and "UAR" in out.stdout and "accuracy" in out.stdout
    result_file = tmp_path / "results" / "smoke" / "mfcc" / "gender" / "en" / "seed0.json"
    result = json.loads(result_file.read_text())
    assert result["status"] == "ok" and result["key"]
    assert set(result["metrics"]) >= {"f1_micro", "uar", "accuracy", "confusion_matrix"}
    assert result["downstream"]["profile"] == "smoke"
    assert result["environment"]["packages"]["torch"]
    assert len(result["predictions"]["y_pred"]) == result["metrics"]["n"]
    ids, speakers = result["predictions"]["ids"], result["predictions"]["speakers"]  # the bootstrap's clusters
    assert len(speakers) == len(ids) and all(i.startswith(f"{s}_") for i, s in zip(ids, speakers, strict=True))
    assert len(set(speakers)) >= 2
    mtime = result_file.stat().st_mtime_ns
    again = _bench(args, root=workspace_dir, env_root=tmp_path)
    assert again.returncode == 0 and "cached result" in again.stdout
    assert result_file.stat().st_mtime_ns == mtime


def test_unknown_names_fail_before_any_work(workspace_dir: Path, tmp_path: Path) -> None:
    out = _bench(["run", "--profile", "smoke", "--upstream", "mfc", "--downstream", "gender", "--language", "en"],
                 root=workspace_dir, env_root=tmp_path)
    assert out.returncode == 2
    assert "found 'mfc'" in out.stderr and "Did you mean 'mfcc'" in out.stderr
    assert not (tmp_path / "cache").exists() and not (tmp_path / "results").exists()
