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


def test_task_subsets_give_each_task_its_hours(tmp_path: Path) -> None:
    """G8: Lahjoita Puhetta's 360 h (small models, gender) and 490 h (topic) from one manifest:
    rows name their subsets, option task_subsets gives each task one; the rule is recorded."""
    from harness.corpora.load import for_task

    rows = []
    for i, subsets in enumerate((["360h", "490h"], ["360h", "490h"], ["490h"], "490h")):
        write_speech(tmp_path / f"a{i}.wav", "moi", voice="fi")
        rows.append({"audio": f"a{i}.wav", "split": "train", "speaker": f"s{i}", "gender": "female",
                     "topic": "summer", "subsets": subsets})
    import json

    write_text(tmp_path / "manifest.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    opts = {"task_subsets": {"gender": "360h", "topic": "490h", "small_models": "360h"}}
    ds = manifest.load(root=tmp_path, language="fi", options=opts)
    assert [u.subsets for u in ds.utterances] == [("360h", "490h")] * 2 + [("490h",)] * 2
    gender, topic, words = for_task(ds, "gender"), for_task(ds, "topic"), for_task(ds, "word_discrimination")
    assert len(gender.utterances) == 2 and len(topic.utterances) == 4 and words is ds
    assert for_task(ds, "small_models").fingerprint == gender.fingerprint != topic.fingerprint
    assert "subset '360h' for task 'gender': 2 of 4 rows" in gender.split_rules[-1]
    with pytest.raises(DataError, match="'720h', which no row"):
        for_task(manifest.load(root=tmp_path, language="fi", options={"task_subsets": {"topic": "720h"}}), "topic")


def test_a_cell_without_dev_fails_naming_the_corpus_and_option(workspace_dir: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The cell, not only the helper: no dev split -> a failed record with the fix, no layer chosen."""
    from dataclasses import replace

    from harness.config import CellSpec, Workspace
    from harness.run import inputs
    from harness.run.cell import run_cell
    from tests.audio_fixtures import make_dataset

    ds = make_dataset(tmp_path / "audio", n=8)
    no_dev = ds.subset([replace(u, split="train") if u.split == "dev" else u for u in ds.utterances])
    monkeypatch.setattr(inputs, "load_task_dataset", lambda *a, **k: no_dev)
    out = run_cell(Workspace(workspace_dir), CellSpec("smoke", "mfcc", "gender", "en", 0), progress=False)
    assert out.result.status == "failed" and out.result.layer is None
    assert out.result.error is not None and "no dev split" in str(out.result.error.message)
    assert "dev_speakers_from_train" in str(out.result.error.message)
