"""Markdown description of a language's corpus, rendered from the constants of the other modules."""

from __future__ import annotations

from .languages import FEMALE_VARIANTS, LANGUAGE_PROFILES, MALE_VARIANTS, check_language
from .plan import LONG_MIN_S, SHORT_MAX_S, TYPICAL_MIN_S
from .prosody import PROSODY_LIMITS, SPEAKER_OFFSET_SD, UTTERANCE_JITTER_SD
from .texts import OPENER_PROBABILITY

PROFILE_COLUMNS = ("pitch", "range", "rate", "volume", "gap")


def profile_rows(language: str) -> list[str]:
    """One markdown row per emotion: ``| class | pitch | range | rate | volume | gap |``."""
    return ["| " + " | ".join([name] + [_fmt(v) for v in p.values()]) + " |"
            for name, p in LANGUAGE_PROFILES[language].emotions.items()]


def _fmt(value: float) -> str:
    return f"{value:g}"


def describe_distributions(language: str) -> str:
    """Markdown: the emotion prosody profiles, the offsets and jitter, and the label sets of ``language``."""
    check_language(language)
    profile = LANGUAGE_PROFILES[language]
    sd = dict(zip(PROFILE_COLUMNS, SPEAKER_OFFSET_SD.values(), strict=True))
    jit = dict(zip(PROFILE_COLUMNS, UTTERANCE_JITTER_SD.values(), strict=True))
    lim = dict(zip(PROFILE_COLUMNS, PROSODY_LIMITS, strict=True))
    lines = [f"### Synthetic corpus, {language}", "",
             f"Emotion (`emotion`, {len(profile.emotions)} classes, as {profile.paper_corpus}): espeak parameter "
             "means per class; pitch and range 0-100, rate in words/min, volume 0-200 (100 = default), "
             "gap in 10 ms units.", "",
             "| class | " + " | ".join(PROFILE_COLUMNS) + " |", "|---" * (len(PROFILE_COLUMNS) + 1) + "|",
             *profile_rows(language), "",
             "Per utterance: value = mean + speaker offset + jitter, both normal, clipped:", "",
             "| | " + " | ".join(PROFILE_COLUMNS) + " |", "|---" * (len(PROFILE_COLUMNS) + 1) + "|",
             "| speaker offset sd | " + " | ".join(_fmt(sd[c]) for c in PROFILE_COLUMNS) + " |",
             "| utterance jitter sd | " + " | ".join(_fmt(jit[c]) for c in PROFILE_COLUMNS) + " |",
             "| limits | " + " | ".join(f"{lo}-{hi}" for lo, hi in (lim[c] for c in PROFILE_COLUMNS)) + " |", "",
             f"Gender (`gender`): male voices {language}+{MALE_VARIANTS[0]}..{MALE_VARIANTS[-1]}, female "
             f"{language}+{FEMALE_VARIANTS[0]}..{FEMALE_VARIANTS[-1]}; half of the speakers of every split "
             "each.", "",
             f"Semantic (`{profile.semantic_label}`, {len(profile.semantic)} classes, as "
             f"{profile.semantic_source}):",
             ""]
    for name, templates in profile.semantic.items():
        example = templates[0][0].format(templates[0][1][0])
        lines.append(f"- `{name}`: {len(templates)} templates, "
                     f"{sum(len(f) for _, f in templates)} fillers, e.g. \"{example}\"")
    lines += ["", f"Half of the sentences (p = {OPENER_PROBABILITY}) start with an opener shared by all classes: "
              + ", ".join(f'"{o}"' for o in profile.openers) + ".", "",
              "Classes are dealt round-robin within each split and shuffled per speaker: balanced in "
              "every split, independent of each other and of gender.", "",
              f"Durations: typical utterances are one sentence (two when one lasts under {TYPICAL_MIN_S:g} s); "
              f"the test split adds short utterances (under {SHORT_MAX_S:g} s) and long ones (over "
              f"{LONG_MIN_S:g} s, sentences of one class joined)."]
    return "\n".join(lines)
