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

Optionally, a classmethod ``describe(**card_args) -> ArchInfo`` states the architecture (exact
parameter count, layers, width, frame rate) and where the weights come from *without loading
them*; ``bench info --upstream NAME`` calls it (see :mod:`harness.features.info`).

Layer indexing: ``layers[0]`` is what the model exposes first (for wav2vec2-style models the CNN
feature projection output, the paper's "layer 0"); ``layers[i]`` for i >= 1 is transformer layer
i, so the paper's 1-based Table II index is the same number. The harness, not the adapter, moves
the module to a device, calls ``.eval()`` and freezes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from torch import nn


class UpstreamOutput(NamedTuple):
    layers: tuple[torch.Tensor, ...]  # each [B, T', D], float
    lengths: torch.Tensor  # [B] int64, valid frames per row


@dataclass(frozen=True)
class ArchInfo:
    """What an adapter says about itself without loading weights (``describe``)."""

    params: int | None  # exact parameter count of the module the adapter runs (None: unknown offline)
    num_layers: int | None
    hidden_size: int | None
    downsample_rate: int | None  # input samples per output frame
    sample_rate: int = 16000
    granularity: str = "frame"
    weights_source: str = ""  # hub id, URL or "none"
    weights_present: bool | None = None  # available locally right now (None: nothing to fetch)
    weights_location: str = ""  # where they are (or would be) on this machine
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. {"params_full_model": ...}
    notes: tuple[str, ...] = ()


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


def zero_padding(layers: tuple[torch.Tensor, ...], lengths_B: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Zero every frame at or beyond ``lengths_B[b]`` so that padding never carries model output."""
    out = []
    for h_BTD in layers:
        valid_BT = torch.arange(h_BTD.shape[1], device=h_BTD.device)[None, :] < lengths_B.to(h_BTD.device)[:, None]
        out.append(h_BTD.masked_fill(~valid_BT[..., None], 0.0))
    return tuple(out)
