"""The analyses inside real cells: run_cell with the mfcc card runs capacity and inference time as
post-training steps and writes their sections into the result JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import cell
from harness.cell import CellSpec, run_cell
from harness.config import Workspace
from harness.extract import STATS
from tests.analysis_fixtures import emotion_dataset, one_torch_thread  # noqa: F401


@pytest.fixture
def ws(workspace_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    ds = emotion_dataset(tmp_path / "audio", n=16)
    monkeypatch.setattr(cell, "load_task_dataset", lambda *a, **k: ds)
    return Workspace(workspace_dir)


def test_gender_cell_runs_capacity_on_759_mfcc_dims(ws: Workspace) -> None:
    res = run_cell(ws, CellSpec("smoke", "mfcc", "gender", "en", 0), progress=False)
    assert res["status"] == "ok", res.get("error")
    cap = res["analyses"]["capacity"]
    assert cap["D"] == 759 and cap["k"] == 75 and len(set(cap["dims"])) == 75 and "inference_time" not in res["analyses"]
    assert cap["ig"]["items"] == res["data"]["items"]["test"] and "capacity_s" in res["timings"]
    saved = json.loads(Path(cap["dims_file"]).read_text())
    assert saved["dims"] == cap["dims"] and saved["key"] == res["key"]


def test_emotion_cell_runs_inference_time_once(ws: Workspace) -> None:
    res = run_cell(ws, CellSpec("smoke", "mfcc", "emotion", "en", 0), progress=False)
    assert res["status"] == "ok", res.get("error")
    timing = res["analyses"]["inference_time"]
    assert timing["subsets"]["full"]["count"] == res["data"]["items"]["test"] == 4
    assert "capacity" not in res["analyses"]  # the smoke profile analyses gender only
    passes = STATS["passes"]
    assert run_cell(ws, CellSpec("smoke", "mfcc", "emotion", "en", 0), progress=False)["_skipped"]
    assert STATS["passes"] == passes


def test_leaderboard_reads_the_real_inference_time_section(ws: Workspace) -> None:
    """Table IX and the inference column are filled from what the timing analysis really writes."""
    from harness.report import build_tables, render_markdown

    res = run_cell(ws, CellSpec("smoke", "mfcc", "emotion", "en", 0), progress=False)
    assert res["status"] == "ok", res.get("error")
    full = res["analyses"]["inference_time"]["subsets"]["full"]
    tables = {t.name: t for t in build_tables([res], published=None, profile="smoke", n_boot=50)}
    row = next(r for r in tables["table9_inference_time"].rows if r.key == "mfcc")
    assert row.cells["full_s"].value == pytest.approx(full["upstream_s"])
    assert row.cells["head_s"].value == pytest.approx(full["head_s"])
    assert row.cells["throughput"].value == pytest.approx(res["analyses"]["inference_time"]["extraction"]["audio_s_per_s"])
    assert "–" not in render_markdown(tables["table9_inference_time"]).split("| MFCC")[1].split("\n")[0]
