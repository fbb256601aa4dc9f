"""The GE2E (Resemblyzer) upstream: its real wheel weights, resemblyzer's own numbers, the VAD option."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from harness.errors import BenchError

resemblyzer = pytest.importorskip("resemblyzer", reason="optional extra `resemblyzer` not installed")

from upstreams.resemblyzer_ge2e import GE2EUpstream, import_resemblyzer  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models run op by op; on a shared 2-core machine OpenMP barriers between threads cost seconds per op."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)



@pytest.fixture(scope="module")
def ge2e():
    return GE2EUpstream().eval()


def voiced(n: int, *, f0_hz: float, seed: int = 0) -> np.ndarray:
    t = np.arange(n) / 16000
    rng = np.random.default_rng(seed)
    wav = sum(np.sin(2 * np.pi * f0_hz * k * t) / k for k in range(1, 6)) * 0.1 + rng.normal(0, 0.01, n)
    return wav.astype(np.float32)


def test_matches_resemblyzer_embed_utterance(ge2e):
    wav = voiced(40000, f0_hz=120.0)
    encoder = resemblyzer.VoiceEncoder(device="cpu", verbose=False)
    want = encoder.embed_utterance(resemblyzer.normalize_volume(wav, -30, increase_only=True))
    with torch.no_grad():
        out = ge2e(torch.from_numpy(wav)[None], torch.tensor([40000]))
    np.testing.assert_allclose(out.layers[0][0, 0].numpy(), want, atol=1e-5)


def test_one_unit_vector_per_utterance(ge2e):
    wavs = torch.zeros(2, 32000)
    wavs[0, :20000] = torch.from_numpy(voiced(20000, f0_hz=110.0))
    wavs[1] = torch.from_numpy(voiced(32000, f0_hz=230.0, seed=1))
    with torch.no_grad():
        out = ge2e(wavs, torch.tensor([20000, 32000]))
    assert out.layers[0].shape == (2, 1, 256) and out.lengths.tolist() == [1, 1]
    torch.testing.assert_close(out.layers[0].norm(dim=-1), torch.ones(2, 1))


def test_vad_trimming_is_an_option(ge2e):
    speech = voiced(24000, f0_hz=150.0)
    with_pause = np.concatenate([speech[:12000], np.zeros(32000, np.float32), speech[12000:]])
    wav = torch.from_numpy(with_pause)[None]
    lengths = torch.tensor([with_pause.shape[0]])
    trimming = GE2EUpstream(vad_trim=True).eval()
    with torch.no_grad():
        plain, trimmed = ge2e(wav, lengths).layers[0], trimming(wav, lengths).layers[0]
    assert not torch.allclose(plain, trimmed)


def test_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "resemblyzer", None)
    with pytest.raises(BenchError, match=r"\[resemblyzer\]"):
        import_resemblyzer()
