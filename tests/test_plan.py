"""``bench plan`` and the disk budget: the paper's matrix projected offline, the FLOP count checked
against torch's counter on a real-format model, peak-not-sum scheduling, and a budget too small
for a stage refused before any work starts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.cli import main
from harness.config.plan import CellSpec
from harness.errors import BenchError
from harness.features.entries import upstream_activation_bytes, upstream_flops
from harness.features.extract import STATS
from harness.matrix import run_matrix
from harness.matrix.plan import Runtime, gpu, job_resources, make_plan, parse_size, plan_for_profile
from harness.matrix.select import cells_of
from tests.matrix_fixtures import seed_corpus, workspace

GB = 10**9


def no_corpora(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every real corpus root points at an empty folder: the plan must use the published sizes."""
    for var in ("LIBRISPEECH_ROOT", "IEMOCAP_ROOT", "SLURP_ROOT", "COMMONVOICE_FR_ROOT", "CAFE_ROOT",
                "LAHJOITA_PUHETTA_ROOT", "FESC_ROOT", "HEALTHCALL30_ROOT"):
        monkeypatch.setenv(var, str(tmp_path / "absent" / var))


def test_parse_size() -> None:
    assert parse_size("500GB") == 500 * GB and parse_size("1.5TB") == 1_500 * GB
    assert parse_size("2GiB") == 2 * 2**30 and parse_size("1000") == 1000
    with pytest.raises(BenchError, match="expected a size such as 500GB"):
        parse_size("five hundred gigs")


