"""Word segments and their mfcc13 frames: cutting, batching invariance, the segment bank."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from harness.data import Utterance, Word
from harness.smallmodels.segments import (
    MAX_FRAMES,
    SegmentBank,
    build_segment_bank,
    mfcc13_frames,
    normalise_word,
    pad_to_frames,
    segment_bank,
    word_segments,
)
from harness.smallmodels.testing import make_espeak_corpus
from upstreams.mfcc import MFCCUpstream


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return make_espeak_corpus(tmp_path_factory.mktemp("seg_corpus"), language="en", n_speakers=2,
                              utterances_per_speaker=3, split_speakers=(2, 0, 0),
                              vocabulary=["cat", "hat", "dog", "window", "a"], seed=3)


def test_normalise_word() -> None:
    assert normalise_word(" Hello, ") == "hello"
    assert normalise_word("«Été»") == "été"
    assert normalise_word("don't") == "don't"
    assert normalise_word("...") == ""


def test_word_segments_use_file_times_and_widen_short_words() -> None:
    wav = np.arange(16000, dtype=np.float32)  # 1 s; the utterance starts 2 s into its file
    u = Utterance(id="u", path="/x.wav", split="train", language="en", speaker="s", start_s=2.0, end_s=3.0,
                  words=(Word("a", 2.1, 2.2), Word("b", 2.5, 2.501), Word("c", 2.99, 3.5), Word("d", 3.5, 3.6)))
    a, b, c, d = word_segments(u, wav)
    assert a[0] == 1600 and len(a) == 1600
    assert len(b) == 400 and b[0] == 8000 - 200 + 8  # widened around its centre to one window
    assert len(c) == 400 and c[-1] == 15999  # widened, kept inside the audio
    assert len(d) == 0  # starts past the end


def test_mfcc13_batched_equals_per_segment_mfcc_upstream() -> None:
    rng = np.random.default_rng(0)
    wavs = [rng.normal(size=n).astype(np.float32) for n in (400, 5000, 1234, 20000, 399)]
    batched = mfcc13_frames(wavs, batch_size=2)
    reference = MFCCUpstream(n_mfcc=13, deltas=False, context=0)
    for wav, got in zip(wavs, batched, strict=True):
        if len(wav) < 400:
            assert got.shape == (0, 13)
            continue
        want = reference.features(torch.from_numpy(wav))[:MAX_FRAMES]
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    assert batched[3].shape == (MAX_FRAMES, 13)  # 20000 samples = 123 frames, cut to 80


def test_pad_to_frames_cuts_and_pads() -> None:
    x, lengths = pad_to_frames([torch.ones(100, 13), torch.ones(3, 13), torch.zeros(0, 13)], max_frames=80)
    assert x.shape == (3, 80, 13) and lengths.tolist() == [80, 3, 1]
    assert float(x[1, 3:].abs().sum()) == 0.0


def test_segment_bank_neighbours_and_disk_round_trip(corpus, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bank = build_segment_bank(corpus.split("train"))
    assert len(bank) == sum(len(u.words) for u in corpus.split("train"))
    assert set(bank.words) <= {"cat", "hat", "dog", "window", "a"}
    prev, nxt = bank.neighbours()
    for i in range(len(bank)):
        if prev[i] >= 0:
            assert bank.utterance_ids[prev[i]] == bank.utterance_ids[i]
            assert bank.positions[prev[i]] == bank.positions[i] - 1
        else:
            assert bank.positions[i] == 0
        if nxt[i] >= 0:
            assert bank.positions[nxt[i]] == bank.positions[i] + 1
    bank.save(tmp_path / "b.npz")
    again = SegmentBank.load(tmp_path / "b.npz")
    assert again.words == bank.words and np.array_equal(again.frames_flat, bank.frames_flat)
    cached = segment_bank(corpus, "train", cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    assert np.array_equal(cached.lengths, bank.lengths)
    sub = bank.subset([0, 2])
    assert sub.words == (bank.words[0], bank.words[2])
    assert np.array_equal(sub.frames(1), bank.frames(2))
