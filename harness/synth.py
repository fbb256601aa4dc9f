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
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from .data import (
    Dataset,
    Utterance,
    Word,
    read_manifest_rows,
    resample,
    resolve_inside,
    write_manifest,
)
from .errors import BenchError, ConfigError, DataError, Problem, did_you_mean
from .faults import maybe_crash
from .schema import LANGUAGES, SynthSpec
from .tempfiles import TMP_TAG, remove_stale, temp_sibling

GENERATOR_VERSION = 1
SAMPLE_RATE_HZ = 16000
COMPLETE_MARKER = ".complete"
MANIFEST_NAME = "manifest.jsonl"
META_NAME = "meta.json"

TYPICAL_MIN_S = 1.5
SHORT_MAX_S = 3.0
LONG_MIN_S = 15.0
LONG_FIRST_SENTENCES = 5  # a long utterance starts with this many sentences and grows until > LONG_MIN_S
LONG_MAX_SENTENCES = 16
SILENCE_FRAME_MS = 5.0
SILENCE_REL_RMS = 0.03  # a 5 ms frame below 3 % of the utterance's loudest frame counts as silence
GENERATE_TIMEOUT_S = 1800.0


# --------------------------------------------------------------------------- prosody
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

MALE_VARIANTS = tuple(f"m{i}" for i in range(1, 9))
FEMALE_VARIANTS = tuple(f"f{i}" for i in range(1, 6))

# --------------------------------------------------------------------------- texts
# Each class: (template, fillers) pairs; "{}" in the template takes one filler.
Templates = tuple[tuple[str, tuple[str, ...]], ...]

_TIMES = ("seven", "eleven", "half past six", "noon", "nine thirty", "eight in the morning")
_DAYS = ("today", "tomorrow", "tonight", "on monday", "on friday", "this weekend")
_CITIES = ("paris", "london", "boston", "austin", "berlin", "helsinki")
_PEOPLE = ("john", "mary", "my boss", "the team", "my mother", "anna")
_ROOMS = ("kitchen", "bedroom", "living room", "hallway", "bathroom")

EN_INTENTS: dict[str, Templates] = {
    "alarm_set": (("wake me up at {} please", _TIMES), ("set an alarm for {}", _DAYS),
                  ("please set my alarm for {} tomorrow", _TIMES)),
    "alarm_query": (("what alarms do i have set {}", _DAYS), ("is my alarm set for {}", _TIMES),
                    ("show me all my alarms for {}", _DAYS)),
    "weather_query": (("what is the weather like in {}", _CITIES), ("will it rain {} in paris", _DAYS),
                      ("do i need an umbrella {}", _DAYS)),
    "play_music": (("play some {} music for me", ("jazz", "rock", "pop", "classical", "country")),
                   ("put on a song by {} please", ("adele", "the beatles", "queen", "madonna")),
                   ("i want to hear {} music now", ("jazz", "rock", "pop", "soft"))),
    "calendar_set": (("add a meeting with {} to my calendar", _PEOPLE),
                     ("remind me about lunch with {} tomorrow", _PEOPLE),
                     ("schedule a call with {} at nine", _PEOPLE)),
    "iot_hue_lightoff": (("turn off the lights in the {}", _ROOMS), ("switch the {} lights off please", _ROOMS),
                         ("please make the {} dark now", _ROOMS)),
    "email_query": (("do i have any new emails from {}", _PEOPLE), ("check my inbox for mail from {}", _PEOPLE),
                    ("read me my latest email from {}", _PEOPLE)),
    "news_query": (("what is the latest news about {}", ("sports", "politics", "the election", "science")),
                   ("tell me the {} headlines please", ("sports", "business", "world", "local")),
                   ("is there any news from {} today", _CITIES)),
    "transport_ticket": (("book a train ticket to {}", _CITIES), ("buy me a ticket to {} for tomorrow", _CITIES),
                         ("i need a train to london {}", _DAYS)),
    "cooking_recipe": (("how do i make {} at home", ("pancakes", "pasta", "lasagna", "fried rice", "apple pie")),
                       ("give me a recipe for {}", ("pancakes", "pasta", "chicken soup", "banana bread")),
                       ("what do i need to cook {}", ("pasta", "rice", "chicken soup", "lasagna"))),
    "datetime_query": (("what time is it in {} right now", _CITIES), ("what is the date {}", _DAYS),
                       ("tell me the time in {} please", _CITIES)),
    "lists_createoradd": (("add {} to my shopping list", ("milk", "eggs", "bread", "rice", "apples")),
                          ("put {} on the list please", ("milk", "coffee", "bread", "pasta")),
                          ("create a new list for {}", ("the party", "the weekend", "my trip", "groceries"))),
}

