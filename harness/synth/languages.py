"""Voices and language profiles: what one language of the corpus holds (voice, emotions, semantic label)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import BenchError, did_you_mean
from ..schema import LANGUAGES
from .prosody import EMOTION_PROFILES, Prosody
from .texts import EN_INTENTS, EN_OPENERS, FI_OPENERS, FI_TOPICS, FR_OPENERS, FR_REQUESTS, Templates

# espeak voice variants: male ones about 70-95 Hz, female ones 220-265 Hz
MALE_VARIANTS = tuple(f"m{i}" for i in range(1, 9))
FEMALE_VARIANTS = tuple(f"f{i}" for i in range(1, 6))


@dataclass(frozen=True)
class LanguageProfile:
    """What one language of the corpus holds: its voice, emotions and semantic label."""

    code: str
    voice: str  # espeak voice name, a variant is appended as "+m3"
    paper_corpus: str  # the real corpus whose label set the emotions mirror
    emotions: Mapping[str, Prosody]
    semantic_label: str
    semantic_source: str
    semantic: Mapping[str, Templates]
    openers: tuple[str, ...]


LANGUAGE_PROFILES: dict[str, LanguageProfile] = {
    "en": LanguageProfile("en", "en", "IEMOCAP", EMOTION_PROFILES["en"], "intent", "SLURP scenario_action",
                          EN_INTENTS, EN_OPENERS),
    "fi": LanguageProfile("fi", "fi", "FESC", EMOTION_PROFILES["fi"], "topic", "Lahjoita Puhetta topics",
                          FI_TOPICS, FI_OPENERS),
    "fr": LanguageProfile("fr", "fr", "CaFE", EMOTION_PROFILES["fr"], "request", "HealthCall30 requests",
                          FR_REQUESTS, FR_OPENERS),
}



def check_language(language: str) -> None:
    if language not in LANGUAGE_PROFILES:
        raise BenchError(f"the synthetic corpus has no language {language!r}.{did_you_mean(language, LANGUAGES)} "
                         f"Known: {', '.join(LANGUAGE_PROFILES)}.")
