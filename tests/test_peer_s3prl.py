"""benchmarks/peer_s3prl.py's setup: the synthetic corpus in IEMOCAP's layout, read by the harness's adapter and
by s3prl's own preprocessing, and SUPERB's ER config scaled to it (the runs themselves are the benchmark)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import peer_s3prl
from harness.corpora import iemocap


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("peer")
    root = work / "IEMOCAP_full_release"
    counts = peer_s3prl.write_iemocap_tree(root, cache=work / "synth", utterances_per_speaker=2)
    assert counts == {f"Session{k}": 4 for k in range(1, 6)}  # one F and one M speaker per session
    return root


def test_synthetic_corpus_in_iemocap_layout_reads_the_same_both_ways(tree: Path) -> None:
    fold = peer_s3prl.s3prl_preprocess(tree)
    assert fold == {"train": 16, "test": 4}
    ours = iemocap.load(root=tree, language="en", options={"test_sessions": ["1"]})
    assert not ours.skipped
    meta = json.loads((tree / "meta_data" / "Session1" / "test_meta_data.json").read_text())
    to_ours = {"neu": "neutral", "sad": "sadness", "hap": "happiness", "ang": "anger"}
    theirs = {Path(m["path"]).stem: to_ours[m["label"]] for m in meta["meta_data"]}
    assert theirs == {u.id: u.labels["emotion"] for u in ours.split("test")}
    assert {u.speaker for u in ours.split("test")} == {"Ses01F", "Ses01M"}
    by_id = {u.id: u for u in ours.utterances}
    assert all(by_id[i].labels["gender"] == ("female" if i.split("_")[-1][0] == "F" else "male") for i in by_id)


def test_superb_config_is_the_recipe_with_paths_and_scaled_steps(tmp_path: Path) -> None:
    cfg, steps = peer_s3prl.scaled_config(root=tmp_path, fit_items=160, epochs=30, workers=0)
    assert steps == 150  # 30 epochs x 160 items / (batch 4 x 8 accumulated)
    assert cfg["runner"]["eval_step"] == 5 and cfg["runner"]["total_steps"] == 150  # 30 evaluations, as SUPERB
    recipe = peer_s3prl.SUPERB_ER_CONFIG
    assert cfg["optimizer"] == recipe["optimizer"] and cfg["downstream_expert"]["modelrc"] == recipe["downstream_expert"]["modelrc"]
    data = cfg["downstream_expert"]["datarc"]
    assert data["meta_data"] == str(tmp_path / "meta_data") and data["test_fold"] == "fold1"
    assert recipe["runner"]["total_steps"] == 30000  # the module's copy of the recipe is not changed


def test_flop_totals_and_interval() -> None:
    assert peer_s3prl.total_flops([[4, 10], [1, 20]], (1.0, 2.0, 3.0)) == 4 * (1 + 20 + 300) + (1 + 40 + 1200)
    lo, hi = peer_s3prl.wilson(50.0, 100)
    assert 39 < lo < 41 and 59 < hi < 61