FI_TOPICS: dict[str, Templates] = {
    "animal_friends": (("meidän {} rakastaa leikkiä pihalla", ("koira", "kissa", "kani", "marsu", "hevonen")),
                       ("vein {} eläinlääkärille eilen illalla", ("koiran", "kissan", "kanin", "marsun")),
                       ("lemmikkini {} aina kun tulen kotiin", ("hyppii", "kehrää", "haukkuu", "juoksee"))),
    "sports_moments": (("katsoin eilen {} televisiosta", ("jääkiekkoa", "jalkapalloa", "koripalloa", "hiihtoa")),
                       ("meidän joukkue voitti {} maalilla", ("kahdella", "kolmella", "yhdellä", "neljällä")),
                       ("juoksin pitkän lenkin {}", ("aamulla", "illalla", "sunnuntaina", "viime viikolla"))),
    "my_surroundings": (("asun pienessä {} lähellä keskustaa",
                         ("kaupungissa", "kylässä", "talossa", "asunnossa")),
                        ("meidän kadulla on {}",
                         ("uusi kauppa", "vanha kirjasto", "iso puisto", "pieni kahvila")),
                        ("naapurini {} joka päivä",
                         ("siivoaa pihaa", "ajaa pyörällä", "kävelee koiran kanssa"))),
    "summer": (("kesällä menemme aina {}", ("mökille", "rannalle", "saaristoon", "lappiin")),
               ("uimme järvessä {}", ("joka aamu", "juhannuksena", "heinäkuussa", "illalla")),
               ("kesä on paras aika {} ja levätä", ("grillata", "kalastaa", "uida", "pyöräillä"))),
    "the_cursed_covid": (("korona muutti {} täysin",
                          ("meidän arjen", "koulunkäynnin", "työnteon", "matkustamisen")),
                         ("olin karanteenissa {}", ("kaksi viikkoa", "viime keväänä", "koko kesän")),
                         ("käytimme maskia aina {}", ("kaupassa", "bussissa", "koulussa", "töissä"))),
    "media_skills": (("luen uutiset {} joka aamu", ("puhelimesta", "netistä", "lehdestä", "tabletilta")),
                     ("somessa leviää paljon {}", ("valeuutisia", "mainoksia", "huhuja", "videoita")),
                     ("tarkistan aina {} lähteen", ("uutisen", "kuvan", "videon", "väitteen"))),
    "rated_r": (("se elokuva oli aivan liian {}", ("väkivaltainen", "pelottava", "rivo", "verinen")),
                ("aikuisten {} ei sovi lapsille", ("sarja", "peli", "kirja", "elokuva")),
                ("kiroilin ääneen kun {}", ("auto hajosi", "kahvi loppui", "bussi myöhästyi"))),
    "nature": (("metsässä kasvaa paljon {}", ("mustikoita", "sieniä", "kuusia", "koivuja")),
               ("kävelimme {} koko päivän", ("metsässä", "tunturilla", "suolla", "rannalla")),
               ("syksyllä {} ja ilma viilenee", ("lehdet putoavat", "linnut lähtevät", "sataa paljon"))),
}

