"""10% capacity: Integrated Gradients finds planted dimensions; the retrained head keeps the accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.config import Workspace, parse_overrides
from harness.config.plan import CellSpec, plan_cell
from harness.data import Dataset
from harness.metrics import classification_metrics
from harness.probe.heads import BiLSTMHead, LinearHead
from harness.probe.train import make_head, predict, set_seed, train_head
from harness.run.context import CellContext
from harness.run.steps.capacity import (
    capacity_step,
    integrated_gradients,
    item_chunks,
    rank_dimensions,
    relative_change_pct,
    top_k,
)
from tests.analysis_fixtures import (  # noqa: F401
    one_torch_thread,
    planted_frames,
    planted_pooled,
    write_probe_downstreams,
)


def _context(ws: Workspace, downstream: str, splits: dict, classes: tuple[str, ...], tmp: Path) -> CellContext:
    """A cell context as run_classification builds it, with hand-made features and a trained head."""
    plan = plan_cell(ws, CellSpec("smoke", "mfcc", downstream, "en", 0))
    ds = plan.downstream
    set_seed(0)
    head = make_head(ds.head, head_args=ds.head_args, input_size=splits["train"].dim, num_classes=len(classes))
    train_head(head, train=splits["train"], dev=splits["dev"], training=ds.training, seed=0)
    pred, _ = predict(head, splits["test"])
    metrics = classification_metrics(splits["test"].y, pred, num_classes=len(classes))
    return CellContext(snap=ws.snapshot, plan=plan, dataset=Dataset("hand-made", "en", tmp, ()), store=None, layer=0,
                       splits=splits, classes=classes, head=head, metrics=metrics, device="cpu", progress=False)


def test_top_k_and_ranking() -> None:
    assert top_k(768, 0.1) == 76 and top_k(759, 0.1) == 75 and top_k(1024, 0.1) == 102
    assert top_k(10, 0.3) == 3 and top_k(5, 0.1) == 1
    r = rank_dimensions(np.array([0.1, -3.0, 2.0, 0.0]), fraction=0.5)
    assert r["dims"] == [1, 2]
    assert np.isclose(np.linalg.norm(r["normalised"]), 1.0)
    assert r["sorted_abs"] == sorted(r["sorted_abs"], reverse=True)
    assert relative_change_pct(90.0, 100.0) == pytest.approx(-10.0) and relative_change_pct(1.0, 0.0) is None


def test_chunks_respect_the_budget() -> None:
    lengths = np.array([5, 50, 7, 20, 3, 50])
    chunks = item_chunks(lengths, dim=10, budget_elems=1000, max_items=3)
    assert sorted(np.concatenate(chunks).tolist()) == list(range(6))
    for c in chunks:
        assert len(c) <= 3 and (len(c) == 1 or len(c) * lengths[c].max() * 10 <= 1000)


def test_batched_ig_equals_one_item_at_a_time() -> None:
    """Padding and batching do not change an item's attributions (the paper used batch size 1)."""
    data = planted_frames(6, dim=5, informative=(0, 1), seed=3)
    torch.manual_seed(0)
    head = BiLSTMHead(input_size=5, num_classes=3, hidden_size=4, num_layers=1, dropout=0.0, mlp_sizes=[4])
    batched = integrated_gradients(head, data, n_steps=8)
    single = integrated_gradients(head, data, n_steps=8, max_batch_elems=1)
    np.testing.assert_allclose(batched, single, atol=1e-6)
    lin = LinearHead(input_size=5, num_classes=2)  # completeness: sum of attributions = f(x) - f(0)
    x = torch.randn(1, 5)
    pooled = planted_pooled(1, dim=5, informative=[0], seed=0)
    pooled.x, pooled.y = x.numpy(), np.array([1])
    attr = integrated_gradients(lin, pooled, n_steps=50)
    f = torch.log_softmax(lin(x), -1)[0, 1] - torch.log_softmax(lin(torch.zeros_like(x)), -1)[0, 1]
    assert attr.sum() == pytest.approx(float(f.detach()), abs=1e-3)


