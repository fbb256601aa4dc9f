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
    def __init__(self, *, input_size: int, num_classes: int, binary_output: Literal["sigmoid", "softmax"] = "sigmoid"):
        super().__init__()
        self.single_logit = num_classes == 2 and binary_output == "sigmoid"
        self.linear = nn.Linear(input_size, 1 if self.single_logit else num_classes)

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