FR_REQUESTS: dict[str, Templates] = {
    "affil": (("je voudrais m'inscrire à la mutuelle {}", ("pour ma famille", "pour mon fils", "pour ma femme",
                                                          "dès le mois prochain")),
              ("comment ajouter {} à mon contrat", ("mon enfant", "ma fille", "mon conjoint", "mon mari")),
              ("je souhaite adhérer à votre {}", ("contrat santé", "offre famille", "complémentaire santé")),
              ("j'ai besoin d'une attestation d'affiliation {}", ("pour mon employeur", "pour ma fille",
                                                                 "pour la mairie")),
              ("je veux changer mon contrat {}",
               ("pour ma famille", "dès le mois prochain", "pour mon conjoint"))),
    "presta": (("je voudrais savoir quand je serai remboursé {}", ("pour mes lunettes", "pour le dentiste",
                                                                 "pour ma consultation")),
               ("est-ce que {} est pris en charge", ("le kiné", "l'ostéopathe", "la pharmacie", "l'hôpital")),
               ("je n'ai pas reçu le remboursement de {}", ("mes lunettes", "ma consultation", "mes médicaments",
                                                           "mon dentiste")),
               ("combien coûte {} avec ma mutuelle",
                ("une couronne", "une paire de lunettes", "une consultation")),
               ("je voudrais envoyer une facture {}", ("pour mes lunettes", "du dentiste", "de la pharmacie"))),
}


# Openers spoken before some sentences (as people do), shared by all classes of a language.
EN_OPENERS = ("hey", "please", "could you", "excuse me", "okay so", "i was wondering")
FI_OPENERS = ("no niin", "muuten", "tiedätkö", "minusta", "no mutta", "ihan totta")
FR_OPENERS = ("bonjour", "oui bonjour", "alors", "excusez-moi", "oui alors", "bonjour madame")
OPENER_PROBABILITY = 0.5


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


# --------------------------------------------------------------------------- the plan (pure)
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


# --------------------------------------------------------------------------- words
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


# --------------------------------------------------------------------------- synthesis (child process)
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


def generate_corpus(*, out_dir: Path, language: str, spec: SynthSpec) -> dict[str, Any]:
    """Synthesise the corpus into ``out_dir`` (wav/, manifest.jsonl, meta.json); returns the meta.

    Run it in a fresh process (:func:`load_synth_corpus` does): espeak's output depends on the
    calls made before in the same process.
    """
    import soundfile as sf

    from .espeak import Espeak

    t0 = time.perf_counter()
    engine = Espeak.get()
    out_dir = Path(out_dir)
    (out_dir / "wav").mkdir(parents=True, exist_ok=True)
    utterances = []
    for plan in plan_corpus(language=language, spec=spec):
        rendered = render(plan, engine=engine, language=language)
        path = out_dir / "wav" / f"{plan.id}.wav"
        sf.write(str(path), rendered.wav_16k, SAMPLE_RATE_HZ, subtype="PCM_16", format="WAV")
        labels = {"gender": plan.speaker.gender, "emotion": plan.emotion,
                  LANGUAGE_PROFILES[language].semantic_label: plan.semantic}
        utterances.append(Utterance(id=plan.id, path=str(path), split=plan.speaker.split, language=language,
                                    speaker=plan.speaker.id, labels=labels, text=rendered.text,
                                    words=rendered.words, duration_s=round(rendered.duration_s, 6)))
    write_manifest(out_dir / MANIFEST_NAME, utterances)
    meta = _meta(language=language, spec=spec, utterances=utterances, out_dir=out_dir,
                 generation_s=time.perf_counter() - t0)
    (out_dir / META_NAME).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return meta


def _meta(*, language: str, spec: SynthSpec, utterances: Sequence[Utterance], out_dir: Path,
          generation_s: float) -> dict[str, Any]:
    durations = np.array([u.duration_s or 0.0 for u in utterances])
    label_names = ("gender", "emotion", LANGUAGE_PROFILES[language].semantic_label)
    counts = {split: _split_counts([u for u in utterances if u.split == split], label_names=label_names)
              for split in ("train", "dev", "test")}
    return {"config": generator_config(language=language, spec=spec), "counts": counts,
            "utterances": len(utterances), "total_audio_s": round(float(durations.sum()), 2),
            "duration_s": {"min": round(float(durations.min()), 3),
                           "median": round(float(np.median(durations)), 3),
                           "max": round(float(durations.max()), 3)},
            "bytes_on_disk": _bytes_under(out_dir), "generation_s": round(generation_s, 2)}


