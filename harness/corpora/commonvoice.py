"""Common Voice (French in the paper; any locale; gender): read as distributed by Mozilla.

Layout (``root`` is the locale folder of a release, e.g. ``cv-corpus-17.0-2024-03-15/fr``, or
the release folder that holds ``<language>/``)::

    validated.tsv, train.tsv, dev.tsv, test.tsv     tab-separated, one header line
    clip_durations.tsv                              optional (newer releases): clip, duration[ms]
    clips/<path>                                    MP3 files named in the TSV's ``path`` column

TSV columns vary by release; the adapter needs ``client_id`` and ``path`` and uses ``sentence``,
``gender`` and ``age`` when present. Gender values differ between releases: ``male`` /
``female`` (older) and ``male_masculine`` / ``female_feminine`` (newer) map to the label
``gender`` = male / female; any other value (``other``, ``intersex``, ``transgender``,
``non-binary``, ``do_not_wish_to_say``, empty) drops the row, counted per value in
``Dataset.skipped`` (option ``keep_without_gender`` keeps those rows without a gender label,
e.g. as training audio for the small models). Speaker = ``client_id``.

Splits. ``splits: carve`` (default; the paper's ~2 h test / 2 h dev / rest train): every row of
``source`` (default ``validated.tsv``: all validated clips of the release, whose official
train/dev/test are subsets of it) is grouped by speaker; speakers are ordered by a SHA-256 hash
of ``carve_salt + client_id`` (no random state), and the test split takes whole speakers in that
order until ``test_hours`` is reached, then the dev split until ``dev_hours``; a speaker whose
hours would overshoot a budget by more than 5 % is left for training (Common Voice has speakers
with many hours). The remaining speakers form the train split, capped at ``train_hours`` whole
speakers in the same order when it is set (the paper used about 263 h of training audio).
``splits: official`` uses train.tsv / dev.tsv / test.tsv as they are.

Durations come from ``clip_durations.tsv`` when the release has it (reading 500 000 MP3 headers
is slow), else from each file's header. MP3 is decoded by soundfile (libsndfile >= 1.1).
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..data import Dataset, Utterance, resolve_inside
from ..errors import DataError
from .alignments import aligned_words, alignment_options, open_alignments
from .common import Option, Skips, corpus_root, finish, missing, probe, read_options, stable_key

URL = "https://commonvoice.mozilla.org/datasets"
LAYOUT = """\
  <root>/validated.tsv  (and train.tsv, dev.tsv, test.tsv for splits: official)
  <root>/clip_durations.tsv   (optional)
  <root>/clips/<path>.mp3
  <root> is the locale folder of a release (e.g. cv-corpus-17.0-2024-03-15/fr) or the release folder"""

OPTIONS: dict[str, Option] = {
    "splits": Option("carve", "str", "carve: speaker-disjoint dev/test carved from `source`; official: the "
                                     "release's train/dev/test.tsv", choices=("carve", "official")),
    "source": Option("validated.tsv", "str", "the TSV carved into splits (splits: carve)"),
    "test_hours": Option(2.0, "float", "hours of whole speakers in the test split (splits: carve)", minimum=0),
    "dev_hours": Option(2.0, "float", "hours of whole speakers in the dev split (splits: carve)", minimum=0),
    "train_hours": Option(None, "float?", "cap on train hours, whole speakers (null: all the rest)", minimum=0),
    "carve_salt": Option("", "str", "text mixed into the speaker hash: another salt, another carving"),
    "clips_dir": Option("clips", "str", "folder of the audio clips, relative to the root"),
    "keep_without_gender": Option(False, "bool", "keep rows whose gender is not male/female (no gender label)"),
    **alignment_options(),
}
GENDERS = {"male": "male", "male_masculine": "male", "female": "female", "female_feminine": "female"}
OVERSHOOT = 1.05  # a speaker may push a carved split to 105 % of its budget, not more


@dataclass(frozen=True)
class Row:
    """One usable TSV row."""

    item: str  # "<tsv>:<line>"
    client_id: str
    path: str
    sentence: str
    gender: str | None
    age: str


def load(*, root: str | Path, language: str = "fr", options: dict[str, Any] | None = None) -> Dataset:
    """One Common Voice locale as a Dataset (layout, gender mapping, carving: module docstring)."""
    opts = read_options(options, OPTIONS, adapter="commonvoice")
    base = _base(corpus_root(root, corpus="commonvoice", layout=LAYOUT, url=URL), language)
    clips = base / opts["clips_dir"]
    if not clips.is_dir():
        raise missing("the clips folder", clips, corpus="commonvoice", layout=LAYOUT, url=URL)
    skips = Skips()
    durations = read_clip_durations(base / "clip_durations.tsv", skips)
    sources = ({"all": opts["source"]} if opts["splits"] == "carve"
               else {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"})
    index = open_alignments(base, opts, skips)
    utterances: list[Utterance] = []
    for split, name in sources.items():
        tsv = base / name
        if not tsv.is_file():
            raise missing(f"the TSV {name}", tsv, corpus="commonvoice", layout=LAYOUT, url=URL)
        rows = read_tsv(tsv, skips, keep_without_gender=opts["keep_without_gender"])
        utterances += _utterances(rows, split=split, clips=clips, language=language, durations=durations,
                                  index=index, skips=skips)
    if opts["splits"] == "carve":
        utterances = assign_splits(utterances, test_hours=opts["test_hours"], dev_hours=opts["dev_hours"],
                                   train_hours=opts["train_hours"], salt=opts["carve_salt"], skips=skips)
    return finish(name="commonvoice", language=language, root=base, utterances=utterances, skips=skips)


def _base(root: Path, language: str) -> Path:
    """``root``, or ``root/<language>`` when ``root`` is a release folder."""
    if not (root / "validated.tsv").is_file() and (root / language).is_dir():
        return root / language
    return root


def read_clip_durations(path: Path, skips: Skips) -> dict[str, float]:
    """clip file name -> seconds from ``clip_durations.tsv`` (empty when the file is absent)."""
    if not path.is_file():
        return {}
    out: dict[str, float] = {}
    with open(path, encoding="utf-8", newline="") as f:
        for number, fields in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
            if number == 1 or not fields:
                continue
            try:
                out[fields[0]] = float(fields[1]) / 1000.0
            except (IndexError, ValueError):
                skips.add(f"{path}:{number}", "expected '<clip>\\t<duration in ms>'", kind="bad clip_durations line")
    return out


def read_tsv(path: Path, skips: Skips, *, keep_without_gender: bool) -> list[Row]:
    """The usable rows of one Common Voice TSV.

    Quotes are literal text in these files (``csv.QUOTE_NONE``). A row with the wrong number of
    fields is recorded with its line; rows dropped for their gender value are counted per value.
    """
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None:
            return []
        col = {name.strip(): i for i, name in enumerate(header)}
        for needed in ("client_id", "path"):
            if needed not in col:
                raise DataError(f"commonvoice: {path} has no {needed!r} column (columns: {', '.join(header)})")
        rows, dropped = _rows(reader, col, path=path, width=len(header), skips=skips,
                              keep_without_gender=keep_without_gender)
    for value, count in sorted(dropped.items()):
        skips.note(f"{path}: {count} row(s) with gender {value or '(empty)'!r} dropped (not male/female)")
    return rows


def _rows(reader: Iterable[list[str]], col: dict[str, int], *, path: Path, width: int, skips: Skips,
          keep_without_gender: bool) -> tuple[list[Row], Counter[str]]:
    rows, dropped = [], Counter[str]()
    for number, fields in enumerate(reader, 2):
        item = f"{path}:{number}"
        if not fields or fields == [""]:
            continue
        if len(fields) != width:
            skips.add(item, f"expected {width} tab-separated fields (the header's), got {len(fields)}",
                      kind="bad TSV row")
            continue

        def get(name: str, fields: list[str] = fields) -> str:
            return fields[col[name]].strip() if name in col else ""

        if not get("client_id") or not get("path"):
            skips.add(item, "empty client_id or path", kind="bad TSV row")
            continue
        gender = GENDERS.get(get("gender").lower())
        if gender is None and not keep_without_gender:
            dropped[get("gender").lower()] += 1
            continue
        rows.append(Row(item, get("client_id"), get("path"), get("sentence"), gender, get("age")))
    return rows, dropped


def _utterances(rows: list[Row], *, split: str, clips: Path, language: str, durations: dict[str, float],
                index: Any, skips: Skips) -> list[Utterance]:
    out = []
    for row in rows:
        try:
            audio = resolve_inside(clips, row.path)
        except DataError as e:
            skips.add(row.item, str(e), kind="path outside root")
            continue
        duration = durations.get(row.path) if audio.is_file() else None
        if duration is None:
            duration = probe(audio, row.item, skips)
            if duration is None:
                continue
        labels = {k: v for k, v in (("gender", row.gender), ("age", row.age)) if v}
        utt_id = Path(row.path).stem
        out.append(Utterance(id=utt_id, path=str(audio), split=split, language=language, speaker=row.client_id,
                             labels=labels, text=row.sentence, duration_s=duration,
                             words=aligned_words(index, utt_id, duration_s=duration, skips=skips)))
    return out


def carve_speakers(hours: dict[str, float], *, budget_h: float, salt: str, exclude: set[str]) -> list[str]:
    """Whole speakers, in hash order, filling ``budget_h`` hours without overshooting it by > 5 %."""
    chosen: list[str] = []
    total = 0.0
    for speaker in sorted(hours, key=lambda s: stable_key(s, salt=salt)):
        if total >= budget_h:
            break
        if speaker in exclude or total + hours[speaker] > budget_h * OVERSHOOT:
            continue
        chosen.append(speaker)
        total += hours[speaker]
    return chosen


def assign_splits(utterances: list[Utterance], *, test_hours: float, dev_hours: float, train_hours: float | None,
                  salt: str, skips: Skips) -> list[Utterance]:
    """Utterances with split set by speaker carving (test, then dev, then train; module docstring)."""
    hours: dict[str, float] = defaultdict(float)
    for u in utterances:
        hours[u.speaker] += (u.duration_s or 0.0) / 3600
    test = set(carve_speakers(hours, budget_h=test_hours, salt=salt, exclude=set()))
    dev = set(carve_speakers(hours, budget_h=dev_hours, salt=salt, exclude=test))
    rest = {s: h for s, h in hours.items() if s not in test and s not in dev}
    train = set(rest) if train_hours is None else set(carve_speakers(rest, budget_h=train_hours, salt=salt,
                                                                      exclude=set()))
    out = []
    unused = Counter[str]()
    for u in utterances:
        split = "test" if u.speaker in test else "dev" if u.speaker in dev else "train" if u.speaker in train else None
        if split is None:
            unused[u.speaker] += 1
            continue
        out.append(replace(u, split=split))
    if unused:
        skips.note(f"commonvoice: {sum(unused.values())} clip(s) of {len(unused)} speaker(s) beyond "
                   f"train_hours={train_hours} not used")
    return out
