#!/usr/bin/env python
"""Whisper's two window modes, timed side by side (not a test: numbers, not assertions).

For a card (default ``whisper_tiny_en``), one forward per utterance (what the harness does on a
CPU) over ``--utterances`` espeak sentences of the embedded corpus's kind (about 1.5-4 s), in
``padded30`` and ``real_length`` mode: seconds per utterance (median and mean after one warm-up
forward) and the audio's real-time factor. The CPU is shared: run it under ``nice`` and read
the numbers with the load average it prints.

    python benchmarks/whisper_window.py [--card whisper_tiny_en] [--utterances 8] [--threads 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SENTENCES = ["the cat sat on the mat", "wake me up at seven tomorrow morning", "play some music please",
             "what is the weather going to be like this afternoon", "turn off the lights in the kitchen",
             "set an alarm for noon", "the quick brown fox jumps over the lazy dog",
             "remind me to call my sister when I get home from work"]


def utterances(n: int) -> list:
    from tests.audio_fixtures import speak

    voices = ["en+m3", "en+f2", "en+m1", "en+f4"]
    return [speak(SENTENCES[i % len(SENTENCES)], voice=voices[i % 4], seed=i)[0] for i in range(n)]


def time_mode(card_name: str, window: str, wavs: list) -> dict[str, float]:
    import torch

    from harness.config import Workspace, deep_merge
    from harness.features.upstream import build_upstream
    from harness.schema import Card

    ws = Workspace(ROOT)
    card = ws.card(card_name)
    card = dataclasses.replace(card, card=Card.model_validate(deep_merge(card.card.model_dump(mode="json"),
                                                                         {"args": {"window": window}})))
    t0 = time.perf_counter()
    up = build_upstream(card)
    load_s = time.perf_counter() - t0
    times = []
    with torch.no_grad():
        first = torch.from_numpy(wavs[0])
        up(first[None], torch.tensor([first.shape[0]]))  # warm-up
        for wav in wavs:
            x = torch.from_numpy(wav)
            t = time.perf_counter()
            up(x[None], torch.tensor([x.shape[0]]))
            times.append(time.perf_counter() - t)
    audio_s = sum(len(w) for w in wavs) / 16000
    return {"load_s": load_s, "median_s": statistics.median(times), "mean_s": statistics.fmean(times),
            "rtf": sum(times) / audio_s, "audio_mean_s": audio_s / len(wavs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--card", default="whisper_tiny_en")
    ap.add_argument("--utterances", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    wavs = utterances(args.utterances)
    print(f"{args.card}: {len(wavs)} utterances, torch threads {args.threads}, load average {os.getloadavg()[0]:.1f}")
    for window in ("padded30", "real_length"):
        r = time_mode(args.card, window, wavs)
        print(f"  {window:<12} {r['median_s']:.3f} s/utt median, {r['mean_s']:.3f} mean (audio {r['audio_mean_s']:.2f} s "
              f"per utt, RTF {r['rtf']:.3f}), build {r['load_s']:.1f} s")
    print(f"  load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
