"""LibriSpeech adapter on a tiny tree in the OpenSLR layout, plus TextGrid / CTM word alignments."""

from __future__ import annotations

from pathlib import Path

import pytest
from corpora_fixtures import write_speech, write_text
from praatio import textgrid
from praatio.utilities.constants import Interval

from harness.corpora import librispeech
from harness.data import load_audio
from harness.errors import ConfigError, DataError

SPEAKERS_TXT = """\
; Some readers are reading in more than one subset.
; This file lists the readers.
;ID  |SEX| SUBSET           |MINUTES| NAME
14   | F | train-clean-360  | 25.03 | Kristin LeMoine
60   | M | train-clean-360  | 20.18 | |CBW|Simon
84   | F | dev-clean        |  8.02 | Christie Nowak
174  | M | dev-clean        |  8.04 | Peter Eastman
1089 | M | test-clean       |  8.00 | Peter Eastman
this line is not a speaker line
"""

# (subset, speaker, chapter, [(utt, text)])
CHAPTERS = [
    ("train-clean-360", "14", "208", [("0000", "HELLO THERE"), ("0001", "GOOD MORNING")]),
    ("train-clean-360", "60", "121082", [("0000", "THE CAT SAT")]),
    ("dev-clean", "84", "121123", [("0000", "GO DO YOU HEAR")]),
    ("dev-clean", "174", "50561", [("0000", "FORGOTTEN TOO")]),
    ("test-clean", "1089", "134686", [("0000", "HE HOPED THERE WOULD BE STEW")]),
    ("test-clean", "121", "127105", [("0000", "IT WAS THIS")]),  # 121 is not in SPEAKERS.TXT here
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ls") / "LibriSpeech"
    write_text(root / "SPEAKERS.TXT", SPEAKERS_TXT)
    for subset, spk, chapter, utts in CHAPTERS:
        folder = root / subset / spk / chapter
        lines = []
        for utt, text in utts:
            write_speech(folder / f"{spk}-{chapter}-{utt}.flac", text.lower(), voice="en+f2" if spk in "14 84" else "en")
            lines.append(f"{spk}-{chapter}-{utt} {text}")
        write_text(folder / f"{spk}-{chapter}.trans.txt", "\n".join(lines) + "\n")
    # a transcript line whose audio is missing, and a file without a transcript line
    trans = root / "train-clean-360" / "14" / "208" / "14-208.trans.txt"
    trans.write_text(trans.read_text() + "14-208-0002 NO AUDIO FOR THIS\n")
    write_speech(root / "train-clean-360" / "14" / "208" / "14-208-0009.flac", "orphan")
    return root


@pytest.fixture(scope="module")
def dataset(corpus: Path):
    return librispeech.load(root=corpus, language="en", options={})


def test_splits_speakers_labels(dataset) -> None:
    ids = {s: sorted(u.id for u in dataset.split(s)) for s in ("train", "dev", "test")}
    assert ids == {"train": ["14-208-0000", "14-208-0001", "60-121082-0000"],
                   "dev": ["174-50561-0000", "84-121123-0000"],
                   "test": ["1089-134686-0000", "121-127105-0000"]}
    by_id = {u.id: u for u in dataset.utterances}
    assert by_id["14-208-0000"].labels == {"gender": "female"}
    assert by_id["60-121082-0000"].labels == {"gender": "male"}  # the NAME field "|CBW|Simon" holds a '|'
    assert by_id["121-127105-0000"].labels == {}  # speaker missing from SPEAKERS.TXT: no gender label
    assert by_id["14-208-0001"].text == "GOOD MORNING"
    assert by_id["14-208-0000"].speaker == "14"
    assert all(0.3 < u.duration_s < 5 for u in dataset.utterances)


def test_bad_lines_and_files_are_skipped_and_counted(dataset) -> None:
    text = "\n".join(dataset.skipped)
    assert len(dataset.skipped) == 3, text
    assert "SPEAKERS.TXT:9: not a" in text
    assert "14-208-0002" in text and "missing" in text
    assert "14-208-0009.flac: no line in the chapter's .trans.txt" in text


def test_flac_decodes(dataset) -> None:
    u = dataset.split("train")[0]
    wav = load_audio(u.path, sample_rate=16000)
    assert abs(len(wav) / 16000 - u.duration_s) < 1e-3 and wav.dtype.name == "float32"


def test_subsets_are_configurable(corpus: Path) -> None:
    ds = librispeech.load(root=corpus.parent, language="en",  # the folder holding LibriSpeech/ also works
                          options={"train_subsets": ["dev-clean"], "dev_subsets": [], "test_subsets": "test-clean"})
    assert len(ds.split("train")) == 2 and not ds.split("dev") and len(ds.split("test")) == 2


def test_missing_corpus_says_what_where_and_url(tmp_path: Path) -> None:
    with pytest.raises(DataError) as e:
        librispeech.load(root=tmp_path / "nowhere", language="en", options={})
    msg = str(e.value)
    assert "nowhere" in msg and "SPEAKERS.TXT" in msg and "openslr.org/12" in msg
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="SPEAKERS.TXT"):
        librispeech.load(root=tmp_path / "empty", language="en", options={})
    with pytest.raises(DataError, match="no corpus root"):
        librispeech.load(root="", language="en", options={})


