#!/usr/bin/env python
"""Layer choice under noise: how often each rule's chosen layer changes with the sweep's seed.

The layer sweep (harness.run.steps.sweep) trains a probe on 30% of the training split for every
candidate layer and scores it on the dev split (48 items from 4 speakers in the embedded profile).
This script reruns the sweeps of the multi-layer upstreams of a finished embedded run (features read
from its cache; the upstreams never run) with ``sweep.seed`` = 0 .. S-1, and applies three rules to
each curve:

- ``argmax``: the highest dev micro-F1, exact ties to the lower layer (the harness's rule);
- ``lowest-in-interval``: the lowest layer whose dev score lies inside the 95% interval of the best
  layer's dev score (speaker-clustered, as the sweep records it);
- ``lowest-not-worse``: the lowest layer not significantly worse than the best by a paired
  speaker-clustered bootstrap on the dev items (level 0.05).

A rule is steadier when its choice changes less across sweep seeds (the seed only changes the
training subset and the head's initialisation, nothing a reader would call a different experiment).

    BENCH_CACHE=/path/to/finished/run/.bench/cache python benchmarks/layer_choice.py --seeds 5

The sweep results go to a temporary folder; the script stops when a feature entry had to be
extracted (the cache is not that of a finished run of this commit).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

UPSTREAMS = ("wavlm_base_plus@random", "whisper_tiny_en", "whisper_tiny_en@random")
TASKS = ("gender", "emotion", "intent")


def rules(choice) -> dict[str, int]:  # noqa: ANN001 - a LayerChoice
    from harness.run.steps.sweep import pick_layer
    from harness.stats import paired_difference, sample

    curve = {int(k): v for k, v in choice.curve.items()}
    best = pick_layer(curve)
    out = {"argmax": best}
    low = choice.curve_low[str(best)]
    out["lowest-in-interval"] = min(la for la, v in curve.items() if v >= low)
    units = [i.split("#", 1)[0] for i in choice.dev_ids]

    def s(layer: int):  # noqa: ANN202
        return sample(choice.dev_y_true, choice.dev_predictions[str(layer)], clusters=choice.dev_speakers, units=units)

    out["lowest-not-worse"] = min(la for la in curve
                                  if la == best or not paired_difference([s(best)], [s(la)], metric="f1_micro").significant)
    return out


def _entries() -> set[str]:
    return {str(p) for p in (Path(os.environ["BENCH_CACHE"]) / "features").glob("*/*/*") if not p.name.startswith(".")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / ".bench" / "layer_choice.json")
    args = ap.parse_args()
    if "BENCH_CACHE" not in os.environ:
        raise SystemExit("set BENCH_CACHE to the cache folder of a finished embedded run (its features are read)")
    os.environ["BENCH_RESULTS"] = tempfile.mkdtemp(prefix="layer_choice_")
    from harness.config import Workspace, parse_overrides
    from harness.config.plan import CellSpec
    from harness.run.cell import select_layer

    table: dict[str, dict[str, list[int]]] = {}
    for up in UPSTREAMS:
        for task in TASKS:
            spec = CellSpec(profile="embedded", upstream=up, downstream=task, language="en")
            chosen: dict[str, list[int]] = {}
            for seed in range(args.seeds):
                ws = Workspace(ROOT, parse_overrides([f"sweep.seed={seed}"]))
                before = _entries()
                choice = select_layer(ws, spec, progress=False)
                if _entries() != before:  # (checked after the fact: the extraction has run by then)
                    raise SystemExit(f"{spec.label}: features were extracted: {os.environ['BENCH_CACHE']} is not "
                                     "the cache of a finished embedded run of this commit")
                if choice is None or not choice.curve:
                    raise SystemExit(f"{spec.label}: no sweep")
                for rule, layer in rules(choice).items():
                    chosen.setdefault(rule, []).append(layer)
            table[f"{up} {task}"] = chosen
            print(up, task, json.dumps(chosen), flush=True)
    summary = {}
    for rule in ("argmax", "lowest-in-interval", "lowest-not-worse"):
        lists = [c[rule] for c in table.values()]
        pairs = [(a, b) for c in lists for i, a in enumerate(c) for b in c[i + 1:]]
        summary[rule] = {"cells": len(lists), "cells_all_seeds_agree": sum(len(set(c)) == 1 for c in lists),
                         "seed_pairs_disagreeing": sum(a != b for a, b in pairs) / len(pairs) if pairs else 0.0,
                         "mean_distinct_layers": sum(len(set(c)) for c in lists) / len(lists)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"seeds": args.seeds, "choices": table, "summary": summary}, indent=1))
    print("| rule | cells | all seeds agree | seed pairs disagreeing | distinct layers per cell |")
    print("|---|---|---|---|---|")
    for rule, s in summary.items():
        print(f"| {rule} | {s['cells']} | {s['cells_all_seeds_agree']} | {100 * s['seed_pairs_disagreeing']:.0f}% | "
              f"{s['mean_distinct_layers']:.2f} |")


if __name__ == "__main__":
    main()
