"""Fixtures for the analysis tests: hand-made feature sets with planted signal, small probe
downstreams written into the temporary workspace, a 3-layer upstream built on the real MFCC,
and a tiny espeak dataset with emotion labels."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.data import Dataset
from harness.probe.train import FeatureSet, concat_sequences
from tests.audio_fixtures import make_dataset
from upstreams.base import Upstream, UpstreamOutput
from upstreams.mfcc import MFCCUpstream


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny heads train many times faster on one thread than on two busy cores (OpenMP spin-waits);
    the analysis test modules import this autouse fixture."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


PROBE_LINEAR = """\
description: test probe (pooled, linear head)
task: gender
head: linear
features: pooled
layer: sweep
sweep: {fraction: 0.5, stride: all, seed: 0}
head_args: {binary_output: sigmoid}
training: {lr: 0.02, batch_size: 32, max_epochs: 25, patience: 6}
"""

PROBE_BILSTM = """\
description: test probe (frames, small BiLSTM head)
task: emotion
head: bilstm
features: frames
layer: sweep
sweep: {fraction: 0.5, stride: all, seed: 0}
head_args: {hidden_size: 16, num_layers: 1, dropout: 0.0, mlp_sizes: [16], pooling: mean}
training: {lr: 0.01, batch_size: 16, max_epochs: 12, patience: 4}
"""

SMALL_EMOTION = {"head_args": {"hidden_size": 8, "num_layers": 1, "mlp_sizes": [8], "input_stride": 4},
                 "training": {"max_epochs": 2, "patience": 1}}


def write_probe_downstreams(root: Path) -> None:
    """``probe_linear`` and ``probe_bilstm`` downstreams in the workspace at ``root``."""
    (root / "downstreams" / "probe_linear.yaml").write_text(PROBE_LINEAR)
    (root / "downstreams" / "probe_bilstm.yaml").write_text(PROBE_BILSTM)


def planted_pooled(n: int, *, dim: int, informative: Sequence[int], seed: int, shift: float = 1.2) -> FeatureSet:
    """Two classes; class 1 is shifted by +shift and class 0 by -shift on the ``informative`` dimensions."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, dim))
    x[:, list(informative)] += ((2 * y - 1) * shift)[:, None]
    return FeatureSet("pooled", x.astype(np.float16), y.astype(np.int64), [f"p{seed}_{i}" for i in range(n)])


def planted_frames(n: int, *, dim: int, informative: tuple[int, int], seed: int, shift: float = 1.5) -> FeatureSet:
    """Three classes of frame sequences: class 0 up on dimension a, class 1 up on b, class 2 down on both."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    a, b = informative
    seqs = []
    for yi in y:
        s = rng.normal(size=(int(rng.integers(4, 14)), dim))
        if yi == 0:
            s[:, a] += shift
        elif yi == 1:
            s[:, b] += shift
        else:
            s[:, [a, b]] -= shift
        seqs.append(s.astype(np.float16))
    x, off = concat_sequences(seqs, dim=dim)
    return FeatureSet("frames", x, y.astype(np.int64), [f"f{seed}_{i}" for i in range(n)], offsets=off)


class ProjectedMFCC(Upstream):
    """A real 3-layer upstream for tests: 13 MFCCs -> fixed random projections (layer i = tanh of
    layer i-1 times a seeded matrix). Counts its forward calls."""

    granularity = "frame"

    def __init__(self, *, num_layers: int = 3, hidden_size: int = 16, seed: int = 0):
        super().__init__()
        self.mfcc = MFCCUpstream(n_mfcc=13, deltas=False, context=0)
        self.num_layers, self.hidden_size = num_layers, hidden_size
        self.downsample_rate = self.mfcc.downsample_rate
        self.min_input_samples = self.mfcc.min_input_samples
        g = torch.Generator().manual_seed(seed)
        sizes = [13] + [hidden_size] * num_layers
        self.projections = [torch.randn(sizes[i], sizes[i + 1], generator=g) / math.sqrt(sizes[i])
                            for i in range(num_layers)]
        self.forward_calls = 0

    def forward(self, wavs_BT: torch.Tensor, lengths_B: torch.Tensor) -> UpstreamOutput:
        self.forward_calls += 1
        out = self.mfcc(wavs_BT, lengths_B)
        h = out.layers[0] / 10.0
        layers = []
        for w in self.projections:
            h = torch.tanh(h @ w)
            layers.append(h)
        return UpstreamOutput(layers=tuple(layers), lengths=out.lengths)


EMOTIONS = ("neutral", "angry", "sad", "happy")


def emotion_dataset(root: Path, *, n: int = 8, name: str = "tiny-emo") -> Dataset:
    """:func:`make_dataset` with an ``emotion`` label too: neutral and angry alternate every four
    utterances, so every split (split = index mod 4) holds both once ``n >= 8``."""
    ds = make_dataset(root, n=n, name=name)
    utts = [replace(u, labels={**u.labels, "emotion": EMOTIONS[(i // 4) % 2]})
            for i, u in enumerate(ds.utterances)]
    return ds.subset(utts)


TINY3_CARD = """\
# Test card for ProjectedMFCC: tests pass the module to ensure_features(upstream=...) and the card
# keys its cache entry; English only, so other languages are the paper's "*" fallback.
adapter: mfcc
args: {n_mfcc: 13, deltas: false, context: 0}
revision: "tiny3-test"
meta: {display: tiny3, family: test, group: base, languages: [en]}
"""


def write_tiny3_card(root: Path) -> None:
    (root / "upstreams" / "cards" / "tiny3.yaml").write_text(TINY3_CARD)
