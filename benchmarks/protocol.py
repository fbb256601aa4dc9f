#!/usr/bin/env python
"""The feature cache against the paper's protocol, measured side by side in one run.

One upstream (default: the WavLM-Base+ architecture, random init) on one task (emotion, English,
embedded corpus): a layer sweep + full training + the 10%-capacity retraining + 3 seeds.

- **harness**: the real cells run through the harness (fresh cache and results): the upstream
  runs once over the corpus; every head reads the cache.
- **paper's protocol**: the upstream runs inside every training batch of every training run and
  every evaluation (sweep layers, seeds, 10% retrain, dev evaluation each epoch, test). Its
  upstream work is counted from the harness's own training records (epochs run, items per
  split), and its time is measured by running the protocol for real on a sample of batches
  (upstream forward on the batch's audio + head step) and scaling by the number of batches.

Both sides train the same heads for the same epochs. ``--training paper`` (the default) uses the
paper's epochs and stopping rule for the downstream (emotion: 30 epochs, best dev checkpoint, no
early stopping; the downstream YAML's top-level ``training``) on the profile's head size, so the
count of upstream passes is the paper's; ``--training profile`` keeps the profile's own recipe
(the embedded profile stops early after a few epochs, which shrinks the paper side's count).

Prints upstream passes (utterance forwards), upstream FLOPs and wall time for both, and ratios.

    python benchmarks/protocol.py [--upstream wavlm_base_plus@random] [--downstream emotion] [--seeds 3]
                                  [--training paper|profile]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--upstream", default="wavlm_base_plus@random")
    p.add_argument("--downstream", default="emotion")
    p.add_argument("--language", default="en")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--sample-batches", type=int, default=4, help="batches timed for the paper's protocol")
    p.add_argument("--training", choices=("paper", "profile"), default="paper",
                   help="epochs and stopping rule: the paper's for this downstream, or the embedded profile's")
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    tmp = tempfile.mkdtemp(prefix="bench-protocol-")
    shared_cache = os.environ.get("BENCH_CACHE")
    for var, sub in (("BENCH_RESULTS", "results"), ("BENCH_MODELS", "models"), ("BENCH_CARDS", "cards")):
        os.environ[var] = str(Path(tmp) / sub)
    os.environ["BENCH_CACHE"] = str(Path(tmp) / "cache")

    import torch

    from harness.config import Workspace, parse_overrides
    from harness.config.plan import CellSpec, plan_cell
    from harness.corpora.load import load_task_dataset
    from harness.features.extract import STATS
    from harness.run.cell import run_cell

    sets = [f"profile.seeds={list(range(args.seeds))}", "profile.analyses.inference_time=false"]
    if args.training == "paper":  # the downstream's own (paper) epochs and stopping rule
        paper = Workspace(ROOT).downstream(args.downstream).training
        sets += [f"training.max_epochs={paper.max_epochs}", f"training.patience={paper.patience or 'null'}"]
    ws = Workspace(ROOT, parse_overrides(sets))
    if shared_cache and (Path(shared_cache) / "corpora").is_dir():  # reuse the corpus (not the features)
        (Path(tmp) / "cache").mkdir(parents=True, exist_ok=True)
        os.symlink(Path(shared_cache) / "corpora", Path(tmp) / "cache" / "corpora")
    plan = plan_cell(ws, CellSpec("embedded", args.upstream, args.downstream, args.language, 0))
    dataset = load_task_dataset(ws, plan.profile, plan.source, args.language)

    t0 = time.perf_counter()
    results = [json.loads(run_cell(ws, CellSpec("embedded", args.upstream, args.downstream, args.language, s),
                                   progress=False).path.read_text(encoding="utf-8"))  # the result files
               for s in range(args.seeds)]
    harness_s = time.perf_counter() - t0
    bad = [r for r in results if r.get("status") != "ok"]
    if bad:
        sys.exit(f"a cell did not finish: {json.dumps(bad[0].get('error') or bad[0].get('reason'))[:500]}")
    harness_passes = STATS["passes"]
    feats = results[0]["features"]
    n_utts = sum(results[0]["data"]["utterances"].values())
    harness_forwards = n_utts * harness_passes

    # ---- what the paper's protocol would run: every training and evaluation batch goes through the upstream
    items = results[0]["data"]["items"]
    sweep = results[0]["layer"]
    runs = []  # (label, epochs, train items per epoch)
    sweep_subset = int(sweep.get("subset_size") or 0)
    sweep_epochs = plan.downstream.config.sweep.max_epochs or plan.downstream.training.max_epochs
    for layer in sweep.get("candidates", []):
        runs.append((f"sweep layer {layer}", sweep_epochs, sweep_subset))  # upper bound: sweep records no epochs
    for r in results:
        runs.append((f"seed {r['cell']['seed']}", r["training"]["epochs_run"], items["train"]))
        cap = (r.get("analyses") or {}).get("capacity")
        if cap:
            runs.append((f"10% retrain seed {r['cell']['seed']}", cap["training"]["epochs_run"], items["train"]))
    paper_forwards = sum(ep * (n_train + items["dev"]) for _, ep, n_train in runs) + len(runs) * items["test"]
    if any(r.get("analyses", {}).get("capacity") for r in results):
        paper_forwards += items["test"]  # IG reads the upstream's features of the test set once more

    # ---- time the paper's protocol on a sample of real training batches (upstream in the loop)
    from harness.features.upstream import build_upstream

    upstream = build_upstream(plan.card, language=args.language, workspace=ws)
    flops_per_audio_s = _flops_per_audio_second(upstream, dataset)
    audio_s_per_utt = feats["audio_seconds"] / max(n_utts, 1)
    sample_s, sample_items = _time_protocol_batches(upstream, plan, dataset, batches=args.sample_batches)
    paper_s = sample_s / sample_items * paper_forwards
    harness_flops = flops_per_audio_s * feats["audio_seconds"] * harness_passes
    paper_flops = flops_per_audio_s * audio_s_per_utt * paper_forwards

    print(f"upstream {args.upstream}, downstream {args.downstream} ({args.language}), {args.seeds} seeds, "
          f"layer sweep over {len(sweep.get('candidates', []))} layers, 10% retrain; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs")
    tr = plan.downstream.training
    print(f"training ({args.training} rules): up to {tr.max_epochs} epochs, "
          + (f"patience {tr.patience}" if tr.patience else "no early stopping (best dev checkpoint)")
          + f"; epochs run: {', '.join(str(ep) for _, ep, _ in runs)}")
    print(f"corpus: {n_utts} utterances, {feats['audio_seconds']:.0f} s of audio; training runs: {len(runs)}")
    print()
    print(f"{'':<22}{'utterance forwards':>20}{'upstream TFLOP':>16}{'wall time':>14}")
    print(f"{'harness (cache)':<22}{harness_forwards:>20,}{harness_flops / 1e12:>16.2f}{harness_s:>13.0f}s")
    print(f"{'paper protocol':<22}{paper_forwards:>20,}{paper_flops / 1e12:>16.2f}{paper_s:>13.0f}s"
          f"  (timed on {sample_items} utterances in {args.sample_batches} batches, scaled)")
    print(f"{'ratio':<22}{paper_forwards / max(harness_forwards, 1):>19.0f}x{paper_flops / max(harness_flops, 1):>15.0f}x"
          f"{paper_s / harness_s:>13.1f}x")


def _flops_per_audio_second(upstream, dataset) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from harness.data import load_audio

    utts = sorted(dataset.split("dev"), key=lambda u: u.id)[:5]
    total, seconds = 0, 0.0
    with torch.inference_mode():
        for u in utts:
            w = load_audio(u.path, sample_rate=16000)
            with FlopCounterMode(display=False) as c:
                upstream(torch.from_numpy(w)[None], torch.tensor([len(w)]))
            total += c.get_total_flops()
            seconds += len(w) / 16000
    return total / seconds


def _time_protocol_batches(upstream, plan, dataset, *, batches: int) -> tuple[float, int]:
    """Seconds and utterances of ``batches`` real protocol steps: load audio, upstream forward
    (the chosen layer), head forward/backward on the batch."""
    import numpy as np
    import torch

    from harness.data import load_audio
    from harness.probe.train import make_head

    ds = plan.downstream
    train = dataset.split("train")
    rng = np.random.default_rng(0)
    head = make_head(ds.head, head_args=ds.head_args, input_size=int(upstream.hidden_size), num_classes=4,
                     input_frame_rate_hz=16000 / int(upstream.downsample_rate))
    opt = torch.optim.Adam(head.parameters(), lr=ds.training.lr)
    t0, n = time.perf_counter(), 0
    for _ in range(batches):
        idx = rng.choice(len(train), size=ds.training.batch_size, replace=False)
        wavs = [load_audio(train[i].path, sample_rate=16000) for i in idx]
        lens = torch.tensor([len(w) for w in wavs])
        x = torch.zeros(len(wavs), int(lens.max()))
        for i, w in enumerate(wavs):
            x[i, : len(w)] = torch.from_numpy(w)
        with torch.no_grad():
            out = upstream(x, lens)
        feats = out.layers[len(out.layers) // 2]
        loss = head(feats, out.lengths).logsumexp(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        n += len(idx)
    return time.perf_counter() - t0, n


if __name__ == "__main__":
    main()
