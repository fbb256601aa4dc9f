"""Inference time: the required fields on a tiny espeak test set with the real MFCC upstream."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config import Workspace, parse_overrides
from harness.config.plan import CellSpec, plan_cell
from harness.corpora.load import task_splits
from harness.features.extract import ensure_features
from harness.probe.sets import feature_sets_for
from harness.probe.train import make_head
from harness.run.context import CellContext
from harness.run.record import UtteranceTiming
from harness.run.steps.timing import (
    PipelineSpec,
    head_input,
    inference_time_step,
    pick_subsets,
    summarise,
)
from tests.analysis_fixtures import emotion_dataset, one_torch_thread  # noqa: F401


@pytest.fixture
def ctx(workspace_dir: Path, tmp_path: Path) -> CellContext:
    """The context of the smoke profile's emotion cell (mfcc, en) with an untrained head: timing
    needs the head's architecture, not its accuracy."""
    ws = Workspace(workspace_dir, parse_overrides(["profile.analyses.inference_time_warmup=1"]))
    ds = emotion_dataset(tmp_path / "audio", n=8)
    plan = plan_cell(ws, CellSpec("smoke", "mfcc", "emotion", "en", 0))
    splits = task_splits(ds, task=plan.task, source=plan.source)
    store = ensure_features(workspace=ws, card=plan.card, dataset=ds, language="en", progress=False)
    fsets, _ = feature_sets_for(store, splits, plan)(0)
    ds_cfg = plan.downstream
    head = make_head(ds_cfg.head, head_args=ds_cfg.head_args, input_size=fsets["train"].dim,
                     num_classes=len(splits["train"].classes))
    return CellContext(snap=ws.snapshot, plan=plan, dataset=ds, store=store, layer=0, splits=fsets,
                       classes=splits["train"].classes, head=head, metrics={}, device="cpu", progress=False)


def test_timing_records_the_required_fields(ctx: CellContext) -> None:
    out = inference_time_step(ctx).model_dump(exclude_unset=True)  # the section as the result file holds it
    assert out["params"] == 0 and out["params_published"] == 0 and out["head_params"] > 0  # MFCC: no weights
    assert out["device"] == "cpu" and out["device_name"] and out["dtype"] == "float32"
    assert out["torch_threads"] >= 1 and out["batch_size"] == 1 and out["warmup"] == 1
    full, short, long = (out["subsets"][k] for k in ("full", "short", "long"))
    assert full["count"] == 2 and [r["id"] for r in out["per_utterance"]] == ["utt003", "utt007"]
    assert short["count"] == 2 and short["requested"] == 15 and long["count"] == 0  # espeak phrases: 1-3 s
    for key in ("load_s", "upstream_s", "head_s"):
        assert full[key] > 0
    assert full["paper_style_s"] == pytest.approx(full["load_s"] + full["upstream_s"] + full["head_s"])
    assert out["extraction"]["audio_s_per_s"] > 0 and out["extraction"]["audio_s"] > full["audio_s"]
    assert "paper-style" in out["summary"] and "long: no test utterance over the limit" in out["summary"]


def test_subsets_and_paper_style() -> None:
    recs = [UtteranceTiming(id=f"u{i}", audio_s=d, load_s=0.1, upstream_s=1.0, head_s=0.01)
            for i, d in enumerate([1.0, 2.9, 3.0, 16.0, 20.0, 15.0, 0.5])]
    sub = pick_subsets(recs, size=2)
    assert [r.id for r in sub["short"]] == ["u6", "u0"] and [r.id for r in sub["long"]] == ["u4", "u3"]
    assert summarise(sub["long"], word_level=True).paper_style_s == pytest.approx(0.02)
    assert summarise(sub["long"], word_level=False).paper_style_s == pytest.approx(2.22)


def test_head_input_shapes() -> None:
    import torch

    from upstreams.base import UpstreamOutput

    frames = UpstreamOutput(layers=(torch.ones(1, 40, 3), torch.arange(120.0).reshape(1, 40, 3)),
                            lengths=torch.tensor([30]))
    x, lens = head_input([frames, frames], spec=PipelineSpec(1, "frame", "frames", None), frames_per_s=100)
    assert x.shape == (1, 60, 3) and lens.tolist() == [60]
    x, _ = head_input([frames], spec=PipelineSpec(1, "frame", "pooled", 0.05), frames_per_s=100)
    assert torch.allclose(x, torch.arange(15.0).reshape(5, 3).mean(0, keepdim=True))
    words = UpstreamOutput(layers=(torch.randn(4, 1, 3),), lengths=torch.ones(4, dtype=torch.long))
    assert head_input([words], spec=PipelineSpec(0, "word", "pooled", None), frames_per_s=1)[0].shape == (4, 3)
    x, lens = head_input([words], spec=PipelineSpec(0, "word", "frames", None), frames_per_s=1)
    assert x.shape == (1, 4, 3) and lens.tolist() == [4]


def test_word_segments_run_as_one_batch(ctx: CellContext) -> None:
    import soundfile as sf

    from harness.run.steps.timing import _input_batches
    from upstreams.mfcc import MFCCUpstream

    utt = ctx.dataset.utterances[0]
    wav, _ = sf.read(utt.path, dtype="float32")
    batches = _input_batches(MFCCUpstream(), utt, wav, granularity="word", max_chunk_s=30.0, device="cpu")
    assert len(batches) == 1 and batches[0][0].shape[0] == len(utt.words) == len(batches[0][1])
    frame_batches = _input_batches(MFCCUpstream(), utt, wav, granularity="frame", max_chunk_s=0.5, device="cpu")
    assert len(frame_batches) > 1 and sum(int(b[1].sum()) for b in frame_batches) == len(wav)