def test_paper_plan_runs_offline_and_fits_500gb_by_streaming(workspace_dir: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """No corpus and no weights here: the paper's matrix is planned from the published sizes and the
    cards' architectures. Under issue 17's runtime it fits 500 GB, the pairs whose frames do not fit
    stream (with the reason), and the GPU-hours scale with the declared throughput (H200 / A100).
    Under this checkout's runtime (every candidate layer's frames, no eviction) it does not fit."""
    no_corpora(monkeypatch, tmp_path)
    ws = workspace(workspace_dir)
    before = STATS["passes"]
    plan = plan_for_profile(ws, profile="paper", budget_bytes=500 * GB, runtime=Runtime.bounded())
    assert STATS["passes"] == before and not (workspace_dir / ".bench" / "cache" / "features").exists()
    assert plan.fits and plan.peak_bytes <= 500 * GB
    corpora = {p.corpus for p in plan.pairs}
    assert {"librispeech", "iemocap", "slurp", "commonvoice_fr", "cafe", "lahjoita_puhetta", "fesc",
            "healthcall30"} <= corpora
    assert all(p.audio.source == "published" for p in plan.pairs)
    hours = {p.corpus: p.audio.seconds / 3600 for p in plan.pairs}
    assert hours["lahjoita_puhetta"] == pytest.approx(490.0) and hours["librispeech"] == pytest.approx(374.4)
    big = plan.pair("wavlm_large", "lahjoita_puhetta")
    assert big is not None and big.mode == "stream" and "budget" in big.why
    assert plan.pair("mfcc", "cafe").mode == "cache"  # a small corpus's frames fit
    # a large model's pass over LibriSpeech train-clean-360 + dev + test: ~35 GFLOP per audio second
    lib = plan.pair("wavlm_large", "librispeech")
    assert 25e9 < lib.arch.flops_per_audio_s < 45e9
    h200 = sum(v[1] for v in plan.stage_totals().values())
    a100 = sum(v[1] for v in plan.with_gpu(gpu(ws.snapshot, "a100")).stage_totals().values())
    assert h200 > 1 and a100 == pytest.approx(h200 * 989 / 312)
    # the peak is not the sum: frames are evicted pair by pair
    assert plan.peak_bytes < plan.pooled_bytes + sum(p.frame_peak_bytes for p in plan.pairs)

    checkout = plan_for_profile(ws, profile="paper", budget_bytes=500 * GB, runtime=Runtime("all_candidates", False,
                                                                                             False, "today"))
    assert not checkout.fits and checkout.peak_bytes > 1000 * GB


def test_bench_plan_prints_the_projection(workspace_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    no_corpora(monkeypatch, tmp_path)
    code = main(["--root", str(workspace_dir), "plan", "--profile", "paper", "--disk-budget", "200GB",
                 "--runtime", "bounded", "--only", "upstream=wavlm_large|mfcc"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "budget: 200.0 GB -> fits" in out and "total on a100:" in out and "total on h200:" in out
    assert "lahjoita_puhetta*" in out and "stream:" in out and "<- peak" in out
    assert main(["--root", str(workspace_dir), "plan", "--profile", "paper", "--disk-budget", "1GB",
                 "--only", "upstream=wavlm_large"]) == 3
    assert "DOES NOT FIT" in capsys.readouterr().out


def test_flop_count_matches_torch_counter_on_a_real_format_model() -> None:
    """The architecture formula against torch's FlopCounterMode on a small wav2vec2 (real transformers
    module, the card's conv geometry) over 4 s of audio: within 10%."""
    import torch
    import transformers as T
    from torch.utils.flop_counter import FlopCounterMode

    arch = {"hidden_size": 64, "num_hidden_layers": 3, "num_attention_heads": 4, "intermediate_size": 256,
            "conv_dim": [32] * 7, "conv_stride": [5, 2, 2, 2, 2, 2, 2], "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
            "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 4}
    # eager attention: torch's counter does not count the CPU flash-attention kernel sdpa would use
    model = T.Wav2Vec2Model._from_config(T.Wav2Vec2Config(**arch), attn_implementation="eager").eval()
    seconds = 4.0
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.randn(1, int(16000 * seconds)), output_hidden_states=True)
    measured = counter.get_total_flops() / seconds
    params = sum(p.numel() for p in model.parameters())
    counted, how = upstream_flops(adapter="hf", args={"arch": {"config_class": "Wav2Vec2Config", **arch}},
                                  num_layers=4, hidden_size=64, frame_rate_hz=50.0, params=params,
                                  granularity="frame", mean_utterance_s=seconds)
    assert counted == pytest.approx(measured, rel=0.10), (counted, measured, how)
    assert counter.get_flop_counts()["Global"].get(torch.ops.aten.bmm, 0) > 0  # attention was counted


_ACTIVATION_PROBE = """
import json, sys, torch, transformers as T
arch = json.loads(sys.argv[1]); seconds = float(sys.argv[2])
def hwm():
    return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
model = T.Wav2Vec2Model._from_config(T.Wav2Vec2Config(**arch), attn_implementation="eager").eval()
x = torch.randn(1, int(16000 * seconds))
with torch.inference_mode():
    model(torch.randn(1, 16000), output_hidden_states=True)  # first-call buffers (thread pools, kernels)
before = hwm()
with torch.inference_mode():
    model(x, output_hidden_states=True)
print(hwm() - before)
"""


_SMALL = {"num_hidden_layers": 3, "num_attention_heads": 4, "intermediate_size": 256,
          "conv_stride": [5, 2, 2, 2, 2, 2, 2], "conv_kernel": [10, 3, 3, 3, 3, 2, 2]}


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak RSS read from /proc (Linux)")
@pytest.mark.parametrize(("arch", "peak"), [
    # the released models' 512-channel first convolution, a narrow encoder: the front end's peak
    ({**_SMALL, "hidden_size": 64, "conv_dim": [512] + [64] * 6, "num_conv_pos_embeddings": 16,
      "num_conv_pos_embedding_groups": 4}, "front end"),
    # a narrow front end, 8 heads over 1,500 frames: the attention scores' peak
    ({**_SMALL, "hidden_size": 256, "num_attention_heads": 8, "conv_dim": [64] * 7, "num_conv_pos_embeddings": 16,
      "num_conv_pos_embedding_groups": 4}, "encoder"),
], ids=["front_end", "encoder"])
def test_activation_count_matches_the_peak_rss_of_a_real_forward(arch: dict, peak: str) -> None:
    """The plan's activation term against the measured growth of the peak RSS (VmHWM, in a fresh
    process) over one 30 s inference forward of a real transformers wav2vec2, built so that each of
    the counted moments is the peak once: within 30% (the allocator's timing moves the measured
    peak by up to 20% run to run), and the count names the right moment."""
    import json
    import subprocess
    import sys

    seconds = 30.0
    out = subprocess.run([sys.executable, "-c", _ACTIVATION_PROBE, json.dumps(arch), str(seconds)],
                         capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    measured = int(out.stdout.strip().splitlines()[-1])
    counted, how = upstream_activation_bytes(adapter="hf", args={"arch": {"config_class": "Wav2Vec2Config", **arch}},
                                             num_layers=4, hidden_size=arch["hidden_size"], frame_rate_hz=50.0,
                                             granularity="frame",
                                             chunk_s=seconds)
    assert counted > 100e6 and how.endswith(f"the peak is the {peak}'s"), how
    assert counted == pytest.approx(measured, rel=0.30), (counted, measured, how)


def test_budget_too_small_is_refused_before_any_work(workspace_dir: Path, synth_corpora: Path) -> None:
    """A budget below the first stage's cache bytes: run_matrix raises with what to change, and no
    cache entry, no result and no upstream pass happened."""
    seed_corpus(workspace_dir / ".bench" / "cache", synth_corpora)
    passes = STATS["passes"]
    with pytest.raises(BenchError) as err:
        run_matrix(workspace(workspace_dir), profile="smoke", progress=False, disk_budget=10_000, leaderboard=False)
    text = str(err.value)
    assert "over --disk-budget 10.0 kB" in text and "raise --disk-budget to at least" in text and "--only" in text
    assert STATS["passes"] == passes
    assert not (workspace_dir / ".bench" / "cache" / "features").exists()
    assert not list((workspace_dir / ".bench" / "results").rglob("*.json"))


def test_budget_that_fits_lets_the_matrix_start(workspace_dir: Path, synth_corpora: Path) -> None:
    """The same check does not refuse a budget the plan fits (the smoke cells of MFCC on gender)."""
    seed_corpus(workspace_dir / ".bench" / "cache", synth_corpora)
    ws = workspace(workspace_dir)
    _, prof = ws.profile("smoke")
    cells = cells_of(ws, "smoke", prof, only={"upstream": {"mfcc"}, "downstream": {"gender"}})
    plan = make_plan(ws.snapshot, cells, budget_bytes=None)
    assert plan.pairs and plan.pairs[0].audio.source == "measured"
    out = run_matrix(ws, profile="smoke", only={"upstream": {"mfcc"}, "downstream": {"gender"}}, progress=False,
                     leaderboard=False, disk_budget=plan.peak_bytes + 10_000, workers=1)
    assert out.counts.get("ok") == 1
    entry = next((workspace_dir / ".bench" / "cache" / "features" / "mfcc").rglob("COMPLETE")).parent
    written = sum(f.stat().st_size for f in entry.iterdir())
    assert written == pytest.approx(plan.peak_bytes, rel=0.2)


def test_resource_requests_follow_the_plan(workspace_dir: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """GPU for extraction and for a streamed pair's heads, one CPU for heads on cached features."""
    no_corpora(monkeypatch, tmp_path)
    ws = workspace(workspace_dir)
    plan = plan_for_profile(ws, profile="paper", only={"upstream": {"wavlm_large"}, "language": {"fi"}},
                            budget_bytes=150 * GB, runtime=Runtime.bounded())
    from harness.config.plan import resolve_cell

    streamed = resolve_cell(ws.snapshot, CellSpec("paper", "wavlm_large", "topic", "fi", 0))
    cached = resolve_cell(ws.snapshot, CellSpec("paper", "wavlm_large", "emotion", "fi", 0))
    assert plan.mode_of(streamed) == "stream" and plan.mode_of(cached) == "cache"
    assert job_resources(plan, "features", None, gpu=True) == {"num_cpus": 1, "num_gpus": 1}
    assert job_resources(plan, "cells", streamed, gpu=True) == {"num_cpus": 1, "num_gpus": 1}
    assert job_resources(plan, "cells", cached, gpu=True) == {"num_cpus": 1, "num_gpus": 0}
    assert job_resources(None, "cells", cached, gpu=True) == {"num_cpus": 1, "num_gpus": 1}
