"""Whisper's encoder as an upstream, shared by the ``whisper`` (HF) and ``ct2_whisper`` (CTranslate2) adapters.

Input: log-mel features from ``transformers``' ``WhisperFeatureExtractor`` (25 ms / 10 ms, 80 or
128 mel bins, ``log10``, clamped 8 below the window's maximum, scaled ``(x + 4) / 4``): OpenAI's
``log_mel_spectrogram(audio, padding=N_SAMPLES)`` trimmed to 3000 frames, what Whisper was trained
and evaluated on (a test checks it against an independent torch + librosa implementation). The
padded part of the window is the log-mel of digital silence; a runtime that zero-pads the
*features* instead (some faster-whisper versions do) differs only there. Each utterance is cut
into 30 s chunks; every chunk's features are computed on the chunk padded to 30 s, so both
window modes see identical input features.

Window modes (``window``, a card setting recorded in every result):

- ``padded30`` (paper-faithful, what Whisper was trained on and what CTranslate2 /
  faster-whisper run): the encoder sees the full 30 s window (3000 mel frames -> 1500 encoder
  frames) and only the frames of real audio are kept. Costs the same whatever the length.
- ``real_length``: the encoder runs on the real audio only (``2 * ceil(samples / 320)`` mel
  frames, the positional table sliced to the same length). Much cheaper on a CPU for short
  utterances, but attention never sees the padding Whisper was trained with, so the features
  differ from ``padded30``'s: compare numbers only within one mode. (Even layer 0 differs at the
  last frame, whose convolutions see zeros where ``padded30`` sees the padding's log-mel.)

Layers: ``layers[0]`` is the convolution + sinusoidal position output, ``layers[i]`` encoder
layer ``i``; the last one after the encoder's final layer norm (what ``transformers`` returns as
``hidden_states[-1]`` and CTranslate2 as its encoder output). Frames: 50 per second
(``downsample_rate`` 320 at 16 kHz), ``ceil(samples / 320)`` per chunk. Each utterance is encoded
on its own content, so its features never depend on its batch.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from harness.errors import BenchError

from .base import Upstream, UpstreamOutput, pad_frames

WINDOW_MODES = ("padded30", "real_length")
# Chunk length of Whisper's fixed input window.
WHISPER_WINDOW_S = 30


def check_window(window: str) -> str:
    """``window`` if it is a known mode, else a BenchError that lists the modes."""
    if window not in WINDOW_MODES:
        raise BenchError(f"upstream arg `window` must be one of {', '.join(WINDOW_MODES)}; got {window!r}. "
                         "padded30 = the paper-faithful 30 s window, real_length = the real audio only "
                         "(positional table sliced, cheaper on CPU)")
    return window


def whisper_feature_extractor(*, num_mel_bins: int, sample_rate: int = 16000) -> Any:
    """The log-mel front end Whisper models were trained with, for ``num_mel_bins`` (80, or 128 for large-v3)."""
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor(feature_size=num_mel_bins, sampling_rate=sample_rate, chunk_length=WHISPER_WINDOW_S)


def encode_real_length(encoder: Any, feats_BCT: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """All hidden states of a transformers ``WhisperEncoder`` on ``feats_BCT`` of any even length <= 3000.

    The same computation as ``WhisperEncoder.forward`` (which insists on 3000 mel frames) with the
    positional table sliced to the input: conv1 + GELU, conv2 (stride 2) + GELU, + positions,
    the layers, the final layer norm applied to the last state.
    """
    x = F.gelu(encoder.conv1(feats_BCT))
    x = F.gelu(encoder.conv2(x)).permute(0, 2, 1)
    x = x + encoder.embed_positions.weight[: x.shape[1]]
    states = [x]
    for layer in encoder.layers:
        out = layer(x, None)
        x = out[0] if isinstance(out, tuple) else out  # transformers < 5 returns a tuple
        states.append(x)
    states[-1] = encoder.layer_norm(x)
    return tuple(states)


class WhisperWindowedEncoder(Upstream):
    """Base class: runs ``self.encoder`` (a transformers ``WhisperEncoder``) on ``self.feature_extractor``'s
    features in ``self.window`` mode. Subclasses load the encoder and call :meth:`_setup`."""

    granularity = "frame"
    encoder: Any
    feature_extractor: Any
    window: str

    def _setup(self, *, encoder: Any, feature_extractor: Any, window: str) -> None:
        self.window = check_window(window)
        self.encoder = encoder
        self.feature_extractor = feature_extractor
        self.sample_rate = int(feature_extractor.sampling_rate)
        self.window_samples = int(feature_extractor.n_samples)
        # conv2 of the encoder has stride 2 over mel frames
        self.downsample_rate = int(feature_extractor.hop_length) * 2
        self.window_frames = self.window_samples // self.downsample_rate
        self.num_layers = int(encoder.config.encoder_layers) + 1
        self.hidden_size = int(encoder.config.d_model)
        self.min_input_samples = self.downsample_rate

    def _chunks(self, wavs_BT: torch.Tensor, lengths_B: torch.Tensor) -> tuple[list[torch.Tensor], list[int]]:
        """Every utterance cut into window-sized chunks, and how many chunks each utterance has."""
        chunks, counts = [], []
        for b, n in enumerate(lengths_B.tolist()):
            pieces = [wavs_BT[b, s : min(s + self.window_samples, n)] for s in range(0, max(n, 1), self.window_samples)]
            chunks += pieces
            counts.append(len(pieces))
        return chunks, counts

    def _features(self, chunks: list[torch.Tensor]) -> torch.Tensor:
        """[C, mels, 3000] log-mel features of each chunk padded to the 30 s window."""
        feats = self.feature_extractor([c.detach().float().cpu().numpy() for c in chunks],
                                       sampling_rate=self.sample_rate, return_tensors="pt",
                                       padding="max_length").input_features
        param = next(self.encoder.parameters())
        return feats.to(device=param.device, dtype=param.dtype)

    def _encode_chunks(self, feats_CMT: torch.Tensor, keep_C: list[int]) -> list[tuple[torch.Tensor, ...]]:
        """Per chunk, its hidden states [keep, D] over its first ``keep`` frames."""
        if self.window == "padded30":
            states = self.encoder(feats_CMT, output_hidden_states=True, return_dict=True).hidden_states
            return [tuple(h[c, :k] for h in states) for c, k in enumerate(keep_C)]
        out = []
        for c, k in enumerate(keep_C):
            states = encode_real_length(self.encoder, feats_CMT[c : c + 1, :, : 2 * k])
            out.append(tuple(h[0, :k] for h in states))
        return out

    def forward(self, wavs_BT: torch.Tensor, lengths_B: torch.Tensor) -> UpstreamOutput:
        lengths_B = lengths_B.long()
        chunks, counts = self._chunks(wavs_BT, lengths_B)
        keep_C = [math.ceil(c.shape[0] / self.downsample_rate) for c in chunks]  # frames of real audio per chunk
        per_chunk = self._encode_chunks(self._features(chunks), keep_C)
        layers = []
        for i in range(self.num_layers):
            per_utt, start = [], 0
            for count in counts:
                per_utt.append(torch.cat([per_chunk[c][i] for c in range(start, start + count)], dim=0))
                start += count
            layers.append(pad_frames(per_utt)[0])
        lengths = torch.tensor([math.ceil(n / self.downsample_rate) for n in lengths_B.tolist()], dtype=torch.long)
        return UpstreamOutput(layers=tuple(layers), lengths=lengths)
