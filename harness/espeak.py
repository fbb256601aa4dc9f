"""Offline text-to-speech with the libespeak-ng shipped in the ``espeakng-loader`` wheel (ctypes).

Used to synthesise the embedded corpus and the tests' real-format audio fixtures. No apt package,
no network. espeak-ng seeds its random generator from the clock, so :meth:`Espeak.synth` reseeds
it before every call; with the same calls in the same order the output is byte-identical.

Word boundaries come from espeak's own word events (exact sample positions of word starts);
:meth:`Espeak.synth` returns them with the audio.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass

import numpy as np

AUDIO_OUTPUT_SYNCHRONOUS = 2
ESPEAK_INITIALIZE_DONT_EXIT = 0x8000
RATE, VOLUME, PITCH, RANGE, WORDGAP = 1, 2, 3, 4, 7
CHARS_UTF8 = 1
POS_CHARACTER = 1
EVENT_LIST_TERMINATED, EVENT_WORD, EVENT_SENTENCE, EVENT_END, EVENT_MSG_TERMINATED = 0, 1, 2, 5, 6


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based character position in the input text
        ("length", ctypes.c_int),  # characters in the word
        ("audio_position", ctypes.c_int),  # ms from the start of the output
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True)
class WordEvent:
    text_position: int  # 0-based character offset of the word in the text
    length: int  # characters
    start_sample: int  # sample index (at the engine's rate) where espeak starts the word


@dataclass(frozen=True)
class Synthesis:
    audio: np.ndarray  # int16 at ``sample_rate``
    sample_rate: int
    words: tuple[WordEvent, ...]


class Espeak:
    """Process-wide wrapper; libespeak-ng has global state, so calls are serialised by a lock."""

    _lock = threading.Lock()
    _instance: Espeak | None = None

    @classmethod
    def get(cls) -> Espeak:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def __init__(self) -> None:
        import espeakng_loader

        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib = self.lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_CB]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        data = espeakng_loader.get_data_path().encode()
        self.sample_rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data, ESPEAK_INITIALIZE_DONT_EXIT)
        if self.sample_rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed ({self.sample_rate}); data={data!r}")
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, int, int]] = []
        self._samples_so_far = 0

        def _cb(wav, n, events):  # type: ignore[no-untyped-def]
            i = 0
            while events and events[i].type != EVENT_LIST_TERMINATED:
                ev = events[i]
                if ev.type == EVENT_WORD:
                    self._events.append((ev.text_position, ev.length, ev.audio_position, ev.sample))
                i += 1
            if n > 0:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0

        self._cb = _CB(_cb)  # keep a reference: a collected callback would crash the library
        lib.espeak_SetSynthCallback(self._cb)

    def synth(self, text: str, *, voice: str = "en", rate: int = 175, pitch: int = 50, pitch_range: int = 50,
              volume: int = 100, wordgap: int = 0, seed: int = 1) -> Synthesis:
        """Synthesise ``text``. voice: 'en', 'fi', 'fr' or a variant such as 'en+m3', 'fr+f2'.

        rate: words per minute (80-450); pitch, pitch_range: 0-100; volume: 0-200; wordgap: units
        of 10 ms; seed: espeak-ng's random seed, set before the call for reproducible output.
        """
        with self._lock:
            lib = self.lib
            err = lib.espeak_SetVoiceByName(voice.encode())
            if err != 0:
                raise ValueError(f"espeak voice {voice!r} not found (error {err})")
            for p, v in ((RATE, rate), (PITCH, pitch), (RANGE, pitch_range), (VOLUME, volume), (WORDGAP, wordgap)):
                lib.espeak_SetParameter(p, int(v), 0)
            self._chunks, self._events = [], []
            lib.espeak_ng_SetRandSeed(int(seed))
            b = text.encode("utf-8") + b"\0"
            err = lib.espeak_Synth(b, len(b), 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
            if err != 0:
                raise RuntimeError(f"espeak_Synth error {err}")
            audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
            events = list(self._events)
        words = []
        byte_text = text.encode("utf-8")
        for text_pos, length, audio_ms, _sample in events:
            # espeak reports 1-based positions counted in characters of the UTF-8 input
            start_sample = int(round(audio_ms * self.sample_rate / 1000))
            words.append(WordEvent(text_position=max(text_pos - 1, 0), length=length, start_sample=start_sample))
        del byte_text
        return Synthesis(audio=audio, sample_rate=self.sample_rate, words=tuple(words))
