#!/usr/bin/env python
"""How far the scores move between two environments: two fresh runs of ``bench matrix``, compared.

Not a test: it runs the same selection of a profile twice, each in a fresh workspace (its own
cache, results, small models and leaderboards: nothing is shared, the synthetic corpus included)
and in its own environment, then compares

- the leaderboard CSVs, every column but the timing ones (Table IX, ``inference_full_s``): each
  score that moved is listed with both values and both printed intervals, and whether each value
  lies inside the other run's interval;
- the result records: per cell, the chosen layer and the test predictions (identical or not);
- the feature cache: per entry, whether the stored float16 features are byte-identical, and the
  largest difference when they are not (how far the upstream's forward moved).

The default environments are this machine as it is (A) against an imitation of an AVX2-only CPU
(B: ``ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2``), i.e. the
spread a reader on another machine may see. ``--env-b ''`` runs the same environment twice: the
same-machine reproducibility check (every score must be identical; ``--expect-identical`` makes
the exit status say so).

    python benchmarks/spread.py --out /tmp/spread                                # the whole embedded profile
    python benchmarks/spread.py --out /tmp/spread --workers 2 \\
        --only 'upstream=mfcc|siamese|wavlm_base_plus@random,downstream=gender|emotion|intent,language=en'
    python benchmarks/spread.py --out /tmp/same --env-b '' --expect-identical     # run-to-run, one machine
    python benchmarks/spread.py --out /tmp/spread --compare-only                  # compare finished runs again

Writes ``<out>/a`` and ``<out>/b`` (the workspaces; an existing one is reused, a run resumes),
``<out>/spread.md`` (the report) and ``<out>/spread.json``. Exit status: 0, or 1 when a run
failed, a score moved outside an interval (``--strict``) or anything differs (``--expect-identical``).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
AVX2_ONLY = "ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2"
OUTPUTS = {"cache": "BENCH_CACHE", "results": "BENCH_RESULTS", "models": "BENCH_MODELS",
           "cards": "BENCH_CARDS", "leaderboards": "BENCH_LEADERBOARDS"}
# columns and tables that hold wall-clock times: they differ run to run by nature
TIMING_TABLES = ("table9_inference_time",)
TIMING_COLUMNS = ("inference_full_s",)
INTERVAL_SUFFIXES = (".low", ".high")


# --------------------------------------------------------------------------- running
def parse_env(text: str) -> dict[str, str]:
    """``"A=1 B=2"`` -> {"A": "1", "B": "2"} (shell words; an empty string is no change)."""
    out = {}
    for word in shlex.split(text):
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise SystemExit(f"spread: environment settings are NAME=VALUE words, got {word!r}")
        out[key] = value
    return out


def run_matrix(folder: Path, *, profile: str, only: str, workers: int | None, env: dict[str, str],
               log: Path) -> tuple[int, float]:
    """``bench matrix`` in a fresh workspace under ``folder`` with ``env`` added: (exit status, seconds)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_") and k != "MPLCONFIGDIR"}
    base.update({var: str(folder / name) for name, var in OUTPUTS.items()})
    base.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(ROOT))
    base.update(env)
    cmd = [sys.executable, "-m", "harness.cli", "--root", str(ROOT), "matrix", "--no-progress"]
    cmd += ["--profile", profile] if profile else []
    cmd += ["--only", only] if only else []
    cmd += ["--workers", str(workers)] if workers else []
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with log.open("a", encoding="utf-8") as out:
        out.write(f"+ {' '.join(f'{k}={v}' for k, v in env.items())} {shlex.join(cmd)}\n")
        out.flush()
        rc = subprocess.run(cmd, cwd=folder, env=base, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
    return rc, time.perf_counter() - t0


# --------------------------------------------------------------------------- leaderboards
@dataclass(frozen=True)
class Move:
    """One leaderboard value that differs between run A and run B."""

    table: str
    row: str
    column: str
    a: str
    b: str
    delta: float | None  # b - a when both are numbers
    interval_a: tuple[float, float] | None  # the printed interval of A's value, when it has one
    interval_b: tuple[float, float] | None
    inside: bool | None  # each value inside the other run's interval; None: no interval printed


def read_tables(folder: Path) -> dict[str, dict[str, dict[str, str]]]:
    """{table: {row key: {column: value}}} of every leaderboard CSV in ``folder`` but the timing tables.

    The row key is the ``upstream`` column (the first column when there is none)."""
    tables: dict[str, dict[str, dict[str, str]]] = {}
    for path in sorted(folder.glob("*.csv")):
        if path.stem in TIMING_TABLES:
            continue
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        if not rows:
            tables[path.stem] = {}
            continue
        key = "upstream" if "upstream" in rows[0] else next(iter(rows[0]))
        tables[path.stem] = {row[key]: {c: v for c, v in row.items() if c not in TIMING_COLUMNS} for row in rows}
    return tables


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def _interval(row: dict[str, str], column: str) -> tuple[float, float] | None:
    low, high = _number(row.get(column + ".low")), _number(row.get(column + ".high"))
    return (low, high) if low is not None and high is not None else None


def compare_tables(a: dict[str, dict[str, dict[str, str]]], b: dict[str, dict[str, dict[str, str]]]
                   ) -> tuple[list[Move], list[str], int]:
    """(values that differ, structural differences, values compared).

    Interval bounds (``<column>.low`` / ``.high``) are compared as values too; a score's move is
    judged against both runs' intervals: ``inside`` when each run's value lies in the other's."""
    moves: list[Move] = []
    structure: list[str] = []
    compared = 0
    for table in sorted(set(a) | set(b)):
        if table not in a or table not in b:
            structure.append(f"{table}: only in run {'A' if table in a else 'B'}")
            continue
        for row in sorted(set(a[table]) | set(b[table])):
            if row not in a[table] or row not in b[table]:
                structure.append(f"{table} / {row}: only in run {'A' if row in a[table] else 'B'}")
                continue
            ra, rb = a[table][row], b[table][row]
            for column in [c for c in ra if c in rb]:
                compared += 1
                if ra[column] == rb[column]:
                    continue
                x, y = _number(ra[column]), _number(rb[column])
                ia, ib = _interval(ra, column), _interval(rb, column)
                inside = None
                if ia is not None and ib is not None and x is not None and y is not None:
                    inside = ia[0] <= y <= ia[1] and ib[0] <= x <= ib[1]
                moves.append(Move(table, row, column, ra[column], rb[column],
                                  None if x is None or y is None else y - x, ia, ib, inside))
            for column in sorted(set(ra) ^ set(rb)):
                structure.append(f"{table} / {row} / {column}: only in run {'A' if column in ra else 'B'}")
    return moves, structure, compared


# --------------------------------------------------------------------------- records and features
def read_records(results: Path) -> dict[str, dict[str, Any]]:
    """{"upstream/downstream/language/seed": what decides the scores} of every result record."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(results.rglob("seed*.json")):
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        cell = rec.get("cell")
        if not isinstance(cell, dict) or "upstream" not in cell:
            continue  # capacity side files, sweeps
        key = f"{cell['upstream']}/{cell['downstream']}/{cell['language']}/seed{cell['seed']}"
        layer = rec.get("layer") or {}
        if not isinstance(layer, dict):  # a fixed layer is recorded as its index
            layer = {"chosen": layer}
        preds = rec.get("predictions") or {}
        out[key] = {"status": rec.get("status"), "layer": layer.get("chosen"), "curve": layer.get("curve"),
                    "metrics": rec.get("metrics"),
                    "predictions": hashlib.sha256(json.dumps(preds.get("y_pred"), sort_keys=True).encode()).hexdigest()
                    if preds else None}
    return out


def compare_records(a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Cells whose layer, sweep curve, test predictions or metrics differ."""
    common = sorted(set(a) & set(b))
    diff: dict[str, list[str]] = {"layer": [], "curve": [], "predictions": [], "metrics": [], "status": []}
    for key in common:
        for what in diff:
            if a[key][what] != b[key][what]:
                diff[what].append(key)
    return {"cells": len(common), "only_a": sorted(set(a) - set(b)), "only_b": sorted(set(b) - set(a)),
            "differ": diff}


def compare_features(a: Path, b: Path) -> list[dict[str, Any]]:
    """Per feature-cache file present in both caches: identical bytes, or the largest absolute
    difference of the float16 values."""
    import numpy as np

    rows = []
    for fa in sorted(a.rglob("*.f16")):
        rel = fa.relative_to(a)  # <card>/<audio set>/<entry key>/<file>
        # entry keys differ between fresh workspaces (the audio set's fingerprint includes its files'
        # times): match the single entry of the same card and audio set
        matches = list((b / rel.parts[0] / rel.parts[1]).glob(f"*/{rel.name}")) if len(rel.parts) == 4 else []
        if len(matches) != 1:
            continue
        fb = matches[0]
        same = fa.stat().st_size == fb.stat().st_size and fa.read_bytes() == fb.read_bytes()
        row: dict[str, Any] = {"file": str(rel), "identical": same}
        if not same and fa.stat().st_size == fb.stat().st_size:
            xa = np.fromfile(fa, dtype=np.float16).astype(np.float32)
            xb = np.fromfile(fb, dtype=np.float16).astype(np.float32)
            d = np.abs(xa - xb)
            row.update(max_abs=float(d.max()), changed_share=float(np.mean(d > 0)),
                       max_abs_value=float(np.abs(xa).max()))
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- report
def render(*, moves: list[Move], structure: list[str], compared: int, records: dict[str, Any],
           features: list[dict[str, Any]], header: list[str]) -> str:
    scores = [m for m in moves if not m.column.endswith(INTERVAL_SUFFIXES)]
    bounds = [m for m in moves if m.column.endswith(INTERVAL_SUFFIXES)]
    judged = [m for m in scores if m.inside is not None]
    outside = [m for m in judged if not m.inside]
    lines = [*header, "",
             f"Leaderboard values compared (timing columns aside): {compared}; differing: {len(moves)} "
             f"({len(scores)} scores or other values, {len(bounds)} interval bounds).",
             f"Scores with a printed interval that moved: {len(judged)}; outside the other run's interval: "
             f"{len(outside)}. Values without an interval that moved: {len(scores) - len(judged)}.", ""]
    if structure:
        lines += ["Structural differences:", *[f"- {s}" for s in structure], ""]
    if scores:
        lines += ["| table | row | column | A | B | B - A | A's interval | B's interval | inside |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for m in scores:
            fmt = (lambda iv: f"[{iv[0]:.1f}, {iv[1]:.1f}]" if iv else "")  # noqa: E731
            lines.append(f"| {m.table} | {m.row} | {m.column} | {_short(m.a)} | {_short(m.b)} | "
                         f"{'' if m.delta is None else f'{m.delta:+.1f}'} | {fmt(m.interval_a)} | {fmt(m.interval_b)} | "
                         f"{'n/a' if m.inside is None else ('yes' if m.inside else '**no**')} |")
        lines.append("")
    d = records["differ"]
    lines += [f"Result records compared: {records['cells']} cells; chosen layer differs in {len(d['layer'])}, "
              f"sweep curve in {len(d['curve'])}, test predictions in {len(d['predictions'])}, "
              f"metrics in {len(d['metrics'])}, status in {len(d['status'])}."]
    for what in ("layer", "predictions"):
        if d[what]:
            lines.append(f"- {what} differs: {', '.join(d[what])}")
    if records["only_a"] or records["only_b"]:
        lines.append(f"- cells only in A: {len(records['only_a'])}, only in B: {len(records['only_b'])}")
    same = sum(r["identical"] for r in features)
    lines += ["", f"Feature-cache files compared: {len(features)}; byte-identical: {same}."]
    for r in features:
        if not r["identical"] and "max_abs" in r:
            lines.append(f"- {r['file']}: max |diff| {r['max_abs']:.3g} (values up to {r['max_abs_value']:.3g}), "
                         f"{100 * r['changed_share']:.2f}% of the values changed")
    return "\n".join(lines) + "\n"


def _short(text: str) -> str:
    x = _number(text)
    return f"{x:.1f}" if x is not None and not float(x).is_integer() else text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for the two workspaces and the report")
    ap.add_argument("--profile", default="embedded")
    ap.add_argument("--only", default="", help="bench matrix --only filter (default: the whole profile)")
    ap.add_argument("--workers", type=int, help="bench matrix --workers (default: its own)")
    ap.add_argument("--env-a", default="", help="settings of run A (default: none, this machine as it is)")
    ap.add_argument("--env-b", default=AVX2_ONLY, help=f"settings of run B (default: {AVX2_ONLY})")
    ap.add_argument("--compare-only", action="store_true", help="do not run: compare what is under --out")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a score moved outside an interval")
    ap.add_argument("--expect-identical", action="store_true", help="exit 1 when anything differs")
    args = ap.parse_args(argv)
    out: Path = args.out.resolve()
    envs = {"a": parse_env(args.env_a), "b": parse_env(args.env_b)}
    header = [f"# Spread: {args.profile}{' --only ' + args.only if args.only else ''}",
              f"A: {args.env_a or '(this machine as it is)'}", f"B: {args.env_b or '(this machine as it is)'}"]
    failed = False
    if not args.compare_only:
        for name in ("a", "b"):
            rc, seconds = run_matrix(out / name, profile=args.profile, only=args.only, workers=args.workers,
                                     env=envs[name], log=out / f"{name}.log")
            header.append(f"run {name.upper()}: exit {rc}, {seconds:.0f} s (log: {out / f'{name}.log'})")
            failed |= rc != 0
    boards = [out / n / "leaderboards" / args.profile for n in ("a", "b")]
    for board in boards:
        if not board.is_dir():
            print(f"spread: no leaderboards at {board} (did the run fail? see its .log)", file=sys.stderr)
            return 1
    moves, structure, compared = compare_tables(read_tables(boards[0]), read_tables(boards[1]))
    records = compare_records(read_records(out / "a" / "results"), read_records(out / "b" / "results"))
    features = compare_features(out / "a" / "cache" / "features", out / "b" / "cache" / "features")
    report = render(moves=moves, structure=structure, compared=compared, records=records, features=features,
                    header=header)
    (out / "spread.md").write_text(report, encoding="utf-8")
    (out / "spread.json").write_text(json.dumps({"moves": [asdict(m) for m in moves], "structure": structure,
                                                 "compared": compared, "records": records, "features": features},
                                                indent=1), encoding="utf-8")
    print(report)
    outside = any(m.inside is False for m in moves if not m.column.endswith(INTERVAL_SUFFIXES))
    differs = bool(moves or structure or any(records["differ"].values()))
    return int(failed or (args.strict and outside) or (args.expect_identical and differs))


if __name__ == "__main__":
    raise SystemExit(main())
