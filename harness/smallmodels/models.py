"""The shared word encoder, a peephole LSTM cell, and the four small training models.

Shapes: ``x_BTF`` = MFCC frames [B, T, 13] zero-padded (T <= 80), ``lengths_B`` = valid frames per
row (>= 1). Every model exposes ``encoder`` (the part used as an upstream) and
``loss(batch) -> dict`` with a scalar ``"loss"`` and its named parts.

- :class:`WordEncoder`: one bidirectional LSTM layer, 128 units per direction, each row read
  only over its valid frames; the embedding is the SUM of the final forward and backward hidden
  states (128-d).
- :class:`AudioWord2Vec`: a peephole-LSTM decoder reconstructs the input (masked MSE); during
  training input frames are zeroed with probability 0.3 ("zero masking", whole frames).
- :class:`Speech2Vec`: skip-gram: one LSTM decoder reconstructs the previous and the next word of
  the same utterance (MSE + MSE), conditioned on the embedding at every step (concatenated to its
  input).
- :class:`Siamese`: triplets (anchor, positive = same word, negative = another word); cosine
  distance; margin 0.4; the hinge applied both ways (anchor-negative and positive-negative).
- :class:`LEE`: an attention LSTM decoder (LSTMCell(128 + 13 -> 128), additive attention over the
  encoder outputs) reconstructs the input; a dropout(0.3) + MLP 128 -> 256 -> 512 -> D regresses
  the word's text-teacher vector; the two losses have equal weight.

Decoder inputs (all three decoders): by default the previous TARGET frame (teacher forcing), the
first step seeing zeros (LEE: the embedding projected down to 13 dimensions). The decoders' 13-d
input weights are what makes the paper's parameter counts come out (see :func:`parameter_report`).
``decoder_input="zeros"`` feeds zeros instead, so that only the embedding (initial state,
conditioning, attention) carries the word: same parameters, no teacher forcing.

Decoders start from h_0 = the embedding, c_0 = 0. They reconstruct STANDARDISED frames (the
encoder's per-coefficient training mean and standard deviation, see :class:`WordEncoder`), so
that c0, whose raw range dwarfs the other coefficients, does not dominate the loss.

LEE loss: the paper's text says L1, its code uses MSE. The default is ``"mse"`` because the code
is what produced the published numbers; ``lee_loss="l1"`` follows the text.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import BenchError
from . import MODELS, PAPER_PARAMS

TEXT_DIMS = {"minilm": 384, "bert": 768}


@dataclass(frozen=True)
class SmallModelConfig:
    """Hyper-parameters of one small model (stored in the checkpoint as a plain dict)."""

    model: str
    n_mfcc: int = 13
    hidden_size: int = 128
    max_frames: int = 80
    mask_prob: float = 0.3  # Audio word2vec: probability of zeroing an input frame in training
    peephole: str = "full"  # Audio word2vec decoder: "full" (H x H peephole matrices) or "diagonal"
    decoder_input: str = "previous_frame"  # "previous_frame" (teacher forcing) or "zeros"
    margin: float = 0.4  # Siamese
    text_dim: int = 384  # LEE: the teacher's vector size (minilm 384, bert 768)
    lee_loss: str = "mse"  # LEE: "mse" (paper code) or "l1" (paper text)
    dropout: float = 0.3  # LEE text head

    def __post_init__(self) -> None:
        choices = {"model": MODELS, "peephole": ("full", "diagonal"), "decoder_input": ("previous_frame", "zeros"),
                   "lee_loss": ("mse", "l1")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise BenchError(f"small model config: {name} must be one of {list(allowed)}, got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SmallModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise BenchError(f"small model config: unknown keys {unknown}; known: {sorted(known)}")
        return cls(**data)


# --------------------------------------------------------------------------- building blocks
class EncoderOutput(NamedTuple):
    embedding_BH: torch.Tensor  # [B, H]: final forward + final backward hidden state
    outputs_BTH: torch.Tensor | None  # [B, T, H]: per-frame forward + backward outputs (zeros past length)


class WordEncoder(nn.Module):
    """One-layer BiLSTM over a word's MFCC frames; 128-d embedding = sum of both final states.

    The two directions are two unidirectional ``nn.LSTM`` (same parameters as one bidirectional
    layer): the forward one reads the frames, the backward one reads each row's VALID frames
    reversed. Both run on the padded batch (no packing: packed LSTMs are 3-5 times slower on CPU),
    and each row's final states are read at its own last valid step, so padding never reaches a
    row's embedding.

    Inputs are standardised with the buffers ``feature_mean_F`` / ``feature_std_F`` (identity until
    training sets them from the training words: raw MFCCs span about +-100, which saturates the
    LSTM gates); they travel in the state dict.
    """

    feature_mean_F: torch.Tensor
    feature_std_F: torch.Tensor

    def __init__(self, *, n_mfcc: int = 13, hidden_size: int = 128):
        super().__init__()
        self.hidden_size = hidden_size
        self.forward_lstm = nn.LSTM(n_mfcc, hidden_size, batch_first=True)
        self.backward_lstm = nn.LSTM(n_mfcc, hidden_size, batch_first=True)
        self.register_buffer("feature_mean_F", torch.zeros(n_mfcc))
        self.register_buffer("feature_std_F", torch.ones(n_mfcc))

    def set_normalisation(self, mean_F: torch.Tensor, std_F: torch.Tensor) -> None:
        self.feature_mean_F.copy_(mean_F)
        self.feature_std_F.copy_(std_F.clamp(min=1e-5))

    def normalise(self, x_BTF: torch.Tensor, lengths_B: torch.Tensor) -> torch.Tensor:
        """Standardised frames, zero past each row's length (the decoders' reconstruction targets)."""
        valid_BT1 = valid_mask(lengths_B.to(x_BTF.device), x_BTF.shape[1]).unsqueeze(2).to(x_BTF.dtype)
        return (x_BTF - self.feature_mean_F) / self.feature_std_F * valid_BT1

    def forward(self, x_BTF: torch.Tensor, lengths_B: torch.Tensor, *, with_outputs: bool = False) -> EncoderOutput:
        """Raw mfcc13 frames [B, T, F] (standardised here), lengths [B] -> embedding (and outputs)."""
        lengths = lengths_B.to(x_BTF.device, torch.long).clamp(min=1, max=x_BTF.shape[1])
        x_BTF = x_BTF[:, : int(lengths.max())]
        valid_BT1 = valid_mask(lengths, x_BTF.shape[1]).unsqueeze(2).to(x_BTF.dtype)
        x_BTF = self.normalise(x_BTF, lengths)
        reverse_BT = reversal_index(lengths, x_BTF.shape[1])
        fwd_BTH, _ = self.forward_lstm(x_BTF)
        bwd_rev_BTH, _ = self.backward_lstm(_gather_time(x_BTF, reverse_BT))
        last_B11 = (lengths - 1).view(-1, 1, 1).expand(-1, 1, self.hidden_size)
        embedding = fwd_BTH.gather(1, last_B11).squeeze(1) + bwd_rev_BTH.gather(1, last_B11).squeeze(1)
        outputs = None
        if with_outputs:
            outputs = (fwd_BTH + _gather_time(bwd_rev_BTH, reverse_BT)) * valid_BT1
        return EncoderOutput(embedding, outputs)

    def embed(self, x_BTF: torch.Tensor, lengths_B: torch.Tensor) -> torch.Tensor:
        """[B, T, F] frames, [B] lengths -> [B, H] embeddings."""
        return self(x_BTF, lengths_B).embedding_BH


def reversal_index(lengths_B: torch.Tensor, max_frames: int) -> torch.Tensor:
    """[B, T] time index that reverses each row's first ``length`` steps and leaves the padding in place."""
    t_T = torch.arange(max_frames, device=lengths_B.device).unsqueeze(0)
    return torch.where(t_T < lengths_B.unsqueeze(1), lengths_B.unsqueeze(1) - 1 - t_T, t_T)


