#!/usr/bin/env python
"""Extraction efficiency, measured side by side in one run (not a test: numbers, not assertions).

Prints, for this machine:
- the fp32 matrix-multiply rate (GFLOP/s) of torch on 2048 x 2048 matrices;
- for the WavLM-Base+ and WavLM-Large architectures (random init: same FLOPs as the released
  weights): the harness's extraction over a set of real utterances (real-time factor, achieved
  GFLOP/s and its share of the matmul rate), next to a plain batch-1 transformers forward
  (``model(wav, output_hidden_states=True)`` under ``torch.no_grad``) over the same utterances;
- how much of the harness's time is the upstream's forward (the rest: reading audio, pooling,
  float16 conversion, writing and checksumming the entry);
- the time of a second run, which hits the feature cache.

``--batch-s`` compares batching choices side by side: each value is a harness row
(``auto`` = what the harness does on this device: one utterance per forward on CPU, 64 s of
padded audio per batch on a GPU; see ``harness.extract.batch_seconds``).

FLOPs are counted once per utterance with ``torch.utils.flop_counter.FlopCounterMode`` (matmuls
and convolutions), so the ratio is "useful model FLOPs per second / matmul peak".

    python benchmarks/extraction.py [--utterances 40] [--device cpu] [--models wavlm_base_plus,wavlm_large]
                                    [--batch-s auto,64] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def matmul_gflops(*, device: str, n: int = 2048, seconds: float = 3.0) -> float:
    import torch

    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    for _ in range(3):
        a @ b
    _sync(device)
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    _sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def count_flops(module, wavs) -> float:
    """Total forward FLOPs of ``module`` over the utterances ``wavs`` (one at a time)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    total = 0
    with torch.inference_mode():
        for w in wavs:
            x = torch.from_numpy(w)[None]
            with FlopCounterMode(display=False) as counter:
                module(x, torch.tensor([len(w)]))
            total += counter.get_total_flops()
    return float(total)


def plain_batch1_seconds(hf_model, wavs, *, device: str) -> float:
    """A plain transformers forward per utterance, the way a one-off script extracts features."""
    import torch

    t0 = time.perf_counter()
    with torch.no_grad():
        for w in wavs:
            hf_model(torch.from_numpy(w)[None].to(device), output_hidden_states=True)
    _sync(device)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--utterances", type=int, default=40)
    p.add_argument("--device", default="cpu")
    p.add_argument("--models", default="wavlm_base_plus,wavlm_large")
    p.add_argument("--batch-s", default="auto",
                   help="comma-separated extraction batch sizes in padded audio seconds, or auto")
    p.add_argument("--repeat", type=int, default=3, help="best of N for each timing (the machine is noisy)")
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch

    from harness.config import Workspace
    from harness.features.extract import STATS, batch_seconds, ensure_features
    from harness.features.upstream import build_upstream
    from harness.synth import load_synth_corpus

    ws = Workspace(ROOT)
    _, prof = ws.profile("embedded")
    cache = ws.path("cache")
    corpus = load_synth_corpus(root=cache / "corpora" / "synth", language="en", options=prof.synth.model_dump())
    utts = sorted(corpus.split("test") + corpus.split("dev"), key=lambda u: u.id)[: args.utterances]
    dataset = corpus.subset(utts)
    from harness.data import load_audio

    wavs = [load_audio(u.path, sample_rate=16000) for u in utts]
    audio_s = sum(len(w) for w in wavs) / 16000
    peak = matmul_gflops(device=args.device)
    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"device {args.device}")
    print(f"fp32 matmul (2048^3): {peak:.1f} GFLOP/s")
    print(f"audio: {len(wavs)} utterances, {audio_s:.1f} s (synthetic corpus, en, dev+test)")
    print()
    header = f"{'model':<18}{'how':<44}{'seconds':>9}{'RTF':>8}{'GFLOP/s':>9}{'of peak':>9}"
    print(header)
    print("-" * len(header))
    sizes = [None if b.strip() == "auto" else float(b) for b in args.batch_s.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["BENCH_CACHE"] = tmp
        ws_tmp = Workspace(ROOT)
        for name in args.models.split(","):
            card = ws_tmp.card(f"{name}@random")
            module = build_upstream(card, workspace=ws_tmp, device=args.device)
            flops = count_flops(module, wavs)
            hf = module.model
            plain = float("inf")
            best: dict[float | None, tuple[float, float]] = {b: (float("inf"), 0.0) for b in sizes}
            for _ in range(args.repeat):  # interleaved, best of N: every row sees the same machine state
                plain = min(plain, plain_batch1_seconds(hf, wavs, device=args.device))
                for b in sizes:
                    for p in (ws_tmp.path("cache") / "features").glob(f"{card.name}/*/*"):
                        shutil.rmtree(p)
                    passes = STATS["passes"]
                    t0 = time.perf_counter()
                    store = ensure_features(workspace=ws_tmp, card=card, dataset=dataset, language="en",
                                            frame_layers="all", device=args.device, batch_s=b, progress=False,
                                            upstream=module)
                    secs = time.perf_counter() - t0
                    if secs < best[b][0]:
                        best[b] = (secs, store.meta.forward_seconds)
            t0 = time.perf_counter()
            ensure_features(workspace=ws_tmp, card=card, dataset=dataset, language="en", frame_layers="all",
                            device=args.device, progress=False)
            second = time.perf_counter() - t0
            if STATS["passes"] != passes + 1:
                print("warning: the second run did not hit the cache")
            rows = [("plain batch-1 forward", plain)]
            for b in sizes:
                resolved = batch_seconds(b, args.device)
                how = f"{resolved:g} s batches" if resolved else "one utterance per forward"
                if getattr(module, "per_utterance", False) and resolved:
                    how += " (conv per utterance)"
                label = f"harness{' (auto)' if b is None else ''}, {how}"
                secs, fwd = best[b]
                rows.append((label, secs))
                rows.append((f"  of which the upstream forward ({fwd / secs:.0%})", fwd))
            for label, secs in rows:
                rate = flops / secs / 1e9
                print(f"{name:<18}{label:<44}{secs:>9.2f}{secs / audio_s:>8.3f}{rate:>9.1f}{rate / peak:>9.0%}")
            print(f"{name:<18}{'harness, second run (cache hit)':<44}{second:>9.2f}{second / audio_s:>8.4f}"
                  f"{'':>9}{'':>9}")
            print(f"{'':<18}{flops / audio_s / 1e9:.1f} GFLOP per audio second")
    peak_end = matmul_gflops(device=args.device)
    print(f"\nfp32 matmul again at the end: {peak_end:.1f} GFLOP/s (ratios above use the first figure; "
          "a large difference means the machine was busy)")


if __name__ == "__main__":
    main()
