"""SUPERB's layer modes: ``weighted_sum`` (softmax weights over every layer, learned with the head)
and ``mean``, checked against hand computations, run from the feature cache only, recorded in the
result, and compared with the best single layer in one table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.config import Workspace, parse_overrides
from harness.config.plan import CellSpec, plan_cell
from harness.corpora.load import task_splits
from harness.features.extract import STATS, ensure_features
from harness.probe.heads import BiLSTMHead, LayerMix, LayerMixHead, LinearHead
from harness.probe.layers import frame_layers_for_profile
from harness.probe.sets import build_feature_sets
from harness.probe.train import FeatureSet, concat_sequences, predict, train_head
from harness.run import inputs as cell_inputs
from harness.run.cell import run_cell
from harness.run.record import read_result
from harness.run.steps.timing import PipelineSpec, head_input
from harness.schema import Training
from tests.analysis_fixtures import (  # noqa: F401
    ProjectedMFCC,
    emotion_dataset,
    one_torch_thread,
    write_probe_downstreams,
    write_tiny3_card,
)
from upstreams.base import UpstreamOutput


# --------------------------------------------------------------------------- the mix, by hand
def _three_layers() -> torch.Tensor:
    """[B=2, L=3, D=2] with distinct, easy numbers."""
    return torch.tensor([[[1.0, 2.0], [3.0, 5.0], [8.0, -4.0]],
                         [[0.0, 1.0], [2.0, 2.0], [-1.0, 6.0]]])


def test_mean_is_the_arithmetic_mean_of_the_layers() -> None:
    x = _three_layers()
    mix = LayerMix(num_layers=3, mode="mean")
    expected = [[(1 + 3 + 8) / 3, (2 + 5 - 4) / 3], [(0 + 2 - 1) / 3, (1 + 2 + 6) / 3]]
    assert torch.allclose(mix(x), torch.tensor(expected))
    assert list(mix.parameters()) == []  # nothing to learn
    assert torch.allclose(mix.weights(), torch.full((3,), 1 / 3))


def test_weighted_sum_with_fixed_logits_is_the_softmax_weighted_sum() -> None:
    x = _three_layers()
    mix = LayerMix(num_layers=3, mode="weighted_sum")
    assert torch.allclose(mix.weights(), torch.full((3,), 1 / 3))  # zero logits: equal weights (s3prl's init)
    logits = [0.5, -1.0, 2.0]
    with torch.no_grad():
        mix.logits_L.copy_(torch.tensor(logits))
    e = np.exp(logits)
    w = e / e.sum()  # by hand: softmax
    expected = np.einsum("bld,l->bd", x.numpy(), w)
    assert np.allclose(mix(x).detach().numpy(), expected, atol=1e-6)
    assert np.allclose(mix.weights().detach().numpy(), w) and abs(float(mix.weights().detach().sum()) - 1) < 1e-6
    # frames [B, T, L, D] mix the same way, frame by frame
    frames = torch.stack([x, 2 * x], dim=1)
    assert torch.allclose(mix(frames)[:, 1], 2 * mix(x), atol=1e-5)
    # the logits receive gradients
    mix(x).sum().backward()
    assert mix.logits_L.grad is not None and float(mix.logits_L.grad.abs().sum()) > 0


def test_mix_refuses_a_wrong_layer_count() -> None:
    with pytest.raises(ValueError, match="2 layers on axis -2"):
        LayerMix(num_layers=3, mode="mean")(torch.zeros(4, 2, 5))
    with pytest.raises(ValueError, match="expected one of"):
        LayerMix(num_layers=3, mode="max")  # type: ignore[arg-type]


def _planted_layers(n: int, *, seed: int, signal_layer: int = 2, num_layers: int = 3, dim: int = 6) -> FeatureSet:
    """Pooled [N, L, D]: only ``signal_layer`` separates the two classes; the others are noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, num_layers, dim))
    x[:, signal_layer, :2] += ((2 * y - 1) * 1.5)[:, None]
    return FeatureSet("pooled", x.astype(np.float16), y.astype(np.int64), [f"u{seed}_{i}" for i in range(n)])


