"""Issue 17: bounded sweep frames and streaming heads give the cached path's layer and metrics.

One frame-level cell (the ``emotion`` downstream, sweep over every layer) of a real tiny WavLM
(``save_pretrained`` folder, 3 hidden states) on the smoke synthetic corpus, run three times in
three fresh workspaces: ``sweep_frames: all`` with cached frames (the scheme before issue 17),
``sweep_frames: bounded``, and ``source: stream``. Same seed: the same layer and the same
metrics. Tolerance: on a CPU every scheme runs each utterance alone through the same forward
and rounds frames to float16 like the cache, so the head's inputs are identical; the only
difference is the order of the float64 sums of the standardisation statistics (per utterance
against per 8192-frame chunk), ~1e-16 relative, so metrics must agree to 1e-6 and the dev
curves of the sweep to 1e-6.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.config.plan import CellSpec
from harness.features.cache import FeatureStore
from harness.features.source import FrameEstimate, SourceChoice, choose_source, threshold_planner
from harness.run.cell import run_cell
from harness.schema import FeatureSpec
from harness.testing import write_tiny_hf
from tests.conftest import copy_workspace
from tests.matrix_fixtures import add_profile, edit_yaml, seed_corpus, workspace, write_card

# a tiny WavLM run cached, bounded and streamed on the smoke corpus: minutes on 2 cores (778 s for
# the file under a load of 4), so the default run skips it and CI (--slow) runs it
pytestmark = pytest.mark.slow

PROFILE = "frames17"
CELL = CellSpec(PROFILE, "tiny_wavlm", "emotion", "en", 0)
TOL = 1e-6


@pytest.fixture(scope="module")
def tiny_wavlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_hf(tmp_path_factory.mktemp("tiny") / "tiny_wavlm", family="wavlm", feat_extract_norm="layer")


def _workspace(root: Path, *, synth_corpora: Path, model: Path, features: dict[str, Any],
               downstreams: tuple[str, ...] = ("emotion",), **profile: Any) -> Any:
    copy_workspace(root)
    seed_corpus(root / ".bench" / "cache", synth_corpora)
    add_profile(root, PROFILE, upstreams=["tiny_wavlm"], downstreams=list(downstreams), features=features, **profile)
    write_card(root, "tiny_wavlm", adapter="hf", args={"model_id": str(model)}, display="tiny wavlm")
    edit_yaml(root / "downstreams" / "emotion.yaml", sweep={"stride": "all", "fraction": 0.5})
    return workspace(root)


def _run(tmp: Path, name: str, *, synth_corpora: Path, model: Path, features: dict[str, Any],
         **profile: Any) -> tuple[Any, Any, float]:
    ws = _workspace(tmp / name, synth_corpora=synth_corpora, model=model, features=features, **profile)
    t0 = time.perf_counter()
    outcome = run_cell(ws, CELL, progress=False, force=True)
    seconds = time.perf_counter() - t0
    assert outcome.result.status == "ok", outcome.result.error
    return ws, outcome.result, seconds


def _entries(ws: Any) -> dict[str, FeatureStore]:
    folder = ws.path("cache") / "features" / "tiny_wavlm"
    out = {}
    for path in sorted(folder.glob("*/*")):
        store = FeatureStore.open(path)
        if store is not None:
            out[path.name.split(".", 1)[1] if "." in path.name else "main"] = store
    return out


def _same_metrics(a: Any, b: Any) -> None:
    assert a.layer.chosen == b.layer.chosen
    assert a.layer.curve is not None and b.layer.curve is not None
    assert set(a.layer.curve) == set(b.layer.curve)
    for k in a.layer.curve:
        assert a.layer.curve[k] == pytest.approx(b.layer.curve[k], abs=TOL)
    for m in ("f1_micro", "uar", "accuracy"):
        assert getattr(a.metrics, m) == pytest.approx(getattr(b.metrics, m), abs=TOL)
    assert a.predictions.y_pred == b.predictions.y_pred
    assert [h.train_loss for h in a.training.history] == pytest.approx(
        [h.train_loss for h in b.training.history], rel=1e-5)


def test_bounded_frames_and_streaming_give_the_cached_layer_and_metrics(tmp_path: Path, synth_corpora: Path,
                                                                         tiny_wavlm: Path) -> None:
    common = {"synth_corpora": synth_corpora, "model": tiny_wavlm}
    ws_all, all_, t_all = _run(tmp_path, "all", features={}, **common)
    ws_b, bounded, t_b = _run(tmp_path, "bounded", features={"sweep_frames": "bounded"}, **common)
    ws_s, stream, t_s = _run(tmp_path, "stream", features={"source": "stream"}, **common)
    print(f"\nwall time of the cell: all {t_all:.1f} s, bounded {t_b:.1f} s, stream {t_s:.1f} s")

    assert all_.layer.candidates == [0, 1, 2]
    _same_metrics(all_, bounded)
    _same_metrics(all_, stream)

    # the record says which ran; records without these fields (older files) still read
    assert (all_.features.source, all_.features.frame_scheme) == ("cache", "all")
    assert (bounded.features.source, bounded.features.frame_scheme) == ("cache", "bounded")
    assert (stream.features.source, stream.features.frame_scheme) == ("stream", "stream")
    assert stream.features.stream_forward_calls and stream.features.stream_forward_calls > 0
    assert "profile features.source: stream" in (stream.features.source_reason or "")

    # what is on disk: all = every candidate layer of every utterance in the main entry
    e_all = _entries(ws_all)
    assert set(e_all) == {"main"} and e_all["main"].meta.frame_layers == [0, 1, 2]
    e_s = _entries(ws_s)
    assert set(e_s) == {"main"} and e_s["main"].meta.frame_layers == []  # streamed: no frames at all

    # bounded: no frames in the main entry; the sweep entry holds the subset and dev only, with
    # the moments of the whole training split; the chosen layer alone for every utterance
    e_b = _entries(ws_b)
    main = e_b["main"]
    assert main.meta.frame_layers == []
    sweep_name = next(n for n in e_b if n.startswith("sweep-"))
    sweep, chosen = e_b[sweep_name], e_b["frames"]
    assert sweep.meta.frame_layers == [0, 1, 2] and chosen.meta.frame_layers == [bounded.layer.chosen]
    items = bounded.data.items
    assert len(sweep.ids) == bounded.layer.subset_size + items["dev"] < items["train"] + items["dev"]
    assert all(sweep.has_moments(layer) for layer in (0, 1, 2))
    assert sorted(chosen.ids) == sorted(main.ids)
    assert set(bounded.features.frame_entries or {}) == {sweep.path.name, chosen.path.name}
    bytes_all = e_all["main"].bytes_on_disk
    bytes_b = sum(e.bytes_on_disk for e in e_b.values())
    assert bytes_b < bytes_all
    print(f"cache bytes: all {bytes_all}, bounded {bytes_b} (main {main.bytes_on_disk}, "
          f"sweep {sweep.bytes_on_disk}, chosen {chosen.bytes_on_disk})")

    # the bounded sweep standardises with the stored moments of the whole training split: the
    # statistics the all scheme computes from that split's cached frames
    from harness.config.plan import resolve_cell
    from harness.run.inputs import cell_inputs

    inputs = cell_inputs(ws_all.snapshot, resolve_cell(ws_all.snapshot, CELL), device="cpu", progress=False)
    for layer in (0, 1, 2):
        mean, std = inputs.sets_for(layer)[0]["train"].stats()
        m2, s2 = sweep.moments(layer=layer)
        np.testing.assert_allclose(m2, mean, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(s2, std, rtol=1e-6, atol=1e-7)

    # a rerun (the matrix's next seed, a resumed run) extracts nothing again
    before = {n: e.marker for n, e in e_b.items()}
    again = run_cell(ws_b, CELL, progress=False, force=True).result
    assert again.metrics == bounded.metrics
    assert {n: e.marker for n, e in _entries(ws_b).items()} == before


def test_matrix_stores_chosen_frames_once_then_evicts_them(tmp_path: Path, synth_corpora: Path,
                                                            tiny_wavlm: Path) -> None:
    """Bounded scheme through the matrix: a stage stores the chosen layer's frames before the
    cells; with ``evict_frames`` the derived entries are gone once the cells are done, the main
    entry (pooled vectors) stays, and the cell's record names the entries it read."""
    from harness.matrix.stages import result_of, run_matrix

    ws = _workspace(tmp_path / "m", synth_corpora=synth_corpora, model=tiny_wavlm,
                    features={"sweep_frames": "bounded", "evict_frames": True})
    run = run_matrix(ws, profile=PROFILE, workers=1, progress=False, leaderboard=False)
    assert run.counts.get("ok") == 1 and "chosen_frames" in run.stages
    record = result_of(ws, CELL)
    assert record is not None and record.features is not None
    assert record.features.frame_scheme == "bounded"
    assert any(name.endswith(".frames") for name in record.features.frame_entries or {})
    assert set(_entries(ws)) == {"main"}  # the derived frame entries were evicted
    folder = ws.path("cache") / "features" / "tiny_wavlm"
    assert not [p for p in folder.glob("*/*.*") if p.is_dir()]


