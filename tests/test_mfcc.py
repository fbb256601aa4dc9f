"""The MFCC upstreams: the paper's 759-d baseline and the small models' 13-d input; per-utterance
features, so an utterance's features do not depend on its batch (torchaudio's default MFCC does)."""

from __future__ import annotations

import torch

from upstreams.mfcc import MFCCUpstream


def test_paper_baseline_shape_and_frame_rate() -> None:
    m = MFCCUpstream().eval()  # 23 coefficients + deltas + delta-deltas, 5 frames of context each side
    assert m.hidden_size == 23 * 3 * 11 == 759 and m.downsample_rate == 160
    out = m(torch.randn(1, 16000) * 0.1, torch.tensor([16000]))
    assert out.layers[0].shape == (1, 98, 759)  # 1 + (16000 - 400) // 160 frames, 25 ms / 10 ms
    assert out.lengths.tolist() == [98]


def test_mfcc13_shape() -> None:
    m = MFCCUpstream(n_mfcc=13, deltas=False, context=0).eval()
    assert m.hidden_size == 13
    assert m(torch.randn(1, 8000) * 0.1, torch.tensor([8000])).layers[0].shape == (1, 48, 13)


def test_batch_and_padding_invariance() -> None:
    torch.manual_seed(0)
    m = MFCCUpstream().eval()
    short, long = torch.randn(5000) * 0.01, torch.randn(16000) * 0.5  # very different levels: a batch-wide floor would show
    batch = torch.zeros(2, 16000)
    batch[0, :5000], batch[1] = short, long
    together = m(batch, torch.tensor([5000, 16000]))
    alone = m(short[None], torch.tensor([5000]))
    n = int(alone.lengths[0])
    assert int(together.lengths[0]) == n
    assert torch.allclose(together.layers[0][0, :n], alone.layers[0][0], atol=1e-5)
