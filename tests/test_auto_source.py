"""Issue 17, one decision for ``features.source: auto``: the run caches or streams exactly the pairs the
plan says, with or without a disk budget.

The workspace: two frame-level (card, corpus) pairs of different frame sizes on the smoke corpus,
the paper's MFCC (759 numbers a frame) and MFCC-13 (13 numbers a frame), each read by the emotion
head (frames, a sweep over the MFCC's one layer) and the gender head (pooled vectors), in the
bounded scheme (the paper profile's). Real extraction, real heads, the real matrix stages and
worker processes; nothing of the harness is replaced.

- With ``--disk-budget`` between the two pairs the plan streams MFCC and caches MFCC-13 although
  ``stream_above_gb`` alone would cache both: every frame cell's record says what the plan said
  (the decision reached the worker processes), its reason names the budget, and the resource
  request of every cell agrees; a rerun with the same budget runs nothing.
- Without a budget, ``bench plan`` prints the ``stream_above_gb`` decision, word for word the
  reason the run records.
- With a ``features.planner``, a budget checks the planner's choices and refuses them before any
  work when they do not fit.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.config.plan import CellSpec, resolve_cell
from harness.errors import BenchError
from harness.features.extract import STATS
from harness.features.source import FrameEstimate, SourceChoice, estimate_frames, uses_frames
from harness.matrix import cells_of, result_of, run_matrix
from harness.matrix.plan import _stream_cut, job_resources, plan_for_profile
from harness.run.inputs import dataset_for
from harness.schema import FeatureSpec
from tests.matrix_fixtures import add_profile, seed_corpus, workspace

PROFILE = "auto17"
WIDE, NARROW = "mfcc", "mfcc13"
CORPUS = "synth/en"


def _workspace(root: Path, synth_corpora: Path, **features: Any) -> Any:
    seed_corpus(root / ".bench" / "cache", synth_corpora)
    add_profile(root, PROFILE, upstreams=[WIDE, NARROW], downstreams=["emotion", "gender"],
                features={"source": "auto", "sweep_frames": "bounded", **features})
    return workspace(root)


def _between(ws: Any) -> tuple[int, int, int]:
    """(MFCC-13's frame bytes, MFCC's, a disk budget that holds every pooled entry and one of them)."""
    free = plan_for_profile(ws, profile=PROFILE)
    wide, narrow = free.pair(WIDE, CORPUS), free.pair(NARROW, CORPUS)
    assert wide is not None and narrow is not None
    assert wide.mode == narrow.mode == "cache"  # stream_above_gb alone caches both
    assert 10 * narrow.frame_peak_bytes < wide.frame_peak_bytes
    budget = free.pooled_bytes + narrow.frame_peak_bytes + (wide.frame_peak_bytes - narrow.frame_peak_bytes) // 2
    return narrow.frame_peak_bytes, wide.frame_peak_bytes, budget


def test_the_run_streams_and_caches_the_pairs_the_budget_plan_says(workspace_dir: Path, synth_corpora: Path) -> None:
    ws = _workspace(workspace_dir, synth_corpora, stream_above_gb=1000)
    _, _, budget = _between(ws)
    plan = plan_for_profile(ws, profile=PROFILE, budget_bytes=budget)
    assert plan.fits
    assert (plan.pair(WIDE, CORPUS).mode, plan.pair(NARROW, CORPUS).mode) == ("stream", "cache")

    run = run_matrix(ws, profile=PROFILE, disk_budget=budget, workers=2, progress=False, leaderboard=False)
    assert run.counts.get("ok") == 4, run.counts
    seen = set()
    for spec in cells_of(ws, PROFILE, ws.profile(PROFILE)[1]):
        cell = resolve_cell(ws.snapshot, spec)
        record = result_of(ws, spec)
        assert record is not None and record.status == "ok" and record.features is not None
        gpus = job_resources(plan, "cells", cell, gpu=True)["num_gpus"]
        if uses_frames(cell):
            mode = plan.mode_of(cell)
            seen.add(mode)
            assert record.features.source == mode, (spec.label, record.features.source_reason)
            assert record.features.source_reason == plan.pair(cell.card.name, CORPUS).why
            assert f"the plan's decision for --disk-budget {budget / 1e6:.1f} MB" in record.features.source_reason
            assert gpus == (1 if mode == "stream" else 0)
        else:  # pooled heads read the pooled vectors on a CPU, whatever their pair does
            assert record.features.source is None and gpus == 0
    assert seen == {"stream", "cache"}

    # on disk: the cached pair's chosen-layer frames, none for the streamed pair
    folder = ws.path("cache") / "features"
    assert list((folder / NARROW).glob("*/*.frames"))
    assert not [p for p in (folder / WIDE).glob("*/*.*") if p.is_dir()]

    # the decision is no part of a cache key or a cell key: a rerun with the same budget runs nothing
    passes = STATS["passes"]
    again = run_matrix(ws, profile=PROFILE, disk_budget=budget, workers=1, progress=False, leaderboard=False)
    assert again.ran == 0 and again.counts.get("skipped_done") == 4
    assert STATS["passes"] == passes


def test_bench_plan_without_a_budget_prints_the_decision_the_run_makes(workspace_dir: Path, synth_corpora: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    ws = _workspace(workspace_dir, synth_corpora)
    estimates = {}
    for up in (WIDE, NARROW):  # the run's own estimate of each pair
        cell = resolve_cell(ws.snapshot, CellSpec(PROFILE, up, "emotion", "en", 0))
        estimates[up] = estimate_frames(ws.snapshot, cell, dataset_for(ws.snapshot, cell))
    assert 10 * estimates[NARROW].frame_bytes < estimates[WIDE].frame_bytes
    threshold_gb = (estimates[NARROW].frame_bytes + estimates[WIDE].frame_bytes) / 2 / 1e9
    ws = _workspace(workspace_dir, synth_corpora, stream_above_gb=threshold_gb)

    assert main(["--root", str(workspace_dir), "plan", "--profile", PROFILE]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()
            if re.match(rf"({WIDE}|{NARROW}) +{CORPUS} ", line)}
    assert "  stream: auto: " in rows[WIDE] and "exceed stream_above_gb" in rows[WIDE]
    assert "  cache: auto: " in rows[NARROW] and "within stream_above_gb" in rows[NARROW]

    run = run_matrix(ws, profile=PROFILE, only={"downstream": {"emotion"}}, workers=2, progress=False,
                     leaderboard=False)
    assert run.counts.get("ok") == 2, run.counts
    for up, mode in ((WIDE, "stream"), (NARROW, "cache")):
        record = result_of(ws, CellSpec(PROFILE, up, "emotion", "en", 0))
        assert record is not None and record.features is not None
        assert record.features.source == mode
        assert rows[up].endswith(f"  {mode}: {record.features.source_reason}")  # the reason bench plan printed


def test_a_planner_decides_under_a_budget_that_checks_its_choices(workspace_dir: Path, synth_corpora: Path) -> None:
    ws = _workspace(workspace_dir, synth_corpora, stream_above_gb=1000)
    narrow, wide, budget = _between(ws)

    ws = _workspace(workspace_dir, synth_corpora, planner="tests.test_auto_source:stream_the_wide")
    plan = plan_for_profile(ws, profile=PROFILE, budget_bytes=budget)
    assert plan.fits and plan.pair(WIDE, CORPUS).why == "test planner: stream the wide frames"
    assert plan.pair(NARROW, CORPUS).mode == "cache"
    assert any("features.planner" in n for n in plan.notes)

    ws = _workspace(workspace_dir, synth_corpora, planner="tests.test_auto_source:cache_everything")
    passes = STATS["passes"]
    with pytest.raises(BenchError, match="over --disk-budget"):
        run_matrix(ws, profile=PROFILE, disk_budget=budget, workers=1, progress=False, leaderboard=False)
    assert STATS["passes"] == passes and not list(ws.path("results").rglob("*.json"))


def stream_the_wide(estimate: FrameEstimate, spec: FeatureSpec) -> SourceChoice:
    if estimate.upstream == WIDE:
        return SourceChoice("stream", "test planner: stream the wide frames")
    return SourceChoice("cache", "test planner: cache the narrow frames")


def cache_everything(estimate: FrameEstimate, spec: FeatureSpec) -> SourceChoice:
    return SourceChoice("cache", "test planner: cache everything")


def test_the_budget_decision_is_a_threshold_on_a_pair_s_frames() -> None:
    """Without eviction the largest pairs stream until the rest fits, and a pair as large as the
    smallest of them streams with it (ties stream together); with eviction a pair streams when its
    frames and every pooled entry pass the budget."""
    assert _stream_cut([5, 5, 1], pooled=1, budget=8, evicts=False) == 5  # 12 > 8; 7 fits; the other 5 too
    assert _stream_cut([6, 5, 1], pooled=1, budget=8, evicts=False) == 6
    assert _stream_cut([6, 5, 1], pooled=1, budget=13, evicts=False) is None
    assert _stream_cut([6, 5, 1], pooled=1, budget=6, evicts=True) == 6
    assert _stream_cut([6, 5, 1], pooled=1, budget=7, evicts=True) is None


def test_a_layer_mode_keeps_its_frames_cached_and_a_budget_too_small_is_refused(workspace_dir: Path,
                                                                              synth_corpora: Path) -> None:
    """A profile layer mode (weighted_sum) reads every layer's frames, which the stream cannot give:
    neither the threshold nor a budget streams its pairs. Without a budget the run's choice and the
    plan's are cache with that reason; a budget that only streaming would meet is refused before
    any work (instead of cells failing one by one on the stream's layer-mode error)."""
    ws = _workspace(workspace_dir, synth_corpora, stream_above_gb=1e-9)
    add_profile(workspace_dir, PROFILE, upstreams=[WIDE, NARROW], downstreams=["emotion", "gender"], layer="weighted_sum",
                features={"source": "auto", "sweep_frames": "bounded", "stream_above_gb": 1e-9})
    ws = workspace(workspace_dir)
    cell = resolve_cell(ws.snapshot, CellSpec(PROFILE, WIDE, "emotion", "en", 0))
    from harness.features.source import source_for

    choice = source_for(ws.snapshot, cell, dataset_for(ws.snapshot, cell))
    assert choice.source == "cache" and "exceed stream_above_gb" in choice.reason and "weighted_sum" in choice.reason
    free = plan_for_profile(ws, profile=PROFILE)
    assert {p.mode for p in free.pairs} == {"cache"}
    assert free.pair(WIDE, CORPUS).why == choice.reason  # the plan says what the run does

    budget = free.pooled_bytes + free.pair(NARROW, CORPUS).frame_peak_bytes  # MFCC's frames do not fit
    tight = plan_for_profile(ws, profile=PROFILE, budget_bytes=budget)
    assert tight.pair(WIDE, CORPUS).mode == "cache" and "cannot stream" in tight.pair(WIDE, CORPUS).why
    passes = STATS["passes"]
    with pytest.raises(BenchError, match="over --disk-budget"):
        run_matrix(ws, profile=PROFILE, disk_budget=budget, workers=1, progress=False, leaderboard=False)
    assert STATS["passes"] == passes and not list(ws.path("results").rglob("*.json"))
