"""Dimension overlap (harness.report.overlap) on hand-made top-k sets: across languages, across tasks, all three, seeds."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from harness.report.overlap import OverlapRow, overlap_pct, overlap_report
from harness.results import SCHEMA_VERSION, result_path, write_json_atomic

TASK_GROUP = {"gender": "gender", "emotion": "emotion", "intent": "semantic", "topic": "semantic",
              "request": "semantic"}


def _capacity_file(results: Path, *, upstream: str, task: str, language: str, dims: list[int], seed: int = 0,
                   card: str | None = None) -> None:
    path = results / "p" / "capacity" / upstream / task / language / f"seed{seed}.json"
    write_json_atomic(path, {"format": "capacity/1", "key": "k", "dims": dims, "D": 100, "k": len(dims),
                             "cell": {"profile": "p", "upstream": upstream, "card": card or upstream,
                                      "downstream": task, "task": task, "group": TASK_GROUP[task],
                                      "language": language, "seed": seed}})


@pytest.fixture
def results(tmp_path: Path) -> Path:
    r = tmp_path / "results"
    ten = list(range(10))
    _capacity_file(r, upstream="m", task="gender", language="en", dims=ten)
    _capacity_file(r, upstream="m", task="gender", language="en", dims=list(range(50, 60)), seed=1)
    _capacity_file(r, upstream="m", task="gender", language="fi", dims=[0, 1, 2, 3, 4, 10, 11, 12, 13, 14],
                   card="m_fi")
    _capacity_file(r, upstream="m", task="gender", language="fr", dims=[5, 6, 7, 8, 9, 20, 21, 22, 23, 24])
    _capacity_file(r, upstream="m", task="emotion", language="en", dims=[0, 1, 2, 30, 31, 32, 33, 34, 35, 36])
    _capacity_file(r, upstream="m", task="intent", language="en", dims=[0, 1, 2, 3, 40, 41, 42, 43, 44, 45])
    _capacity_file(r, upstream="m", task="topic", language="fi", dims=[0, 1, 40, 41, 42, 60, 61, 62, 63, 64])
    _capacity_file(r, upstream="m", task="request", language="fr", dims=[40, 70, 71, 72, 73, 74, 75, 76, 77, 78])
    # a cell result that carries its dimensions but has no capacity file
    for lang, dims in (("en", [1, 2, 3, 4]), ("fr", [1, 2, 8, 9])):
        write_json_atomic(result_path(r, profile="p", upstream="x", downstream="gender", language=lang, seed=0),
                          {"schema": SCHEMA_VERSION, "status": "ok",
                           "cell": {"profile": "p", "upstream": "x", "downstream": "gender", "language": lang,
                                    "seed": 0, "task": "gender"},
                           "upstream": {"name": "x"}, "task": {"name": "gender", "group": "gender"},
                           "analyses": {"capacity": {"dims": dims, "D": 40, "k": 4}}})
    return r


def _get(rows: tuple[OverlapRow, ...], **match: str) -> OverlapRow:
    found = [r for r in rows if all(getattr(r, k) == v for k, v in match.items())]
    assert len(found) == 1, (match, found)
    return found[0]


def test_overlap_pct() -> None:
    a, b, c = frozenset({1, 2, 3, 4}), frozenset({3, 4, 5, 6}), frozenset({4, 6, 7, 8})
    assert overlap_pct([a, b]) == (50.0, 2, 4)
    assert overlap_pct([a, b, c]) == (25.0, 1, 4)
    assert overlap_pct([a, frozenset({1, 2})]) == (100.0, 2, 2)


def test_across_languages(results: Path, tmp_path: Path) -> None:
    rep = overlap_report(results, "p", tmp_path / "out")
    rows = rep.languages
    assert _get(rows, upstream="m", unit="gender", pair="en-fi").overlap_pct == 50.0  # seed 0, not seed 1
    assert _get(rows, upstream="m", unit="gender", pair="en-fr").overlap_pct == 50.0
    assert _get(rows, upstream="m", unit="gender", pair="fi-fr").overlap_pct == 0.0
    assert _get(rows, upstream="m", unit="gender", pair="en-fi").same_weights is False
    assert _get(rows, upstream="m", unit="gender", pair="en-fr").same_weights is True
    sem = _get(rows, upstream="m", unit="semantic", pair="en-fi")  # intent (en) vs topic (fi): Figure 7
    assert sem.tasks == ("intent", "topic") and sem.overlap_pct == 50.0
    assert _get(rows, upstream="m", unit="semantic", pair="fi-fr").overlap_pct == 10.0
    x = _get(rows, upstream="x", unit="gender", pair="en-fr")  # from the cell result's analyses.capacity
    assert x.overlap_pct == 50.0 and x.k == 4
    assert any("seeds [0, 1] found, seed 0 used" in n for n in rep.notes)


def test_across_tasks_and_all_three(results: Path, tmp_path: Path) -> None:
    rep = overlap_report(results, "p", tmp_path / "out")
    rows = rep.tasks
    assert _get(rows, upstream="m", unit="en", pair="gender-emotion").overlap_pct == 30.0
    assert _get(rows, upstream="m", unit="en", pair="gender-intent").overlap_pct == 40.0
    assert _get(rows, upstream="m", unit="en", pair="emotion-intent").overlap_pct == 30.0
    assert _get(rows, upstream="m", unit="en", pair="all").overlap_pct == 30.0
    assert _get(rows, upstream="m", unit="fi", pair="gender-topic").overlap_pct == 20.0
    assert not [r for r in rows if r.unit == "fi" and r.pair == "all"]  # no Finnish emotion analysis


def test_report_files(results: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    rep = overlap_report(results, "p", out)
    md = (out / "overlap.md").read_text()
    assert "| m | 10 | 50.0 | 50.0* | 0.0 |" in md and "semantic (en: intent, fi: topic, fr: request)" in md
    with open(out / "overlap.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(rep.languages) + len(rep.tasks)
    assert json.loads((out / "overlap.json").read_text())["analyses"] == rep.analyses == 9
    for png in ("overlap_languages_gender.png", "overlap_languages_semantic.png", "overlap_tasks_en.png"):
        assert (out / png).stat().st_size > 1000
    again = overlap_report(results, "p", tmp_path / "out2")  # a pure function of the result files
    assert again.markdown == rep.markdown


def test_empty_profile(tmp_path: Path) -> None:
    rep = overlap_report(tmp_path / "none", "p", tmp_path / "out")
    assert rep.languages == rep.tasks == () and "No pair" in rep.markdown
