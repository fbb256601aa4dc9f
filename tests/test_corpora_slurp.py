"""SLURP adapter on a tiny clone of the SLURP repository with slurp_real audio."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from corpora_fixtures import write_speech, write_text

from harness.corpora import slurp
from harness.errors import ConfigError, DataError


def entry(sid: int, sentence: str, scenario: str, action: str, files: list[str]) -> str:
    """One line of a SLURP JSONL file, with the fields the real files have."""
    tokens = [{"surface": w, "id": i, "lemma": w, "pos": "NN"} for i, w in enumerate(sentence.split())]
    recs = [{"file": f, "wer": 0.0, "ent_wer": None, "status": "correct"} for f in files]
    return json.dumps({"slurp_id": sid, "sentence": sentence, "sentence_annotation": sentence,
                       "intent": f"{scenario}_{action}", "action": action, "tokens": tokens,
                       "scenario": scenario, "recordings": recs, "entities": []})


TRAIN = [
    entry(4489, "wake me up at eight", "alarm", "set", ["audio-1502099775-headset.flac", "audio-1502099775.flac"]),
    entry(16421, "how many unread emails", "email", "query", ["audio-1499695168-headset.flac"]),
    '{"slurp_id": 1, "sentence": "broken',
    json.dumps({"slurp_id": 2, "sentence": "no scenario", "action": "set", "recordings": []}),
]
DEVEL = [entry(3843, "order me chinese food", "takeaway", "order", ["audio-1490201253-headset.flac"])]
TEST = [entry(4318, "wake me up at ten", "alarm", "set",
              ["audio--1504194842-headset.flac", "audio-9999999999.flac", "../../../outside.flac"])]
METADATA = {
    "4489": {"recordings": {"audio-1502099775-headset.flac": {"usrid": "FO-460"},
                            "audio-1502099775.flac": {"usrid": "FO-460"}}},
    "3843": {"recordings": {"audio-1490201253-headset.flac": {"usrid": "ME-101"}}},
    "4318": {"recordings": {"audio--1504194842-headset.flac": {"usrid": "UNK-323"}}},
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("slurp") / "slurp"
    data = root / "dataset" / "slurp"
    for name, lines in (("train.jsonl", TRAIN), ("devel.jsonl", DEVEL), ("test.jsonl", TEST)):
        write_text(data / name, "\n".join(lines) + "\n")
    write_text(data / "metadata.json", json.dumps(METADATA))
    for line in TRAIN[:2] + DEVEL + TEST:
        row = json.loads(line)
        for rec in row["recordings"]:
            if "9999" not in rec["file"] and ".." not in rec["file"]:
                write_speech(root / "audio" / "slurp_real" / rec["file"], row["sentence"])
    write_speech(root.parent / "outside.flac", "outside")  # exists, but outside the audio folder
    return root


@pytest.fixture(scope="module")
def dataset(corpus: Path):
    return slurp.load(root=corpus, language="en", options={})


def test_recordings_intents_splits(dataset) -> None:
    by_id = {u.id: u for u in dataset.utterances}
    assert sorted(by_id) == ["audio--1504194842-headset", "audio-1490201253-headset", "audio-1499695168-headset",
                             "audio-1502099775", "audio-1502099775-headset"]
    assert by_id["audio-1502099775"].labels == {"intent": "alarm_set", "scenario": "alarm", "action": "set",
                                                "gender": "female"}
    assert by_id["audio-1502099775"].text == "wake me up at eight"
    assert by_id["audio-1490201253-headset"].split == "dev"
    assert by_id["audio--1504194842-headset"].split == "test"
    assert slurp.intent_classes(dataset) == ("alarm_set", "email_query", "takeaway_order")


def test_speakers_from_metadata(dataset) -> None:
    by_id = {u.id: u for u in dataset.utterances}
    assert by_id["audio-1502099775-headset"].speaker == "FO-460"
    assert by_id["audio-1490201253-headset"].labels["gender"] == "male"
    assert by_id["audio--1504194842-headset"].speaker == "UNK-323"
    assert "gender" not in by_id["audio--1504194842-headset"].labels
    assert by_id["audio-1499695168-headset"].speaker == ""  # not in metadata.json: unknown


def test_bad_lines_missing_audio_and_escaping_paths(dataset) -> None:
    text = "\n".join(dataset.skipped)
    assert len(dataset.skipped) == 4, text
    assert "train.jsonl:3: not valid JSON" in text
    assert "train.jsonl:4: missing field(s) scenario" in text
    assert "audio-9999999999.flac" in text and "missing" in text
    assert "outside the corpus root" in text and "refused" in text


def test_recordings_option(corpus: Path) -> None:
    ds = slurp.load(root=corpus, language="en", options={"recordings": "far_field", "metadata": None})
    assert [u.id for u in ds.utterances] == ["audio-1502099775"]
    assert ds.utterances[0].speaker == ""
    with pytest.raises(ConfigError, match="Did you mean 'headset'"):
        slurp.load(root=corpus, language="en", options={"recordings": "headsets"})


def test_missing_audio_folder_and_annotations(corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError) as e:
        slurp.load(root=corpus, language="en", options={"audio_dir": "nowhere"})
    assert "slurp_real" in str(e.value) and "zenodo.org/record/4274930" in str(e.value)
    (tmp_path / "audio" / "slurp_real").mkdir(parents=True)
    with pytest.raises(DataError, match="train.jsonl"):
        slurp.load(root=tmp_path, language="en", options={})
