"""The embedded synthetic speech corpus: every task of the paper, offline, in en, fi and fr.

Speech comes from libespeak-ng (:mod:`harness.espeak`). Each language has
``speakers_per_language`` synthetic speakers, half male and half female: an espeak voice variant
(``m1``..``m8``, ``f1``..``f5``) plus a per-speaker offset on pitch, pitch range, rate, volume and
word gap. Splits are speaker-disjoint (``split_speakers`` = train/dev/test speakers, each split
half male, half female). Every utterance carries the labels ``gender``, ``emotion`` and one
semantic label (en ``intent``, fi ``topic``, fr ``request``), its ``text`` and word alignments
taken from espeak's word events.

Labels. Emotion and semantic classes are assigned round-robin inside each split (a counter that
runs over the split's speakers and their utterances), then shuffled within each speaker with
the seed, so every class is about equally frequent in every split and a speaker's emotions are
not tied to its texts. The semantic class picks the text (a class template and a slot filler);
emotion only sets the prosody, so the two are independent.

Prosody. An emotion is a profile of espeak parameters: pitch (0-100), pitch range (0-100), rate
(words per minute), volume (0-200, 100 = espeak's default) and word gap (units of 10 ms). The
parameters of one utterance are::

    value = profile mean + speaker offset + utterance jitter, clipped to the limits below

with the speaker offset drawn once per speaker and the jitter drawn per utterance, both normal
with the standard deviations below. Neighbouring profiles are one to two standard deviations
apart, so classes overlap: a linear probe on pooled MFCCs is well above chance and well below
100 %. Gender is carried by the voice variant (male variants about 70-95 Hz, female 220-265 Hz)
and is easy, as it is for real speech.

Emotion profiles (pitch, range, rate, volume, gap)::

    en (IEMOCAP)
    | neutral | 50 | 45 | 165 | 100 | 1 |
    | sad | 40 | 25 | 135 | 80 | 3 |
    | happy | 62 | 75 | 185 | 110 | 1 |
    | angry | 56 | 65 | 195 | 122 | 0 |
    fi (FESC)
    | neutral | 50 | 45 | 160 | 100 | 1 |
    | sadness | 40 | 25 | 130 | 80 | 3 |
    | joy | 63 | 75 | 185 | 110 | 1 |
    | affection | 56 | 60 | 145 | 85 | 2 |
    | anger | 54 | 65 | 195 | 122 | 0 |
    fr (CaFE)
    | neutral | 50 | 45 | 165 | 100 | 1 |
    | sadness | 40 | 25 | 135 | 80 | 3 |
    | happiness | 62 | 75 | 185 | 110 | 1 |
    | anger | 55 | 65 | 195 | 122 | 0 |
    | fear | 66 | 55 | 200 | 90 | 1 |
    | disgust | 42 | 40 | 145 | 95 | 2 |
    | surprise | 68 | 85 | 175 | 112 | 1 |

    speaker offset sd:    pitch 5, range 8, rate 10, volume 8, gap 0.7
    utterance jitter sd:  pitch 5, range 10, rate 12, volume 10, gap 1.0
    limits:               pitch 0-100, range 0-100, rate 100-260, volume 40-130, gap 0-8

Semantic labels: en ``intent`` (12 SLURP scenario_action classes), fi ``topic`` (the 8 Lahjoita
Puhetta topics), fr ``request`` (HealthCall30 ``affil`` vs ``presta``); each class has several
carrier templates with slot fillers, and the templates share words, so most words occur many
times (the word-discrimination task needs words seen at least twice).
:func:`describe_distributions` renders all of this as markdown from the constants below.

Durations. Typical utterances are one sentence (about 1.5-5 s). Each test split also holds
``short_per_test_split`` utterances under 3 s (a sentence cut word by word until it fits) and
``long_per_test_split`` over 15 s (sentences of one class joined until they pass 15 s), for the
inference-time analysis.

Determinism and the cache. espeak-ng's output depends on its seed (reseeded before every call)
and on the calls made before in the same process. The corpus is therefore generated in a fresh
Python process (``python -m harness.synth``) with a fixed call order, so the WAV files are
byte-identical whatever the calling process did before. The result goes to
``root/<language>-<hash of the generator config>/`` (written into a temp folder, marked
complete, renamed atomically); a folder without the marker is removed and generated again.

The package, one module per concern (arrows point down; none reaches back up)::

    options    GENERATOR_VERSION, SAMPLE_RATE_HZ, validate_options, generator_config
    prosody    Prosody, emotion profiles, speaker offset and jitter spreads, limits
    texts      class templates with slot fillers, openers
    languages  voice variants and LanguageProfile per language (prosody + texts)
    plan       the pure plan of a corpus: speakers, splits, labels, sentences, prosody
    words      tokenize and align_words (espeak word events -> Word alignments)
    render     one planned utterance through espeak (child process)
    write      generate_corpus (wav/, manifest, meta) and main, the child's entry point
    cache      load_synth_corpus: the cache folder, made atomically by a fresh process
    describe   describe_distributions: this docstring's numbers as markdown
"""

