"""SLURP (English; intent): read as distributed (GitHub text + Zenodo audio).

Layout (``root`` is a clone of github.com/pswietojanski/slurp with the audio unpacked in it)::

    dataset/slurp/train.jsonl, devel.jsonl, test.jsonl     one JSON object per line
    dataset/slurp/metadata.json                            optional: speakers (``usrid``)
    audio/slurp_real/<file>.flac                           (``slurp_real.tar.gz`` from Zenodo)

A JSONL line holds ``slurp_id``, ``sentence``, ``scenario``, ``action``, ``intent`` and
``recordings: [{"file": "audio-1490200442-headset.flac", "wer": .., "ent_wer": .., "status": ..}]``.
Every recording is one utterance (id = the file name without ``.flac``); option ``recordings``
keeps only close-talk (``-headset``) or only far-field ones. Label ``intent`` =
``<scenario>_<action>`` (the paper's intent classes; :func:`intent_classes` counts them), plus
``scenario`` and ``action``. Splits: train, devel -> dev, test (the official ones).

Speakers: the JSONL files carry none. ``dataset/slurp/metadata.json`` (in the GitHub repository)
maps ``slurp_id`` -> ``recordings`` -> file -> ``usrid`` such as ``FO-488`` (gender F/M/UNK,
native language E/O, a unique number); the speaker is that ``usrid`` and, when it starts with F or
M, it also gives the label ``gender``. Without metadata.json the speaker is ``""`` (unknown), which
``check_dataset`` does not count as a speaker overlap.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..data import Dataset, Utterance, read_manifest_rows, resolve_inside
from ..errors import DataError
from .alignments import aligned_words, alignment_options, open_alignments
from .common import (
    Option,
    Skips,
    check_language,
    corpus_root,
    finish,
    label_values,
    missing,
    probe,
    read_options,
)

URL = "https://github.com/pswietojanski/slurp (text) and https://zenodo.org/record/4274930 (audio)"
LAYOUT = """\
  <root>/dataset/slurp/train.jsonl, devel.jsonl, test.jsonl
  <root>/dataset/slurp/metadata.json                   (optional: speakers)
  <root>/audio/slurp_real/audio-<n>[-headset].flac     (or <root>/slurp_real/, or option audio_dir)
  <root> is a clone of the SLURP GitHub repository with slurp_real.tar.gz unpacked under audio/"""

OPTIONS: dict[str, Option] = {
    "audio_dir": Option(None, "str?", "folder of the real recordings (default: audio/slurp_real, else slurp_real; "
                                      "relative to the root, or absolute)"),
    "train_files": Option(["train.jsonl"], "strs", "JSONL files in dataset/slurp/ read as the train split"),
    "dev_files": Option(["devel.jsonl"], "strs", "JSONL files in dataset/slurp/ read as the dev split"),
    "test_files": Option(["test.jsonl"], "strs", "JSONL files in dataset/slurp/ read as the test split"),
    "recordings": Option("all", "str", "which recordings of each sentence", choices=("all", "headset", "far_field")),
    "metadata": Option("dataset/slurp/metadata.json", "str?", "metadata with speaker ids (null: do not read)"),
    **alignment_options(),
}


def load(*, root: str | Path, language: str = "en", options: dict[str, Any] | None = None) -> Dataset:
    """SLURP's real recordings as a Dataset (layout and labels: module docstring)."""
    opts = read_options(options, OPTIONS, adapter="slurp")
    check_language("slurp", language, ("en",))
    base = corpus_root(root, corpus="slurp", layout=LAYOUT, url=URL)
    audio_dir = _audio_dir(base, opts["audio_dir"])
    skips = Skips()
    speakers = _read_metadata(base, opts["metadata"])
    index = open_alignments(base, opts, skips)
    utterances: list[Utterance] = []
    for split in ("train", "dev", "test"):
        for name in opts[f"{split}_files"]:
            path = base / "dataset" / "slurp" / name
            if not path.is_file():
                raise missing(f"the {split} annotations {name}", path, corpus="slurp", layout=LAYOUT, url=URL)
            utterances += _read_jsonl(path, split=split, audio_dir=audio_dir, speakers=speakers,
                                      keep=opts["recordings"], index=index, skips=skips)
    return finish(name="slurp", language=language, root=base, utterances=utterances, skips=skips)


