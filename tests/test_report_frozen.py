"""The leaderboards' bytes are guarded: real version-1 result files (a smoke run of the harness
before the result record and the report package existed, tests/fixtures/results_v1) render to
exactly the tables that harness wrote from them (tests/fixtures/leaderboards_v1/smoke): markdown,
CSV and JSON, every table, byte for byte. A broader hand-made set (tests/report_scenario.py)
covers every kind of table with published columns (tests/fixtures/leaderboards_v1/paper_scenario,
also written by that harness).

Updated deliberately once since (issue 15: intervals, significance and table fixes): the expected
files gained the paired-significance marks (≈ in markdown, ``tied_with_best`` / ``clustered`` /
``delta_low`` / ``delta_high`` per cell and ``significance`` per table in JSON, matching CSV
columns), per-column seed counts, the clustered-bootstrap footer (saying these results, which name no
speakers, fall back to the item bootstrap), the probe-heads, Params, Table V and Table IX footer
lines. Every number is unchanged: results without speakers keep the item bootstrap of
``harness.metrics.bootstrap_ci`` with its random stream. Then (issue 15, capacity repeats) Table
VIII's footer gained the line saying how many times the 10% probe was retrained per seed."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.report import build_tables, load_published, render_markdown, table_csv, table_json
from harness.report.records import read_records, repository_layout

FIXTURES = Path(__file__).parent / "fixtures"
EXPECTED = FIXTURES / "leaderboards_v1" / "smoke"
RENDERERS = {"md": render_markdown, "csv": table_csv, "json": table_json}
# Row groups added to reference/paper_layout.yaml after the fixtures were written (a table's JSON
# lists every group): left out here, so the bytes compared are those of the layout that made them.
ADDED_GROUPS = {"pretrained"}


def layout_of_the_fixtures():  # noqa: ANN201
    layout = repository_layout()
    assert ADDED_GROUPS <= {g.key for g in layout.row_groups}
    return layout.model_copy(update={"row_groups": [g for g in layout.row_groups if g.key not in ADDED_GROUPS]})


@pytest.fixture(scope="module")
def tables() -> dict[str, object]:
    records = read_records(FIXTURES / "results_v1", "smoke")
    assert len(records) == 6
    return {t.name: t for t in build_tables(records, published=load_published(), profile="smoke",
                                                  layout=layout_of_the_fixtures())}


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


SCENARIO_EXPECTED = FIXTURES / "leaderboards_v1" / "paper_scenario"
SCENARIO_TABLES = ["table1_gender", "table2_layers", "table3_emotion", "table4_intent_topic_request",
                   "table5_word_discrimination", "table7_emotion_discrimination", "table8_capacity",
                   "table9_inference_time", "task_speaker"]


@pytest.fixture(scope="module")
def scenario_tables() -> dict[str, object]:
    from tests.report_scenario import scenario

    tables = build_tables(scenario("paper", "librispeech"), published=load_published(), profile="paper", n_boot=200,
                          layout=layout_of_the_fixtures())
    return {t.name: t for t in tables}


@pytest.mark.parametrize("ext", ["md", "csv"])
@pytest.mark.parametrize("name", SCENARIO_TABLES)
def test_every_table_kind_unchanged_with_published_columns(scenario_tables: dict[str, object], name: str,
                                                           ext: str) -> None:
    """All nine kinds of table, published numbers beside ours, failures, fallbacks and notes: the
    bytes the pre-record harness rendered from tests/report_scenario.py's results."""
    assert sorted(scenario_tables) == SCENARIO_TABLES == sorted(p.stem for p in SCENARIO_EXPECTED.glob("*.md"))
    written = RENDERERS[ext](scenario_tables[name])  # type: ignore[operator]
    assert written.encode("utf-8") == (SCENARIO_EXPECTED / f"{name}.{ext}").read_bytes()