from __future__ import annotations

from .cache import (
    COMPLETE_MARKER,
    GENERATE_TIMEOUT_S,
    corpus_folder,
    load_synth_corpus,
    read_synth_manifest,
    synth_corpus_exists,
)
from .describe import PROFILE_COLUMNS, describe_distributions, profile_rows
from .languages import (
    FEMALE_VARIANTS,
    LANGUAGE_PROFILES,
    MALE_VARIANTS,
    LanguageProfile,
    check_language,
)
from .options import GENERATOR_VERSION, SAMPLE_RATE_HZ, generator_config, validate_options
from .plan import (
    LONG_FIRST_SENTENCES,
    LONG_MAX_SENTENCES,
    LONG_MIN_S,
    SHORT_MAX_S,
    TYPICAL_MIN_S,
    SpeakerPlan,
    UtterancePlan,
    plan_corpus,
    plan_speakers,
)
from .prosody import (
    EMOTION_PROFILES,
    PROSODY_LIMITS,
    SPEAKER_OFFSET_SD,
    UTTERANCE_JITTER_SD,
    Prosody,
)
from .render import Rendered, render
from .texts import (
    EN_INTENTS,
    EN_OPENERS,
    FI_OPENERS,
    FI_TOPICS,
    FR_OPENERS,
    FR_REQUESTS,
    OPENER_PROBABILITY,
    Templates,
)
from .words import SILENCE_FRAME_MS, SILENCE_REL_RMS, align_words, tokenize
from .write import MANIFEST_NAME, META_NAME, generate_corpus, main

__all__ = [
    "COMPLETE_MARKER", "EMOTION_PROFILES", "EN_INTENTS", "EN_OPENERS", "FEMALE_VARIANTS", "FI_OPENERS",
    "FI_TOPICS", "FR_OPENERS", "FR_REQUESTS", "GENERATE_TIMEOUT_S", "GENERATOR_VERSION", "LANGUAGE_PROFILES",
    "LONG_FIRST_SENTENCES", "LONG_MAX_SENTENCES", "LONG_MIN_S", "MALE_VARIANTS", "MANIFEST_NAME", "META_NAME",
    "OPENER_PROBABILITY", "PROFILE_COLUMNS", "PROSODY_LIMITS", "SAMPLE_RATE_HZ", "SHORT_MAX_S",
    "SILENCE_FRAME_MS", "SILENCE_REL_RMS", "SPEAKER_OFFSET_SD", "TYPICAL_MIN_S", "UTTERANCE_JITTER_SD",
    "LanguageProfile", "Prosody", "Rendered", "SpeakerPlan", "Templates", "UtterancePlan", "align_words",
    "check_language", "corpus_folder", "describe_distributions", "generate_corpus", "generator_config",
    "load_synth_corpus", "main", "plan_corpus", "plan_speakers", "profile_rows", "read_synth_manifest",
    "render", "synth_corpus_exists", "tokenize", "validate_options",
]
