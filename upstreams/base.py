"""The upstream contract: what every adapter is and returns.

An adapter is a ``torch.nn.Module`` with

- ``sample_rate`` (Hz of the input it expects), ``num_layers`` (how many hidden states it
  returns), ``hidden_size`` (D), ``downsample_rate`` (input samples per output frame),
- ``forward(wavs_BT, lengths_B) -> UpstreamOutput(layers=(h_0, ..., h_{L-1}) each [B, T', D],
  lengths=[B])``: the adapter reports its own frame lengths (only it knows its conv arithmetic),
- ``granularity``: ``"frame"`` (a sequence of frames per utterance), ``"utterance"`` (T' = 1) or
  ``"word"`` (the harness feeds one word segment per row, cut from the word alignments, and the
  adapter returns T' = 1 per segment),
- ``min_input_samples``: the shortest input it accepts.

Layer indexing: ``layers[0]`` is what the model exposes first (for wav2vec2-style models the CNN
feature projection output, the paper's "layer 0"); ``layers[i]`` for i >= 1 is transformer layer
i, so the paper's 1-based Table II index is the same number. The harness, not the adapter, moves
the module to a device, calls ``.eval()`` and freezes it.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn


class UpstreamOutput(NamedTuple):
    layers: tuple[torch.Tensor, ...]  # each [B, T', D], float
    lengths: torch.Tensor  # [B] int64, valid frames per row


class Upstream(nn.Module):
    """Base class for adapters (optional: the contract is structural, any module with these works)."""

    sample_rate: int = 16000
    num_layers: int = 1
    hidden_size: int = 0
    downsample_rate: int = 1
    granularity: str = "frame"
    min_input_samples: int = 400

    def forward(self, wavs_BT: torch.Tensor, lengths_B: torch.Tensor) -> UpstreamOutput:  # pragma: no cover
        raise NotImplementedError


def pad_frames(frames: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack [T_i, D] tensors into a zero-padded [B, T_max, D] and their lengths [B]."""
    lengths = torch.tensor([f.shape[0] for f in frames], dtype=torch.long)
    out = frames[0].new_zeros((len(frames), int(lengths.max()), frames[0].shape[1]))
    for i, f in enumerate(frames):
        out[i, : f.shape[0]] = f
    return out, lengths
