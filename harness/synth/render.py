"""Synthesis of one planned utterance with espeak (run in the generator's child process)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data import Word, resample
from .languages import LANGUAGE_PROFILES
from .options import SAMPLE_RATE_HZ
from .plan import LONG_FIRST_SENTENCES, LONG_MIN_S, SHORT_MAX_S, TYPICAL_MIN_S, UtterancePlan
from .words import align_words


@dataclass(frozen=True)
class Rendered:
    text: str
    wav_16k: np.ndarray  # int16
    words: tuple[Word, ...]

    @property
    def duration_s(self) -> float:
        return len(self.wav_16k) / SAMPLE_RATE_HZ


def render(plan: UtterancePlan, *, engine: Any, language: str) -> Rendered:
    """Synthesise one planned utterance.

    typical: its first sentence, or its first two when one lasts under TYPICAL_MIN_S; short: the
    first sentence cut word by word until under SHORT_MAX_S; long: sentences added until the audio
    passes LONG_MIN_S.
    """
    if plan.kind == "long":
        for n in range(LONG_FIRST_SENTENCES, len(plan.sentences) + 1):
            out = _synth(". ".join(plan.sentences[:n]) + ".", plan=plan, engine=engine, language=language)
            if out.duration_s > LONG_MIN_S:
                return out
        raise RuntimeError(f"{plan.id}: {len(plan.sentences)} sentences stay under {LONG_MIN_S} s")
    words = plan.sentences[0].split()
    out = _synth(" ".join(words), plan=plan, engine=engine, language=language)
    if plan.kind == "typical" and out.duration_s < TYPICAL_MIN_S:
        return _synth(". ".join(plan.sentences[:2]) + ".", plan=plan, engine=engine, language=language)
    while plan.kind == "short" and out.duration_s >= SHORT_MAX_S:
        if len(words) <= 2:
            raise RuntimeError(f"{plan.id}: two words still last {out.duration_s:.2f} s")
        words = words[:-1]
        out = _synth(" ".join(words), plan=plan, engine=engine, language=language)
    return out


def _synth(text: str, *, plan: UtterancePlan, engine: Any, language: str) -> Rendered:
    voice = f"{LANGUAGE_PROFILES[language].voice}+{plan.speaker.variant}"
    syn = engine.synth(text, voice=voice, seed=plan.seed, **plan.prosody.espeak_kwargs())
    wav = resample(syn.audio.astype(np.float32) / 32768.0, syn.sample_rate, SAMPLE_RATE_HZ)
    wav_16k = np.clip(np.round(wav * 32768.0), -32768, 32767).astype(np.int16)
    duration_s = len(wav_16k) / SAMPLE_RATE_HZ
    events = [(w.text_position, w.start_sample) for w in syn.words]
    words = align_words(text=text, event_positions=events, audio=syn.audio, engine_rate_hz=syn.sample_rate,
                        duration_s=duration_s)
    return Rendered(text=text, wav_16k=wav_16k, words=words)
