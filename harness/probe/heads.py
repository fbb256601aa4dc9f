"""Probe heads. Every head maps features to class logits ``[B, C]`` and is trained with cross-entropy.

- ``linear`` (the paper's gender probe): pooled vectors ``[B, D]`` -> one linear layer. With two
  classes and ``binary_output: sigmoid`` (the paper's text: one output between 0 and 1 with
  binary cross-entropy) it has a single output unit ``z`` and returns logits ``[0, z]``:
  cross-entropy on these equals BCE on ``sigmoid(z)``, so training and attribution stay uniform.
- ``bilstm`` (the paper's head for emotion, intent, topic and request): frames ``[B, T, D]`` ->
  ``num_layers`` bidirectional LSTM layers of ``hidden_size`` per direction -> masked mean (or
  sum) pooling over time -> dropout -> MLP with ReLU -> output layer without bias.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class LinearHead(nn.Module):
    def __init__(self, *, input_size: int, num_classes: int, binary_output: Literal["sigmoid", "softmax"] = "sigmoid",
                 bias: bool = True):
        super().__init__()
        self.single_logit = num_classes == 2 and binary_output == "sigmoid"
        # bias: false is the authors' code (Linear(768, 2, bias=False)); the paper's text is silent
        self.linear = nn.Linear(input_size, 1 if self.single_logit else num_classes, bias=bias)

    def forward(self, x_BD: torch.Tensor, lengths_B: torch.Tensor | None = None) -> torch.Tensor:
        z = self.linear(x_BD)
        if self.single_logit:
            return torch.cat([torch.zeros_like(z), z], dim=1)
        return z


class BiLSTMHead(nn.Module):
    def __init__(self, *, input_size: int, num_classes: int, hidden_size: int = 512, num_layers: int = 4,
                 dropout: float = 0.3, mlp_sizes: tuple[int, ...] | list[int] = (1024, 1024, 1024),
                 pooling: Literal["mean", "sum"] = "mean", output_bias: bool = False, input_stride: int = 1,
                 max_frame_rate_hz: float | None = None, input_frame_rate_hz: float | None = None):
        super().__init__()
        self.pooling = pooling
        # input_stride: average every k frames; max_frame_rate_hz: choose k from the upstream's frame
        # rate (100 Hz MFCC and 50 Hz transformers both end up near the same rate). 1 / None = off.
        stride = int(input_stride)
        if max_frame_rate_hz and input_frame_rate_hz:
            stride = max(stride, int(round(input_frame_rate_hz / max_frame_rate_hz)))
        self.input_stride = max(stride, 1)
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers=num_layers, batch_first=True, bidirectional=True)
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        width = 2 * hidden_size
        for size in mlp_sizes:  # ReLU after each hidden layer (two stacked linears would collapse into one)
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        self.mlp = nn.Sequential(*layers)
        self.out = nn.Linear(width, num_classes, bias=output_bias)

    def _stride(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Average every ``input_stride`` frames (a cheaper head for the CPU profile; 1 = off)."""
        k = self.input_stride
        if k <= 1:
            return x, lengths
        b, t, d = x.shape
        pad = (-t) % k
        if pad:
            x = torch.cat([x, x.new_zeros(b, pad, d)], dim=1)
        mask = (torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]).to(x.dtype)
        sums = (x * mask[..., None]).reshape(b, -1, k, d).sum(2)
        counts = mask.reshape(b, -1, k).sum(2).clamp(min=1)
        new_lengths = torch.div(lengths + k - 1, k, rounding_mode="floor").clamp(min=1)
        return sums / counts[..., None], new_lengths

    def forward(self, x_BTD: torch.Tensor, lengths_B: torch.Tensor) -> torch.Tensor:
        x, lengths = self._stride(x_BTD, lengths_B)
        lengths_cpu = lengths.detach().to("cpu").clamp(min=1, max=x.shape[1])
        packed = pack_padded_sequence(x, lengths_cpu, batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        h, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        mask = (torch.arange(h.shape[1], device=h.device)[None, :] < lengths_cpu.to(h.device)[:, None]).to(h.dtype)
        pooled = (h * mask[..., None]).sum(1)
        if self.pooling == "mean":
            pooled = pooled / mask.sum(1, keepdim=True).clamp(min=1)
        return self.out(self.mlp(pooled))


LayerMode = Literal["weighted_sum", "mean"]
LAYER_MODES: tuple[LayerMode, ...] = ("weighted_sum", "mean")


class LayerMix(nn.Module):
    """SUPERB's layer modes: features of every layer ``[..., L, D]`` -> one vector ``[..., D]``.

    - ``weighted_sum``: ``sum_l softmax(w)_l x_l`` with learnable logits ``w`` [L], initialised
      to zero (equal weights), trained with the head (s3prl's ``Featurizer``);
    - ``mean``: the plain mean over layers (no parameter).

    The mix is linear, so mixing pooled vectors equals pooling the mixed frames: pooled heads
    read the cache's per-layer pooled vectors ``[B, L, D]``, frame heads the frames ``[B, T, L, D]``.
    """

    def __init__(self, *, num_layers: int, mode: LayerMode):
        super().__init__()
        if mode not in LAYER_MODES:
            raise ValueError(f"layer mode {mode!r}: expected one of {list(LAYER_MODES)}")
        if num_layers < 1:
            raise ValueError(f"layer mix over {num_layers} layers: expected at least 1")
        self.mode = mode
        self.num_layers = num_layers
        self.logits_L = nn.Parameter(torch.zeros(num_layers)) if mode == "weighted_sum" else None

    def weights(self) -> torch.Tensor:
        """The weight of each layer ``[L]`` (they sum to 1)."""
        if self.logits_L is None:
            return torch.full((self.num_layers,), 1.0 / self.num_layers)
        return torch.softmax(self.logits_L, dim=0)

    def forward(self, x_LD: torch.Tensor) -> torch.Tensor:
        if x_LD.shape[-2] != self.num_layers:
            raise ValueError(f"layer mix: input has {x_LD.shape[-2]} layers on axis -2 (shape {tuple(x_LD.shape)}), "
                             f"the mix was built for {self.num_layers}")
        w = self.weights().to(device=x_LD.device, dtype=x_LD.dtype)
        return torch.einsum("...ld,l->...d", x_LD, w)


class LayerMixHead(nn.Module):
    """A head reading a :class:`LayerMix` of every layer: ``head(mix(x), lengths)``; the mix's
    weights are parameters of this module, so they train jointly with the head."""

    def __init__(self, head: nn.Module, *, num_layers: int, mode: LayerMode):
        super().__init__()
        self.mix = LayerMix(num_layers=num_layers, mode=mode)
        self.head = head

    def forward(self, x: torch.Tensor, lengths_B: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.mix(x), lengths_B)
