"""Real audio files for the corpus-layout fixtures, synthesised offline with espeak-ng.

Audio is synthesised at espeak's 22 050 Hz, resampled to 16 kHz (what the corpora ship) and
written with soundfile in the format the corpus uses (FLAC, WAV, MP3, AIFF). Syntheses are
cached per (text, voice) so a fixture tree of tens of files costs well under a second.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import soundfile as sf

from harness.data import resample
from harness.espeak import Espeak

RATE = 16000
FORMATS = {".flac": ("FLAC", "PCM_16"), ".wav": ("WAV", "PCM_16"), ".aiff": ("AIFF", "PCM_16"),
           ".mp3": ("MP3", None)}


@cache
def speech(text: str, voice: str = "en") -> np.ndarray:
    """float32 speech at 16 kHz (read-only array; copy before changing it)."""
    synthesis = Espeak.get().synth(text, voice=voice, seed=1)
    wav = synthesis.audio.astype(np.float32) / 32768.0
    out = resample(wav, synthesis.sample_rate, RATE)
    out.setflags(write=False)
    return out


def write_speech(path: Path, text: str, *, voice: str = "en", rate: int = RATE) -> float:
    """Write ``text`` spoken by ``voice`` to ``path`` (format from the suffix); returns its duration in s."""
    path.parent.mkdir(parents=True, exist_ok=True)
    wav = speech(text, voice)
    if rate != RATE:
        wav = resample(np.asarray(wav), RATE, rate)
    fmt, subtype = FORMATS[path.suffix.lower()]
    sf.write(str(path), wav, rate, format=fmt, subtype=subtype)
    return len(wav) / rate


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
