"""benchmarks/spread.py's comparison of two runs' leaderboards (hand-made CSVs, known answers)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from tests.conftest import REPO

_spec = importlib.util.spec_from_file_location("spread", REPO / "benchmarks" / "spread.py")
assert _spec is not None and _spec.loader is not None
spread = importlib.util.module_from_spec(_spec)
sys.modules["spread"] = spread  # dataclasses look their module up there
_spec.loader.exec_module(spread)

HEADER = "group,upstream,display,gender.en.f1_micro,gender.en.f1_micro.low,gender.en.f1_micro.high,params,inference_full_s\n"


def _board(folder: Path, rows: list[str], *, layers: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "table1_gender.csv").write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    (folder / "table2_layers.csv").write_text(f"group,upstream,display,gender.en.layer\ncontrols,w,W,{layers}\n",
                                              encoding="utf-8")
    (folder / "table9_inference_time.csv").write_text("group,upstream,full_s\nsmall,m,0.5\n", encoding="utf-8")
    return folder


def test_moves_are_judged_against_both_intervals_and_timings_are_ignored(tmp_path: Path) -> None:
    a = _board(tmp_path / "a", ["small,m,M,90.0,80.0,95.0,0,0.12", "controls,w,W,60.0,50.0,70.0,5,0.9",
                                "small,s,S,70.0,65.0,75.0,1,0.3"], layers="7.0")
    b = _board(tmp_path / "b", ["small,m,M,90.0,80.0,95.0,0,0.55", "controls,w,W,66.0,55.0,75.0,5,0.8",
                                "small,s,S,80.0,78.0,85.0,1,0.3"], layers="1.0")
    moves, structure, compared = spread.compare_tables(spread.read_tables(a), spread.read_tables(b))
    assert structure == []
    assert compared == 3 * 7 + 4  # table1 without inference_full_s, table2; table9 left out
    scores = {(m.table, m.row, m.column): m for m in moves if not m.column.endswith((".low", ".high"))}
    assert set(scores) == {("table1_gender", "w", "gender.en.f1_micro"), ("table1_gender", "s", "gender.en.f1_micro"),
                           ("table2_layers", "w", "gender.en.layer")}
    w = scores[("table1_gender", "w", "gender.en.f1_micro")]
    assert w.inside is True and w.delta == 6.0 and w.interval_a == (50.0, 70.0) and w.interval_b == (55.0, 75.0)
    s = scores[("table1_gender", "s", "gender.en.f1_micro")]
    assert s.inside is False  # 80 lies outside A's [65, 75]
    assert scores[("table2_layers", "w", "gender.en.layer")].inside is None  # no interval printed
    assert len(moves) - len(scores) == 4  # both bounds of both rows moved
    report = spread.render(moves=moves, structure=structure, compared=compared,
                           records=spread.compare_records({}, {}), features=[], header=["# t"])
    assert "outside the other run's interval: 1" in report and "| table1_gender | s |" in report


def test_rows_present_in_one_run_only_are_reported(tmp_path: Path) -> None:
    a = _board(tmp_path / "a", ["small,m,M,90.0,80.0,95.0,0,0.1"], layers="7.0")
    b = _board(tmp_path / "b", ["small,m,M,90.0,80.0,95.0,0,0.1", "small,s,S,70.0,65.0,75.0,1,0.3"], layers="7.0")
    moves, structure, _ = spread.compare_tables(spread.read_tables(a), spread.read_tables(b))
    assert moves == [] and structure == ["table1_gender / s: only in run B"]
