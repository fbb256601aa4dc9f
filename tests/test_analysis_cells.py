"""The analyses inside real cells: run_cell with the mfcc card runs capacity and inference time as
post-training steps and writes their sections into the result JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.config import Workspace
from harness.config.plan import CellSpec
from harness.features.extract import STATS
from harness.run import inputs as cell_inputs
from harness.run.cell import run_cell
from tests.analysis_fixtures import emotion_dataset, one_torch_thread  # noqa: F401


@pytest.fixture
def ws(workspace_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    ds = emotion_dataset(tmp_path / "audio", n=16)
    monkeypatch.setattr(cell_inputs, "load_task_dataset", lambda *a, **k: ds)
    return Workspace(workspace_dir)


def test_gender_cell_runs_capacity_on_759_mfcc_dims(ws: Workspace) -> None:
    res = run_cell(ws, CellSpec("smoke", "mfcc", "gender", "en", 0), progress=False).result
    assert res.status == "ok", res.error
    assert res.analyses is not None and res.analyses.inference_time is None
    cap = res.analyses.capacity
    assert cap is not None and cap.dims is not None and cap.ig is not None
    assert cap.D == 759 and cap.k == 75 and len(set(cap.dims)) == 75
    assert res.data is not None and res.data.items is not None and res.timings is not None
    assert cap.ig.items == res.data.items["test"] and res.timings.capacity_s is not None
    saved = json.loads(Path(cap.dims_file or "").read_text())
    assert saved["dims"] == cap.dims and saved["key"] == res.key


def test_emotion_cell_runs_inference_time_once(ws: Workspace) -> None:
    res = run_cell(ws, CellSpec("smoke", "mfcc", "emotion", "en", 0), progress=False).result
    assert res.status == "ok", res.error
    assert res.analyses is not None and res.analyses.inference_time is not None and res.data is not None
    timing = res.analyses.inference_time
    assert timing.subsets is not None and timing.subsets.full is not None and res.data.items is not None
    assert timing.subsets.full.count == res.data.items["test"] == 4
    assert res.analyses.capacity is None  # the smoke profile analyses gender only
    passes = STATS["passes"]
    assert run_cell(ws, CellSpec("smoke", "mfcc", "emotion", "en", 0), progress=False).skipped
    assert STATS["passes"] == passes


def test_leaderboard_reads_the_real_inference_time_section(ws: Workspace) -> None:
    """Table IX and the inference column are filled from what the timing analysis really writes."""
    from harness.report import build_tables, render_markdown

    outcome = run_cell(ws, CellSpec("smoke", "mfcc", "emotion", "en", 0), progress=False)
    res = json.loads(outcome.path.read_text(encoding="utf-8"))  # the file, as the leaderboard reads it
    assert res["status"] == "ok", res.get("error")
    full = res["analyses"]["inference_time"]["subsets"]["full"]
    tables = {t.name: t for t in build_tables([res], published=None, profile="smoke", n_boot=50)}
    row = next(r for r in tables["table9_inference_time"].rows if r.key == "mfcc")
    assert row.cells["full_s"].value == pytest.approx(full["upstream_s"])
    assert row.cells["head_s"].value == pytest.approx(full["head_s"])
    assert row.cells["throughput"].value == pytest.approx(res["analyses"]["inference_time"]["extraction"]["audio_s_per_s"])
    assert "–" not in render_markdown(tables["table9_inference_time"]).split("| MFCC")[1].split("\n")[0]
