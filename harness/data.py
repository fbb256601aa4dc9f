"""Corpora as small immutable values, the JSONL manifest format, and audio input.

Every corpus adapter (the embedded synthetic corpus, LibriSpeech, IEMOCAP, ... and the generic
manifest) returns a :class:`Dataset`: utterances with their split, speaker, labels, text and
optional word alignments. Audio is read with soundfile, downmixed to mono and resampled to the
upstream's rate; a bad item raises :class:`~harness.errors.AudioError` with the reason, and the
caller skips and counts it.

Manifest (JSONL, one object per line; paths relative to the manifest's folder)::

    {"id": "spk01_0003", "audio": "wav/spk01_0003.wav", "split": "train", "language": "en",
     "speaker": "spk01", "labels": {"gender": "female", "emotion": "happy", "intent": "alarm_set"},
     "text": "wake me up at seven", "words": [["wake", 0.12, 0.41], ...],
     "start": null, "end": null, "duration": 2.31}
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .errors import AudioError, DataError
from .identity import audio_set_fingerprint
from .tempfiles import atomic_file

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Word:
    word: str
    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class Utterance:
    id: str
    path: str  # absolute path of the audio file
    split: str  # train | dev | test
    language: str
    speaker: str
    labels: Mapping[str, str] = field(default_factory=dict)
    text: str = ""
    words: tuple[Word, ...] = ()
    start_s: float = 0.0  # segment of a longer file
    end_s: float | None = None
    duration_s: float | None = None  # known duration of the (segment of) audio, when known
    subsets: tuple[str, ...] = ()  # named subsets of the corpus holding this row (manifest field `subsets`)

    def label(self, name: str) -> str | None:
        return self.labels.get(name)


@dataclass(frozen=True)
class Dataset:
    """A corpus in one language: its utterances and what was skipped while reading it."""

    name: str
    language: str
    root: Path
    utterances: tuple[Utterance, ...]
    skipped: tuple[str, ...] = ()  # "<item>: <reason>" for rows that could not be used
    split_rules: tuple[str, ...] = ()  # how the adapter made splits the corpus does not ship (recorded in results)
    task_subsets: tuple[tuple[str, str], ...] = ()  # (task, subset): a task reads only that subset's rows

    def split(self, name: str) -> list[Utterance]:
        return [u for u in self.utterances if u.split == name]

    @property
    def fingerprint(self) -> str:
        """Identity of the audio set: ids, files (size and mtime) and segment bounds
        (:func:`harness.identity.audio_set_fingerprint`; stats every file on each access)."""
        return audio_set_fingerprint(self.utterances)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for s in SPLITS:
            us = self.split(s)
            out[s] = {"utterances": len(us), "speakers": len({u.speaker for u in us}),
                      "hours": round(sum(u.duration_s or 0.0 for u in us) / 3600, 4)}
        out["skipped"] = len(self.skipped)
        return out

    def subset(self, utterances: Iterable[Utterance]) -> Dataset:
        return replace(self, utterances=tuple(utterances))


def item_speakers(item_ids: Sequence[str], utterances: Iterable[Utterance]) -> list[str] | None:
    """The speaker of each item (``<utterance id>`` or a word ``<utterance id>#<k>``), or None when
    one of them is not named (an empty speaker, or an id not among ``utterances``): the
    clustered bootstrap needs every item's speaker or none."""
    speaker = {u.id: u.speaker for u in utterances}
    out = [speaker.get(i.split("#", 1)[0], "") for i in item_ids]
    return out if all(out) else None


# --------------------------------------------------------------------------- task view
@dataclass(frozen=True)
class LabelledSet:
    """The items of one task and split, with integer labels, plus what was skipped and why."""

    utterances: tuple[Utterance, ...]
    labels: tuple[int, ...]
    classes: tuple[str, ...]
    skipped: tuple[str, ...] = ()


def labelled(utterances: Iterable[Utterance], *, label: str, classes: Iterable[str]) -> LabelledSet:
    """Keep utterances whose ``label`` is in ``classes``; skip (and say why) the others."""
    classes = tuple(classes)
    index = {c: i for i, c in enumerate(classes)}
    keep, ys, skipped = [], [], []
    for u in utterances:
        v = u.labels.get(label)
        if v is None or v == "":
            skipped.append(f"{u.id}: no {label!r} label")
        elif v not in index:
            skipped.append(f"{u.id}: {label} {v!r} is not one of the task's classes {list(classes)}")
        else:
            keep.append(u)
            ys.append(index[v])
    return LabelledSet(tuple(keep), tuple(ys), classes, tuple(skipped))


# --------------------------------------------------------------------------- manifest I/O
def write_manifest(path: str | Path, utterances: Iterable[Utterance], *, root: str | Path | None = None) -> None:
    """Write utterances as JSONL with audio paths relative to ``root`` (default: the manifest's folder)."""
    path = Path(path)
    root = Path(root) if root else path.parent
    with atomic_file(path, "w", wrap_errors=False) as f:
        for u in utterances:
            row = {"id": u.id, "audio": os.path.relpath(u.path, root), "split": u.split,
                   "language": u.language, "speaker": u.speaker, "labels": dict(u.labels), "text": u.text,
                   "words": [[w.word, round(w.start_s, 6), round(w.end_s, 6)] for w in u.words],
                   "start": u.start_s or None, "end": u.end_s, "duration": u.duration_s,
                   **({"subsets": list(u.subsets)} if u.subsets else {})}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_manifest_rows(path: str | Path) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    """Yield (line number, row or None, error) for each non-empty line of a JSONL manifest.

    Lines are decoded one by one, so a line that is not UTF-8 (JSON text must be) is reported
    as that line's error and the other lines are read."""
    with open(path, "rb") as f:
        for i, raw in enumerate(f, 1):
            try:
                line = (raw.removeprefix(b"\xef\xbb\xbf") if i == 1 else raw).decode("utf-8")
            except UnicodeDecodeError as e:
                yield i, None, (f"not UTF-8 text ({e.reason}, byte 0x{raw[e.start]:02x} at column {e.start + 1}); "
                                "re-save the manifest as UTF-8")
                continue
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                yield i, None, f"not valid JSON ({e.msg})"
                continue
            if not isinstance(row, dict):
                yield i, None, "not a JSON object"
                continue
            yield i, row, ""


def resolve_inside(root: Path, relative: str) -> Path:
    """``root / relative``, refusing paths that resolve outside ``root`` (``../``, absolute, symlinks)."""
    root_r = root.resolve()
    p = (root / relative).resolve()
    if p != root_r and root_r not in p.parents:
        raise DataError(f"path {relative!r} resolves to {p}, outside the corpus root {root_r}; refused")
    return p


# --------------------------------------------------------------------------- audio input
def audio_info(path: str | Path) -> tuple[int, int, int]:
    """(frames, sample_rate, channels) from the header, without reading samples."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception as e:  # soundfile raises several types (LibsndfileError, RuntimeError)
        raise AudioError(f"{path}: unreadable audio ({_why_unreadable(path, e)})") from None
    return info.frames, info.samplerate, info.channels


def load_audio(path: str | Path, *, sample_rate: int, start_s: float = 0.0, end_s: float | None = None,
               max_duration_s: float | None = None) -> np.ndarray:
    """Mono float32 samples of ``path`` (or of [start_s, end_s]) at ``sample_rate``.

    Raises AudioError (the item is skipped by the caller) when the file cannot be read, is
    empty, holds NaN/inf samples or only zeros, or when the segment lies outside the file.
    """
    import soundfile as sf

    path = str(path)
    try:
        with sf.SoundFile(path) as f:
            sr = f.samplerate
            start = int(round(start_s * sr))
            stop = f.frames if end_s is None else int(round(end_s * sr))
            if max_duration_s is not None:
                stop = min(stop, start + int(max_duration_s * sr))
            if f.frames > 0 and (start >= f.frames or stop > f.frames + sr * 0.05):
                raise AudioError(f"{path}: segment {start_s:.2f}-{end_s if end_s is not None else 'end'} s "
                                 f"lies outside the file ({f.frames / sr:.2f} s)")
            f.seek(min(start, max(f.frames - 1, 0)))
            data = f.read(frames=max(min(stop, f.frames) - start, 0), dtype="float32", always_2d=True)
    except AudioError:
        raise
    except Exception as e:
        raise AudioError(f"{path}: unreadable audio ({_why_unreadable(path, e)})") from None
    if data.size == 0:
        raise AudioError(f"{path}: empty audio (0 samples)")
    wav = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(wav).all():
        raise AudioError(f"{path}: audio holds NaN or infinite samples")
    if not np.any(wav):
        raise AudioError(f"{path}: audio is silent (all samples are zero)")
    if sr != sample_rate:
        wav = resample(wav, sr, sample_rate)
    return np.ascontiguousarray(wav, dtype=np.float32)


def resample(wav: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """Polyphase resampling (scipy), exact for rational ratios such as 44100 -> 16000."""
    from scipy.signal import resample_poly

    g = math.gcd(int(from_hz), int(to_hz))
    return resample_poly(wav, to_hz // g, from_hz // g).astype(np.float32)


def _why_unreadable(path: str | Path, e: BaseException) -> str:
    """soundfile's reason, or a plainer one for an empty file (libsndfile says 'Format not recognised')."""
    try:
        if os.path.getsize(path) == 0:
            return "empty file, 0 bytes"
    except OSError:
        pass
    return _short(e)


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:200]


def label_counts(utterances: Iterable[Utterance], label: str) -> dict[str, int]:
    return dict(sorted(Counter(u.labels.get(label, "<none>") for u in utterances).items()))