def _gather_time(x_BTF: torch.Tensor, index_BT: torch.Tensor) -> torch.Tensor:
    return x_BTF.gather(1, index_BT.unsqueeze(2).expand(-1, -1, x_BTF.shape[2]))


class PeepholeLSTMCell(nn.Module):
    """An LSTM cell with peephole connections (Gers & Schmidhuber 2000); torch has none built in.

    i = s(W_xi x + W_hi h + P_i c_prev + b_i),  f = s(W_xf x + W_hf h + P_f c_prev + b_f),
    g = tanh(W_xg x + W_hg h + b_g),  c = f * c_prev + i * g,
    o = s(W_xo x + W_ho h + P_o c + b_o),  h = o * tanh(c).

    ``peephole="diagonal"``: P_* are vectors (the textbook cell, 3H parameters).
    ``peephole="full"``: P_* are H x H matrices (3H^2 parameters); with the paper's sizes this is
    what gives Audio word2vec's published 270K parameters, so it is the default.
    """

    def __init__(self, input_size: int, hidden_size: int, *, peephole: str = "full"):
        super().__init__()
        if peephole not in ("full", "diagonal"):
            raise BenchError(f"peephole must be 'full' or 'diagonal', got {peephole!r}")
        self.input_size, self.hidden_size, self.peephole = input_size, hidden_size, peephole
        self.x2h = nn.Linear(input_size, 4 * hidden_size)
        self.h2h = nn.Linear(hidden_size, 4 * hidden_size)
        if peephole == "full":
            self.peep_i = nn.Linear(hidden_size, hidden_size, bias=False)
            self.peep_f = nn.Linear(hidden_size, hidden_size, bias=False)
            self.peep_o = nn.Linear(hidden_size, hidden_size, bias=False)
        else:
            bound = 1.0 / math.sqrt(hidden_size)
            self.peep_i_H = nn.Parameter(torch.empty(hidden_size).uniform_(-bound, bound))
            self.peep_f_H = nn.Parameter(torch.empty(hidden_size).uniform_(-bound, bound))
            self.peep_o_H = nn.Parameter(torch.empty(hidden_size).uniform_(-bound, bound))

    def _peep(self, gate: str, c_BH: torch.Tensor) -> torch.Tensor:
        if self.peephole == "full":
            return getattr(self, f"peep_{gate}")(c_BH)
        return c_BH * getattr(self, f"peep_{gate}_H")

    def forward(self, x_BI: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        h_BH, c_BH = state
        gi, gf, gg, go = (self.x2h(x_BI) + self.h2h(h_BH)).chunk(4, dim=1)
        i = torch.sigmoid(gi + self._peep("i", c_BH))
        f = torch.sigmoid(gf + self._peep("f", c_BH))
        c_new = f * c_BH + i * torch.tanh(gg)
        o = torch.sigmoid(go + self._peep("o", c_new))
        return o * torch.tanh(c_new), c_new


class AdditiveAttention(nn.Module):
    """Bahdanau attention: score = v' tanh(W_q q + W_k k); softmax over the valid frames.

    The step after the query projection runs in :class:`_AttentionStep`, whose backward recomputes
    the [B, T, A] tanh activations instead of keeping them: a decoder makes one such step per frame,
    so plain autograd keeps T of them per batch (1.7 GB at batch 256, T = 80, A = 128), and the
    forward and backward here allocate one [B, T, A] buffer per step where autograd's generic ops
    allocate four (glibc's heap keeps the churn: 2 to 4 GB of resident memory for LEE's training
    before this change, measured). Same numbers as the plain formula (``test_attention_step_*``).
    """

    def __init__(self, *, query_size: int, key_size: int, attention_size: int):
        super().__init__()
        self.query = nn.Linear(query_size, attention_size)
        self.key = nn.Linear(key_size, attention_size)
        self.energy = nn.Linear(attention_size, 1)

    def forward(self, query_BH: torch.Tensor, keys_BTA: torch.Tensor, values_BTH: torch.Tensor,
                valid_BT: torch.Tensor) -> torch.Tensor:
        """``keys_BTA`` = ``self.key(values)`` precomputed once per sequence -> context [B, H]."""
        return _AttentionStep.apply(self.query(query_BH), keys_BTA, values_BTH, self.energy.weight[0],
                                    self.energy.bias, valid_BT)


def attention_step_reference(q_BA: torch.Tensor, keys_BTA: torch.Tensor, values_BTH: torch.Tensor,
                             v_A: torch.Tensor, b_1: torch.Tensor, valid_BT: torch.Tensor) -> torch.Tensor:
    """What :class:`_AttentionStep` computes, in plain autograd ops (for tests)."""
    scores_BT = torch.tanh(q_BA.unsqueeze(1) + keys_BTA) @ v_A + b_1
    weights_BT = torch.softmax(scores_BT.masked_fill(~valid_BT, float("-inf")), dim=1)
    return torch.bmm(weights_BT.unsqueeze(1), values_BTH).squeeze(1)


class _AttentionStep(torch.autograd.Function):
    """context = softmax_valid(tanh(q + K) v + b) V, with a hand-written, recomputing backward."""

    @staticmethod
    def forward(ctx: Any, q_BA: torch.Tensor, keys_BTA: torch.Tensor, values_BTH: torch.Tensor, v_A: torch.Tensor,
                b_1: torch.Tensor, valid_BT: torch.Tensor) -> torch.Tensor:
        e_BTA = torch.tanh_(q_BA.unsqueeze(1) + keys_BTA)
        scores_BT = (e_BTA @ v_A + b_1).masked_fill_(~valid_BT, float("-inf"))
        del e_BTA
        weights_BT = torch.softmax(scores_BT, dim=1)
        ctx.save_for_backward(q_BA, keys_BTA, values_BTH, v_A, weights_BT)
        return torch.bmm(weights_BT.unsqueeze(1), values_BTH).squeeze(1)

    @staticmethod
    def backward(ctx: Any, grad_BH: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        q_BA, keys_BTA, values_BTH, v_A, weights_BT = ctx.saved_tensors
        grad_values = torch.bmm(weights_BT.unsqueeze(2), grad_BH.unsqueeze(1)) if ctx.needs_input_grad[2] else None
        grad_weights_BT = torch.bmm(values_BTH, grad_BH.unsqueeze(2)).squeeze(2)
        # softmax backward; masked frames have weight 0, so their score gradient is 0
        grad_scores_BT = weights_BT * (grad_weights_BT - (grad_weights_BT * weights_BT).sum(1, keepdim=True))
        e_BTA = torch.tanh_(q_BA.unsqueeze(1) + keys_BTA)  # recomputed
        grad_v = (e_BTA.reshape(-1, e_BTA.shape[2]).t() @ grad_scores_BT.reshape(-1))
        grad_b = grad_scores_BT.sum().reshape(1)
        # d score / d pre-activation = v * (1 - tanh^2), in the recomputed buffer
        grad_pre_BTA = e_BTA.mul_(e_BTA).neg_().add_(1).mul_(v_A).mul_(grad_scores_BT.unsqueeze(2))
        grad_q = grad_pre_BTA.sum(1)
        return grad_q, grad_pre_BTA, grad_values, grad_v, grad_b, None


# --------------------------------------------------------------------------- losses and helpers
def valid_mask(lengths_B: torch.Tensor, max_frames: int) -> torch.Tensor:
    """[B, T] bool: frame t of row b is inside its length."""
    return torch.arange(max_frames, device=lengths_B.device).unsqueeze(0) < lengths_B.unsqueeze(1)


def masked_error(pred_BTF: torch.Tensor, target_BTF: torch.Tensor, lengths_B: torch.Tensor, *,
                 kind: str = "mse") -> torch.Tensor:
    """Mean squared (or absolute) error over the valid frames only; 0 when no row has a frame."""
    mask_BT1 = valid_mask(lengths_B, pred_BTF.shape[1]).unsqueeze(2).to(pred_BTF.dtype)
    diff = pred_BTF - target_BTF
    err = diff.abs() if kind == "l1" else diff.pow(2)
    denom = mask_BT1.sum() * pred_BTF.shape[2]
    return (err * mask_BT1).sum() / denom.clamp(min=1.0)


def decoder_inputs(target_BTF: torch.Tensor, *, first_BF: torch.Tensor, mode: str) -> torch.Tensor:
    """Decoder input per step: [first, target_0, ..., target_{T-2}] (teacher forcing) or zeros."""
    if mode == "zeros":
        return torch.zeros_like(target_BTF)
    return torch.cat([first_BF.unsqueeze(1), target_BTF[:, :-1]], dim=1)


def zero_mask_frames(x_BTF: torch.Tensor, *, prob: float, fill_F: torch.Tensor | None = None) -> torch.Tensor:
    """Replace whole frames, independently with probability ``prob``, by ``fill_F`` (default zeros).

    The encoder standardises its input, so filling with the feature mean is zero masking of the
    standardised frames the LSTM sees.
    """
    keep_BT1 = (torch.rand(x_BTF.shape[0], x_BTF.shape[1], 1, device=x_BTF.device) >= prob).to(x_BTF.dtype)
    fill = torch.zeros_like(x_BTF[0, 0]) if fill_F is None else fill_F
    return x_BTF * keep_BT1 + fill * (1 - keep_BT1)


def _trim(x_BTF: torch.Tensor, lengths_B: torch.Tensor) -> torch.Tensor:
    """Drop the padding columns past the longest row (decoders run only as far as needed)."""
    return x_BTF[:, : max(int(lengths_B.max()), 1)]


# --------------------------------------------------------------------------- the four models
class SmallModel(nn.Module):
    """Base: an encoder plus an objective. Subclasses implement :meth:`loss`."""

    def __init__(self, config: SmallModelConfig):
        super().__init__()
        self.config = config
        self.encoder = WordEncoder(n_mfcc=config.n_mfcc, hidden_size=config.hidden_size)

    def embed(self, x_BTF: torch.Tensor, lengths_B: torch.Tensor) -> torch.Tensor:
        return self.encoder.embed(x_BTF, lengths_B)

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError


class AudioWord2Vec(SmallModel):
    """Sequence-to-sequence autoencoder: BiLSTM encoder, peephole LSTM decoder, zero masking."""

    def __init__(self, config: SmallModelConfig):
        super().__init__(config)
        self.decoder_cell = PeepholeLSTMCell(config.n_mfcc, config.hidden_size, peephole=config.peephole)
        self.output = nn.Linear(config.hidden_size, config.n_mfcc)

    def reconstruct(self, x_BTF: torch.Tensor, lengths_B: torch.Tensor) -> torch.Tensor:
        """Encode (zero-masked in training) and decode -> [B, T, F] reconstruction of the standardised frames."""
        encoder_in = x_BTF
        if self.training:
            encoder_in = zero_mask_frames(x_BTF, prob=self.config.mask_prob, fill_F=self.encoder.feature_mean_F)
        h_BH = self.encoder.embed(encoder_in, lengths_B)
        c_BH = torch.zeros_like(h_BH)
        target_BTF = self.encoder.normalise(x_BTF, lengths_B)
        inputs_BTF = decoder_inputs(target_BTF, first_BF=torch.zeros_like(x_BTF[:, 0]), mode=self.config.decoder_input)
        outs = []
        for t in range(x_BTF.shape[1]):
            h_BH, c_BH = self.decoder_cell(inputs_BTF[:, t], (h_BH, c_BH))
            outs.append(h_BH)
        return self.output(torch.stack(outs, dim=1))

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x_BTF = _trim(batch["x"], batch["x_len"])
        target_BTF = self.encoder.normalise(x_BTF, batch["x_len"])
        recon = masked_error(self.reconstruct(x_BTF, batch["x_len"]), target_BTF, batch["x_len"])
        return {"loss": recon, "reconstruction": recon}


class Speech2Vec(SmallModel):
    """Skip-gram sequence-to-sequence: decode the previous and the next word from the centre word."""

    def __init__(self, config: SmallModelConfig):
        super().__init__(config)
        self.decoder = nn.LSTM(config.n_mfcc + config.hidden_size, config.hidden_size, batch_first=True)
        self.output = nn.Linear(config.hidden_size, config.n_mfcc)

    def decode(self, embedding_BH: torch.Tensor, target_BTF: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``target`` (teacher forcing) conditioned on the embedding at every step."""
        inputs_BTF = decoder_inputs(target_BTF, first_BF=torch.zeros_like(target_BTF[:, 0]),
                                    mode=self.config.decoder_input)
        cond_BTH = embedding_BH.unsqueeze(1).expand(-1, target_BTF.shape[1], -1)
        h0 = embedding_BH.unsqueeze(0).contiguous()
        out_BTH, _ = self.decoder(torch.cat([inputs_BTF, cond_BTH], dim=2), (h0, torch.zeros_like(h0)))
        return self.output(out_BTH)

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        embedding_BH = self.encoder.embed(batch["x"], batch["x_len"])
        parts = {}
        for side in ("prev", "next"):
            lengths_B = batch[f"{side}_len"]
            target_BTF = self.encoder.normalise(_trim(batch[side], lengths_B), lengths_B)
            parts[side] = masked_error(self.decode(embedding_BH, target_BTF), target_BTF, lengths_B)
        return {"loss": parts["prev"] + parts["next"], **parts}


class Siamese(SmallModel):
    """Triplet objective with cosine distance; margin applied to anchor-negative and positive-negative."""

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        n = batch["x"].shape[0]
        x = torch.cat([batch["x"], batch["pos"], batch["neg"]], dim=0)
        lengths = torch.cat([batch["x_len"], batch["pos_len"], batch["neg_len"]], dim=0)
        anchor, positive, negative = self.encoder.embed(x, lengths).split(n, dim=0)
        d_ap = 1 - F.cosine_similarity(anchor, positive, dim=1)
        d_an = 1 - F.cosine_similarity(anchor, negative, dim=1)
        d_pn = 1 - F.cosine_similarity(positive, negative, dim=1)
        margin = self.config.margin
        hinge_an = F.relu(margin + d_ap - d_an).mean()
        hinge_pn = F.relu(margin + d_ap - d_pn).mean()
        return {"loss": hinge_an + hinge_pn, "anchor_negative": hinge_an, "positive_negative": hinge_pn}


class LEE(SmallModel):
    """Linguistically enhanced embeddings: attention-decoder reconstruction + text-vector regression."""

    def __init__(self, config: SmallModelConfig):
        super().__init__(config)
        h, f = config.hidden_size, config.n_mfcc
        self.down = nn.Linear(h, f)
        self.attention = AdditiveAttention(query_size=h, key_size=h, attention_size=h)
        self.decoder_cell = nn.LSTMCell(h + f, h)
        self.output = nn.Linear(h, f)
        self.text_head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(h, 256), nn.ReLU(),
                                       nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, config.text_dim))

    def reconstruct(self, x_BTF: torch.Tensor, lengths_B: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (reconstruction [B, T, F], embedding [B, H])."""
        enc = self.encoder(x_BTF, lengths_B, with_outputs=True)
        values_BTH = enc.outputs_BTH
        if values_BTH is None:  # cannot happen with with_outputs=True; narrows the type
            raise RuntimeError("WordEncoder returned no per-frame outputs")
        keys_BTA = self.attention.key(values_BTH)
        valid_BT = valid_mask(lengths_B.to(x_BTF.device), x_BTF.shape[1])
        h_BH = enc.embedding_BH
        c_BH = torch.zeros_like(h_BH)
        target_BTF = self.encoder.normalise(x_BTF, lengths_B)
        inputs_BTF = decoder_inputs(target_BTF, first_BF=self.down(enc.embedding_BH), mode=self.config.decoder_input)
        outs = []
        for t in range(x_BTF.shape[1]):
            context_BH = self.attention(h_BH, keys_BTA, values_BTH, valid_BT)
            h_BH, c_BH = self.decoder_cell(torch.cat([context_BH, inputs_BTF[:, t]], dim=1), (h_BH, c_BH))
            outs.append(h_BH)
        return self.output(torch.stack(outs, dim=1)), enc.embedding_BH

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x_BTF = _trim(batch["x"], batch["x_len"])
        recon_BTF, embedding_BH = self.reconstruct(x_BTF, batch["x_len"])
        kind = self.config.lee_loss
        target_BTF = self.encoder.normalise(x_BTF, batch["x_len"])
        recon = masked_error(recon_BTF, target_BTF, batch["x_len"], kind=kind)
        pred_BD = self.text_head(embedding_BH)
        text = F.l1_loss(pred_BD, batch["text"]) if kind == "l1" else F.mse_loss(pred_BD, batch["text"])
        return {"loss": recon + text, "reconstruction": recon, "text": text}


MODEL_CLASSES: dict[str, type[SmallModel]] = {"audio_word2vec": AudioWord2Vec, "speech2vec": Speech2Vec,
                                              "siamese": Siamese, "lee": LEE}


def build_model(config: SmallModelConfig) -> SmallModel:
    return MODEL_CLASSES[config.model](config)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def parameter_counts(model: SmallModel) -> dict[str, int]:
    """Encoder alone (what is used as an upstream) and the whole training model."""
    return {"encoder": count_parameters(model.encoder), "full": count_parameters(model)}


def parameter_report(*, teachers: tuple[str, ...] = ("minilm", "bert")) -> list[dict[str, Any]]:
    """Parameter counts of every model (LEE once per teacher size) next to the paper's Table IX."""
    rows = []
    for name in MODELS:
        for teacher in teachers if name == "lee" else ("-",):
            config = SmallModelConfig(model=name, text_dim=TEXT_DIMS.get(teacher, 384))
            counts = parameter_counts(build_model(config))
            rows.append({"model": name, "teacher": teacher, **counts, "paper": PAPER_PARAMS[name],
                         "full_vs_paper_pct": round(100.0 * (counts["full"] - PAPER_PARAMS[name]) / PAPER_PARAMS[name], 1)})
    return rows
