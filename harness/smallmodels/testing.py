"""A small word-aligned espeak corpus, for tests and demonstrations of the small models.

:func:`make_espeak_corpus` synthesises utterances of words drawn (Zipf-like, seeded) from a fixed
vocabulary per language, by several espeak voice variants (speakers), writes 16 kHz WAV files and
returns a :class:`~harness.data.Dataset` with train / dev / test split by speaker and word
alignments from espeak's own word events (a word ends where the next one starts; the last one at
the end of the audio). The word sequences are not sentences: this corpus exercises the
machinery, it does not carry word semantics. The harness's real synthetic corpus is
:mod:`harness.synth`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..data import Dataset, Utterance, Word, resample
from .segments import SAMPLE_RATE

if TYPE_CHECKING:
    from ..config import Workspace

VOCABULARY = {
    "en": ("the cat hat bat sat mat rat car card cart far farm star start stone store story dog dot door "
           "floor flower power tower water winter window wonder under thunder house mouse horse course light "
           "night right bright sight fight river over never clever money honey monday sunday summer number "
           "hunter butter better letter little middle simple people purple apple table cable paper pepper "
           "mother brother father weather feather leather garden golden morning evening reading teacher travel "
           "silver kitchen chicken children blue glue green queen cream dream bread tree three free street sleep "
           "sheep ship shop stop spot hot").split(),
    "fi": ("talo talot kala kallo kissa koira koiran vesi veli meri mieli kuu kuusi kaksi kolme viisi seitsemän "
           "kahdeksan yhdeksän kymmenen päivä päivää ilta aamu huomenna tänään eilen kirja kirjasto koulu kukka "
           "kukko lintu linna lumi luu sade sana sanoa puhua puu puut metsä mäki järvi joki jokin juna juoma ruoka "
           "ruoho kello kellari hetkinen semmonen sellainen tämä tuo minä sinä hän aurinko auto autot pöytä tuoli "
           "ikkuna ovi lattia katto kaupunki kauppa maa maito mato tyttö poika äiti isä sisko veljen").split(),
    "fr": ("le la les une chat chien rat rue roue route table tableau pomme porte porter poste maison raison "
           "saison soleil sommeil pain main bain vin fin matin marin jardin voiture lecture nature pluie nuit "
           "fruit bruit lune plume livre lire rire dire faire terre pierre verre mer mère père frère fleur coeur "
           "soeur heure beurre bleu feu jeu peu vert rouge blanc banc grand gros petit enfant lent temps vent "
           "cent dent chanter manger parler donner aimer école étoile ville fille famille").split(),
}
MALE_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8")
FEMALE_VARIANTS = ("f1", "f2", "f3", "f4", "f5")


def speaker_voices(language: str, n_speakers: int) -> list[tuple[str, str, int, int]]:
    """(speaker id, espeak voice, rate wpm, pitch) per speaker, alternating male and female variants."""
    voices = []
    for i in range(n_speakers):
        female = i % 2 == 1
        variants = FEMALE_VARIANTS if female else MALE_VARIANTS
        variant = variants[(i // 2) % len(variants)]
        rate = 150 + 10 * (i % 5)
        pitch = 40 + 5 * (i % 4)
        voices.append((f"{language}{'f' if female else 'm'}{i:02d}", f"{language}+{variant}", rate, pitch))
    return voices


def split_of(speaker_index: int, split_speakers: tuple[int, int, int]) -> str:
    n_train, n_dev, _ = split_speakers
    if speaker_index < n_train:
        return "train"
    return "dev" if speaker_index < n_train + n_dev else "test"


def word_sequences(*, vocabulary: list[str], count: int, words_per_utterance: tuple[int, int],
                   rng: np.random.Generator, zipf_s: float = 0.8) -> list[list[str]]:
    weights = 1.0 / np.arange(1, len(vocabulary) + 1) ** zipf_s
    weights /= weights.sum()
    lo, hi = words_per_utterance
    return [list(rng.choice(vocabulary, size=int(rng.integers(lo, hi + 1)), p=weights)) for _ in range(count)]


def synth_utterance(text: str, *, voice: str, rate: int, pitch: int, seed: int) -> tuple[np.ndarray, list[Word]]:
    """16 kHz float32 audio of ``text`` and its word alignment from espeak's word events."""
    from ..espeak import Espeak

    synth = Espeak.get().synth(text, voice=voice, rate=rate, pitch=pitch, seed=seed)
    audio = resample(synth.audio.astype(np.float32) / 32768.0, synth.sample_rate, SAMPLE_RATE)
    duration_s = len(audio) / SAMPLE_RATE
    starts = [ev.start_sample / synth.sample_rate for ev in synth.words]
    words = []
    for k, ev in enumerate(synth.words):
        end_s = starts[k + 1] if k + 1 < len(starts) else duration_s
        words.append(Word(text[ev.text_position : ev.text_position + ev.length], starts[k], end_s))
    return audio, words


def make_espeak_corpus(root: str | Path, *, language: str = "en", n_speakers: int = 12,
                       utterances_per_speaker: int = 25, words_per_utterance: tuple[int, int] = (4, 9),
                       split_speakers: tuple[int, int, int] = (8, 2, 2), vocabulary: list[str] | None = None,
                       seed: int = 0) -> Dataset:
    """Synthesise the corpus into ``root`` (WAV files) and return it; deterministic for a seed.

    Speakers ``[0, n_train)`` are train, the next ``n_dev`` dev, the rest test. The utterance's
    ``gender`` label follows its voice variant.
    """
    import soundfile as sf

    if sum(split_speakers) != n_speakers:
        raise ValueError(f"split_speakers {split_speakers} must add up to n_speakers={n_speakers}")
    root = Path(root)
    (root / "wav").mkdir(parents=True, exist_ok=True)
    vocab = list(vocabulary or VOCABULARY[language])
    rng = np.random.default_rng(seed)
    utterances = []
    for s, (speaker, voice, rate, pitch) in enumerate(speaker_voices(language, n_speakers)):
        texts = word_sequences(vocabulary=vocab, count=utterances_per_speaker,
                               words_per_utterance=words_per_utterance, rng=rng)
        for k, words in enumerate(texts):
            uid = f"{speaker}_{k:03d}"
            text = " ".join(words)
            audio, alignment = synth_utterance(text, voice=voice, rate=rate, pitch=pitch, seed=seed + 1000 * s + k)
            path = root / "wav" / f"{uid}.wav"
            sf.write(str(path), audio, SAMPLE_RATE, subtype="PCM_16")
            utterances.append(Utterance(id=uid, path=str(path.resolve()), split=split_of(s, split_speakers),
                                        language=language, speaker=speaker,
                                        labels={"gender": "female" if "f" in voice.split("+")[1] else "male"},
                                        text=text, words=tuple(alignment), duration_s=len(audio) / SAMPLE_RATE))
    return Dataset(name=f"espeak-words-{language}", language=language, root=root, utterances=tuple(utterances))


def make_workspace(root: str | Path) -> Workspace:
    """A minimal workspace (benchmark.yaml only, default paths under ``root``) for tests and demos."""
    from ..config import Workspace

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "benchmark.yaml").write_text(
        "name: smallmodels-test\ndefault_profile: embedded\n"
        "profiles:\n  embedded: {upstreams: [], downstreams: []}\n", encoding="utf-8")
    return Workspace(root=root)
