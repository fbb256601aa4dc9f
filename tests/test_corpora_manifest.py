"""The manifest adapter (JSONL and CSV) and check_dataset / render_check, on real audio files."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from corpora_fixtures import write_speech, write_text
from praatio import textgrid
from praatio.utilities.constants import Interval

from harness.corpora import check, manifest
from harness.data import Dataset, load_audio, write_manifest
from harness.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("manifest") / "fesc"
    durations = {}
    for name, text, voice in (("spk1/a.wav", "hyvää huomenta", "fi+f2"), ("spk1/b.flac", "kiitos paljon", "fi+f2"),
                              ("spk2/c.wav", "hyvää yötä ja kauniita unia", "fi+m3"), ("spk3/d.wav", "moi", "fi")):
        durations[name] = write_speech(root / "audio" / name, text, voice=voice)
    write_text(root / "audio" / "broken.wav", "this is not audio")
    write_speech(root.parent / "outside.wav", "ulkona", voice="fi")
    tg = textgrid.Textgrid()
    tg.addTier(textgrid.IntervalTier("words", [Interval(0.1, 0.4, "hyvää"), Interval(0.5, 0.9, "yötä")], 0, 2.0))
    (root / "align").mkdir()
    tg.save(str(root / "align" / "c.TextGrid"), format="long_textgrid", includeBlankSpaces=True)
    write_text(root / "align" / "all.ctm", "d 1 0.02 0.2 moi 0.9\n")
    c_dur = durations["spk2/c.wav"]
    rows = [
        {"id": "a", "audio": "audio/spk1/a.wav", "split": "train", "speaker": "spk1", "language": "fi",
         "labels": {"emotion": "joy"}, "text": "hyvää huomenta", "words": [["hyvää", 0.05, 0.4], ["huomenta", 0.45, 0.9]]},
        {"audio": "audio/spk1/b.flac", "split": "devel", "speaker": "spk1", "emotion": "anger"},
        {"id": "c1", "audio": "audio/spk2/c.wav", "split": "test", "speaker": "spk2", "labels": {"emotion": "sadness"},
         "start": 0.2, "end": round(c_dur - 0.1, 3), "words": [["yötä", 0.1, 0.5], ["unia", 0.6, c_dur + 1.0]]},
        {"id": "c2", "audio": "audio/spk2/c.wav", "split": "test", "speaker": "spk2", "labels": {"emotion": "neutral"},
         "alignment": "align/c.TextGrid", "start": 0.3},
        {"id": "d", "audio": "audio/spk3/d.wav", "split": "train", "speaker": "spk3", "labels": {"emotion": "neutral"},
         "alignment": "align/all.ctm"},
        {"id": "escape", "audio": "../outside.wav", "split": "train"},
        {"id": "absolute", "audio": str(root.parent / "outside.wav"), "split": "train"},
        {"id": "gone", "audio": "audio/nothing.wav", "split": "train"},
        {"id": "broken", "audio": "audio/broken.wav", "split": "train"},
        {"id": "nosplit", "audio": "audio/spk1/a.wav", "split": "validation"},
        {"id": "a", "audio": "audio/spk1/b.flac", "split": "train"},
        {"id": "sv", "audio": "audio/spk1/a.wav", "split": "train", "language": "sv"},
        {"id": "late", "audio": "audio/spk1/a.wav", "split": "train", "start": 50.0},
        {"id": "badlabels", "audio": "audio/spk1/a.wav", "split": "train", "labels": ["joy"]},
        {"id": "badwords", "audio": "audio/spk1/a.wav", "split": "train", "words": [["x", "0", 1]]},
        {"split": "train"},
    ]
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    lines.insert(3, "{not json")
    write_text(root / "manifest.jsonl", "\n".join(lines) + "\n")
    write_text(root / "lists" / "topics.csv", "\n".join([
        "audio,split,speaker,topic,gender,note",
        "../audio/spk1/a.wav,train,spk1,media_news,female,first",
        "../audio/spk2/c.wav,dev,spk2,media_tv,male,",
        "../audio/spk3/d.wav,test,spk3,sports,,x",
        "../audio/spk1/b.flac,test,spk1",
    ]) + "\n")
    return root


@pytest.fixture(scope="module")
def dataset(corpus: Path):
    return manifest.load(root=corpus, language="fi", options={"split_map": {"devel": "dev"}, "url": "https://example.org/fesc"})


def test_rows_fields_and_segments(dataset) -> None:
    by_id = {u.id: u for u in dataset.utterances}
    assert sorted(by_id) == ["a", "audio/spk1/b", "c1", "c2", "d"]
    a = by_id["a"]
    assert (a.split, a.speaker, a.language, dict(a.labels), a.text) == ("train", "spk1", "fi", {"emotion": "joy"},
                                                                         "hyvää huomenta")
    assert [w.word for w in a.words] == ["hyvää", "huomenta"]
    b = by_id["audio/spk1/b"]
    assert b.split == "dev" and dict(b.labels) == {"emotion": "anger"}  # split_map, top-level label key
    c1 = by_id["c1"]
    assert c1.start_s == 0.2 and c1.duration_s == pytest.approx(c1.end_s - 0.2)
    assert [w.word for w in c1.words] == ["yötä"]  # "unia" ends past the segment: dropped and counted
    assert len(load_audio(c1.path, sample_rate=16000, start_s=c1.start_s, end_s=c1.end_s)) == pytest.approx(
        c1.duration_s * 16000, abs=2)


def test_alignment_files_are_relative_to_the_file(dataset) -> None:
    by_id = {u.id: u for u in dataset.utterances}
    assert [(w.word, round(w.start_s, 3)) for w in by_id["c2"].words] == [("yötä", 0.2)]  # 0.5 - start 0.3
    assert any("c2: word 'hyvää'" in s for s in dataset.skipped)  # starts before the segment
    assert [w.word for w in by_id["d"].words] == ["moi"]


def test_bad_rows_are_reported_with_file_and_line(dataset, corpus: Path) -> None:
    where = f"{corpus.resolve() / 'manifest.jsonl'}:"
    text = "\n".join(dataset.skipped)
    expected = {4: "not valid JSON", 7: "outside the corpus root", 8: "outside the corpus root", 9: "is missing",
                10: "unreadable audio", 11: "split 'validation'", 12: "duplicate id 'a' (first at line 1)",
                13: "language 'sv'", 14: "lies outside the audio", 15: "'labels' must be an object",
                16: "words[0] must be", 17: "missing 'audio'"}
    for line, reason in expected.items():
        assert any(s.startswith(f"{where}{line}: ") and reason in s for s in dataset.skipped), (line, reason, text)
    assert len(dataset.skipped) == len(expected) + 2  # + the two words dropped


def test_csv_label_columns_and_label_map(corpus: Path) -> None:
    opts = {"path": "lists/topics.csv", "label_columns": ["topic", "gender"],
            "label_map": {"topic": {"media_news": "media", "media_tv": "media"}}}
    ds = manifest.load(root=corpus, language="fi", options=opts)
    labels = {u.id: dict(u.labels) for u in ds.utterances}
    assert labels == {"audio/spk1/a": {"topic": "media", "gender": "female"},
                      "audio/spk2/c": {"topic": "media", "gender": "male"}, "audio/spk3/d": {"topic": "sports"}}
    assert ds.name == "topics" and len(ds.skipped) == 1 and "expected 6 fields" in ds.skipped[0]
    everything = manifest.load(root=corpus, language="fi", options={"path": "lists/topics.csv"})
    assert dict(next(u for u in everything.utterances if u.speaker == "spk1").labels)["note"] == "first"
    # a root that is the manifest file itself: its folder is the root, so ../audio is outside and refused
    inside = manifest.load(root=corpus / "lists" / "topics.csv", language="fi", options={})
    assert not inside.utterances and sum("outside the corpus root" in s for s in inside.skipped) == 3
    with pytest.raises(DataError, match="Did you mean 'topic'"):
        manifest.load(root=corpus, language="fi", options={**opts, "label_columns": ["topics"]})


def test_round_trip_with_write_manifest(dataset, tmp_path: Path) -> None:
    path = dataset.root / "roundtrip.jsonl"
    write_manifest(path, dataset.utterances)
    again = manifest.load(root=dataset.root, language="fi", options={"path": "roundtrip.jsonl"})
    def key(ds):
        return [(u.id, u.split, u.speaker, dict(u.labels), u.text, u.start_s, u.end_s,
                 [(w.word, round(w.start_s, 6), round(w.end_s, 6)) for w in u.words]) for u in ds.utterances]

    assert key(again) == key(dataset)
    path.unlink()


def test_missing_manifest_and_bad_options(corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError) as e:
        manifest.load(root=tmp_path, language="fi", options={"url": "https://example.org/lp"})
    assert "manifest.jsonl" in str(e.value) and "https://example.org/lp" in str(e.value)
    with pytest.raises(DataError, match="outside the corpus root"):
        manifest.load(root=corpus, language="fi", options={"path": "../manifest.jsonl"})
    with pytest.raises(ConfigError, match="Did you mean 'label_columns'"):
        manifest.load(root=corpus, language="fi", options={"label_column": ["x"]})
    with pytest.raises(ConfigError) as e:
        manifest.load(root=corpus, language="fi", options={"label_map": {"topic": "media"}, "split_map": {"a": "b"}})
    assert "options.label_map.topic" in str(e.value) and "options.split_map.a" in str(e.value)


def test_check_dataset_reports_problems_per_split(dataset) -> None:
    gone = replace(dataset.utterances[0], id="ghost", path=str(dataset.root / "audio" / "ghost.wav"), split="dev")
    broken = replace(dataset.utterances[0], id="broken", path=str(dataset.root / "audio" / "broken.wav"), split="dev")
    d2 = replace(next(u for u in dataset.utterances if u.id == "d"), id="d2", split="test")  # spk3: train and test
    ds = Dataset(name=dataset.name, language="fi", root=dataset.root, skipped=dataset.skipped,
                 utterances=dataset.utterances + (gone, broken, d2))
    report = check.check_dataset(ds, tasks_labels={"emotion": ["neutral", "sadness", "joy", "anger"]})
    assert report["splits"]["train"]["utterances"] == 2 and report["splits"]["train"]["speakers"] == 2
    assert report["splits"]["test"]["labels"]["emotion"] == {"neutral": 2, "sadness": 1}
    assert report["splits"]["train"]["hours"] > 0
    problems = report["problems"]
    assert problems["missing_files"]["count"] == 1 and "ghost" in problems["missing_files"]["examples"][0]
    assert problems["speaker_overlap"]["examples"] == ["spk1: in dev, train", "spk3: in test, train"]
    assert problems["unreadable_audio"]["count"] == 1 and "broken" in problems["unreadable_audio"]["examples"][0]
    assert problems["labels_outside_task"]["count"] == 0 and not report["ok"]
    strict = check.check_dataset(ds, tasks_labels={"emotion": ["neutral", "sadness"]}, open_audio=False)
    assert strict["problems"]["labels_outside_task"]["count"] == 4 and strict["problems"]["missing_files"]["count"] == 0
    text = check.render_check(report)
    assert "train: 2 utterances" in text and "emotion (2): joy=1, neutral=1" in text
    assert "missing files: 1" in text and "speaker overlap: 2" in text
    assert f"skipped while reading: {len(dataset.skipped)}" in text
    assert json.loads(json.dumps(report)) == report


def test_dev_test_fraction_moves_whole_speakers(corpus: Path) -> None:
    rows = [f"audio/{a},dev,{spk},affil" for a, spk in (("spk1/a.wav", "s1"), ("spk1/b.flac", "s1"),
                                                         ("spk2/c.wav", "s2"), ("spk3/d.wav", "s3"))]
    rows = [rows[0] + ',"[[""hyvää"", 0.05, 0.4]]"'] + [r + "," for r in rows[1:]]  # JSON words, quoted in CSV
    write_text(corpus / "hc.csv", "audio,split,speaker,request,words\n" + "\n".join(rows) + "\n")
    ds = manifest.load(root=corpus, language="fr", options={"path": "hc.csv", "dev_test_fraction": 0.5})
    assert [w.word for w in next(u for u in ds.utterances if u.id == "audio/spk1/a").words] == ["hyvää"]
    dev, test = ({u.speaker for u in ds.split(s)} for s in ("dev", "test"))
    assert dev and test and not dev & test and len(ds.utterances) == 4
    again = manifest.load(root=corpus, language="fr", options={"path": "hc.csv", "dev_test_fraction": 0.5})
    assert [(u.id, u.split) for u in again.utterances] == [(u.id, u.split) for u in ds.utterances]