def _split_counts(utterances: Sequence[Utterance], *, label_names: Sequence[str]) -> dict[str, Any]:
    return {"utterances": len(utterances), "speakers": len({u.speaker for u in utterances}),
            "audio_s": round(sum(u.duration_s or 0.0 for u in utterances), 2),
            "labels": {name: _count(u.labels[name] for u in utterances) for name in label_names}}


def _count(values: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))


def _bytes_under(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


# --------------------------------------------------------------------------- the cache (parent process)
def load_synth_corpus(*, root: Path, language: str, options: Mapping[str, Any]) -> Dataset:
    """The synthetic corpus of ``language``, generated into ``root`` on first use.

    ``options`` are :class:`harness.schema.SynthSpec` fields. The corpus lives in
    ``root/<language>-<config hash>/``; it is generated in a fresh process only when that folder
    has no completion marker (a half-written folder is removed first), then read from its
    manifest. Raises ConfigError for bad options, BenchError when generation fails.
    """
    spec = validate_options(options)
    check_language(language)
    folder = corpus_folder(root=Path(root), language=language, spec=spec)
    if not (folder / COMPLETE_MARKER).is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        with _exclusive(folder.parent / f".{folder.name}.lock"):  # parallel workers: one generates, the others wait
            if not (folder / COMPLETE_MARKER).is_file():
                _generate_atomically(folder=folder, language=language, spec=spec)
    return read_synth_manifest(folder / MANIFEST_NAME, language=language)


def synth_corpus_exists(*, root: Path, language: str, options: Mapping[str, Any]) -> bool:
    """Whether :func:`load_synth_corpus` would read ``language``'s corpus for ``options`` without
    generating it (its folder is complete). Generates nothing (``bench matrix --dry-run`` asks)."""
    folder = corpus_folder(root=Path(root), language=language, spec=validate_options(options))
    return (folder / COMPLETE_MARKER).is_file()


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """An advisory lock (flock) held for the duration of the block; released if the process dies."""
    import fcntl

    with open(lock_path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def validate_options(options: Mapping[str, Any]) -> SynthSpec:
    """SynthSpec from ``options``, with every problem reported at once (ConfigError)."""
    from pydantic import ValidationError

    try:
        spec = SynthSpec.model_validate(dict(options))
    except ValidationError as e:
        raise ConfigError([Problem(where="synth options", key=".".join(str(p) for p in err["loc"]) or "(root)",
                                   expected=err["msg"], found=repr(err.get("input")))
                           for err in e.errors()]) from None
    if sum(spec.split_speakers) != spec.speakers_per_language:
        raise ConfigError([Problem(where="synth options", key="split_speakers",
                                   expected="train+dev+test speakers = speakers_per_language "
                                            f"({spec.speakers_per_language})",
                                   found=f"{list(spec.split_speakers)} (sum {sum(spec.split_speakers)})",
                                   hint="Change one of the two so that they agree.")])
    return spec


def check_language(language: str) -> None:
    if language not in LANGUAGE_PROFILES:
        raise BenchError(f"the synthetic corpus has no language {language!r}.{did_you_mean(language, LANGUAGES)} "
                         f"Known: {', '.join(LANGUAGE_PROFILES)}.")


def generator_config(*, language: str, spec: SynthSpec) -> dict[str, Any]:
    """Everything the audio depends on; its hash names the cache folder."""
    from importlib import metadata

    try:
        espeak_version = metadata.version("espeakng-loader")
    except metadata.PackageNotFoundError:
        espeak_version = "unknown"
    return {"generator_version": GENERATOR_VERSION, "language": language, "spec": spec.model_dump(mode="json"),
            "sample_rate_hz": SAMPLE_RATE_HZ, "espeakng_loader": espeak_version}


def corpus_folder(*, root: Path, language: str, spec: SynthSpec) -> Path:
    config = json.dumps(generator_config(language=language, spec=spec), sort_keys=True)
    return root / f"{language}-{hashlib.sha256(config.encode()).hexdigest()[:12]}"


def _generate_atomically(*, folder: Path, language: str, spec: SynthSpec) -> None:
    """Generate into a temp folder in a fresh process, mark it complete, rename it into place."""
    if folder.exists():
        shutil.rmtree(folder)  # no marker: a half-written folder is never read
    folder.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(folder.parent, prefix=f".{folder.name}{TMP_TAG}")
    tmp = temp_sibling(folder)
    t0 = time.perf_counter()
    try:
        _run_generator(out_dir=tmp, language=language, spec=spec)
        maybe_crash("synth")
        (tmp / COMPLETE_MARKER).write_text(time.strftime("%Y-%m-%dT%H:%M:%S") + "\n", encoding="utf-8")
        try:
            os.rename(tmp, folder)
        except OSError:
            if not (folder / COMPLETE_MARKER).is_file():
                raise  # nobody else finished it: a real failure
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    meta = json.loads((folder / META_NAME).read_text(encoding="utf-8"))
    print(f"synth: generated {language} corpus in {time.perf_counter() - t0:.1f} s: {meta['utterances']} "
          f"utterances, {meta['total_audio_s'] / 60:.1f} min of audio, {meta['bytes_on_disk'] / 1e6:.1f} MB "
          f"in {folder}", file=sys.stderr)


def _run_generator(*, out_dir: Path, language: str, spec: SynthSpec) -> None:
    package_parent = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH", "")) if p)
    cmd = [sys.executable, "-m", "harness.synth", "--language", language, "--out", str(out_dir),
           "--options", json.dumps(spec.model_dump(mode="json"))]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=GENERATE_TIMEOUT_S, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise BenchError(f"generating the synthetic {language} corpus failed (exit {proc.returncode}) with "
                         f"{' '.join(cmd)}:\n{tail}")


def read_synth_manifest(path: Path, *, language: str) -> Dataset:
    """The Dataset of a generated corpus folder's manifest (a bad row is a DataError: delete the folder)."""
    path = Path(path)
    root = path.parent
    utterances = []
    for line, row, error in read_manifest_rows(path):
        if row is None:
            raise DataError(f"{path}:{line}: {error}; delete {root} to generate the corpus again")
        try:
            utterances.append(Utterance(
                id=row["id"], path=str(resolve_inside(root, row["audio"])), split=row["split"],
                language=row["language"], speaker=row["speaker"], labels=dict(row["labels"]), text=row["text"],
                words=tuple(Word(w, float(s), float(e)) for w, s, e in row["words"]),
                duration_s=float(row["duration"])))
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"{path}:{line}: malformed row ({type(e).__name__}: {e}); delete {root} "
                            "to generate the corpus again") from None
    return Dataset(name=f"synth-{language}", language=language, root=root, utterances=tuple(utterances))


# --------------------------------------------------------------------------- documentation
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


# --------------------------------------------------------------------------- entry point
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m harness.synth --language en --out DIR [--options JSON]``: generate one corpus folder."""
    parser = argparse.ArgumentParser(prog="python -m harness.synth", description=main.__doc__)
    parser.add_argument("--language", required=True, choices=sorted(LANGUAGE_PROFILES))
    parser.add_argument("--out", required=True, type=Path, help="folder to write (created; must be empty)")
    parser.add_argument("--options", default="{}", help="SynthSpec fields as a JSON object")
    args = parser.parse_args(argv)
    try:
        spec = validate_options(json.loads(args.options))
    except (json.JSONDecodeError, ConfigError) as e:
        parser.error(str(e))
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"--out {args.out} is not empty")
    meta = generate_corpus(out_dir=args.out, language=args.language, spec=spec)
    print(json.dumps({k: meta[k] for k in ("utterances", "total_audio_s", "bytes_on_disk", "generation_s")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
