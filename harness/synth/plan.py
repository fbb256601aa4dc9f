"""The plan of a corpus (pure, no audio): speakers, splits, labels, sentences and prosody per utterance.

Durations. Typical utterances are one sentence (two when one lasts under ``TYPICAL_MIN_S``); the
test split adds short utterances (under ``SHORT_MAX_S``) and long ones (over ``LONG_MIN_S``,
sentences of one class joined). :mod:`harness.synth.render` applies these rules to the audio.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..schema import SynthSpec
from .languages import FEMALE_VARIANTS, LANGUAGE_PROFILES, MALE_VARIANTS, LanguageProfile
from .options import GENERATOR_VERSION
from .prosody import SPEAKER_OFFSET_SD, UTTERANCE_JITTER_SD, Prosody
from .texts import OPENER_PROBABILITY

TYPICAL_MIN_S = 1.5
SHORT_MAX_S = 3.0
LONG_MIN_S = 15.0
LONG_FIRST_SENTENCES = 5  # a long utterance starts with this many sentences and grows until > LONG_MIN_S
LONG_MAX_SENTENCES = 16


@dataclass(frozen=True)
class SpeakerPlan:
    index: int  # 0-based position among the language's speakers
    id: str  # "en_spk03"
    gender: str  # male | female
    split: str
    variant: str  # espeak voice variant, "m3"
    offset: Prosody


@dataclass(frozen=True)
class UtterancePlan:
    """Everything needed to synthesise one utterance; ``kind`` is typical, short or long."""

    id: str
    speaker: SpeakerPlan
    kind: str
    emotion: str
    semantic: str
    sentences: tuple[str, ...]  # long: candidates, used in order until the audio passes LONG_MIN_S
    prosody: Prosody
    seed: int  # espeak's random seed for this utterance


def plan_corpus(*, language: str, spec: SynthSpec) -> list[UtterancePlan]:
    """The deterministic plan of one language's corpus, in synthesis order (no audio involved)."""
    profile = LANGUAGE_PROFILES[language]
    base = [spec.seed, zlib.crc32(language.encode()), GENERATOR_VERSION]
    class_rng = np.random.default_rng(base + [0])
    emotions = list(class_rng.permutation(list(profile.emotions)))
    semantics = list(class_rng.permutation(list(profile.semantic)))
    speakers = plan_speakers(language=language, spec=spec, base_seed=base)
    plans: list[UtterancePlan] = []
    for split in ("train", "dev", "test"):
        in_split = [s for s in speakers if s.split == split]
        extras = _extra_kinds(spec=spec, n_speakers=len(in_split)) if split == "test" else [[] for _ in in_split]
        counter = 0
        for spk, extra in zip(in_split, extras, strict=True):
            n = spec.utterances_per_speaker + len(extra)
            kinds = ["typical"] * spec.utterances_per_speaker + extra
            rng = np.random.default_rng(base + [1, spk.index])
            emo = _round_robin(emotions, start=counter, n=n, rng=rng)
            sem = _round_robin(semantics, start=counter, n=n, rng=rng)
            counter += n
            for j in range(n):
                plans.append(_plan_utterance(profile=profile, speaker=spk, index=j, kind=kinds[j],
                                             emotion=emo[j], semantic=sem[j], rng=rng))
    return plans


def plan_speakers(*, language: str, spec: SynthSpec, base_seed: Sequence[int]) -> list[SpeakerPlan]:
    """Speakers alternate male/female; train takes the first ones, then dev, then test."""
    rng = np.random.default_rng(list(base_seed) + [2])
    sizes = zip(("train", "dev", "test"), spec.split_speakers, strict=True)
    splits = [name for name, n in sizes for _ in range(n)]
    speakers = []
    for i, split in enumerate(splits):
        male = i % 2 == 0
        variants = MALE_VARIANTS if male else FEMALE_VARIANTS
        offset = Prosody(*(float(rng.normal(0.0, sd)) for sd in SPEAKER_OFFSET_SD.values()))
        speakers.append(SpeakerPlan(index=i, id=f"{language}_spk{i:02d}", gender="male" if male else "female",
                                    split=split, variant=variants[(i // 2) % len(variants)], offset=offset))
    return speakers


def _extra_kinds(*, spec: SynthSpec, n_speakers: int) -> list[list[str]]:
    """Short and long extras of the test split, dealt to its speakers in turn."""
    extra: list[list[str]] = [[] for _ in range(n_speakers)]
    kinds = ["short"] * spec.short_per_test_split + ["long"] * spec.long_per_test_split
    for i, kind in enumerate(kinds):
        extra[i % n_speakers].append(kind)
    return extra


def _round_robin(classes: Sequence[str], *, start: int, n: int, rng: np.random.Generator) -> list[str]:
    """Classes ``start .. start+n-1`` of the endless cycle, in a seeded order."""
    picked = [str(classes[(start + j) % len(classes)]) for j in range(n)]
    return [picked[k] for k in rng.permutation(n)]


def _plan_utterance(*, profile: LanguageProfile, speaker: SpeakerPlan, index: int, kind: str, emotion: str,
                    semantic: str, rng: np.random.Generator) -> UtterancePlan:
    n_sentences = LONG_MAX_SENTENCES if kind == "long" else 2
    sentences = tuple(_sample_sentence(profile, semantic, rng) for _ in range(n_sentences))
    jitter = Prosody(*(float(rng.normal(0.0, sd)) for sd in UTTERANCE_JITTER_SD.values()))
    prosody = (profile.emotions[emotion] + speaker.offset + jitter).clipped()
    seed = int(rng.integers(1, 2**31 - 1))
    return UtterancePlan(id=f"{speaker.id}_{index:04d}", speaker=speaker, kind=kind, emotion=emotion,
                         semantic=semantic, sentences=sentences, prosody=prosody, seed=seed)


def _sample_sentence(profile: LanguageProfile, semantic: str, rng: np.random.Generator) -> str:
    templates = profile.semantic[semantic]
    template, fillers = templates[int(rng.integers(len(templates)))]
    opener = profile.openers[int(rng.integers(len(profile.openers)))]
    sentence = template.format(fillers[int(rng.integers(len(fillers)))])
    return f"{opener} {sentence}" if rng.random() < OPENER_PROBABILITY else sentence