def test_missing_subset_and_bad_options(corpus: Path) -> None:
    with pytest.raises(DataError, match="train-other-500"):
        librispeech.load(root=corpus, language="en", options={"train_subsets": ["train-other-500"]})
    with pytest.raises(ConfigError) as e:
        librispeech.load(root=corpus, language="en", options={"train_subset": ["x"], "dev_subsets": 3.5})
    msg = str(e.value)
    assert "2 configuration problem(s)" in msg and "Did you mean 'train_subsets'" in msg
    with pytest.raises(DataError, match="English|en"):
        librispeech.load(root=corpus, language="fi", options={})


def test_ctm_alignments_are_checked_against_the_audio(corpus: Path, dataset) -> None:
    u = next(u for u in dataset.utterances if u.id == "14-208-0000")
    ctm = write_text(corpus.parent / "align" / "words.ctm", "\n".join([
        ";; comment",
        "14-208-0000 1 0.05 0.30 hello 0.98",
        "14-208-0000 1 0.40 0.20 <sil>",
        f"14-208-0000 1 0.50 {u.duration_s:.3f} there",  # ends past the audio: dropped and counted
        "14-208-0000 1 oops 0.2 broken",  # malformed: counted
        "84-121123-0000 1 0.10 0.20 go",
    ]) + "\n")
    ds = librispeech.load(root=corpus, language="en", options={"alignments": str(ctm)})
    by_id = {x.id: x for x in ds.utterances}
    assert [(w.word, w.start_s, round(w.end_s, 3)) for w in by_id["14-208-0000"].words] == [("hello", 0.05, 0.35)]
    assert [w.word for w in by_id["84-121123-0000"].words] == ["go"]
    text = "\n".join(ds.skipped)
    assert "word 'there'" in text and "past the end of the audio" in text
    assert "words.ctm:5" in text


def test_textgrid_alignments(corpus: Path, dataset) -> None:
    u = next(u for u in dataset.utterances if u.id == "60-121082-0000")
    folder = corpus.parent / "textgrids" / "60"
    folder.mkdir(parents=True)
    tg = textgrid.Textgrid()
    xmax = u.duration_s + 1.0
    tg.addTier(textgrid.IntervalTier("words", [Interval(0.0, 0.2, "the"), Interval(0.2, 0.5, "cat"),
                                               Interval(u.duration_s - 0.1, xmax, "sat")], 0, xmax))
    tg.addTier(textgrid.IntervalTier("phones", [Interval(0.0, 0.1, "DH")], 0, xmax))
    tg.save(str(folder / "60-121082-0000.TextGrid"), format="long_textgrid", includeBlankSpaces=True)
    ds = librispeech.load(root=corpus, language="en", options={"alignments": str(corpus.parent / "textgrids")})
    words = next(x for x in ds.utterances if x.id == u.id).words
    assert [w.word for w in words] == ["the", "cat"]
    assert any("word 'sat'" in s for s in ds.skipped)