def test_weights_train_with_the_head_towards_the_informative_layer() -> None:
    train, dev = _planted_layers(200, seed=1), _planted_layers(100, seed=2)
    assert train.layers == 3 and train.dim == 6
    torch.manual_seed(0)
    head = LayerMixHead(LinearHead(input_size=6, num_classes=2), num_layers=3, mode="weighted_sum")
    before = head.mix.weights().detach().clone()
    res = train_head(head, train=train, dev=dev, training=Training(lr=0.05, batch_size=32, max_epochs=30), seed=0)
    after = head.mix.weights().detach()
    assert not torch.allclose(before, after)  # the weights changed in training
    assert int(after.argmax()) == 2 and float(after[2]) > 0.4  # towards the only informative layer
    assert res.best_dev_f1 > 80


def test_frame_head_reads_stacked_layers() -> None:
    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(int(rng.integers(3, 7)), 3, 4)).astype(np.float16) for _ in range(10)]
    x, off = concat_sequences(seqs, dim=(3, 4))
    fs = FeatureSet("frames", x, rng.integers(0, 2, 10).astype(np.int64), [f"f{i}" for i in range(10)], offsets=off)
    batch, lengths = fs.batch([0, 1, 2])
    assert batch.shape == (3, int(lengths.max()), 3, 4) and fs.layers == 3
    mean, std = fs.stats()
    assert mean.shape == (3, 4) and std.shape == (3, 4)  # each layer standardised on its own
    head = LayerMixHead(BiLSTMHead(input_size=4, num_classes=2, hidden_size=4, num_layers=1, mlp_sizes=[4]),
                        num_layers=3, mode="mean")
    pred, logits = predict(head, fs)
    assert pred.shape == (10,) and logits.shape == (10, 2)


def test_timing_head_input_stacks_every_layer() -> None:
    layers = tuple(torch.full((1, 5, 4), float(i)) for i in range(3))
    out = UpstreamOutput(layers=layers, lengths=torch.tensor([5]))
    seq, _ = head_input([out], spec=PipelineSpec(layer=None, granularity="frame", features="frames",
                                                 pool_window_s=None), frames_per_s=100.0)
    assert seq.shape == (1, 5, 3, 4) and float(seq[0, 0, 2, 0]) == 2.0
    pooled, _ = head_input([out], spec=PipelineSpec(layer=None, granularity="frame", features="pooled",
                                                    pool_window_s=None), frames_per_s=100.0)
    assert pooled.shape == (1, 3, 4)


