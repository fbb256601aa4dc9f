"""The leaderboards' bytes are guarded: real version-1 result files (a smoke run of the harness
before the result record and the report package existed, tests/fixtures/results_v1) render to
exactly the tables that harness wrote from them (tests/fixtures/leaderboards_v1): markdown, CSV
and JSON, every table, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.report import build_tables, load_published, render_markdown, table_csv, table_json
from harness.report.records import read_records

FIXTURES = Path(__file__).parent / "fixtures"
EXPECTED = FIXTURES / "leaderboards_v1" / "smoke"
RENDERERS = {"md": render_markdown, "csv": table_csv, "json": table_json}


@pytest.fixture(scope="module")
def tables() -> dict[str, object]:
    records = read_records(FIXTURES / "results_v1", "smoke")
    assert len(records) == 6
    return {t.name: t for t in build_tables(records, published=load_published(), profile="smoke")}


def test_same_tables_as_the_pre_record_harness(tables: dict[str, object]) -> None:
    expected = sorted({p.stem for p in EXPECTED.iterdir()})
    assert sorted(tables) == expected == ["table1_gender", "table3_emotion", "table7_emotion_discrimination",
                                          "table8_capacity", "table9_inference_time"]


@pytest.mark.parametrize("ext", sorted(RENDERERS))
@pytest.mark.parametrize("name", ["table1_gender", "table3_emotion", "table7_emotion_discrimination",
                                  "table8_capacity", "table9_inference_time"])
def test_table_bytes_unchanged(tables: dict[str, object], name: str, ext: str) -> None:
    written = RENDERERS[ext](tables[name])  # type: ignore[operator]
    assert written.encode("utf-8") == (EXPECTED / f"{name}.{ext}").read_bytes()
