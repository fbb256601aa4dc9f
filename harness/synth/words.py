"""Word alignments from espeak's word events, trimmed to where each word's sound starts and stops."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from ..data import Word

SILENCE_FRAME_MS = 5.0
SILENCE_REL_RMS = 0.03  # a 5 ms frame below 3 % of the utterance's loudest frame counts as silence
_EDGE_PUNCT = ".,;:!?\"()[]{}«»“”‘’'…-–—"


def tokenize(text: str) -> list[tuple[str, int, int]]:
    """(word, first char, end char) per word of ``text``: lowercased, edge punctuation removed.

    Inner apostrophes and hyphens stay (``m'inscrire``, ``est-ce``): espeak speaks such a token
    as one word and reports one word event for it.
    """
    out = []
    for m in re.finditer(r"\S+", text):
        raw = m.group().replace("’", "'")
        word = raw.strip(_EDGE_PUNCT).lower()
        if word:
            start = m.start() + len(raw) - len(raw.lstrip(_EDGE_PUNCT))
            out.append((word, start, start + len(word)))
    return out


def align_words(*, text: str, event_positions: Sequence[tuple[int, int]], audio: np.ndarray,
                engine_rate_hz: int, duration_s: float) -> tuple[Word, ...]:
    """Word alignments from espeak's word events.

    ``event_positions``: (0-based character offset, start sample at ``engine_rate_hz``) per event.
    Each event is matched to the token that contains its character offset, or to the next token
    when the offset falls between tokens (espeak points one character early, at the space, for
    the first word of a sentence after the first); a token with no event is joined to the
    previous word (``"in the"``: espeak speaks some function words as one), or to the next one at
    the start; extra events on one token are ignored. A word spans from its event to the next word's event (or the audio
    end), trimmed to where its sound starts and stops. Words lie inside [0, duration_s].
    """
    tokens = tokenize(text)
    if not tokens or not event_positions:
        return ()
    first_sample: dict[int, int] = {}
    for char_pos, sample in event_positions:
        k = _token_at(tokens, char_pos)
        if k is not None:
            first_sample.setdefault(k, sample)
    if not first_sample:
        return ()
    groups = _group_tokens([t for t, _, _ in tokens], set(first_sample))
    rms, frame = _frame_rms(audio, engine_rate_hz=engine_rate_hz)
    threshold = SILENCE_REL_RMS * float(rms.max()) if rms.size else 0.0
    bounds = [first_sample[k] for k, _ in groups] + [len(audio)]
    bounds = list(np.maximum.accumulate(np.clip(bounds, 0, len(audio))))
    words = []
    for (_, word), start, stop in zip(groups, bounds[:-1], bounds[1:], strict=True):
        start, stop = _trim_silence(rms, frame=frame, start=int(start), stop=int(stop), threshold=threshold)
        start_s = min(start / engine_rate_hz, duration_s)
        end_s = min(stop / engine_rate_hz, duration_s)
        if end_s > start_s:
            words.append(Word(word, round(start_s, 6), round(end_s, 6)))
    return tuple(words)


def _token_at(tokens: Sequence[tuple[str, int, int]], char_pos: int) -> int | None:
    """Index of the token holding ``char_pos``, else of the next one; None past the last token."""
    for k, (_, _, end_char) in enumerate(tokens):
        if char_pos < end_char:
            return k
    return None


def _group_tokens(tokens: Sequence[str], aligned: set[int]) -> list[tuple[int, str]]:
    """(aligned token index, text) per word: unaligned tokens join their neighbour."""
    groups: list[tuple[int, list[str]]] = []
    leading: list[str] = []
    for i, tok in enumerate(tokens):
        if i in aligned:
            groups.append((i, leading + [tok]))
            leading = []
        elif groups:
            groups[-1][1].append(tok)
        else:
            leading.append(tok)
    return [(i, " ".join(ws)) for i, ws in groups]


def _frame_rms(audio: np.ndarray, *, engine_rate_hz: int) -> tuple[np.ndarray, int]:
    frame = max(int(round(engine_rate_hz * SILENCE_FRAME_MS / 1000)), 1)
    n = -(-len(audio) // frame)
    padded = np.zeros(n * frame, dtype=np.float64)
    padded[: len(audio)] = audio
    return np.sqrt((padded.reshape(n, frame) ** 2).mean(axis=1)), frame


def _trim_silence(rms: np.ndarray, *, frame: int, start: int, stop: int, threshold: float) -> tuple[int, int]:
    """Shrink [start, stop) to its frames above ``threshold``; unchanged when none are."""
    first, last = start // frame, -(-stop // frame)
    loud = np.flatnonzero(rms[first:last] > threshold)
    if loud.size == 0:
        return start, stop
    return max(start, (first + int(loud[0])) * frame), min(stop, (first + int(loud[-1]) + 1) * frame)