# --------------------------------------------------------------------------- from the cache
@pytest.fixture
def tiny3(workspace_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A 3-layer upstream whose features (every layer's frames) are in the cache."""
    write_probe_downstreams(workspace_dir)
    write_tiny3_card(workspace_dir)
    ds = emotion_dataset(tmp_path / "audio", n=16)
    monkeypatch.setattr(cell_inputs, "load_task_dataset", lambda *a, **k: ds)
    ws = Workspace(workspace_dir)
    up = ProjectedMFCC()
    store = ensure_features(workspace=ws, card=ws.card("tiny3"), dataset=ds, language="en", upstream=up,
                            progress=False)
    return workspace_dir, ds, up, store


def test_stacked_sets_equal_the_single_layer_sets(tiny3) -> None:
    root, ds, _, store = tiny3
    plan = plan_cell(Workspace(root), CellSpec("smoke", "tiny3", "probe_bilstm", "en", 0))
    splits = task_splits(ds, task=plan.task, source=plan.source)
    for features in ("pooled", "frames"):
        stacked, _ = build_feature_sets(store, splits, layer=(0, 1, 2), features=features, pool_window_s=None,
                                        word_items=False, standardize=True)
        for layer in range(3):
            single, _ = build_feature_sets(store, splits, layer=layer, features=features, pool_window_s=None,
                                           word_items=False, standardize=True)
            for name in ("train", "test"):
                a, _ = stacked[name].batch(list(range(len(single[name]))))
                b, _ = single[name].batch(list(range(len(single[name]))))
                assert torch.allclose(a[..., layer, :], b, atol=1e-5), (features, layer, name)


def _mode_ws(root: Path, mode: str, *extra: str) -> Workspace:
    return Workspace(root, parse_overrides([f"profile.layer={mode}", "profile.analyses.inference_time=false", *extra]))


@pytest.mark.parametrize("downstream", ["probe_linear", "probe_bilstm"])
def test_cells_run_weighted_sum_from_the_cache_and_record_the_weights(tiny3, downstream: str) -> None:
    root, _, up, _ = tiny3
    calls, passes = up.forward_calls, STATS["passes"]
    ws = _mode_ws(root, "weighted_sum")
    outcome = run_cell(ws, CellSpec("smoke", "tiny3", downstream, "en", 0), progress=False)
    res = outcome.result
    assert res.status == "ok", res.error
    assert up.forward_calls == calls and STATS["passes"] == passes  # no upstream pass: every layer was cached
    layer = res.layer
    assert layer is not None and layer.mode == "weighted_sum" and layer.chosen is None and layer.num_layers == 3
    assert layer.weights is not None and len(layer.weights) == 3 and abs(sum(layer.weights) - 1) < 1e-5
    assert max(layer.weights) - min(layer.weights) > 1e-4  # learned, not the initial equal weights
    assert layer.weights_plot and Path(layer.weights_plot).is_file()
    stored = read_result(outcome.path)  # the record reads back with the new fields
    assert stored is not None and stored.layer is not None and stored.layer.weights == layer.weights
    if downstream == "probe_linear":  # the smoke profile's capacity analysis runs on gender: over stacked layers
        cap = res.analyses.capacity if res.analyses is not None else None
        assert cap is not None and cap.D == 16 and cap.layer is None and cap.metrics is not None


def test_mean_cell_and_a_different_key(tiny3) -> None:
    root, _, _, _ = tiny3
    spec = CellSpec("smoke", "tiny3", "probe_linear", "en", 0)
    res = run_cell(_mode_ws(root, "mean", "profile.analyses.capacity=false"), spec, progress=False).result
    assert res.status == "ok", res.error
    assert res.layer is not None and res.layer.mode == "mean" and res.layer.weights == pytest.approx([1 / 3] * 3)
    sweep_key = plan_cell(Workspace(root), spec).key
    assert res.key != sweep_key  # a layer mode is another cell result, never mistaken for the sweep's


def test_weights_are_plotted_beside_the_baseline_sweep_curve(tiny3) -> None:
    root, _, _, _ = tiny3
    spec = CellSpec("smoke", "tiny3", "probe_linear", "en", 0)
    sweep = run_cell(Workspace(root, parse_overrides(["profile.analyses.capacity=false"])), spec, progress=False).result
    assert sweep.status == "ok" and sweep.layer is not None and sweep.layer.curve
    res = run_cell(_mode_ws(root, "weighted_sum", "profile.baseline_profile=smoke",
                            "profile.analyses.capacity=false"), spec, progress=False).result
    assert res.status == "ok", res.error
    assert res.layer is not None and res.layer.curve_from is not None
    assert res.layer.curve_from.endswith("sweeps/tiny3/probe_linear/en.json")
    assert res.layer.weights_plot and Path(res.layer.weights_plot).is_file()


def test_old_records_without_the_new_fields_still_read(tmp_path: Path) -> None:
    from harness.run.record import parse_result

    rec = parse_result({"schema_version": 2, "status": "ok", "key": "k",
                        "cell": {"profile": "p", "upstream": "u", "downstream": "d", "language": "en", "seed": 0},
                        "layer": {"chosen": 3, "rule": "sweep"}}, where="test")
    assert rec.layer is not None and rec.layer.chosen == 3 and rec.layer.mode is None and rec.layer.weights is None


# --------------------------------------------------------------------------- profile and table
def test_superb_profile_mirrors_embedded_with_weighted_sum(workspace_dir: Path) -> None:
    ws = Workspace(workspace_dir)
    snap = ws.snapshot
    _, superb = snap.profile("superb")
    _, embedded = snap.profile("embedded")
    assert superb.layer == "weighted_sum" and superb.baseline_profile == "embedded"
    assert superb.synth == embedded.synth  # same corpus, so the same feature cache entries
    emo = snap.resolve_downstream("emotion", profile="superb")
    emo_embedded = snap.resolve_downstream("emotion", profile="embedded")
    assert emo.config.layer == "weighted_sum" and emo_embedded.config.layer == "sweep"
    assert emo.head_args == emo_embedded.head_args and emo.training == emo_embedded.training  # the embedded recipe
    assert snap.resolve_downstream("emotion_discrimination", profile="superb").config.layer == "sweep"  # trains nothing
    assert frame_layers_for_profile(snap, profile=superb, num_layers=5) == [0, 1, 2, 3, 4]
    assert frame_layers_for_profile(snap, profile=embedded, num_layers=5) == [1, 3]
    plan = plan_cell(ws, CellSpec("superb", "mfcc", "gender", "en", 0))
    assert plan.layer.kind == "weighted_sum"


def test_bad_baseline_profile_is_a_clear_error(workspace_dir: Path) -> None:
    from harness.config.validate import validate

    text = (workspace_dir / "benchmark.yaml").read_text().replace("baseline_profile: embedded",
                                                                  "baseline_profile: embeded")
    (workspace_dir / "benchmark.yaml").write_text(text)
    problems = [p for p in validate(Workspace(workspace_dir).snapshot) if p.key == "profiles.superb.baseline_profile"]
    assert len(problems) == 1 and "embedded" in str(problems[0].hint)


def test_comparison_table_puts_single_layer_beside_weighted_sum(tiny3) -> None:
    from harness.report.write import write_leaderboards

    root, _, _, _ = tiny3
    spec_base = CellSpec("smoke", "tiny3", "probe_linear", "en", 0)
    off = "profile.analyses.capacity=false"
    assert run_cell(Workspace(root, parse_overrides([off])), spec_base, progress=False).result.status == "ok"
    # the layer-mode profile: a copy of smoke with weighted_sum and smoke as its baseline
    bench = root / "benchmark.yaml"
    text = bench.read_text().replace("  smoke:\n", "  smoke_ws:\n    layer: weighted_sum\n    baseline_profile: smoke\n"
                                     "    upstreams: [mfcc]\n    downstreams: [gender]\n\n  smoke:\n", 1)
    bench.write_text(text)
    ws = Workspace(root, parse_overrides([off]))
    res = run_cell(ws, CellSpec("smoke_ws", "tiny3", "probe_linear", "en", 0), progress=False).result
    assert res.status == "ok", res.error
    out = write_leaderboards(ws, profile="smoke_ws", timestamp=False, n_boot=50)
    table = json.loads((out / "layer_modes.json").read_text())
    row = next(r for r in table["rows"] if r["upstream"].startswith("tiny3"))
    base = read_result(run_cell(Workspace(root, parse_overrides([off])), spec_base, progress=False).path)
    assert base is not None and base.metrics is not None and res.metrics is not None and base.layer is not None
    single, mode, diff = (row["cells"][f"gender.en.{k}"] for k in ("single", "mode", "diff"))
    assert single["value"] == pytest.approx(base.metrics.f1_micro) and single["text"] == f"L{base.layer.chosen}"
    assert mode["value"] == pytest.approx(res.metrics.f1_micro)
    assert diff["value"] == pytest.approx(res.metrics.f1_micro - base.metrics.f1_micro)
    assert "layer_modes.md" in (out / "index.md").read_text()
    md = (out / "layer_modes.md").read_text()
    assert f"(L{base.layer.chosen})" in md and "gender en Δ" in md
    page = (out / "index.html").read_text()
    assert f"({'L' + str(base.layer.chosen)})" in page and "weighted sum" in page
