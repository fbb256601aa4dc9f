"""G2 of the fidelity audit: a corpus without a dev split gets a speaker-disjoint dev carved from
train by a recorded rule (manifest option ``dev_speakers_from_train``), or a classification cell
fails with an error naming the corpus and the option. Never a layer picked on an empty dev."""

from __future__ import annotations

from pathlib import Path

import pytest
from corpora_fixtures import write_speech, write_text

from harness.corpora import manifest
from harness.corpora.load import require_dev, task_splits
from harness.errors import DataError
from harness.schema import Task, TaskSource

EMOTION = Task(kind="classification", label="emotion", group="emotion",
               sources={"real": {"fi": TaskSource(corpus="fesc", classes=["neutral", "anger"])}})


@pytest.fixture(scope="module")
def fesc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A FESC-like manifest: train and test only (one test speaker), as docs/corpora.md describes."""
    root = tmp_path_factory.mktemp("fesc")
    rows = []
    for spk, voice in (("s1", "fi+f2"), ("s2", "fi+m3"), ("s3", "fi+f4"), ("s4", "fi+m1")):
        for k, emotion in enumerate(("neutral", "anger")):
            write_speech(root / "audio" / f"{spk}_{k}.wav", "hyvää huomenta", voice=voice)
            split = "test" if spk == "s4" else "train"
            rows.append(f'{{"audio": "audio/{spk}_{k}.wav", "split": "{split}", "speaker": "{spk}", '
                        f'"emotion": "{emotion}"}}')
    write_text(root / "manifest.jsonl", "\n".join(rows) + "\n")
    return root


def test_carved_dev_is_speaker_disjoint_deterministic_and_recorded(fesc: Path) -> None:
    ds = manifest.load(root=fesc, language="fi", options={"dev_speakers_from_train": 1})
    train, dev, test = ({u.speaker for u in ds.split(s)} for s in ("train", "dev", "test"))
    assert len(dev) == 1 and not dev & train and not dev & test and test == {"s4"}
    assert len(ds.split("dev")) == 2 and len(ds.split("train")) == 4
    assert len(ds.split_rules) == 1 and "dev_speakers_from_train" in ds.split_rules[0]
    assert next(iter(dev)) in ds.split_rules[0]
    again = manifest.load(root=fesc, language="fi", options={"dev_speakers_from_train": 1})
    assert [(u.id, u.split) for u in again.utterances] == [(u.id, u.split) for u in ds.utterances]
    splits = task_splits(ds, task=EMOTION, source=EMOTION.sources["real"]["fi"])
    require_dev(splits, dataset=ds, source=EMOTION.sources["real"]["fi"], task="emotion")  # no error


def test_no_dev_split_is_a_clear_error_naming_corpus_and_option(fesc: Path) -> None:
    ds = manifest.load(root=fesc, language="fi", options={})
    assert not ds.split("dev") and ds.split_rules == ()
    splits = task_splits(ds, task=EMOTION, source=EMOTION.sources["real"]["fi"])
    with pytest.raises(DataError) as e:
        require_dev(splits, dataset=ds, source=EMOTION.sources["real"]["fi"], task="emotion")
    text = str(e.value)
    assert "'fesc'" in text and "no dev split" in text
    assert "corpora.fesc.options.dev_speakers_from_train" in text


def test_carving_refuses_what_cannot_be_speaker_disjoint(fesc: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="at least one must stay in train"):
        manifest.load(root=fesc, language="fi", options={"dev_speakers_from_train": 3})
    write_speech(tmp_path / "a.wav", "moi", voice="fi")
    write_text(tmp_path / "manifest.jsonl", '{"audio": "a.wav", "split": "train", "emotion": "anger"}\n'
                                            '{"audio": "a.wav", "split": "test", "id": "t", "emotion": "anger"}\n')
    with pytest.raises(DataError, match="no 'speaker'"):
        manifest.load(root=tmp_path, language="fi", options={"dev_speakers_from_train": 1})


def test_a_manifest_with_dev_rows_keeps_them(fesc: Path, tmp_path: Path) -> None:
    rows = (fesc / "manifest.jsonl").read_text().replace('"split": "train", "speaker": "s1"', '"split": "dev", "speaker": "s1"')
    write_text(fesc / "with_dev.jsonl", rows)
    ds = manifest.load(root=fesc, language="fi", options={"path": "with_dev.jsonl", "dev_speakers_from_train": 1})
    assert {u.speaker for u in ds.split("dev")} == {"s1"} and ds.split_rules == ()


def test_the_paper_profile_carves_fesc_dev() -> None:
    """benchmark.yaml sets the rule for FESC (documented in docs/corpora.md)."""
    from harness import yamlio

    root = Path(__file__).resolve().parents[1]
    fesc_opts = yamlio.load(root / "benchmark.yaml")["corpora"]["fesc"]["options"]
    assert fesc_opts["dev_speakers_from_train"] == 1