def test_auto_asks_the_planner_with_the_estimate() -> None:
    small = FrameEstimate(upstream="u", corpus="c", audio_seconds=3600.0, frame_rate_hz=50.0, hidden_size=1024,
                          layers=8, scheme="all_candidates", frame_bytes=3600 * 50 * 1024 * 2 * 8,
                          entries=("all_frames",))
    spec = FeatureSpec(source="auto", stream_above_gb=1.0)
    assert choose_source(spec, small).source == "stream"  # 2.9 GB > 1 GB
    assert choose_source(FeatureSpec(source="auto", stream_above_gb=10.0), small).source == "cache"
    assert choose_source(FeatureSpec(source="stream"), None) == SourceChoice("stream", "profile features.source: stream")
    assert threshold_planner(small, spec).reason.startswith("auto: 2.9 GB of frames")
    planned = FeatureSpec(source="auto", planner="tests.test_frames_bounded_stream:always_stream")
    assert choose_source(planned, small) == SourceChoice("stream", "test planner: 8 layers")


def always_stream(estimate: FrameEstimate, spec: FeatureSpec) -> SourceChoice:
    return SourceChoice("stream", f"test planner: {estimate.layers} layers")


def test_utterance_layer_norm_bounded_and_streamed_match_the_cached_frames(tmp_path: Path, synth_corpora: Path,
                                                                         tiny_wavlm: Path) -> None:
    """``normalize: utterance_layer_norm`` (the paper profile's) needs no training-split sums: each
    utterance's frames are normed on their own, from the sweep entry, the chosen entry or the
    stream, so all three schemes give the same layer and metrics; the bounded sweep entry then
    stores no moments (nothing reads them)."""
    common = {"synth_corpora": synth_corpora, "model": tiny_wavlm, "normalize": "utterance_layer_norm"}
    _, all_, _ = _run(tmp_path, "all", features={}, **common)
    ws_b, bounded, _ = _run(tmp_path, "bounded", features={"sweep_frames": "bounded"}, **common)
    _, stream, _ = _run(tmp_path, "stream", features={"source": "stream"}, **common)
    _same_metrics(all_, bounded)
    _same_metrics(all_, stream)
    sweep = next(e for n, e in _entries(ws_b).items() if n.startswith("sweep-"))
    assert not any(sweep.has_moments(layer) for layer in (0, 1, 2))


