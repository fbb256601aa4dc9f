"""IEMOCAP adapter on a tiny IEMOCAP_full_release tree with EmoEvaluation files in the real format."""

from __future__ import annotations

from pathlib import Path

import pytest
from corpora_fixtures import write_speech

from harness.corpora import iemocap
from harness.errors import ConfigError, DataError

# session -> dialog -> [(utterance, code)]
DIALOGS = {
    1: {"Ses01F_impro01": [("Ses01F_impro01_F000", "neu"), ("Ses01F_impro01_M000", "ang"),
                           ("Ses01F_impro01_F001", "exc"), ("Ses01F_impro01_M001", "fru")],
        "Ses01M_script01_1": [("Ses01M_script01_1_F000", "hap"), ("Ses01M_script01_1_M003", "sad")]},
    2: {"Ses02F_impro02": [("Ses02F_impro02_F000", "sad"), ("Ses02F_impro02_M000", "xxx")]},
    3: {"Ses03M_impro03": [("Ses03M_impro03_F000", "ang"), ("Ses03M_impro03_M000", "neu")]},
    4: {"Ses04F_impro01": [("Ses04F_impro01_F000", "hap"), ("Ses04F_impro01_M000", "neu")]},
    5: {"Ses05F_impro01": [("Ses05F_impro01_F000", "neu"), ("Ses05F_impro01_M000", "sad"),
                           ("Ses05F_impro01_M001", "ang")]},
}
NO_AUDIO = "Ses05F_impro01_M001"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_iemocap(tmp_path_factory.mktemp("iemocap") / "IEMOCAP_full_release")


def write_iemocap(root: Path) -> Path:
    """A tiny IEMOCAP_full_release tree at ``root`` (also used by tests/test_paper_run.py)."""
    for session, dialogs in DIALOGS.items():
        folder = root / f"Session{session}"
        for dialog, turns in dialogs.items():
            iemocap.write_dialog(folder, dialog,
                                 [iemocap.Turn(utt, code, f"Sentence number {i}.", 1.5) for i, (utt, code) in enumerate(turns)],
                                 extra_label_lines="this line is broken\n" if dialog == "Ses02F_impro02" else "",
                                 extra_transcript_lines="M: [LAUGHTER]\n")
            for i, (utt, _) in enumerate(turns):
                if utt != NO_AUDIO:
                    voice = "en+f3" if utt[-4] == "F" else "en+m3"
                    write_speech(folder / "sentences" / "wav" / dialog / f"{utt}.wav", f"sentence number {i}",
                                 voice=voice)
        (folder / "dialog" / "EmoEvaluation" / "Categorical").mkdir()  # real releases have subfolders here
    return root


@pytest.fixture(scope="module")
def dataset(corpus: Path):
    return iemocap.load(root=corpus.parent, language="en", options={})


def test_labels_speakers_splits(dataset) -> None:
    by_id = {u.id: u for u in dataset.utterances}
    assert len(by_id) == 12  # 15 turns - fru - xxx - one without audio
    assert by_id["Ses01F_impro01_F000"].labels == {"emotion": "neutral", "gender": "female"}
    assert by_id["Ses01F_impro01_F001"].labels["emotion"] == "happiness"  # exc merged by default
    # the speaker is the gender letter before the index, not the one after the session
    assert by_id["Ses01F_impro01_M000"].speaker == "Ses01M"
    assert by_id["Ses01M_script01_1_F000"].speaker == "Ses01F"
    assert by_id["Ses01M_script01_1_M003"].labels == {"emotion": "sadness", "gender": "male"}
    assert by_id["Ses01F_impro01_F000"].text == "Sentence number 0."
    splits = {s: sorted(u.speaker for u in dataset.split(s)) for s in ("train", "dev", "test")}
    assert set(splits["test"]) == {"Ses05F", "Ses05M"}
    assert set(splits["dev"]) == {"Ses04F"}
    assert "Ses04M" in splits["train"] and not {"Ses04F", "Ses05F", "Ses05M"} & set(splits["train"])
    assert by_id["Ses01F_impro01_F000"].path.endswith("Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav")


def test_other_labels_and_bad_lines_are_skipped_and_counted(dataset) -> None:
    text = "\n".join(dataset.skipped)
    assert len(dataset.skipped) == 4, text
    assert "Ses01F_impro01_M001: emotion 'fru'" in text
    assert "Ses02F_impro02_M000: emotion 'xxx'" in text
    assert "Ses02F_impro02.txt:" in text and "this line is broken" in text  # annotator lines are not reported
    assert NO_AUDIO in text and "missing" in text


def test_merge_excited_off_and_dev_speakers(corpus: Path) -> None:
    ds = iemocap.load(root=corpus, language="en", options={"merge_excited": False, "dev_speakers": ["Ses03M", "Ses02F"]})
    assert "Ses01F_impro01_F001" not in {u.id for u in ds.utterances}
    assert any("emotion 'exc'" in s for s in ds.skipped)
    assert {u.speaker for u in ds.split("dev")} == {"Ses03M", "Ses02F"}


def test_dev_speaker_from_the_test_session_is_refused(corpus: Path) -> None:
    with pytest.raises(ConfigError, match="test session"):
        iemocap.load(root=corpus, language="en", options={"dev_speakers": ["Ses05F"]})
    with pytest.raises(ConfigError, match="Did you mean 'merge_excited'"):
        iemocap.load(root=corpus, language="en", options={"merge_excite": True})


def test_missing_corpus(tmp_path: Path) -> None:
    (tmp_path / "Session1").mkdir()
    with pytest.raises(DataError) as e:
        iemocap.load(root=tmp_path, language="en", options={})
    assert "EmoEvaluation" in str(e.value) and "sail.usc.edu" in str(e.value)


def test_written_layout_reads_the_same_in_the_adapter_and_in_s3prls_preprocessing(corpus: Path, tmp_path: Path) -> None:
    """The tree that write_dialog wrote (the layout benchmarks/peer_s3prl.py gives s3prl's runner) yields the
    same items and labels through s3prl's own IEMOCAP_preprocess.py as through the adapter, fold by fold."""
    import json
    import shutil

    from s3prl.downstream.emotion import IEMOCAP_preprocess

    root = tmp_path / "IEMOCAP_full_release"
    shutil.copytree(corpus, root)
    IEMOCAP_preprocess.main(str(root))
    to_ours = {"neu": "neutral", "sad": "sadness", "hap": "happiness", "ang": "anger"}
    for session in (1, 5):
        ours = iemocap.load(root=root, language="en", options={"test_sessions": [str(session)],
                                                                "dev_speakers": ["Ses02F" if session != 2 else "Ses03M"]})
        for split, wanted in (("test", {"test"}), ("train", {"train", "dev"})):
            meta = json.loads((root / "meta_data" / f"Session{session}" / f"{split}_meta_data.json").read_text())
            theirs = {Path(m["path"]).stem: to_ours[m["label"]] for m in meta["meta_data"]}
            assert theirs == {u.id: u.labels["emotion"] for u in ours.utterances if u.split in wanted}, (session, split)
            assert all((root / m["path"]).is_file() for m in meta["meta_data"])
    assert len(theirs) == 10  # session 5's fold: 15 turns - fru - xxx - Session 5's three
