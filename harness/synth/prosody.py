"""Prosody: the espeak parameters of an utterance, the emotion profiles and the speaker spread.

An emotion is a profile of espeak parameters; one utterance's parameters are the profile mean
plus a per-speaker offset plus a per-utterance jitter, clipped to :data:`PROSODY_LIMITS` (the
package docstring of :mod:`harness.synth` tabulates them).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np


@dataclass(frozen=True)
class Prosody:
    """espeak parameters: pitch and range 0-100, rate in words/min, volume 0-200, gap in 10 ms."""

    pitch: float
    pitch_range: float
    rate_wpm: float
    volume: float
    wordgap_10ms: float

    def __add__(self, other: Prosody) -> Prosody:
        return Prosody(*(a + b for a, b in zip(self.values(), other.values(), strict=True)))

    def values(self) -> tuple[float, ...]:
        return tuple(getattr(self, f.name) for f in fields(self))

    def clipped(self) -> Prosody:
        limited = zip(self.values(), PROSODY_LIMITS, strict=True)
        return Prosody(*(float(np.clip(v, lo, hi)) for v, (lo, hi) in limited))

    def espeak_kwargs(self) -> dict[str, int]:
        p = self.clipped()
        return {"pitch": round(p.pitch), "pitch_range": round(p.pitch_range), "rate": round(p.rate_wpm),
                "volume": round(p.volume), "wordgap": round(p.wordgap_10ms)}


PROSODY_LIMITS = ((0, 100), (0, 100), (100, 260), (40, 130), (0, 8))
SPEAKER_OFFSET_SD = Prosody(pitch=5, pitch_range=8, rate_wpm=10, volume=8, wordgap_10ms=0.7)
UTTERANCE_JITTER_SD = Prosody(pitch=5, pitch_range=10, rate_wpm=12, volume=10, wordgap_10ms=1.0)

EMOTION_PROFILES: dict[str, dict[str, Prosody]] = {
    "en": {  # IEMOCAP, 4 classes
        "neutral": Prosody(50, 45, 165, 100, 1),
        "sad": Prosody(40, 25, 135, 80, 3),
        "happy": Prosody(62, 75, 185, 110, 1),
        "angry": Prosody(56, 65, 195, 122, 0),
    },
    "fi": {  # FESC, 5 classes
        "neutral": Prosody(50, 45, 160, 100, 1),
        "sadness": Prosody(40, 25, 130, 80, 3),
        "joy": Prosody(63, 75, 185, 110, 1),
        "affection": Prosody(56, 60, 145, 85, 2),
        "anger": Prosody(54, 65, 195, 122, 0),
    },
    "fr": {  # CaFE, 7 classes
        "neutral": Prosody(50, 45, 165, 100, 1),
        "sadness": Prosody(40, 25, 135, 80, 3),
        "happiness": Prosody(62, 75, 185, 110, 1),
        "anger": Prosody(55, 65, 195, 122, 0),
        "fear": Prosody(66, 55, 200, 90, 1),
        "disgust": Prosody(42, 40, 145, 95, 2),
        "surprise": Prosody(68, 85, 175, 112, 1),
    },
}
