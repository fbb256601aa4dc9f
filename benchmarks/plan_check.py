#!/usr/bin/env python
"""The plan checked by measurement at small scale (not a test: a table for BENCHMARKS.md).

On this machine (CPU), for the feature stage of two (upstream, corpus) pairs:

- MFCC over the synthetic corpus scaled to a few hours (``--hours``);
- the random-init WavLM-Base+ (the architecture control: same FLOPs as the released weights) on
  a subset, the English corpus at the embedded profile's size (about 14 minutes of audio).

For each: the plan's projected cache bytes (:func:`harness.matrix.plan.make_plan`, the entries of
:mod:`harness.features.entries`) against the bytes of the entry written; the projected RAM peak
(the plan's terms over a measured process floor: a child that imports the same modules and
extracts nothing) against the extraction's peak RSS; the projected wall time against the measured
one. Wall time: the plan projects FLOPs (GPU-hours at a GPU's declared throughput); on this CPU
the throughput is calibrated on a run about six times smaller of the same model (the smoke
profile's English corpus), so the check is that the time follows the plan's FLOP count from one
corpus size to the other (the fixed cost outside the extraction loop, building the model, is
carried over as measured). An a-priori row divides the FLOPs by ``EFFICIENCY`` x the fp32 matmul
rate measured just before (``benchmarks/extraction.py``'s figure). MFCC: seconds per audio second
calibrated on a run ten times smaller (it has no FLOPs to count).

Every extraction runs in a child process of its own (its peak RSS is its own), with the harness's
allocator setting (``harness/allocator.py``) at its default. Then ``--alloc-pairs`` pairs of the
WavLM-Base+ extraction with the setting on (``BENCH_MMAP_THRESHOLD=on``) and off, interleaved:
peak RSS of each, wall time of each and the ratio per pair (``--alloc-only``: these alone).

    flock /tmp/heavy.lock nice -n 10 python benchmarks/plan_check.py [--hours 3] [--alloc-pairs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EFFICIENCY = 0.69  # harness extraction / fp32 matmul rate on this CPU (BENCHMARKS.md, extraction efficiency)
SYNTH_S_PER_UTTERANCE = 2.8


def synth_options(hours: float) -> dict[str, Any]:
    """Synthetic-corpus options for about ``hours`` of English audio (48 speakers, 32/8/8)."""
    per_speaker = max(int(hours * 3600 / SYNTH_S_PER_UTTERANCE / 48), 2)
    return {"speakers_per_language": 48, "utterances_per_speaker": per_speaker, "split_speakers": [32, 8, 8],
            "long_per_test_split": 4, "short_per_test_split": 4, "seed": 0}


class _PlainDumper(yaml.SafeDumper):
    """Shared values written out in full: the harness's loader refuses anchors and aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def matmul_gflops(*, n: int = 2048, seconds: float = 3.0) -> float:
    """fp32 matmul rate of torch on this CPU (as benchmarks/extraction.py measures it)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def make_workspace(folder: Path, *, hours: float, tf_synth: str = "embedded") -> Path:
    """A copy of the repository's YAML with three profiles: ``pc_big`` (MFCC, ``hours``), ``pc_small``
    (MFCC, a tenth of it: the calibration) and ``pc_tf`` (the random-init WavLM-Base+ on the English
    corpus at the ``tf_synth`` profile's size)."""
    root = folder / "ws"
    root.mkdir(parents=True)
    shutil.copy(ROOT / "benchmark.yaml", root / "benchmark.yaml")
    for sub in ("tasks", "downstreams", "reference"):
        shutil.copytree(ROOT / sub, root / sub)
    shutil.copytree(ROOT / "upstreams" / "cards", root / "upstreams" / "cards")
    raw = yaml.safe_load((root / "benchmark.yaml").read_text())
    common = {"data": "synth", "downstreams": ["gender", "emotion"], "languages": ["en"], "seeds": [0]}
    raw["profiles"]["pc_big"] = {**common, "upstreams": ["mfcc"], "synth": synth_options(hours)}
    raw["profiles"]["pc_small"] = {**common, "upstreams": ["mfcc"], "synth": synth_options(hours / 10)}
    raw["profiles"]["pc_tf"] = {**common, "upstreams": ["wavlm_base_plus@random"],
                                "synth": raw["profiles"][tf_synth]["synth"]}
    raw["profiles"]["pc_tf_small"] = {**common, "upstreams": ["wavlm_base_plus@random"],
                                      "synth": raw["profiles"]["smoke"]["synth"]}
    raw["profiles"]["pc_large"] = {**common, "upstreams": ["wavlm_large@random"],
                                   "synth": raw["profiles"]["smoke"]["synth"]}
    (root / "benchmark.yaml").write_text(yaml.dump(raw, Dumper=_PlainDumper, sort_keys=False))
    return root


def child(root: str, profile: str, upstream: str, mode: str) -> None:
    """In a fresh process: ``extract`` the pair's entry as the matrix does (prints seconds, bytes and
    peak RSS as JSON), or only import what extraction imports (``base``: the process floor)."""
    from harness.config import Workspace
    from harness.config.plan import CellSpec, resolve_cell
    from harness.features.build import features_for
    from harness.features.upstream import build_upstream  # noqa: F401 - the floor imports it too
    from harness.run.inputs import dataset_for

    ws = Workspace(Path(root))
    plan = resolve_cell(ws.snapshot, CellSpec(profile, upstream, "emotion", "en", 0))
    dataset = dataset_for(ws.snapshot, plan)
    if upstream != "mfcc":
        import transformers  # noqa: F401 - imported by the adapter during extraction
    out: dict[str, Any] = {}
    if mode == "extract":
        t0 = time.perf_counter()
        store = features_for(ws.snapshot, plan, dataset, device="cpu", progress=False)
        out = {"seconds": time.perf_counter() - t0, "bytes": store.bytes_on_disk,
               "audio_s": store.meta.audio_seconds, "extract_seconds": store.meta.extract_seconds,
               "forward_seconds": store.meta.forward_seconds}
    from harness import allocator

    out["maxrss"] = peak_rss_bytes()
    out["allocator"] = allocator._applied
    print(json.dumps(out))


def peak_rss_bytes() -> int:
    """This process's peak RSS since it started: ``VmHWM`` of /proc/self/status.

    Not ``getrusage(RUSAGE_SELF).ru_maxrss``: Linux carries the parent's high-water mark into a
    child that was forked (or vforked, as ``subprocess`` does) and then exec'd, so a child's
    ru_maxrss is at least the parent's RSS at the fork; here that was the parent's 900 MB after
    generating a 2 h corpus, read as the floor of a child that never reached it."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # not Linux: an upper bound


def run_child(root: Path, profile: str, upstream: str, mode: str, *, mmap_threshold: str | None = None) -> dict[str, Any]:
    """``mmap_threshold``: the child's ``BENCH_MMAP_THRESHOLD`` (None: unset, the harness's default: off)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if mmap_threshold is not None:
        env["BENCH_MMAP_THRESHOLD"] = mmap_threshold
    proc = subprocess.run([sys.executable, __file__, "--child", str(root), profile, upstream, mode],
                          capture_output=True, text=True, env=env, check=False)
    if proc.returncode:
        raise SystemExit(f"child {profile} {upstream} {mode} failed:\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def planned_pair(root: Path, profile: str) -> Any:
    from harness.config import Workspace
    from harness.matrix.plan import make_plan
    from harness.matrix.select import cells_of

    ws = Workspace(root)
    _, prof = ws.profile(profile)
    plan = make_plan(ws.snapshot, cells_of(ws, profile, prof), budget_bytes=None)
    assert len(plan.pairs) == 1, plan.pairs
    return plan.pairs[0]


def generate(root: Path, profile: str) -> float:
    from harness.config import Workspace
    from harness.synth import load_synth_corpus

    ws = Workspace(root)
    _, prof = ws.profile(profile)
    t0 = time.perf_counter()
    load_synth_corpus(root=ws.path("cache") / "corpora" / "synth", language="en", options=prof.synth.model_dump())
    return time.perf_counter() - t0


def row(name: str, projected: float, measured: float, unit: str) -> str:
    err = (projected - measured) / measured if measured else float("nan")
    flag = "ok" if abs(err) <= 0.20 else "OFF"
    scale = {"GB": 1e9, "MB": 1e6, "s": 1.0}[unit]
    return (f"{name:<44} {projected / scale:>12.3f} {measured / scale:>12.3f} {unit:<3} {err:>+8.1%}  {flag}")


def allocator_pairs(root: Path, pairs: int) -> list[str]:
    """The WavLM-Base+ extraction (``pc_tf``) with the allocator setting on and off
    (``harness/allocator.py``), interleaved (on-off, off-on, ...: drift in the machine's load falls
    on both), each in a fresh child: peak RSS, wall time and the time ratio on/off per pair."""
    from harness.matrix.plan import PROCESS_BASE_BYTES

    floor = run_child(root, "pc_tf", "wavlm_base_plus@random", "base")["maxrss"]
    projected = {}
    for setting in ("on", "off"):  # the plan counts what the setting leaves in the process
        os.environ["BENCH_MMAP_THRESHOLD"] = setting
        tf = planned_pair(root, "pc_tf")
        projected[setting] = floor + tf.stages[0].ram_bytes - PROCESS_BASE_BYTES
    os.environ.pop("BENCH_MMAP_THRESHOLD")
    lines = [f"allocator on/off, wavlm_base_plus@random over {tf.audio.seconds / 60:.1f} min "
             f"({tf.audio.utterances} utterances); plan's peak RSS {projected['on'] / 1e6:.0f} MB on, "
             f"{projected['off'] / 1e6:.0f} MB off (floor {floor / 1e6:.0f} MB)",
             f"{'pair':<5} {'on: peak MB':>12} {'off: peak MB':>13} {'on: s':>8} {'off: s':>8} {'on/off time':>12} "
             f"{'on: plan err':>13} {'off: plan err':>14}"]
    from harness.config import Workspace

    features = Workspace(root).path("cache") / "features"
    ratios = []

    def extract(setting: str) -> dict[str, Any]:
        shutil.rmtree(features, ignore_errors=True)  # each run extracts (a cache hit builds nothing)
        return run_child(root, "pc_tf", "wavlm_base_plus@random", "extract",
                         mmap_threshold=setting)

    for i in range(pairs):
        order = ("on", "off") if i % 2 == 0 else ("off", "on")
        got = {k: extract(k) for k in order}
        assert got["on"]["allocator"].startswith("mallopt(") and got["off"]["allocator"].startswith("BENCH_MMAP"), got
        ratios.append(got["on"]["seconds"] / got["off"]["seconds"])
        lines.append(f"{i + 1:<5} {got['on']['maxrss'] / 1e6:>12.0f} {got['off']['maxrss'] / 1e6:>13.0f} "
                     f"{got['on']['seconds']:>8.1f} {got['off']['seconds']:>8.1f} {ratios[-1]:>12.3f} "
                     f"{(projected['on'] - got['on']['maxrss']) / got['on']['maxrss']:>+13.1%} "
                     f"{(projected['off'] - got['off']['maxrss']) / got['off']['maxrss']:>+14.1%}")
    lines.append(f"time on/off: mean {sum(ratios) / len(ratios):.3f}, range {min(ratios):.3f} to {max(ratios):.3f}")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hours", type=float, default=3.0)
    p.add_argument("--tf-synth", default="embedded", choices=("embedded", "smoke"),
                   help="the transformer's subset: the English corpus at this profile's size")
    p.add_argument("--keep", help="workspace folder to keep (default: a temporary one, removed)")
    p.add_argument("--alloc-pairs", type=int, default=3,
                   help="then this many interleaved pairs of the WavLM-Base+ extraction with the allocator "
                        "setting on (BENCH_MMAP_THRESHOLD=on) and off (the default): peak RSS and wall time")
    p.add_argument("--alloc-only", action="store_true", help="only the allocator pairs (no table)")
    p.add_argument("--child", nargs=4, metavar=("ROOT", "PROFILE", "UPSTREAM", "MODE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.child:
        child(*args.child)
        return
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="plan_check"))
    for var in ("BENCH_CACHE", "BENCH_RESULTS", "BENCH_MODELS", "BENCH_CARDS", "BENCH_LEADERBOARDS", "BENCH_ROOT",
                "BENCH_MMAP_THRESHOLD"):
        os.environ.pop(var, None)
    try:
        root = make_workspace(folder, hours=args.hours, tf_synth=args.tf_synth)
        if args.alloc_only:
            generate(root, "pc_tf")
            print("\n".join(allocator_pairs(root, args.alloc_pairs)))
            return
        lines = [f"machine: {os.cpu_count()} CPUs; synthetic English corpus scaled to {args.hours:g} h"]
        for prof in ("pc_small", "pc_big", "pc_tf_small", "pc_tf", "pc_large"):
            lines.append(f"generated {prof}'s corpus in {generate(root, prof):.0f} s (not timed below)")
        from harness.matrix.plan import PROCESS_BASE_BYTES

        table = [f"{'quantity':<44} {'projected':>12} {'measured':>12}     {'error':>8}"]
        # MFCC: calibrate on a tenth, project the full size
        small_pair = planned_pair(root, "pc_small")
        small = run_child(root, "pc_small", "mfcc", "extract")
        s_per_audio_s = small["seconds"] / small["audio_s"]
        pair = planned_pair(root, "pc_big")
        base = run_child(root, "pc_big", "mfcc", "base")
        big = run_child(root, "pc_big", "mfcc", "extract")
        hours = pair.audio.seconds / 3600
        lines.append(f"MFCC: {hours:.2f} h measured from the corpus ({pair.audio.utterances} utterances); "
                     f"calibration run {small_pair.audio.seconds / 3600:.2f} h: {s_per_audio_s * 1000:.2f} ms "
                     "per audio second")
        table.append(row(f"mfcc, {hours:.2f} h: cache bytes", pair.frame_peak_bytes + pair.entries.pooled_bytes,
                         big["bytes"], "GB"))
        table.append(row(f"mfcc, {hours:.2f} h: extraction wall time", s_per_audio_s * pair.audio.seconds,
                         big["seconds"], "s"))
        ram = base["maxrss"] + pair.stages[0].ram_bytes - PROCESS_BASE_BYTES
        table.append(row(f"mfcc, {hours:.2f} h: extraction peak RSS", ram, big["maxrss"], "MB"))
        # the random-init transformer on a subset: calibrated on a smaller one (the CPU's throughput
        # on this model), projected from the plan's FLOPs
        tf = planned_pair(root, "pc_tf")
        tf_small = planned_pair(root, "pc_tf_small")
        rate = matmul_gflops()
        tf_base = run_child(root, "pc_tf", "wavlm_base_plus@random", "base")
        tf_cal = run_child(root, "pc_tf_small", "wavlm_base_plus@random", "extract")
        tf_run = run_child(root, "pc_tf", "wavlm_base_plus@random", "extract")
        tf_min = tf.audio.seconds / 60
        fixed_s = tf_cal["seconds"] - tf_cal["extract_seconds"]  # building the model, indexing the corpus
        s_per_flop = tf_cal["extract_seconds"] / tf_small.stages[0].flops
        lines.append(f"WavLM-Base+ random init: {tf_min:.1f} min of audio, {tf.arch.flops_per_audio_s / 1e9:.1f} GFLOP "
                     f"per audio second ({tf.arch.flops_method}); fp32 matmul {rate:.0f} GFLOP/s measured before")
        lines.append(f"  calibration on {tf_small.audio.seconds / 60:.1f} min ({tf_small.audio.utterances} utterances): "
                     f"{1 / s_per_flop / 1e9:.0f} GFLOP/s through the extraction loop "
                     f"({tf_small.stages[0].flops / tf_cal['forward_seconds'] / 1e9:.0f} in the forward alone, "
                     f"{tf_small.stages[0].flops / tf_cal['forward_seconds'] / 1e9 / rate:.0%} of the matmul rate), "
                     f"{fixed_s:.1f} s outside the loop (building the model, indexing)")
        lines.append(f"  activations counted for the longest chunk ({tf.audio.longest_chunk_s:.1f} s): "
                     f"{tf.arch.activation_bytes / 1e6:.0f} MB ({tf.arch.activation_method})")
        table.append(row(f"wavlm_base_plus@random, {tf_min:.1f} min: cache bytes",
                         tf.frame_peak_bytes + tf.entries.pooled_bytes, tf_run["bytes"], "GB"))
        table.append(row(f"wavlm_base_plus@random, {tf_min:.1f} min: wall time",
                         fixed_s + tf.stages[0].flops * s_per_flop, tf_run["seconds"], "s"))
        table.append(row("  (a priori: FLOPs / (69% x matmul rate))",
                         tf.stages[0].flops / (EFFICIENCY * rate * 1e9), tf_run["seconds"], "s"))
        tf_ram = tf_base["maxrss"] + tf.stages[0].ram_bytes - PROCESS_BASE_BYTES
        table.append(row(f"wavlm_base_plus@random, {tf_min:.1f} min: peak RSS", tf_ram, tf_run["maxrss"], "MB"))
        table.append(row("  (the calibration run, 2.3 min)",
                         tf_base["maxrss"] + tf_small.stages[0].ram_bytes - PROCESS_BASE_BYTES, tf_cal["maxrss"], "MB"))
        # out of sample: a model 3.4 x larger, at the throughput calibrated on the base model
        lg = planned_pair(root, "pc_large")
        lg_run = run_child(root, "pc_large", "wavlm_large@random", "extract")
        lg_min = lg.audio.seconds / 60
        lines.append(f"WavLM-Large random init (out of sample: nothing calibrated on it): {lg_min:.1f} min of audio, "
                     f"{lg.arch.flops_per_audio_s / 1e9:.1f} GFLOP per audio second, activations "
                     f"{lg.arch.activation_bytes / 1e6:.0f} MB ({lg.arch.activation_method})")
        table.append(row(f"wavlm_large@random, {lg_min:.1f} min: cache bytes",
                         lg.frame_peak_bytes + lg.entries.pooled_bytes, lg_run["bytes"], "GB"))
        table.append(row(f"wavlm_large@random, {lg_min:.1f} min: wall time (base's rate)",
                         fixed_s + lg.stages[0].flops * s_per_flop, lg_run["seconds"], "s"))
        table.append(row(f"wavlm_large@random, {lg_min:.1f} min: peak RSS",
                         tf_base["maxrss"] + lg.stages[0].ram_bytes - PROCESS_BASE_BYTES, lg_run["maxrss"], "MB"))
        lines.append(f"process floor (imports only): MFCC {base['maxrss'] / 1e6:.0f} MB, WavLM "
                     f"{tf_base['maxrss'] / 1e6:.0f} MB")
        lines.append(f"fp32 matmul again at the end: {matmul_gflops():.0f} GFLOP/s")
        print("\n".join(lines + [""] + table), flush=True)
        if args.alloc_pairs:
            print("\n".join(["", *allocator_pairs(root, args.alloc_pairs)]))
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
