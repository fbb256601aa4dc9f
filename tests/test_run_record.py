"""CellResult: version-1 files (real ones, written by the harness before the record existed) read
without loss, version 2 written and read back, strict where it should be, lenient where v1 was."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.run.record import (
    SCHEMA_VERSION,
    CellId,
    CellResult,
    ResultFileError,
    parse_result,
    read_result,
    write_result,
)

V1_RESULTS = Path(__file__).parent / "fixtures" / "results_v1"
V1_FILES = sorted(V1_RESULTS.rglob("seed*.json"))


def _v1(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_fixture_holds_every_kind_of_section() -> None:
    """The v1 fixture (a smoke run and four cells of an embedded run of the pre-record harness)
    covers every kind of cell and section; the round trip below is checked on each."""
    assert len(V1_FILES) == 10
    records = [r for r in (read_result(p) for p in V1_FILES) if r is not None]
    assert len(records) == 10
    kinds = {r.task.kind for r in records if r.task is not None}
    assert kinds == {"classification", "emotion_discrimination", "word_discrimination"}
    analyses = [r.analyses for r in records if r.analyses is not None]
    assert any(a.capacity is not None for a in analyses) and any(a.inference_time is not None for a in analyses)
    assert any(a.umap is not None and a.umap.path for a in analyses)
    assert any(r.layer is not None and r.layer.curve for r in records), "a layer sweep curve"
    assert any(r.upstream is not None and r.upstream.language_fallback for r in records)
    assert any(r.utterance_metrics is not None for r in records), "a word-level probe's utterance vote"
    words = [r.word_discrimination for r in records if r.word_discrimination is not None]
    assert words and words[0].mismatched is not None and words[0].matched is not None
    assert words[0].matched.correct and words[0].matched.options


@pytest.mark.parametrize("path", V1_FILES, ids=lambda p: str(p.relative_to(V1_RESULTS)))
def test_v1_file_round_trips_without_loss(path: Path) -> None:
    """A v1 file read and written as v2 differs only in the schema key (and field order)."""
    original = _v1(path)
    record = read_result(path)
    assert record is not None and record.schema_version == SCHEMA_VERSION
    written = json.loads(record.to_json())
    assert written.pop("schema_version") == SCHEMA_VERSION and original.pop("schema") == 1
    assert written == original
    assert parse_result(json.loads(record.to_json()), where="x") == record


def test_attribute_access_reaches_the_analysis_sections() -> None:
    record = read_result(V1_RESULTS / "smoke/mfcc/emotion/en/seed0.json")
    assert record is not None and record.analyses is not None
    timing = record.analyses.inference_time
    assert timing is not None and timing.subsets is not None and timing.subsets.full is not None
    raw = _v1(V1_RESULTS / "smoke/mfcc/emotion/en/seed0.json")["analyses"]["inference_time"]
    assert timing.subsets.full.upstream_s == raw["subsets"]["full"]["upstream_s"]
    assert record.layer is not None and record.layer.chosen == 0 and record.cell.seed == 0


def test_write_and_read_back(tmp_path: Path) -> None:
    record = read_result(V1_FILES[0])
    assert record is not None
    target = tmp_path / "smoke" / "x" / "seed0.json"
    write_result(target, record)
    assert target.read_text() == record.to_json()
    assert json.loads(target.read_text())["schema_version"] == 2
    assert read_result(target) == record


def test_failed_and_unavailable_cells_are_records() -> None:
    failed = parse_result({"schema": 1, "status": "failed", "key": None,
                           "cell": {"profile": "smoke", "upstream": "wavlm_large", "downstream": "gender",
                                    "language": "en", "seed": 0},
                           "error": {"type": "UnknownNameError", "message": "no upstream card"},
                           "timings": {"total_s": 0.1}}, where="f")
    assert failed is not None and failed.status == "failed" and failed.error is not None
    assert failed.error.type == "UnknownNameError" and failed.metrics is None and failed.timings is not None
    unavailable = CellResult(status="unavailable", reason="no corpus",
                             cell=CellId(profile="paper", upstream="mfcc", downstream="gender", language="fi", seed=1))
    back = json.loads(unavailable.to_json())
    assert back == {"schema_version": 2, "status": "unavailable", "reason": "no corpus",
                    "cell": {"profile": "paper", "upstream": "mfcc", "downstream": "gender", "language": "fi",
                             "seed": 1}}


def test_v2_is_strict_and_names_the_file_and_key() -> None:
    data = json.loads(CellResult.from_v1(_v1(V1_FILES[0])).to_json())
    data["metrics"]["f1_mikro"] = 1.0
    with pytest.raises(ResultFileError) as e:
        parse_result(data, where="results/smoke/a/b/en/seed0.json")
    assert "results/smoke/a/b/en/seed0.json" in str(e.value) and "metrics.f1_mikro" in str(e.value)
    data["metrics"].pop("f1_mikro")
    data["schema_version"] = 3
    with pytest.raises(ResultFileError, match="schema_version 3"):
        parse_result(data, where="f.json")


def test_v1_is_lenient_where_the_old_readers_were() -> None:
    """A v1 section of the wrong shape reads as absent; missing identity fields read as empty."""
    data = _v1(V1_FILES[0])
    data["analyses"] = {"capacity": "not a dict", "inference_time": None}
    data["layer"] = None
    data["predictions"] = {"ids": ["a"], "flags": [1, 0]}
    data["word_discrimination"] = {"matched": 90.0, "mismatched": {"accuracy": 70.0, "test_language": "fi"}}
    record = CellResult.from_v1(data)
    assert record.analyses is not None and record.analyses.capacity is None
    assert record.analyses.inference_time is None and record.layer is None
    assert record.predictions is not None and record.predictions.correct == [1, 0]
    assert record.word_discrimination is not None and record.word_discrimination.matched is not None
    assert record.word_discrimination.matched.accuracy == 90.0
    bare = CellResult.from_v1({"schema": 1, "cell": {"upstream": "x", "seed": "zero"}})
    assert bare.status == "failed" and bare.cell.upstream == "x" and bare.cell.language == "" and bare.cell.seed == 0


def test_not_a_cell_result_reads_as_none(tmp_path: Path) -> None:
    side = tmp_path / "capacity.json"
    side.write_text(json.dumps({"format": "capacity/1", "dims": [1, 2]}))
    torn = tmp_path / "torn.json"
    torn.write_text('{"schema": 1, "status": "o')
    assert read_result(side) is None and read_result(torn) is None and read_result(tmp_path / "absent.json") is None
    assert parse_result([1, 2], where="x") is None
