"""The parts every corpus adapter shares: options, the corpus root, skip accounting, durations.

Contracts:

* Options are validated against an adapter's ``OPTIONS`` table; every problem is reported at once
  (:class:`~harness.errors.ConfigError`), an unknown key with a did-you-mean.
* A missing corpus or a missing required file raises :class:`~harness.errors.DataError` saying
  what was expected where, the layout, and where the corpus can be obtained.
* A bad item (row, line, file) is never fatal: it is recorded in :class:`Skips` as
  ``"<item>: <reason>"`` and ends up in :attr:`harness.data.Dataset.skipped`.
* Deterministic choices (speaker carving, dev hold-outs) depend on hashes of names, never on a
  random generator's state.
"""

from __future__ import annotations

import copy
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..data import SPLITS, Dataset, Utterance, audio_info
from ..errors import AudioError, ConfigError, DataError
from ..identity import text_hash
from ..options import Option, check_options

AUDIO_SUFFIXES = (".wav", ".flac", ".aiff", ".aif", ".mp3", ".ogg")

def read_options(options: Mapping[str, Any] | None, spec: Mapping[str, Option], *,
                 adapter: str) -> dict[str, Any]:
    """``options`` checked against ``spec`` and completed with defaults.

    Raises ConfigError listing every problem. A single string given for a list option becomes a
    one-item list.
    """
    where = f"corpus adapter {adapter!r}"
    problems = check_options(options, spec, where=where)
    if problems:
        raise ConfigError(problems)
    out = {k: copy.deepcopy(o.default) for k, o in spec.items()}
    for key, value in (options or {}).items():
        kind = spec[key].kind
        if kind in ("strs", "strs?") and isinstance(value, str | int):
            value = [str(value)]
        elif kind in ("strs", "strs?") and value is not None:
            value = [str(v) for v in value]
        elif kind in ("float", "float?") and value is not None:
            value = float(value)
        out[key] = value
    return out


# --------------------------------------------------------------------------- the corpus on disk
def corpus_root(root: str | Path | None, *, corpus: str, layout: str, url: str) -> Path:
    """The corpus root as an existing folder, or a DataError that says what to put where."""
    if root is None or str(root).strip() == "":
        raise DataError(
            f"{corpus}: no corpus root given. Set `root:` for this corpus in benchmark.yaml "
            f"(an environment variable works: root: ${{{corpus.upper()}_ROOT:-/data/{corpus}}}).\n"
            f"Expected layout:\n{layout}\nObtain the corpus from: {url}")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DataError(
            f"{corpus}: the corpus root {str(path)!r} does not exist or is not a folder.\n"
            f"Expected layout:\n{layout}\nObtain the corpus from: {url}")
    return path


def missing(what: str, where: Path, *, corpus: str, layout: str, url: str) -> DataError:
    """The DataError for a required file or folder that is not there."""
    return DataError(
        f"{corpus}: expected {what} at {str(where)!r}, which does not exist.\n"
        f"Expected layout:\n{layout}\nObtain the corpus from: {url}")


def check_language(corpus: str, language: str, allowed: Iterable[str]) -> None:
    """DataError when ``language`` is not one the corpus provides."""
    allowed = tuple(allowed)
    if language not in allowed:
        raise DataError(f"{corpus}: this corpus provides language(s) {', '.join(allowed)}; "
                        f"a task asked for {language!r}. Point the task's {language!r} source at another corpus.")


class Skips:
    """What was skipped while reading a corpus, as ``"<item>: <reason>"`` strings, in order."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.reasons: Counter[str] = Counter()

    def add(self, item: str, reason: str, *, kind: str | None = None) -> None:
        """Record one skipped item; ``kind`` groups reasons for :meth:`counts` (default: the reason)."""
        self.items.append(f"{item}: {reason}")
        self.reasons[kind or reason] += 1

    def note(self, text: str) -> None:
        """Record a summary line (e.g. a count of rows dropped for one reason)."""
        self.items.append(text)

    def __len__(self) -> int:
        return len(self.items)

    def counts(self) -> dict[str, int]:
        return dict(self.reasons)


def duration_s(path: str | Path) -> float:
    """Duration of an audio file from its header (no samples read). Raises AudioError."""
    frames, rate, _ = audio_info(path)
    if rate <= 0:
        raise AudioError(f"{path}: header gives sample rate {rate}")
    if frames <= 0:
        raise AudioError(f"{path}: empty audio (0 frames in the header)")
    return frames / rate


def probe(path: Path, item: str, skips: Skips) -> float | None:
    """Duration of ``path`` or None after recording why it cannot be used (missing, unreadable)."""
    if not path.is_file():
        skips.add(item, f"audio file {str(path)!r} is missing", kind="missing audio")
        return None
    try:
        return duration_s(path)
    except AudioError as e:
        skips.add(item, str(e), kind="unreadable audio")
        return None


def stable_key(text: str, *, salt: str = "") -> str:
    """A hash that orders names deterministically (same names, same order, on every machine)."""
    return text_hash(f"{salt}\0{text}", None)


def fold(text: str) -> str:
    """Case- and accent-insensitive form of a name (``'Colère'`` and ``'colere'`` match).

    Archives made on macOS store names decomposed (NFD); NFKD + dropping combining marks folds both.
    """
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def finish(*, name: str, language: str, root: Path, utterances: Iterable[Utterance],
           skips: Skips, split_rules: Iterable[str] = (),
           task_subsets: Iterable[tuple[str, str]] = ()) -> Dataset:
    """The Dataset: duplicate ids skipped (the first one kept), utterances ordered by split, then id."""
    seen: set[str] = set()
    kept: list[Utterance] = []
    for u in utterances:
        if u.id in seen:
            skips.add(u.id, f"duplicate utterance id (file {u.path}); the first one is kept", kind="duplicate id")
            continue
        seen.add(u.id)
        kept.append(u)
    order = {s: i for i, s in enumerate(SPLITS)}
    kept.sort(key=lambda u: (order.get(u.split, len(order)), u.id))
    return Dataset(name=name, language=language, root=root, utterances=tuple(kept), skipped=tuple(skips.items),
                   split_rules=tuple(split_rules), task_subsets=tuple(task_subsets))


def label_values(dataset: Dataset, label: str) -> tuple[str, ...]:
    """The sorted distinct values of ``label`` over all splits (e.g. SLURP's intent classes)."""
    return tuple(sorted({u.labels[label] for u in dataset.utterances if u.labels.get(label)}))
