"""Word alignments: Praat TextGrid, CTM, and the manifest's inline ``words``.

Times of :class:`~harness.data.Word` are seconds from the start of the utterance as
:func:`harness.data.load_audio` returns it (for a segment, from ``start_s``). Alignment files
give times from the start of the audio file; :func:`fit_words` shifts them and checks them
against the audio length: a word that ends past the end (by more than ``tolerance_s``) is
dropped and recorded, with a message, in the adapter's :class:`~harness.corpora.common.Skips`.

Silence and filler labels (``NON_WORDS``) are not words and are left out.

CTM lines: ``<utterance> <channel> <start> <duration> <word> [<confidence>]``; ``;;`` starts a
comment. TextGrid: the interval tier named ``tier`` (default ``words``, as Montreal Forced
Aligner writes it), else the only interval tier.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..data import Word
from ..errors import BenchError
from .common import Skips

NON_WORDS = frozenset({"", "sil", "sp", "spn", "<sil>", "<s>", "</s>", "<eps>", "<unk>", "<noise>", "silence"})
TEXTGRID_SUFFIXES = (".textgrid",)
CTM_SUFFIXES = (".ctm",)


class AlignmentError(BenchError):
    """An alignment file or field cannot be read; the caller skips the item and counts it."""


def read_textgrid(path: str | Path, *, tier: str = "words") -> tuple[Word, ...]:
    """The words of one TextGrid (interval tier ``tier``, else its only interval tier)."""
    from praatio import textgrid

    try:
        tg = textgrid.openTextgrid(str(path), includeEmptyIntervals=False)
    except Exception as e:  # praatio raises several types for a malformed file
        raise AlignmentError(f"{path}: not a readable TextGrid ({_first_line(e)})") from None
    names = [n for n in tg.tierNames if isinstance(tg.getTier(n), textgrid.IntervalTier)]
    if tier in names:
        chosen = tier
    elif len(names) == 1:
        chosen = names[0]
    else:
        raise AlignmentError(f"{path}: no interval tier named {tier!r} (tiers: {', '.join(names) or 'none'})")
    words = [Word(str(e.label).strip(), float(e.start), float(e.end)) for e in tg.getTier(chosen).entries]
    return tuple(w for w in words if w.word.lower() not in NON_WORDS)


def read_ctm(path: str | Path, skips: Skips | None = None) -> dict[str, tuple[Word, ...]]:
    """Words per utterance id of a CTM file; a malformed line is recorded in ``skips`` and left out."""
    out: dict[str, list[Word]] = {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise AlignmentError(f"{path}: cannot read the CTM file ({_first_line(e)})") from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith(";;"):
            continue
        parsed = _ctm_line(line)
        if isinstance(parsed, str):
            if skips is not None:
                skips.add(f"{path}:{number}", parsed, kind="bad alignment line")
            continue
        utt, word = parsed
        if word.word.lower() not in NON_WORDS:
            out.setdefault(utt, []).append(word)
    return {k: tuple(sorted(v, key=lambda w: w.start_s)) for k, v in out.items()}


def _ctm_line(line: str) -> tuple[str, Word] | str:
    fields = line.split()
    if len(fields) not in (5, 6):
        return f"expected '<utt> <channel> <start> <duration> <word> [<conf>]', got {len(fields)} fields"
    try:
        start, dur = float(fields[2]), float(fields[3])
    except ValueError:
        return f"start {fields[2]!r} and duration {fields[3]!r} must be numbers"
    if not (math.isfinite(start) and math.isfinite(dur)) or start < 0 or dur <= 0:
        return f"start {start} must be >= 0 and duration {dur} > 0"
    return fields[0], Word(fields[4], start, start + dur)


def words_from_field(value: Any) -> tuple[Word, ...]:
    """Inline words: ``[[word, start, end], ...]`` or ``[{"word", "start", "end"}, ...]`` (or that as JSON text)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise AlignmentError(f"words is not valid JSON ({e.msg})") from None
    if not isinstance(value, list):
        raise AlignmentError(f"words must be a list of [word, start, end], got {type(value).__name__}")
    words = []
    for i, item in enumerate(value):
        if isinstance(item, dict):
            item = [item.get("word"), item.get("start"), item.get("end")]
        if not (isinstance(item, list | tuple) and len(item) == 3 and isinstance(item[0], str)
                and all(isinstance(t, int | float) and not isinstance(t, bool) for t in item[1:])):
            raise AlignmentError(f"words[{i}] must be [word, start, end] with numeric times, got {item!r}")
        words.append(Word(item[0], float(item[1]), float(item[2])))
    return tuple(w for w in words if w.word.lower() not in NON_WORDS)