def test_layer_modes_bounded_store_every_layer_once_and_stream_refuses(tmp_path: Path, synth_corpora: Path,
                                                                       tiny_wavlm: Path) -> None:
    """A profile layer mode (``weighted_sum``) on a frame head: the bounded scheme stores every
    layer's frames once in the ``.frames`` entry (no sweep, so no sweep entry) and gives the
    cached scheme's metrics; a streamed head cannot mix layers and the cell fails saying which
    setting to change, before any head is trained."""
    common = {"synth_corpora": synth_corpora, "model": tiny_wavlm, "layer": "weighted_sum"}
    _, all_, _ = _run(tmp_path, "all", features={}, **common)
    ws_b, bounded, _ = _run(tmp_path, "bounded", features={"sweep_frames": "bounded"}, **common)
    assert bounded.layer.mode == "weighted_sum" and bounded.layer.chosen is None
    for m in ("f1_micro", "uar", "accuracy"):
        assert getattr(all_.metrics, m) == pytest.approx(getattr(bounded.metrics, m), abs=TOL)
    assert bounded.predictions.y_pred == all_.predictions.y_pred
    entries = _entries(ws_b)
    assert set(entries) == {"main", "frames"} and entries["frames"].meta.frame_layers == [0, 1, 2]

    ws = _workspace(tmp_path / "stream", features={"source": "stream"}, **common)
    result = run_cell(ws, CELL, progress=False, force=True).result
    assert result.status == "failed"
    assert "features.source: stream does not run the layer modes" in (result.error.message if result.error else "")
    assert "profile features.source: stream" in (result.error.message if result.error else "")


def test_pooled_heads_that_pool_frames_keep_them_in_the_main_entry(tmp_path: Path, synth_corpora: Path,
                                                                   tiny_wavlm: Path) -> None:
    """``normalize: utterance_layer_norm`` pools layer-normed frames for a pooled head (gender):
    under ``sweep_frames: bounded`` the main entry still stores the layers such heads read (and
    only those), so the pooled cell runs and scores as in the ``all`` scheme."""
    spec = CellSpec(PROFILE, "tiny_wavlm", "gender", "en", 0)
    results = {}
    for name, features in (("all", {}), ("bounded", {"sweep_frames": "bounded", "source": "auto"})):
        ws = _workspace(tmp_path / name, synth_corpora=synth_corpora, model=tiny_wavlm, features=features,
                        downstreams=("emotion", "gender"), normalize="utterance_layer_norm")
        outcome = run_cell(ws, spec, progress=False, force=True)
        assert outcome.result.status == "ok", outcome.result.error
        results[name] = (outcome.result, _entries(ws))
    (all_, e_all), (bounded, e_b) = results["all"], results["bounded"]
    assert set(e_b) == {"main"} and e_b["main"].meta.frame_layers == bounded.layer.candidates
    assert e_all["main"].meta.frame_layers == [0, 1, 2]
    assert bounded.layer.chosen == all_.layer.chosen
    for m in ("f1_micro", "uar", "accuracy"):
        assert getattr(all_.metrics, m) == pytest.approx(getattr(bounded.metrics, m), abs=TOL)
