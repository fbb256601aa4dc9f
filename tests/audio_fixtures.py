"""Tiny real-audio datasets for tests: espeak-ng speech written as 16 kHz WAV files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from harness.data import Dataset, Utterance, Word, resample
from harness.espeak import Espeak

TEXTS = ["the cat sat on the mat", "wake me up at seven", "play some music please", "what is the weather",
         "turn off the lights", "set an alarm for noon"]


def speak(text: str, *, voice: str = "en+m3", pitch: int = 50, rate: int = 170, seed: int = 1) -> tuple[np.ndarray, list[Word]]:
    """16 kHz float32 audio and word alignments (start of each word to the next word's start)."""
    syn = Espeak.get().synth(text, voice=voice, pitch=pitch, rate=rate, seed=seed)
    wav = resample(syn.audio.astype(np.float32) / 32768.0, syn.sample_rate, 16000)
    starts = [w.start_sample / syn.sample_rate for w in syn.words]
    ends = starts[1:] + [len(wav) / 16000]
    words = [Word(text[w.text_position: w.text_position + w.length].lower(), s, e)
             for w, s, e in zip(syn.words, starts, ends, strict=True)]
    return wav, words


def make_dataset(root: Path, *, n: int = 6, name: str = "tiny-en") -> Dataset:
    """``n`` utterances, two speakers per gender, splits train/dev/test by speaker."""
    root.mkdir(parents=True, exist_ok=True)
    utts = []
    voices = [("en+m3", 35, "male"), ("en+f2", 75, "female"), ("en+m1", 30, "male"), ("en+f4", 80, "female")]
    splits = ["train", "train", "dev", "test"]
    for i in range(n):
        voice, pitch, gender = voices[i % 4]
        text = TEXTS[i % len(TEXTS)]
        wav, words = speak(text, voice=voice, pitch=pitch, seed=i)
        path = root / f"utt{i:03d}.wav"
        sf.write(path, wav, 16000, subtype="PCM_16")
        utts.append(Utterance(id=f"utt{i:03d}", path=str(path), split=splits[i % 4], language="en",
                              speaker=f"spk{i % 4}", labels={"gender": gender}, text=text, words=tuple(words),
                              duration_s=len(wav) / 16000))
    return Dataset(name=name, language="en", root=root, utterances=tuple(utts))
