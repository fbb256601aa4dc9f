"""The deviations table (harness.config.deviations): generated from the settings, complete against
the settings that can move a profile away from the paper, in every leaderboard index and record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.config import Workspace, parse_overrides
from harness.config.deviations import (
    DEVIATING_SETTINGS,
    PROBES,
    deviation_table,
    deviations_path,
    load_deviation_specs,
    setting_keys,
)
from harness.errors import ConfigError
from harness.run.record import CellId, CellResult, parse_result
from harness.schema import ADDED_DOWNSTREAM_SETTINGS, KEYED_PROFILE_SETTINGS, SmallModelSpec

# The rows where `paper` still departs from the paper: fixed in the harness, or (Whisper) a mode
# not implemented; IEMOCAP's dev speaker comes out of its training sessions.
PAPER_DIFFERS = {"aligners", "batch_order", "whisper_window", "cache_dtype", "params_column", "iemocap_train"}
PAPER_SILENT = {"fesc_dev", "iemocap_exc", "mfcc_mels"}


def test_every_setting_that_can_deviate_has_a_row() -> None:
    """A setting that can move a profile away from the paper and is missing from the table fails here."""
    specs = load_deviation_specs(deviations_path(None))
    named = {k for r in specs.rows for k in setting_keys(r.setting)}
    missing = [s for s in DEVIATING_SETTINGS if s not in named]
    assert not missing, f"settings without a row in reference/deviations.yaml: {missing}"
    # the fidelity settings of the schema are in the list (a new one without a row fails above)
    listed = " ".join(DEVIATING_SETTINGS)
    for name in (*KEYED_PROFILE_SETTINGS, *ADDED_DOWNSTREAM_SETTINGS,
                 *(f for f in SmallModelSpec.model_fields if f.startswith("lee_"))):
        assert name in listed, name
    assert {r.probe for r in specs.rows} - {"fixed"} <= set(PROBES)
    stray = sorted(named - set(DEVIATING_SETTINGS) - {"manifest field `subsets`"})
    assert not stray, f"rows naming settings the list does not know: {stray}"


def test_paper_profile_table(workspace_dir: Path) -> None:
    rows = {r.id: r for r in deviation_table(Workspace(workspace_dir).snapshot, "paper")}
    assert {i for i, r in rows.items() if r.status == "differs"} == PAPER_DIFFERS
    assert {i for i, r in rows.items() if r.status == "paper silent"} == PAPER_SILENT
    assert rows["gender_input"].profile.startswith("5 s of audio into the model")
    assert rows["normalize"].profile == "utterance_layer_norm" and rows["normalize"].status == "same"
    assert rows["english_layer"].profile.startswith("the English intent cell")
    assert rows["fesc_dev"].profile.startswith("1 training speaker(s) carved as dev")


def test_embedded_profile_table_shows_its_departures(workspace_dir: Path) -> None:
    rows = {r.id: r for r in deviation_table(Workspace(workspace_dir).snapshot, "embedded")}
    for row in ("gender_input", "gender_epochs", "gender_bias", "normalize", "grad_clip", "extract_dtype",
                "lee_loss", "lee_epochs", "lee_teacher", "sequence_head", "data", "word_triplets"):
        assert rows[row].status == "differs", row
    assert rows["gender_input"].profile == "whole utterance into the model, mean over its first 5 s of frames"
    assert rows["normalize"].profile == "train_zscore" and rows["capacity_tasks"].status == "same"


@pytest.mark.parametrize(("override", "row", "shown"), [
    ("profile.normalize=train_zscore", "normalize", "train_zscore"),
    ("profile.extract_dtype=bf16", "extract_dtype", "bf16"),
    ("profile.small_models.lee_loss=mse", "lee_loss", "mse"),
    ('profile.analyses.capacity_tasks=["gender"]', "capacity_tasks", "gender"),
])
def test_the_table_reads_the_settings(workspace_dir: Path, override: str, row: str, shown: str) -> None:
    """Flip one setting of `paper` away from the paper: its row says so."""
    ws = Workspace(workspace_dir, parse_overrides([override]))
    got = {r.id: r for r in deviation_table(ws.snapshot, "paper")}[row]
    assert got.status == "differs" and got.profile == shown


def test_a_bad_deviations_file_is_a_clear_error(workspace_dir: Path) -> None:
    path = workspace_dir / "reference" / "deviations.yaml"  # the workspace's own copy wins over the repository's
    text = deviations_path(None).read_text(encoding="utf-8")
    path.parent.mkdir()
    path.write_text(text.replace("probe: normalize", "probe: normalise", 1), encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        deviation_table(Workspace(workspace_dir).snapshot, "paper")
    assert "normalise" in str(e.value) and "normalize" in str(e.value)


def test_records_carry_the_table_and_older_records_stay_readable(workspace_dir: Path) -> None:
    rows = list(deviation_table(Workspace(workspace_dir).snapshot, "paper"))
    record = CellResult(status="ok", cell=CellId(profile="paper", upstream="mfcc", downstream="gender",
                                                 language="en", seed=0), deviations=rows)
    again = parse_result(json.loads(record.to_json()), where="test")
    assert again is not None and again.deviations == rows
    old = json.loads(record.to_json())
    del old["deviations"]
    assert parse_result(old, where="old").deviations is None  # type: ignore[union-attr]


def test_readme_says_what_the_table_says(workspace_dir: Path) -> None:
    """README "Reproducing the paper" has a line per row of the table, with the same verdict."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Reproducing the paper")[1].split("\n## ")[0]
    for row in deviation_table(Workspace(workspace_dir).snapshot, "paper"):
        line = next((x for x in section.splitlines() if x.startswith(f"| {row.element} |")), None)
        assert line is not None, f"README lacks the row {row.element!r}"
        verdict = line.rstrip(" |").rsplit("|", 1)[1].strip()
        assert verdict.startswith({"differs": "differs", "paper silent": "paper silent"}.get(row.status, "same")), \
            (row.id, verdict, row.status)
