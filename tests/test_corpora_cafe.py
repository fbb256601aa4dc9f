"""CaFE adapter on tiny trees in the release's layouts: 192 kHz parts with AIFF, 48 kHz with WAV / FLAC."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from corpora_fixtures import write_speech

from harness.corpora import cafe
from harness.data import load_audio
from harness.errors import ConfigError, DataError

# relative path -> sentence text (the audio content does not matter to the adapter)
GOOD_192K = [
    "CaFE_192k_1/Colère/Faible/01-C-1-1.aiff",
    "CaFE_192k_1/Colère/Fort/02-C-2-3.aiff",
    "CaFE_192k_1/Neutre/01-N-4.aiff",
    "CaFE_192k_1/Tristesse/Faible/09-T-1-2.aiff",
    "CaFE_192k_2/Joie/Fort/10-J-2-5.aiff",
    "CaFE_192k_2/Peur/Faible/11-P-1-6.aiff",
    "CaFE_192k_2/Surprise/Fort/12-S-2-1.aiff",
    # an NFD folder name, as archives made on macOS store it
    unicodedata.normalize("NFD", "CaFE_192k_2/Dégoût/Faible/04-D-1-2.aiff"),
]
BAD_192K = [
    "CaFE_192k_1/Colère/Faible/13-C-1-1.aiff",  # actor 13
    "CaFE_192k_1/Colère/Faible/01-X-1-1.aiff",  # emotion letter X
    "CaFE_192k_1/Colère/Faible/01-C-1.aiff",  # anger without intensity
    "CaFE_192k_1/Joie/Faible/01-C-1-2.aiff",  # folder says happiness, name says anger
    "CaFE_192k_1/Colère/Fort/01-C-1-5.aiff",  # folder says intensity 2, name says 1
    "CaFE_192k_1/Colère/Faible/notes.aiff",
]
GOOD_48K = ["Colère/Faible/03-C-1-1.wav", "Neutre/04-N-2.wav", "Neutre/Faible/05-N-1-3.flac"]


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("cafe")
    for rel in GOOD_192K + BAD_192K:
        write_speech(base / "192k" / rel, "un cheval fou", voice="fr", rate=22050)
    for rel in GOOD_48K:
        write_speech(base / "CaFE_48k" / rel, "deux ânes aigris", voice="fr+f1")
    return base / "192k", base / "CaFE_48k"


@pytest.fixture(scope="module")
def dataset(trees):
    return cafe.load(root=trees[0], language="fr", options={})


def test_labels_from_names(dataset) -> None:
    by_id = {u.id: u for u in dataset.utterances}
    assert sorted(by_id) == ["01-C-1-1", "01-N-4", "02-C-2-3", "04-D-1-2", "09-T-1-2", "10-J-2-5", "11-P-1-6",
                             "12-S-2-1"]
    assert by_id["01-C-1-1"].labels == {"emotion": "anger", "gender": "male", "intensity": "low"}
    assert by_id["02-C-2-3"].labels == {"emotion": "anger", "gender": "female", "intensity": "high"}
    assert by_id["01-N-4"].labels == {"emotion": "neutral", "gender": "male"}
    assert by_id["04-D-1-2"].labels["emotion"] == "disgust"
    assert by_id["01-N-4"].text == "Quatre vieilles truies éléphantesques"
    assert by_id["01-C-1-1"].speaker == "01"
    wav = load_audio(by_id["01-C-1-1"].path, sample_rate=16000)  # AIFF at 22.05 kHz, resampled
    assert abs(len(wav) / 16000 - by_id["01-C-1-1"].duration_s) < 1e-3


def test_speaker_held_out_splits(dataset, trees) -> None:
    assert {u.speaker for u in dataset.split("test")} == {"11", "12"}
    assert {u.speaker for u in dataset.split("dev")} == {"09", "10"}
    assert {u.speaker for u in dataset.split("train")} == {"01", "02", "04"}
    ds = cafe.load(root=trees[0], language="fr", options={"test_actors": [1, 2], "dev_actors": "4"})
    assert {u.speaker for u in ds.split("test")} == {"01", "02"} and {u.speaker for u in ds.split("dev")} == {"04"}
    with pytest.raises(ConfigError, match="in both"):
        cafe.load(root=trees[0], language="fr", options={"test_actors": ["1"], "dev_actors": ["01"]})
    with pytest.raises(ConfigError, match="1-12"):
        cafe.load(root=trees[0], language="fr", options={"test_actors": ["13"]})


def test_bad_names_and_folder_conflicts_are_skipped(dataset) -> None:
    text = "\n".join(dataset.skipped)
    assert len(dataset.skipped) == len(BAD_192K), text
    assert "13-C-1-1.aiff: actor 13 is not 01-12" in text
    assert "emotion letter 'X'" in text
    assert "anger needs an intensity" in text
    assert "folder 'Joie' says happiness but the name says anger" in text
    assert "folder 'Fort' says intensity 2" in text
    assert "notes.aiff: name is not" in text


def test_48k_layout_with_wav_and_flac(trees) -> None:
    ds = cafe.load(root=trees[1], language="fr", options={})
    assert sorted(u.id for u in ds.utterances) == ["03-C-1-1", "04-N-2", "05-N-1-3"]
    assert {u.id: u.labels["emotion"] for u in ds.utterances}["05-N-1-3"] == "neutral"
    assert not ds.skipped


def test_missing_corpus(tmp_path: Path) -> None:
    with pytest.raises(DataError) as e:
        cafe.load(root=tmp_path, language="fr", options={})
    assert "no audio files" in str(e.value) and "zenodo.org/record/1478765" in str(e.value)
    with pytest.raises(DataError, match="does not exist"):
        cafe.load(root=tmp_path / "x", language="fr", options={})