def test_ig_finds_planted_dimensions_pooled_linear(workspace_dir: Path, tmp_path: Path) -> None:
    write_probe_downstreams(workspace_dir)
    ws = Workspace(workspace_dir, parse_overrides(["profile.analyses.capacity_ig_steps=20"]))
    planted = [3, 11, 22, 37]
    splits = {"train": planted_pooled(300, dim=40, informative=planted, seed=0),
              "dev": planted_pooled(80, dim=40, informative=planted, seed=1),
              "test": planted_pooled(200, dim=40, informative=planted, seed=2)}
    ctx = _context(ws, "probe_linear", splits, ("female", "male"), tmp_path)
    out = capacity_step(ctx).model_dump(exclude_unset=True)  # the section as the result file holds it
    assert out["k"] == 4 and out["D"] == 40 and sorted(out["dims"]) == planted
    assert out["metrics"]["f1_micro"] >= 0.95 * out["full_metrics"]["f1_micro"]
    assert out["ig"] == {**out["ig"], "n_steps": 20, "baseline": "zeros", "items": 200}
    assert len(out["attributions_sorted_abs"]) == 40
    assert out["relative_change_pct"]["f1_micro"] == pytest.approx(
        (out["metrics"]["f1_micro"] - out["full_metrics"]["f1_micro"]) / out["full_metrics"]["f1_micro"] * 100)
    pred = out["predictions"]  # per item, for the leaderboard's interval of the 10% score and its change
    assert pred["ids"] == splits["test"].ids and len(pred["y_pred"]) == 200 and pred["y_true"] == splits["test"].y.tolist()
    assert 100.0 * np.mean(np.array(pred["y_pred"]) == np.array(pred["y_true"])) == pytest.approx(out["metrics"]["f1_micro"])
    assert "speakers" not in pred, "the hand-made dataset names no speaker: none recorded"
    saved = json.loads(Path(out["dims_file"]).read_text())
    assert saved["dims"] == out["dims"] and saved["cell"]["group"] == "gender" and "schema" not in saved
    assert Path(out["dims_file"]) == ws.path("results") / "smoke" / "capacity" / "mfcc" / "probe_linear" / "en" / "seed0.json"
    assert Path(out["plot"]).is_file() and "top 4 of 40" in out["summary"]


def test_ig_finds_planted_dimensions_sequence_bilstm(workspace_dir: Path, tmp_path: Path) -> None:
    write_probe_downstreams(workspace_dir)
    ws = Workspace(workspace_dir, parse_overrides(["profile.analyses.capacity_ig_steps=16"]))
    planted = (2, 9)
    splits = {"train": planted_frames(150, dim=20, informative=planted, seed=0),
              "dev": planted_frames(40, dim=20, informative=planted, seed=1),
              "test": planted_frames(60, dim=20, informative=planted, seed=2)}
    ctx = _context(ws, "probe_bilstm", splits, ("neutral", "sad", "happy"), tmp_path)
    assert ctx.metrics["accuracy"] > 80
    out = capacity_step(ctx).model_dump(exclude_unset=True)  # the section as the result file holds it
    assert out["k"] == 2 and sorted(out["dims"]) == list(planted)
    assert out["metrics"]["accuracy"] >= 0.9 * out["full_metrics"]["accuracy"]
    assert out["training"]["head_params"] < sum(p.numel() for p in ctx.head.parameters())


def test_repeats_retrain_with_their_own_seeds_and_report_the_mean(workspace_dir: Path, tmp_path: Path) -> None:
    """``capacity_repeats`` 3: the same dimensions retrained with seeds 0, 1000, 2000; the first
    retraining is the one a single-repeat run makes; the reported metrics are the mean."""
    write_probe_downstreams(workspace_dir)
    planted = (2, 9)
    splits = {"train": planted_frames(40, dim=20, informative=planted, seed=0),
              "dev": planted_frames(20, dim=20, informative=planted, seed=1),
              "test": planted_frames(60, dim=20, informative=planted, seed=2)}
    outs = {}
    for repeats in (1, 3):
        ws = Workspace(workspace_dir, parse_overrides(["profile.analyses.capacity_ig_steps=8",
                                                       f"profile.analyses.capacity_repeats={repeats}"]))
        ctx = _context(ws, "probe_bilstm", splits, ("neutral", "sad", "happy"), tmp_path)
        outs[repeats] = capacity_step(ctx).model_dump(exclude_unset=True)
    one, three = outs[1], outs[3]
    assert one["seeds"] == [0] and "repeats" not in one
    assert three["seeds"] == [0, 1000, 2000] and [r["seed"] for r in three["repeats"]] == [0, 1000, 2000]
    assert three["dims"] == one["dims"]
    first = three["repeats"][0]
    assert first["predictions"] == one["predictions"] == three["predictions"]
    assert first["metrics"]["f1_micro"] == pytest.approx(one["metrics"]["f1_micro"])
    preds = [tuple(r["predictions"]["y_pred"]) for r in three["repeats"]]
    assert len(set(preds)) > 1, "the repeats' seeds must change the retraining"
    for m in ("f1_micro", "uar", "accuracy"):
        assert three["metrics"][m] == pytest.approx(np.mean([r["metrics"][m] for r in three["repeats"]]))
    assert "mean of 3 retrainings" in three["summary"]


def test_capacity_settings_are_part_of_the_key_of_the_cells_that_run_it(workspace_dir: Path) -> None:
    """Another number of retrainings (or IG steps) reruns the cells whose task has the analysis,
    and only those: the analysis needs the cell's trained head, which is not stored."""
    def key(downstream: str, *overrides: str) -> str:
        return plan_cell(Workspace(workspace_dir, parse_overrides(list(overrides))),
                         CellSpec("smoke", "mfcc", downstream, "en", 0)).key

    assert key("gender") != key("gender", "profile.analyses.capacity_repeats=3")
    assert key("gender") != key("gender", "profile.analyses.capacity_ig_steps=7")
    assert key("gender", 'profile.analyses.capacity_tasks=["emotion"]') == key(
        "gender", 'profile.analyses.capacity_tasks=["emotion"]', "profile.analyses.capacity_repeats=3")
