"""The small models: shapes, losses, the encoder's exactness, the peephole cell, parameter counts."""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

from harness.errors import BenchError
from harness.smallmodels import MODELS, PAPER_PARAMS
from harness.smallmodels.models import (
    PeepholeLSTMCell,
    SmallModelConfig,
    WordEncoder,
    build_model,
    masked_error,
    parameter_counts,
    parameter_report,
    reversal_index,
    zero_mask_frames,
)
from harness.smallmodels.train import torch_threads, train_step

TEXT_DIM = 16


@pytest.fixture(autouse=True)
def _one_torch_thread() -> object:
    """Tiny sequential LSTM steps: one thread is fast and immune to a busy machine."""
    with torch_threads(1):
        yield


def tiny_batch(model: str, *, rows: int = 4, frames: int = 12, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([frames, frames - 3, 5, 1][:rows] + [frames] * max(rows - 4, 0))

    def frames_of(lens: torch.Tensor) -> torch.Tensor:
        x = torch.randn(rows, 80, 13, generator=g) * 5
        x[torch.arange(80).unsqueeze(0).expand(rows, -1) >= lens.unsqueeze(1)] = 0
        return x

    batch = {"x": frames_of(lengths), "x_len": lengths}
    if model == "speech2vec":
        prev_len = torch.tensor([frames, 0, 4, 7][:rows] + [frames] * max(rows - 4, 0))
        batch.update(prev=frames_of(prev_len), prev_len=prev_len, next=frames_of(lengths), next_len=lengths.clone())
    elif model == "siamese":
        batch.update(pos=frames_of(lengths), pos_len=lengths.clone(), neg=frames_of(lengths), neg_len=lengths.clone())
    elif model == "lee":
        batch["text"] = torch.randn(rows, TEXT_DIM, generator=g)
    return batch


def tiny_model(model: str, **overrides: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(SmallModelConfig(model=model, text_dim=TEXT_DIM, **overrides))  # type: ignore[arg-type]


@pytest.mark.parametrize("model", MODELS)
def test_forward_and_loss_are_finite_with_named_parts(model: str) -> None:
    net = tiny_model(model)
    out = net.loss(tiny_batch(model))
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])
    assert all(torch.isfinite(v) for v in out.values())
    expected_parts = {"audio_word2vec": {"reconstruction"}, "speech2vec": {"prev", "next"},
                      "siamese": {"anchor_negative", "positive_negative"}, "lee": {"reconstruction", "text"}}[model]
    assert expected_parts <= set(out)
    emb = net.embed(tiny_batch(model)["x"], tiny_batch(model)["x_len"])
    assert emb.shape == (4, 128)


@pytest.mark.parametrize("model", MODELS)
def test_a_few_training_steps_lower_the_loss(model: str) -> None:
    net = tiny_model(model, mask_prob=0.0)  # no random masking: the same batch must get easier
    batch = tiny_batch(model, rows=6)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    net.eval()
    with torch.no_grad():
        before = float(net.loss(batch)["loss"])
    for _ in range(15):
        train_step(net, optimizer, batch)
    net.eval()
    with torch.no_grad():
        after = float(net.loss(batch)["loss"])
    assert after < before


