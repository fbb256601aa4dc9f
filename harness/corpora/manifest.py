"""The manifest format: any corpus described row by row (Lahjoita Puhetta, FESC, HealthCall30, private data).

A manifest is a JSONL file (one object per line) or a CSV / TSV file (one header line). Fields:

=============  ========  =====================================================================
field          required  meaning
=============  ========  =====================================================================
``audio``      yes       audio file, relative to the manifest's folder; must stay inside the root
``split``      yes       ``train``, ``dev`` or ``test`` (option ``split_map`` renames others)
``speaker``    no        speaker id ("" = unknown)
``id``         no        unique utterance id (default: the audio path without suffix, plus
                         ``@<start>-<end>`` for a segment)
``language``   no        ``en`` / ``fi`` / ``fr``...; rows of another language than the one
                         requested are skipped and counted (default: the requested language)
``labels``     no        JSONL: an object of label name -> value, e.g. ``{"emotion": "anger"}``
<label>        no        any other column / key is a label (``gender``, ``topic``, ``request``...);
                         option ``label_columns`` restricts which
``text``       no        transcript
``start``      no        segment start in seconds within the audio file
``end``        no        segment end in seconds (default: the end of the file)
``words``      no        word alignment relative to the segment start: ``[[word, start, end], ...]``
                         (JSON text in CSV)
``alignment``  no        a TextGrid or CTM file (relative to the manifest) with times relative to
                         the audio file; a CTM's lines for this row's ``id`` are used
``duration``   no        ignored (the duration is read from the audio header)
``subsets``    no        named subsets holding the row: a list (JSONL) or names separated by
                         ``,`` / spaces (CSV), e.g. ``["360h", "490h"]``; option
                         ``task_subsets`` ({task: subset}) makes a task read only that subset
=============  ========  =====================================================================

Every row is validated; a bad row is recorded in ``Dataset.skipped`` as
``<manifest>:<line>: <reason>`` and left out: missing or bad fields, a split outside
train/dev/test, an audio path that resolves outside the corpus root (refused), a missing or
unreadable audio file (the header is opened, no samples are read), a segment outside the audio, a
duplicate id. Words past the end of the audio are dropped and counted.

Options: ``path`` (the manifest file, relative to the root; default ``manifest.jsonl``; a
``root`` that is itself a manifest file also works), ``format``, ``label_columns``,
``label_map`` (label -> {value: new value}, e.g. to merge Lahjoita Puhetta's three media-skill
subtopics), ``split_map``, ``dev_test_fraction`` (move a deterministic share of the dev rows, by
whole speakers, to test: HealthCall30's test labels are not public, so the paper tested on half of
its development set), ``dev_speakers_from_train`` (a manifest without dev rows: move this many
whole training speakers to dev, in SHA-256 order; FESC: 1; default 0, and a classification cell
then fails with an error naming this option rather than pick a layer without a dev split),
``task_subsets`` ({task: subset}: a task reads only the rows whose ``subsets`` hold that name;
Lahjoita Puhetta's 360 h for the small models and gender, 490 h for topic), ``name``, ``url`` (shown when the manifest is missing),
``alignment_tier``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..data import SPLITS, Dataset, Utterance, read_manifest_rows, resolve_inside
from ..errors import ConfigError, DataError, Problem
from .alignments import AlignmentError, fit_words, read_ctm, read_textgrid, words_from_field
from .common import Option, Skips, corpus_root, finish, read_options, stable_key
from .common import duration_s as header_duration

URL = "(set option `url`: where this corpus can be obtained)"
RESERVED = frozenset({"id", "audio", "split", "language", "speaker", "labels", "text", "start", "end", "words",
                      "alignment", "duration", "subsets"})
LAYOUT = """\
  <root>/<path>                     manifest.jsonl (one JSON object per line) or .csv / .tsv
  <root>/<audio paths in the manifest, relative to the manifest's folder>
  fields: audio, split (train|dev|test) required; speaker, id, language, labels / label columns,
  text, start, end, words, alignment optional (docs/corpora.md)"""

OPTIONS: dict[str, Option] = {
    "path": Option("manifest.jsonl", "str", "the manifest file, relative to the root"),
    "format": Option("auto", "str", "file format (auto: from the suffix)", choices=("auto", "jsonl", "csv", "tsv")),
    "label_columns": Option(None, "strs?", "columns / keys read as labels (null: every non-reserved one)"),
    "label_map": Option({}, "dict", "label -> {value: new value}, applied after reading"),
    "split_map": Option({}, "dict", "split value -> train/dev/test, e.g. {devel: dev}"),
    "dev_test_fraction": Option(0.0, "float", "share of the dev rows moved to test, by whole speakers in hash "
                                              "order (HealthCall30: 0.5, half of the development set)", minimum=0),
    "dev_speakers_from_train": Option(0, "int", "when the manifest has no dev rows: this many whole training "
                                               "speakers become dev, in SHA-256 order of their names (FESC: 1, as "
                                               "its test split is one speaker); 0: none, and a classification cell "
                                               "then fails naming this option", minimum=0),
    "task_subsets": Option({}, "dict", "task -> subset name (manifest field `subsets`): the task reads only "
                                       "that subset's rows (Lahjoita Puhetta: {small_models: 360h, gender: 360h, "
                                       "topic: 490h}); a task not named reads every row"),
    "name": Option(None, "str?", "dataset name (default: the manifest's file name without suffix)"),
    "url": Option("", "str", "where the corpus can be obtained (shown when it is missing)"),
    "alignment_tier": Option("words", "str", "the TextGrid interval tier that holds the words"),
}


def load(*, root: str | Path, language: str, options: dict[str, Any] | None = None) -> Dataset:
    """The utterances of one manifest in ``language`` (format and checks: module docstring)."""
    opts = read_options(options, OPTIONS, adapter="manifest")
    _check_maps(opts)
    url = opts["url"] or URL
    base, path = _locate(root, opts["path"], url=url)
    fmt = opts["format"] if opts["format"] != "auto" else _format(path)
    skips = Skips()
    reader = _Reader(base=base, manifest=path, language=language, opts=opts, skips=skips)
    rows = _jsonl_rows(path) if fmt == "jsonl" else _table_rows(path, fmt)
    utterances = [u for u in (reader.row(n, row, err) for n, row, err in rows) if u is not None]
    reader.report_columns()
    rules: list[str] = []
    if opts["dev_speakers_from_train"] > 0 and not any(u.split == "dev" for u in utterances):
        utterances, rule = dev_from_train(utterances, speakers=opts["dev_speakers_from_train"], manifest=path)
        rules.append(rule)
    if opts["dev_test_fraction"] > 0:
        utterances = dev_to_test(utterances, fraction=opts["dev_test_fraction"])
        rules.append(f"test: {opts['dev_test_fraction']:g} of the dev rows, by whole speakers in SHA-256 order "
                     "(option dev_test_fraction)")
    return finish(name=opts["name"] or path.stem, language=language, root=base, utterances=utterances, skips=skips,
                  split_rules=rules, task_subsets=sorted((str(k), str(v)) for k, v in opts["task_subsets"].items()))


def _check_maps(opts: dict[str, Any]) -> None:
    """ConfigError unless label_map is {label: {value: value}} and split_map is {value: train|dev|test}."""
    where = "corpus adapter 'manifest'"
    problems = [Problem(where, f"options.label_map.{k}", "a mapping of value -> new value", repr(v))
                for k, v in opts["label_map"].items() if not isinstance(v, dict)]
    problems += [Problem(where, f"options.split_map.{k}", "one of " + ", ".join(SPLITS), repr(v))
                 for k, v in opts["split_map"].items() if v not in SPLITS]
    if problems:
        raise ConfigError(problems)


def _locate(root: str | Path, relative: str, *, url: str) -> tuple[Path, Path]:
    """(corpus root, manifest file): ``root`` may be the folder or the manifest file itself."""
    if root and Path(root).expanduser().is_file():
        path = Path(root).expanduser().resolve()
        return path.parent, path
    base = corpus_root(root, corpus="manifest", layout=LAYOUT, url=url).resolve()
    path = resolve_inside(base, relative)
    if not path.is_file():
        raise DataError(f"manifest: expected the manifest file {str(path)!r} (option `path`), which does not exist.\n"
                        f"Expected layout:\n{LAYOUT}\nObtain the corpus from: {url}")
    return base, path


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return suffix[1:]
    return "jsonl"


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    try:
        yield from read_manifest_rows(path)
    except UnicodeDecodeError as e:
        raise DataError(f"manifest: {path} is not UTF-8 text ({e.reason} at byte {e.start})") from None


def _table_rows(path: Path, fmt: str) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    # surrogateescape: a byte that is not UTF-8 becomes a lone surrogate, reported per row below
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
        reader = csv.reader(f, delimiter="\t" if fmt == "tsv" else ",")
        header = next(reader, None)
        if not header:
            return
        if any(_not_utf8(h) for h in header):
            raise DataError(f"manifest: the header line of {path} is not UTF-8 text; re-save the file as UTF-8")
        header = [h.strip() for h in header]
        for fields in reader:
            number = reader.line_num
            if not fields or all(not x.strip() for x in fields):
                continue
            if any(_not_utf8(x) for x in fields):
                yield number, None, "not UTF-8 text; re-save the manifest as UTF-8"
                continue
            if len(fields) != len(header):
                yield number, None, f"expected {len(header)} fields (the header's), got {len(fields)}"
                continue
            yield number, {k: v for k, v in zip(header, fields, strict=True) if v.strip() != ""}, ""


def _not_utf8(text: str) -> bool:
    """True when ``text`` holds bytes that were not UTF-8 (lone surrogates from surrogateescape)."""
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def dev_to_test(utterances: list[Utterance], *, fraction: float) -> list[Utterance]:
    """Move about ``fraction`` of the dev utterances to test, deterministically and by whole speakers.

    Groups are speakers (an utterance of unknown speaker is its own group), taken in SHA-256 order
    of their names until ``fraction`` of the dev utterances has moved. No random state is used.
    """
    groups: dict[str, list[int]] = {}
    for i, u in enumerate(utterances):
        if u.split == "dev":
            groups.setdefault(u.speaker or f"\0{u.id}", []).append(i)
    target = fraction * sum(len(g) for g in groups.values())
    moved: set[int] = set()
    for key in sorted(groups, key=stable_key):
        if len(moved) >= target:
            break
        moved.update(groups[key])
    return [replace(u, split="test") if i in moved else u for i, u in enumerate(utterances)]


def dev_from_train(utterances: list[Utterance], *, speakers: int, manifest: Path) -> tuple[list[Utterance], str]:
    """A speaker-disjoint dev split carved from train: the first ``speakers`` training speakers in
    SHA-256 order of their names move to dev with all their rows (no random state). Returns the
    utterances and the rule as recorded in every result. A training row without a speaker, or
    fewer than ``speakers`` + 1 training speakers, is a :class:`DataError` (the carve could not be
    speaker-disjoint, or would leave no training data)."""
    train = [u for u in utterances if u.split == "train"]
    unknown = [u.id for u in train if not u.speaker]
    if unknown:
        raise DataError(f"manifest {manifest}: option dev_speakers_from_train carves dev from train by speaker, "
                        f"but {len(unknown)} training row(s) have no 'speaker' (e.g. {unknown[0]!r}); add the "
                        "speaker field, or give the manifest dev rows and set dev_speakers_from_train: 0")
    names = sorted({u.speaker for u in train}, key=stable_key)
    if len(names) <= speakers:
        raise DataError(f"manifest {manifest}: option dev_speakers_from_train is {speakers}, but the train split "
                        f"has {len(names)} speaker(s); at least one must stay in train. Lower the option or give "
                        "the manifest dev rows")
    chosen = set(names[:speakers])
    out = [replace(u, split="dev") if u.split == "train" and u.speaker in chosen else u for u in utterances]
    moved = sum(1 for u in train if u.speaker in chosen)
    rule = (f"dev: carved from train, {speakers} whole speaker(s) in SHA-256 order of their names "
            f"({', '.join(sorted(chosen))}; {moved} rows; option dev_speakers_from_train)")
    return out, rule


class _Reader:
    """Turns manifest rows into utterances, recording why a row is skipped."""

    def __init__(self, *, base: Path, manifest: Path, language: str, opts: dict[str, Any], skips: Skips):
        self.base, self.manifest = base, manifest
        self.folder = manifest.parent.relative_to(base)  # both resolved by _locate
        self.language, self.opts, self.skips = language, opts, skips
        self.label_columns = set(opts["label_columns"]) if opts["label_columns"] is not None else None
        self.seen_columns: set[str] = set()
        self.ids: dict[str, int] = {}
        self.ctm_cache: dict[Path, dict[str, Any]] = {}
        self.headers: dict[Path, float] = {}  # many segments often share one long recording

    def row(self, number: int, row: dict[str, Any] | None, error: str) -> Utterance | None:
        item = f"{self.manifest}:{number}"
        if row is None:
            self.skips.add(item, error, kind="bad row")
            return None
        self.seen_columns.update(row)
        try:
            return self._utterance(row, number, item)
        except _Skip as e:
            self.skips.add(item, str(e), kind=e.kind)
            return None

    def report_columns(self) -> None:
        """A requested label column that no row has is a configuration mistake: say so."""
        if self.label_columns is None:
            return
        absent = sorted(self.label_columns - self.seen_columns)
        if absent:
            from ..errors import did_you_mean

            hints = "".join(did_you_mean(a, self.seen_columns) for a in absent)
            raise DataError(f"manifest: label column(s) {absent} (option label_columns) appear in no row of "
                            f"{self.manifest}; columns found: {sorted(self.seen_columns)}.{hints}")

    def _utterance(self, row: dict[str, Any], number: int, item: str) -> Utterance | None:
        audio_field, split = row.get("audio"), self._split(row.get("split"))
        if not isinstance(audio_field, str) or not audio_field.strip():
            raise _Skip("missing 'audio' (a path relative to the manifest)")
        language = str(row.get("language") or self.language)
        if language != self.language:
            self.skips.add(item, f"language {language!r} is not the requested {self.language!r}", kind="other language")
            return None
        try:
            audio = resolve_inside(self.base, str(self.folder / audio_field))
        except DataError as e:
            raise _Skip(str(e), kind="path outside root") from None
        start, end = _number(row.get("start"), "start"), _number(row.get("end"), "end")
        if audio not in self.headers:
            self.headers[audio] = _header(audio)
        file_s = self.headers[audio]
        start_s, end_s = _segment(start, end, file_s)
        duration = (end_s if end_s is not None else file_s) - start_s
        utt_id = self._id(row, audio, start, end, number)
        words = self._words(row, utt_id=utt_id, start_s=start_s, duration=duration)
        return Utterance(id=utt_id, path=str(audio), split=split, language=language,
                         speaker=str(row.get("speaker") or ""), labels=self._labels(row), text=str(row.get("text") or ""),
                         words=words, start_s=start_s, end_s=end_s, duration_s=duration,
                         subsets=_subsets(row.get("subsets")))

    def _split(self, value: Any) -> str:
        value = self.opts["split_map"].get(value, value) if isinstance(value, str) else value
        if value not in SPLITS:
            raise _Skip(f"split {value!r} is not one of {', '.join(SPLITS)} (option split_map renames values)",
                        kind="bad split")
        return str(value)

    def _id(self, row: dict[str, Any], audio: Path, start: float | None, end: float | None, number: int) -> str:
        utt_id = str(row.get("id") or "").strip()
        if not utt_id:
            utt_id = audio.relative_to(self.base).with_suffix("").as_posix()
            if start is not None or end is not None:
                utt_id += f"@{start or 0:g}-{'end' if end is None else f'{end:g}'}"
        if utt_id in self.ids:
            raise _Skip(f"duplicate id {utt_id!r} (first at line {self.ids[utt_id]})", kind="duplicate id")
        self.ids[utt_id] = number
        return utt_id

    def _labels(self, row: dict[str, Any]) -> dict[str, str]:
        raw: dict[str, Any] = {}
        nested = row.get("labels")
        if nested is not None and not isinstance(nested, dict):
            raise _Skip("'labels' must be an object of label name -> value", kind="bad labels")
        raw.update(nested or {})
        self.seen_columns.update(raw)
        for key, value in row.items():
            if key not in RESERVED and (self.label_columns is None or key in self.label_columns):
                raw[key] = value
        if self.label_columns is not None:
            raw = {k: v for k, v in raw.items() if k in self.label_columns}
        labels = {}
        for key, value in raw.items():
            if value is None or value == "":
                continue
            if not isinstance(value, str | int) or isinstance(value, bool):
                raise _Skip(f"label {key!r} must be a string, got {value!r}", kind="bad labels")
            value = str(value).strip()
            labels[key] = str(self.opts["label_map"].get(key, {}).get(value, value))
        return labels

    def _words(self, row: dict[str, Any], *, utt_id: str, start_s: float, duration: float) -> tuple[Any, ...]:
        try:
            if row.get("words") not in (None, "", []):
                words = words_from_field(row["words"])
                return fit_words(words, duration_s=duration, item=utt_id, skips=self.skips)
            if row.get("alignment"):
                words = self._alignment_file(str(row["alignment"]), utt_id)
                return fit_words(words, duration_s=duration, item=utt_id, skips=self.skips, offset_s=start_s)
        except AlignmentError as e:
            raise _Skip(str(e), kind="bad alignment") from None
        return ()

    def _alignment_file(self, relative: str, utt_id: str) -> tuple[Any, ...]:
        try:
            path = resolve_inside(self.base, str(self.folder / relative))
        except DataError as e:
            raise _Skip(str(e), kind="path outside root") from None
        if not path.is_file():
            raise AlignmentError(f"alignment file {str(path)!r} is missing")
        if path.suffix.lower() == ".ctm":
            if path not in self.ctm_cache:
                self.ctm_cache[path] = read_ctm(path, self.skips)
            return tuple(self.ctm_cache[path].get(utt_id, ()))
        return read_textgrid(path, tier=self.opts["alignment_tier"])


class _Skip(Exception):
    """A row that cannot be used; the message is the reason."""

    def __init__(self, reason: str, *, kind: str | None = None):
        super().__init__(reason)
        self.kind = kind or reason


def _subsets(value: Any) -> tuple[str, ...]:
    """The row's ``subsets``: a list of names, or names separated by commas / spaces (CSV)."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return tuple(sorted({v for v in value.replace(",", " ").split() if v}))
    if isinstance(value, list) and all(isinstance(v, str | int) and not isinstance(v, bool) for v in value):
        return tuple(sorted({str(v) for v in value}))
    raise _Skip(f"'subsets' must be a list of names or a text of names, got {value!r}", kind="bad subsets")


def _number(value: Any, name: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _Skip(f"{name} {value!r} is not a number of seconds", kind="bad segment") from None
    if isinstance(value, bool) or not math.isfinite(number):
        raise _Skip(f"{name} {value!r} is not a number of seconds", kind="bad segment")
    return number


def _header(audio: Path) -> float:
    from ..errors import AudioError

    if not audio.is_file():
        raise _Skip(f"audio file {str(audio)!r} is missing", kind="missing audio")
    try:
        return header_duration(audio)
    except AudioError as e:
        raise _Skip(str(e), kind="unreadable audio") from None


def _segment(start: float | None, end: float | None, file_s: float, *, tolerance_s: float = 0.05) -> tuple[float, float | None]:
    start_s = start or 0.0
    if start_s < 0:
        raise _Skip(f"start {start_s} is negative", kind="bad segment")
    if end is not None and end <= start_s:
        raise _Skip(f"end {end} is not after start {start_s}", kind="bad segment")
    if start_s >= file_s or (end is not None and end > file_s + tolerance_s):
        raise _Skip(f"segment {start_s:g}-{end if end is not None else 'end'} s lies outside the audio "
                    f"({file_s:.2f} s)", kind="bad segment")
    return start_s, (min(end, file_s) if end is not None else None)