def fit_words(words: Iterable[Word], *, duration_s: float | None, item: str, skips: Skips,
              offset_s: float = 0.0, tolerance_s: float = 0.05) -> tuple[Word, ...]:
    """Words shifted by ``-offset_s`` and checked against the audio length ``duration_s``.

    A word with end <= start, a negative start, or an end past ``duration_s + tolerance_s`` is
    dropped and recorded in ``skips`` (kind ``word outside audio``); an end within the tolerance is
    clamped to the audio length.
    """
    kept = []
    for w in words:
        start, end = w.start_s - offset_s, w.end_s - offset_s
        where = f"word {w.word!r} {w.start_s:.2f}-{w.end_s:.2f} s"
        if not (math.isfinite(start) and math.isfinite(end)) or end <= start or start < -tolerance_s:
            skips.add(item, f"{where} has an empty or negative span; dropped", kind="word outside audio")
            continue
        if duration_s is not None and end > duration_s + tolerance_s:
            skips.add(item, f"{where} ends past the end of the audio ({duration_s + offset_s:.2f} s); dropped",
                      kind="word outside audio")
            continue
        end = min(end, duration_s) if duration_s is not None else end
        kept.append(Word(w.word, max(start, 0.0), end))
    return tuple(kept)


class AlignmentIndex:
    """Word alignments for the ``alignments`` option of an adapter: a CTM file, or a folder.

    A folder is searched recursively for ``<utterance id>.TextGrid`` files and ``*.ctm`` files
    (all CTM files are merged). :meth:`words` returns None for an utterance without alignment.
    """

    def __init__(self, path: Path, *, skips: Skips, tier: str = "words"):
        self.path, self.tier, self.skips = path, tier, skips
        self._ctm: dict[str, tuple[Word, ...]] = {}
        self._textgrids: dict[str, Path] = {}
        if path.is_file():
            self._ctm = read_ctm(path, skips)
        elif path.is_dir():
            for p in sorted(path.rglob("*")):
                suffix = p.suffix.lower()
                if suffix in TEXTGRID_SUFFIXES:
                    self._textgrids.setdefault(p.stem, p)
                elif suffix in CTM_SUFFIXES:
                    for utt, ws in read_ctm(p, skips).items():
                        self._ctm.setdefault(utt, ws)
        else:
            raise AlignmentError(f"alignments {str(path)!r} is neither a CTM file nor a folder")

    def __len__(self) -> int:
        return len(self._ctm) + len(self._textgrids)

    def words(self, utterance_id: str) -> tuple[Word, ...] | None:
        if utterance_id in self._ctm:
            return self._ctm[utterance_id]
        tg = self._textgrids.get(utterance_id)
        if tg is None:
            return None
        try:
            return read_textgrid(tg, tier=self.tier)
        except AlignmentError as e:
            self.skips.add(utterance_id, f"alignment not used: {e}", kind="bad alignment file")
            return None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:200]


# --------------------------------------------------------------------------- the shared option
def alignment_options() -> dict[str, Any]:
    """The ``alignments`` / ``alignment_tier`` options every folder-layout adapter accepts."""
    from .common import Option

    return {
        "alignments": Option(None, "str?", "a CTM file or a folder of <utterance id>.TextGrid / *.ctm files "
                                           "with word alignments (relative to the corpus root, or absolute)"),
        "alignment_tier": Option("words", "str", "the TextGrid interval tier that holds the words"),
    }


def open_alignments(root: Path, options: dict[str, Any], skips: Skips) -> AlignmentIndex | None:
    """The AlignmentIndex named by ``options['alignments']`` (None when not set).

    Raises DataError when the path is set but does not exist: the user asked for alignments.
    """
    from ..errors import DataError

    value = options.get("alignments")
    if not value:
        return None
    path = Path(value).expanduser()
    path = path if path.is_absolute() else root / path
    if not path.exists():
        raise DataError(f"alignments: {str(path)!r} does not exist (option `alignments`: a CTM file or a folder "
                        "of <utterance id>.TextGrid / *.ctm files)")
    return AlignmentIndex(path, skips=skips, tier=options.get("alignment_tier", "words"))


def aligned_words(index: AlignmentIndex | None, utterance_id: str, *, duration_s: float | None,
                  skips: Skips, offset_s: float = 0.0) -> tuple[Word, ...]:
    """The checked words of one utterance from ``index`` (empty when there is none)."""
    if index is None:
        return ()
    words = index.words(utterance_id)
    if not words:
        return ()
    return fit_words(words, duration_s=duration_s, item=utterance_id, skips=skips, offset_s=offset_s)