def test_encoder_equals_a_packed_bidirectional_lstm_with_the_same_weights() -> None:
    """Our unpacked two-direction encoder gives exactly the packed BiLSTM's final states, summed."""
    torch.manual_seed(1)
    enc = WordEncoder()
    ref = torch.nn.LSTM(13, 128, batch_first=True, bidirectional=True)
    with torch.no_grad():
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(ref, name).copy_(getattr(enc.forward_lstm, name))
            getattr(ref, name + "_reverse").copy_(getattr(enc.backward_lstm, name))
    x = torch.randn(5, 80, 13)
    lengths = torch.tensor([80, 3, 17, 1, 40])
    _, (h_n, _) = ref(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    torch.testing.assert_close(enc.embed(x, lengths), h_n[0] + h_n[1], atol=1e-5, rtol=1e-5)


def test_encoder_ignores_padding_and_other_rows() -> None:
    torch.manual_seed(2)
    enc = WordEncoder().eval()
    x = torch.randn(3, 80, 13)
    lengths = torch.tensor([10, 80, 33])
    alone = enc.embed(x[:1, :10], lengths[:1])
    noisy = x.clone()
    noisy[0, 10:] = 99.0  # garbage past the row's length
    torch.testing.assert_close(enc.embed(noisy, lengths)[:1], alone, atol=1e-5, rtol=1e-5)
    out = enc(x, lengths, with_outputs=True).outputs_BTH
    assert out is not None and out.shape == (3, 80, 128) and float(out[0, 10:].detach().abs().sum()) == 0.0


def test_reversal_index_reverses_the_valid_part_only() -> None:
    idx = reversal_index(torch.tensor([3, 5]), 5)
    assert idx.tolist() == [[2, 1, 0, 3, 4], [4, 3, 2, 1, 0]]


@pytest.mark.parametrize(("peephole", "peephole_params"), [("full", 3 * 128 * 128), ("diagonal", 3 * 128)])
def test_peephole_cell_shapes_and_parameters(peephole: str, peephole_params: int) -> None:
    cell = PeepholeLSTMCell(13, 128, peephole=peephole)
    h, c = cell(torch.randn(7, 13), (torch.zeros(7, 128), torch.zeros(7, 128)))
    assert h.shape == (7, 128) and c.shape == (7, 128)
    plain = (13 + 1) * 512 + (128 + 1) * 512
    assert sum(p.numel() for p in cell.parameters()) == plain + peephole_params


def test_peephole_cell_uses_the_cell_state() -> None:
    """With all input and recurrent weights zero, only the peepholes can make the gates depend on c."""
    cell = PeepholeLSTMCell(2, 4, peephole="diagonal")
    with torch.no_grad():
        for p in (*cell.x2h.parameters(), *cell.h2h.parameters()):
            p.zero_()
        cell.peep_f_H.fill_(5.0)
    x, h = torch.zeros(1, 2), torch.zeros(1, 4)
    _, c_small = cell(x, (h, torch.full((1, 4), 0.1)))
    _, c_large = cell(x, (h, torch.full((1, 4), 1.0)))
    assert not torch.allclose(c_small / 0.1, c_large / 1.0)  # the forget gate depends on c


def test_parameter_counts_next_to_the_paper() -> None:
    rows = {(r["model"], r["teacher"]): r for r in parameter_report()}
    assert rows[("siamese", "-")]["full"] == 146_432  # the encoder alone: 146K in the paper
    assert rows[("audio_word2vec", "-")]["full"] == 270_477  # 270K with full peephole matrices
    assert rows[("speech2vec", "-")]["full"] == 286_861  # 287K
    assert rows[("lee", "bert")]["full"] == 880_283  # 910K in the paper (layout of its attention unknown)
    assert rows[("lee", "minilm")]["full"] == 683_291  # smaller teacher, smaller last layer
    for name in MODELS:
        counts = parameter_counts(build_model(SmallModelConfig(model=name)))
        assert counts["encoder"] == 146_432
        assert name in PAPER_PARAMS


def test_masked_error_ignores_padding_and_empty_rows() -> None:
    pred = torch.zeros(2, 4, 3)
    target = torch.ones(2, 4, 3)
    target[0, 2:] = 100.0  # padding of row 0
    assert float(masked_error(pred, target, torch.tensor([2, 0]))) == pytest.approx(1.0)
    assert float(masked_error(pred, target, torch.tensor([0, 0]))) == 0.0
    assert float(masked_error(pred, target, torch.tensor([2, 0]), kind="l1")) == pytest.approx(1.0)


def test_zero_masking_replaces_whole_frames_at_the_given_rate() -> None:
    torch.manual_seed(0)
    x = torch.ones(64, 80, 13)
    masked = zero_mask_frames(x, prob=0.3)
    per_frame = masked.sum(2)
    assert set(per_frame.unique().tolist()) <= {0.0, 13.0}
    assert 0.25 < float((per_frame == 0).float().mean()) < 0.35


def test_config_rejects_unknown_values_and_round_trips() -> None:
    with pytest.raises(BenchError, match="lee_loss"):
        SmallModelConfig(model="lee", lee_loss="huber")
    with pytest.raises(BenchError, match="unknown keys"):
        SmallModelConfig.from_dict({"model": "lee", "bogus": 1})
    cfg = SmallModelConfig(model="lee", lee_loss="l1")
    assert SmallModelConfig.from_dict(cfg.to_dict()) == cfg


def _attention_inputs(dtype):
    import torch

    g = torch.Generator().manual_seed(0)
    B, T, A, H = 3, 5, 4, 6
    tensors = [torch.randn(*shape, generator=g, dtype=dtype, requires_grad=True)
               for shape in ((B, A), (B, T, A), (B, T, H), (A,), (1,))]
    valid = torch.arange(T)[None] < torch.tensor([5, 3, 1])[:, None]
    return (*tensors, valid)


def test_attention_step_gradients_pass_gradcheck() -> None:
    import torch

    from harness.smallmodels.models import _AttentionStep

    assert torch.autograd.gradcheck(_AttentionStep.apply, _attention_inputs(torch.double))


def test_attention_step_equals_the_plain_formula() -> None:
    """The hand-written backward gives autograd's numbers for the plain formula (values and gradients)."""
    import torch

    from harness.smallmodels.models import _AttentionStep, attention_step_reference

    inputs = _attention_inputs(torch.float32)
    grad = torch.randn(3, 6, generator=torch.Generator().manual_seed(1))
    mine = _AttentionStep.apply(*inputs)
    ref = attention_step_reference(*inputs)
    torch.testing.assert_close(mine, ref)
    for a, b in zip(torch.autograd.grad(mine, inputs[:5], grad), torch.autograd.grad(ref, inputs[:5], grad),
                    strict=True):
        torch.testing.assert_close(a, b)
