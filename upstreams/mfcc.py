"""MFCC upstreams: the paper's baseline (``mfcc``) and the small models' input (``mfcc13``).

``mfcc``: 23 coefficients, 25 ms window, 10 ms hop, + first and second derivatives, + 5 frames
of left and right context (69 x 11 = 759 dimensions), as in the paper (Section V-A).

Batch invariance: torchaudio's default ``MFCC`` computes its dB floor over the whole batch, and
deltas / context at the end of a padded row would see the padding. Features are therefore
computed per utterance on its valid samples only (``log_mels=True``, ``center=False``), then
padded: an utterance's features never depend on what else is in the batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchaudio

from .base import Upstream, UpstreamOutput, pad_frames


class MFCCUpstream(Upstream):
    granularity = "frame"
    has_weights = False  # a fixed transform: ``mfcc@random`` is the same module (harness.config.adapters.random_init_note)

    def __init__(self, *, n_mfcc: int = 23, n_mels: int = 40, win_ms: float = 25.0, hop_ms: float = 10.0,
                 deltas: bool = True, context: int = 5, sample_rate: int = 16000, cmvn: bool = False):
        super().__init__()
        self.sample_rate = sample_rate
        self.win_samples = int(round(sample_rate * win_ms / 1000))
        self.hop_samples = int(round(sample_rate * hop_ms / 1000))
        self.deltas = deltas
        self.context = context
        self.cmvn = cmvn
        self.mfcc = torchaudio.transforms.MFCC(
            sample_rate=sample_rate, n_mfcc=n_mfcc, log_mels=True,
            melkwargs={"n_fft": self.win_samples, "win_length": self.win_samples,
                       "hop_length": self.hop_samples, "n_mels": n_mels, "center": False},
        )
        per_frame = n_mfcc * (3 if deltas else 1)
        self.num_layers = 1
        self.hidden_size = per_frame * (2 * context + 1)
        self.downsample_rate = self.hop_samples
        self.min_input_samples = self.win_samples

    def features(self, wav_T: torch.Tensor) -> torch.Tensor:
        """[T] samples -> [T', D] features of one utterance."""
        feats = self.mfcc(wav_T.float()).transpose(0, 1)  # [T', n_mfcc]
        if self.cmvn:
            feats = feats - feats.mean(0, keepdim=True)
        if self.deltas:
            d1 = torchaudio.functional.compute_deltas(feats.T.unsqueeze(0)).squeeze(0).T
            d2 = torchaudio.functional.compute_deltas(d1.T.unsqueeze(0)).squeeze(0).T
            feats = torch.cat([feats, d1, d2], dim=1)
        if self.context:
            c = self.context
            padded = F.pad(feats.T.unsqueeze(0), (c, c), mode="replicate").squeeze(0).T  # [T'+2c, d]
            feats = torch.cat([padded[i : i + feats.shape[0]] for i in range(2 * c + 1)], dim=1)
        return feats

    def forward(self, wavs_BT: torch.Tensor, lengths_B: torch.Tensor) -> UpstreamOutput:
        frames = []
        for wav, n in zip(wavs_BT, lengths_B.tolist(), strict=True):
            if n < self.win_samples:
                raise ValueError(f"input of {n} samples is shorter than one {self.win_samples}-sample window")
            frames.append(self.features(wav[:n]))
        feats, lengths = pad_frames(frames)
        return UpstreamOutput(layers=(feats,), lengths=lengths)