def intent_classes(dataset: Dataset) -> tuple[str, ...]:
    """The distinct ``scenario_action`` intents found (the paper reports 93)."""
    return label_values(dataset, "intent")


def _audio_dir(base: Path, value: str | None) -> Path:
    candidates = [Path(value).expanduser()] if value else [Path("audio/slurp_real"), Path("slurp_real")]
    for c in candidates:
        path = c if c.is_absolute() else base / c
        if path.is_dir():
            return path
    raise missing("the folder of real recordings (slurp_real.tar.gz unpacked)", base / candidates[0],
                  corpus="slurp", layout=LAYOUT, url=URL)


def _read_metadata(base: Path, value: str | None) -> dict[tuple[str, str], str]:
    """(slurp_id, file) -> usrid from metadata.json; empty when absent or not configured."""
    if not value:
        return {}
    path = Path(value).expanduser()
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"slurp: {path} is not readable JSON ({e}); fix it or set option metadata: null") from None
    out: dict[tuple[str, str], str] = {}
    for sid, entry in meta.items() if isinstance(meta, dict) else ():
        recs = entry.get("recordings") if isinstance(entry, dict) else None
        for file, rec in (recs or {}).items():
            if isinstance(rec, dict) and isinstance(rec.get("usrid"), str):
                out[(str(sid), file)] = rec["usrid"]
    return out


def _read_jsonl(path: Path, *, split: str, audio_dir: Path, speakers: dict[tuple[str, str], str], keep: str,
                index: Any, skips: Skips) -> list[Utterance]:
    out = []
    for number, row, error in read_manifest_rows(path):
        item = f"{path}:{number}"
        fields = _fields(row, error)
        if isinstance(fields, str):
            skips.add(item, fields, kind="bad JSONL line")
            continue
        sid, sentence, scenario, action, recordings = fields
        for rec in recordings:
            u = _recording(rec, item=item, sid=sid, split=split, audio_dir=audio_dir, keep=keep, skips=skips,
                           text=sentence, scenario=scenario, action=action, speakers=speakers, index=index)
            if u is not None:
                out.append(u)
    return out


def _fields(row: dict[str, Any] | None, error: str) -> tuple[str, str, str, str, list[Any]] | str:
    """The fields one line needs, or the reason it cannot be used."""
    if row is None:
        return error
    needed = ("slurp_id", "scenario", "action", "recordings")
    absent = [k for k in needed if k not in row]
    if absent:
        return f"missing field(s) {', '.join(absent)}"
    if not (isinstance(row["scenario"], str) and row["scenario"] and isinstance(row["action"], str) and row["action"]):
        return "scenario and action must be non-empty strings"
    if not isinstance(row["recordings"], list):
        return "recordings must be a list"
    return str(row["slurp_id"]), str(row.get("sentence", "")), row["scenario"], row["action"], row["recordings"]


def _recording(rec: Any, *, item: str, sid: str, split: str, audio_dir: Path, keep: str, skips: Skips, text: str,
               scenario: str, action: str, speakers: dict[tuple[str, str], str], index: Any) -> Utterance | None:
    file = rec.get("file") if isinstance(rec, dict) else None
    if not isinstance(file, str) or not file:
        skips.add(item, f"a recording without a 'file' name: {rec!r}", kind="bad recording")
        return None
    headset = file.endswith("-headset.flac")
    if (keep == "headset" and not headset) or (keep == "far_field" and headset):
        return None
    try:
        audio = resolve_inside(audio_dir, file)
    except DataError as e:
        skips.add(item, str(e), kind="path outside root")
        return None
    utt_id = Path(file).stem
    duration = probe(audio, f"{item} ({file})", skips)
    if duration is None:
        return None
    usrid = speakers.get((sid, file), "")
    labels = {"intent": f"{scenario}_{action}", "scenario": scenario, "action": action}
    if usrid[:1] in ("F", "M") and not usrid.startswith("UNK"):
        labels["gender"] = "female" if usrid[0] == "F" else "male"
    return Utterance(id=utt_id, path=str(audio), split=split, language="en", speaker=usrid, labels=labels,
                     text=text, words=aligned_words(index, utt_id, duration_s=duration, skips=skips),
                     duration_s=duration)
