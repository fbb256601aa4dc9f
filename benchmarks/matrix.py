#!/usr/bin/env python
"""Wall time and peak memory of `bench matrix`, and its upstream passes against the paper's protocol.

Runs `bench matrix --profile P` in a fresh workspace folder (a subprocess, as a user would), samples
the resident memory of its whole process tree (the matrix process and its worker processes), and
afterwards reads the result files to count upstream passes: the harness's (one per upstream and
corpus, from the cache entries) against the paper's protocol for the same cells (the upstream run
for every item of every training epoch, dev evaluation, test and 10% retraining).

    python benchmarks/matrix.py --profile smoke
    python benchmarks/matrix.py --profile embedded
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tree_processes(pid: int) -> tuple[int, int, list[tuple[int, int, str]]]:
    """(sum of RSS, sum of PSS, [(pid, PSS, role)]) of ``pid`` and all its descendants."""
    rss = pss = 0
    procs: list[tuple[int, int, str]] = []
    stack, seen = [pid], set()
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            mine = 0
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1]) * 1024
                    elif line.startswith("Pss:"):
                        mine = int(line.split()[1]) * 1024
            pss += mine
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            role = "matrix" if "harness.cli" in cmd else "worker" if "multiprocessing" in cmd else cmd[:40]
            procs.append((p, mine, role))
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    stack += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return rss, pss, procs


def run(profile: str, folder: Path, extra: list[str]) -> tuple[float, dict[str, int], int]:
    env = {**os.environ, "BENCH_CACHE": str(folder / "cache"), "BENCH_RESULTS": str(folder / "results"),
           "BENCH_MODELS": str(folder / "models"), "BENCH_CARDS": str(folder / "cards"),
           "BENCH_LEADERBOARDS": str(folder / "leaderboards"), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "harness.cli", "--root", str(ROOT), "matrix", "--profile", profile, "--no-progress",
           *extra]
    peak = {"rss": 0, "pss": 0, "procs": 0}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            rss, pss, procs = tree_processes(proc.pid)
            if pss > peak["pss"]:
                peak.update(pss=pss, procs=len(procs), at=time.perf_counter() - t0,
                            who=", ".join(f"{role} {m / 2**30:.2f}" for _, m, role in sorted(procs, key=lambda x: -x[1])))
            peak["rss"] = max(peak["rss"], rss)
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    done.set()
    sampler.join()
    seconds = time.perf_counter() - t0
    lines = out.strip().splitlines()
    summary = [line for line in lines if line.startswith("matrix ")]
    print(summary[-1] if proc.returncode == 0 and summary else "\n".join(lines[-20:]) or "(no output)")
    return seconds, peak, proc.returncode


def passes(folder: Path, profile: str) -> tuple[int, int, int]:
    """(harness utterance forwards, paper-protocol utterance forwards, cells) from the result files."""
    harness = 0
    for meta in (folder / "cache" / "features").rglob("meta.json"):
        harness += len(json.loads(meta.read_text())["ids"])
    paper, cells = 0, 0
    for path in (folder / "results" / profile).rglob("seed*.json"):
        r = json.loads(path.read_text())
        if r.get("status") != "ok" or "training" not in r:
            continue
        cells += 1
        items = r["data"]["items"]
        runs = [r["training"]["epochs_run"]]
        cap = (r.get("analyses") or {}).get("capacity")
        if cap:
            runs.append(cap["training"]["epochs_run"])
        paper += sum(ep * (items["train"] + items["dev"]) + items["test"] for ep in runs)
        layer = r.get("layer") or {}
        if layer.get("candidates") and r["cell"]["seed"] == 0:  # the sweep, once per upstream/downstream/language
            ep = r["training"]["epochs_run"]
            paper += len(layer["candidates"]) * ep * (int(layer.get("subset_size") or 0) + items["dev"])
    return harness, paper, cells


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="smoke")
    p.add_argument("--keep", help="folder to run in (kept); default: a temporary folder")
    args, extra = p.parse_known_args()
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix=f"bench-matrix-{args.profile}-"))
    folder.mkdir(parents=True, exist_ok=True)
    seconds, peak, rc = run(args.profile, folder, extra)
    harness, paper, cells = passes(folder, args.profile)
    print(f"profile {args.profile}: exit {rc}, wall {seconds / 60:.1f} min, {os.cpu_count()} CPUs; peak memory of "
          f"the process tree: {peak['pss'] / 2**30:.2f} GiB PSS ({peak['procs']} processes at that moment), "
          f"sum of RSS {peak['rss'] / 2**30:.2f} GiB (counts shared library pages once per process)")
    print(f"at the peak ({peak.get('at', 0) / 60:.1f} min in), GiB PSS per process: {peak.get('who', '-')}")
    print(f"upstream utterance forwards: harness {harness:,} (cache entries) vs paper's protocol {paper:,} "
          f"for the same {cells} trained cells: {paper / max(harness, 1):.0f}x fewer")
    print(f"results in {folder}")


if __name__ == "__main__":
    main()
