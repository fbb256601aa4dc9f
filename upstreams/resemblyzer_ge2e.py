"""The GE2E speaker encoder of ``resemblyzer`` 0.1.4, whose pretrained weights ship inside the wheel.

Utterance granularity: one 256-d, L2-normalised vector per utterance (``[B, 1, 256]``), computed
as resemblyzer's ``embed_utterance`` does: volume normalised to -30 dBFS (increase only), 40-band
mel spectrogram (25 ms / 10 ms, librosa), 1.6 s partial windows at 1.3 per second (the last
kept if at least 75 % covered, always at least one, zero padded), a 3-layer LSTM (256) + linear +
ReLU per partial, L2-normalised mean of the partials. Each utterance is processed on its own
valid samples, so the result never depends on the batch.

resemblyzer's ``preprocess_wav`` also trims long silences with webrtcvad; that changes what is
embedded, so it is off by default (``vad_trim=True`` turns it on).

Install the extra: ``pip install -e '.[resemblyzer]'`` (resemblyzer 0.1.4, webrtcvad, setuptools<81).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from harness.errors import BenchError

from .base import ArchInfo, Upstream, UpstreamOutput

EMBEDDING_SIZE = 256
MEL_CHANNELS = 40
LSTM_LAYERS = 3
INSTALL_HINT = "pip install -e '.[resemblyzer]'  (resemblyzer==0.1.4, webrtcvad, setuptools<81)"


def import_resemblyzer() -> Any:
    """The resemblyzer package, or a BenchError naming the extra to install."""
    try:
        with warnings.catch_warnings():
            # webrtcvad imports the deprecated pkg_resources; nothing we can act on
            warnings.simplefilter("ignore", UserWarning)
            import resemblyzer
    except ImportError as e:
        raise BenchError(f"the resemblyzer upstream needs the optional extra `resemblyzer`: {INSTALL_HINT} ({e})") from e
    return resemblyzer


def weights_path() -> Path:
    return Path(import_resemblyzer().__file__).resolve().parent / "pretrained.pt"


class _GE2E(nn.Module):
    """resemblyzer's VoiceEncoder network, without its device handling and prints."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(MEL_CHANNELS, EMBEDDING_SIZE, LSTM_LAYERS, batch_first=True)
        self.linear = nn.Linear(EMBEDDING_SIZE, EMBEDDING_SIZE)

    def forward(self, mels_NTF: torch.Tensor) -> torch.Tensor:
        _, (hidden, _) = self.lstm(mels_NTF)
        raw = torch.relu(self.linear(hidden[-1]))
        return raw / torch.norm(raw, dim=1, keepdim=True)


class GE2EUpstream(Upstream):
    """GE2E speaker embedding (Resemblyzer): ``[B, 1, 256]`` per batch, lengths all 1.

    Options: ``vad_trim`` (resemblyzer's webrtcvad silence trimming, off by default),
    ``normalize_volume`` (to -30 dBFS, increase only: resemblyzer's default, on),
    ``rate`` / ``min_coverage`` (partial windows, resemblyzer's defaults).
    """

    granularity = "utterance"
    sample_rate = 16000
    num_layers = 1
    hidden_size = EMBEDDING_SIZE
    min_input_samples = 400

    def __init__(self, *, vad_trim: bool = False, normalize_volume: bool = True, rate: float = 1.3,
                 min_coverage: float = 0.75, random_init: bool = False, seed: int = 0):
        super().__init__()
        self._r = import_resemblyzer()
        self.vad_trim, self.do_normalize_volume = vad_trim, normalize_volume
        self.rate, self.min_coverage = rate, min_coverage
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = _GE2E()
        if not random_init:
            state = torch.load(weights_path(), map_location="cpu", weights_only=True)["model_state"]
            # the checkpoint also holds GE2E's training-only similarity scale and bias
            self.net.load_state_dict({k: v for k, v in state.items() if not k.startswith("similarity_")})
        self.sample_rate = int(self._r.sampling_rate)
        # one embedding per utterance; the "frame" is the whole utterance
        self.downsample_rate = 1

    @classmethod
    def describe(cls, *, random_init: bool = False, **_options: Any) -> ArchInfo:
        with torch.device("meta"):
            params = sum(p.numel() for p in _GE2E().parameters())
        try:
            path, present = str(weights_path()), True
        except BenchError:
            path, present = f"inside the resemblyzer wheel ({INSTALL_HINT})", False
        return ArchInfo(params=params, num_layers=1, hidden_size=EMBEDDING_SIZE, downsample_rate=None,
                        granularity="utterance", weights_source="resemblyzer==0.1.4 wheel (pretrained.pt)",
                        weights_present=present, weights_location=path)

    def _partial_mels(self, wav: np.ndarray) -> np.ndarray:
        """[N partials, 160 frames, 40 mels] of one utterance, as ``VoiceEncoder.embed_utterance`` slices them."""
        r = self._r
        if self.do_normalize_volume and np.any(wav):  # silence has no level to normalise (log of 0)
            wav = r.normalize_volume(wav, r.hparams.audio_norm_target_dBFS, increase_only=True)
        if self.vad_trim:
            wav = r.trim_long_silences(wav)
        wav_slices, mel_slices = r.VoiceEncoder.compute_partial_slices(len(wav), self.rate, self.min_coverage)
        if wav_slices[-1].stop >= len(wav):
            wav = np.pad(wav, (0, wav_slices[-1].stop - len(wav)), "constant")
        mel = r.wav_to_mel_spectrogram(wav)
        return np.stack([mel[s] for s in mel_slices])

    def forward(self, wavs_BT: torch.Tensor, lengths_B: torch.Tensor) -> UpstreamOutput:
        param = next(self.net.parameters())
        embeds = []
        for b, n in enumerate(lengths_B.tolist()):
            wav = wavs_BT[b, :n].detach().float().cpu().numpy()
            mels = torch.from_numpy(self._partial_mels(wav)).to(device=param.device, dtype=param.dtype)
            mean = self.net(mels).mean(dim=0)
            embeds.append(mean / torch.norm(mean))
        out_B1D = torch.stack(embeds)[:, None, :]
        return UpstreamOutput(layers=(out_B1D,), lengths=torch.ones(len(embeds), dtype=torch.long))
