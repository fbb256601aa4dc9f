#!/usr/bin/env python
"""Measured coverage of the leaderboard's 95% intervals: item bootstrap against speaker-clustered.

Runs the same cells on K independent synthetic corpora (the embedded recipe, synth seeds
``first_seed .. first_seed + K - 1``; each corpus in a workspace folder of its own, through
``bench matrix`` as a user would) and asks, for each method and cell, how often the interval of
one corpus covers the mean over the K corpora (the score the recipe gives in expectation). A
method whose nominal 95% interval is honest covers it in about 95% of the corpora.

    python benchmarks/coverage.py --corpora 20 --out .bench/coverage
    python benchmarks/coverage.py --corpora 20 --split 16,4,8 --out .bench/coverage_28   # more test speakers

Cells (English): MFCC gender and emotion, and one small model (Speech2vec, trained by the
harness on each corpus: word items, the case where items are least independent) on gender. Both
seeds of the embedded profile. Capacity, inference time and the layer sweep are off (none of
these cells has layers to choose). The corpus folders are kept under ``--out`` so that a rerun
only computes the corpora that are missing; the report is written to ``--out/coverage.json`` and
printed as a markdown table.

Caveat: the target is the mean over the K corpora, itself estimated (its standard error is the
spread over corpora / sqrt(K)); with K = 20 a coverage of 18/20 = 90% has a binomial 95% interval
of about [68%, 99%].
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CELLS = (("mfcc", "gender"), ("mfcc", "emotion"), ("speech2vec", "gender"))
# (name, speaker-clustered, exact floor): the item bootstrap the leaderboards used first, the
# clustered bootstrap alone, and the leaderboard's interval today (clustered, with the floor)
METHODS = (("item", False, False), ("clustered_bootstrap", True, False), ("clustered", True, True))
NAMES = {"item": "item bootstrap (first)", "clustered_bootstrap": "speaker-clustered, bootstrap alone",
         "clustered": "speaker-clustered with the exact floor (now)"}
METRIC = "f1_micro"


def corpus_folder(out: Path, synth_seed: int) -> Path:
    return out / f"corpus{synth_seed:03d}"


def run_corpus(folder: Path, *, synth_seed: int, split: tuple[int, int, int], seeds: list[int], workers: int) -> float:
    """``bench matrix`` on one synthetic corpus (skipped cells already finished); seconds taken."""
    env = {**os.environ, "BENCH_CACHE": str(folder / "cache"), "BENCH_RESULTS": str(folder / "results"),
           "BENCH_MODELS": str(folder / "models"), "BENCH_CARDS": str(folder / "cards"),
           "BENCH_LEADERBOARDS": str(folder / "leaderboards"), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    upstreams = "|".join(sorted({u for u, _ in CELLS}))
    downstreams = "|".join(sorted({d for _, d in CELLS}))
    sets = [f"profile.synth.seed={synth_seed}", f"profile.synth.split_speakers=[{','.join(map(str, split))}]",
            f"profile.synth.speakers_per_language={sum(split)}", f"profile.seeds=[{','.join(map(str, seeds))}]",
            "profile.analyses.capacity=false", "profile.analyses.inference_time=false",
            "profile.analyses.overlap=false", "profile.analyses.umap=false"]
    cmd = [sys.executable, "-m", "harness.cli", "--root", str(ROOT), "matrix", "--profile", "embedded",
           "--only", f"upstream={upstreams},downstream={downstreams},language=en", "--no-progress",
           "--no-leaderboard", "--workers", str(workers), *(a for s in sets for a in ("--set", s))]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"corpus {synth_seed}: bench matrix failed ({proc.returncode}):\n{proc.stdout[-3000:]}"
                         f"\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0


def cell_samples(folder: Path, upstream: str, task: str) -> list:
    """The per-seed bootstrap samples of one cell of one corpus (speakers included)."""
    from harness.report.records import item_sample
    from harness.run.record import read_result

    out = []
    for path in sorted((folder / "results" / "embedded" / upstream / task / "en").glob("seed*.json")):
        record = read_result(path)
        if record is None or record.status != "ok":
            raise SystemExit(f"{path}: not an ok result ({record.status if record else 'unreadable'})")
        sample = item_sample(record.predictions)
        if sample is None or not sample.clustered:
            raise SystemExit(f"{path}: no per-item predictions with speakers")
        out.append(sample)
    return out


def intervals(samples: list, *, n_boot: int) -> dict[str, tuple[float, float, float]]:
    from harness.stats import clustered_ci

    out = {}
    for method, clustered, floor in METHODS:
        iv = clustered_ci(samples, metric=METRIC, n_boot=n_boot, clustered=clustered, floor=floor)
        out[method] = (iv.value, iv.low, iv.high)
    return out


def coverage_report(rows: dict[str, list[dict[str, tuple[float, float, float]]]]) -> dict[str, dict[str, float]]:
    """Per cell and method: coverage of the mean over corpora, mean width, the mean and its spread."""
    import numpy as np

    report: dict[str, dict[str, float]] = {}
    for cell, per_corpus in rows.items():
        values = np.array([c["item"][0] for c in per_corpus])
        target = float(values.mean())
        entry: dict[str, float] = {"corpora": len(per_corpus), "mean_over_corpora": target,
                                   "sd_over_corpora": float(values.std(ddof=1)) if len(values) > 1 else float("nan")}
        for method in NAMES:
            lows = np.array([c[method][1] for c in per_corpus])
            highs = np.array([c[method][2] for c in per_corpus])
            entry[f"{method}_coverage"] = float(np.mean((lows <= target) & (target <= highs)))
            entry[f"{method}_mean_width"] = float(np.mean(highs - lows))
        report[cell] = entry
    return report


def markdown(report: dict[str, dict[str, float]], *, split: tuple[int, int, int]) -> str:
    lines = [f"Split {split[0]}/{split[1]}/{split[2]} speakers (train/dev/test), English, micro-F1, 2 seeds per "
             "interval, target = mean over the corpora.", "",
             "| method | cell | nominal | measured coverage | corpora | mean width (points) | mean (sd) over corpora |",
             "|---|---|---|---|---|---|---|"]
    for cell, e in report.items():
        for method, name in NAMES.items():
            lines.append(f"| {name} | {cell} | 95% | {100 * e[f'{method}_coverage']:.0f}% "
                         f"({round(e[f'{method}_coverage'] * e['corpora'])}/{e['corpora']:.0f}) | {e['corpora']:.0f} | "
                         f"{e[f'{method}_mean_width']:.1f} | {e['mean_over_corpora']:.1f} ({e['sd_over_corpora']:.1f}) |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpora", type=int, default=20, help="K independent synthetic corpora (default 20)")
    ap.add_argument("--first-seed", type=int, default=1000, help="synth seed of the first corpus (the embedded "
                    "profile's own corpus is seed 0)")
    ap.add_argument("--split", default="16,4,4", help="train,dev,test speakers per language (embedded: 16,4,4)")
    ap.add_argument("--seeds", default="0,1", help="probe seeds per cell (embedded: 0,1)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=ROOT / ".bench" / "coverage")
    args = ap.parse_args()
    split = tuple(int(x) for x in args.split.split(","))
    if len(split) != 3:
        raise SystemExit(f"--split: expected train,dev,test speakers such as 16,4,4, got {args.split!r}")
    seeds = [int(x) for x in args.seeds.split(",")]
    rows: dict[str, list[dict[str, tuple[float, float, float]]]] = {f"{u} {t}": [] for u, t in CELLS}
    t_all = time.perf_counter()
    for k in range(args.corpora):
        synth_seed = args.first_seed + k
        folder = corpus_folder(args.out, synth_seed)
        seconds = run_corpus(folder, synth_seed=synth_seed, split=split, seeds=seeds,  # type: ignore[arg-type]
                             workers=args.workers)
        for u, t in CELLS:
            rows[f"{u} {t}"].append(intervals(cell_samples(folder, u, t), n_boot=args.n_boot))
        print(f"corpus {synth_seed}: {seconds:.0f} s", flush=True)
    report = coverage_report(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "coverage.json").write_text(json.dumps({"split": split, "seeds": seeds, "first_seed": args.first_seed,
                                                        "corpora": args.corpora, "metric": METRIC, "cells": report,
                                                        "per_corpus": rows}, indent=1), encoding="utf-8")
    print(markdown(report, split=split))  # type: ignore[arg-type]
    print(f"total {time.perf_counter() - t_all:.0f} s")


if __name__ == "__main__":
    main()
