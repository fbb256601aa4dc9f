"""Heads learn, training is deterministic, early stopping restores the best dev weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.metrics import bootstrap_ci, classification_metrics
from harness.probe.heads import BiLSTMHead, LinearHead
from harness.probe.train import FeatureSet, concat_sequences, predict, train_head
from harness.schema import Training


def _pooled(n: int, d: int, seed: int) -> FeatureSet:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, d)).astype(np.float16)
    x[:, 3] += (2 * y - 1) * 1.5  # one informative dimension
    return FeatureSet("pooled", x, y.astype(np.int64), [f"u{i}" for i in range(n)])


def _frames(n: int, d: int, seed: int, classes: int = 3) -> FeatureSet:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    seqs = []
    for yi in y:
        t = int(rng.integers(5, 30))
        s = rng.normal(size=(t, d)).astype(np.float16)
        s[:, yi] += 2.0
        seqs.append(s)
    x, off = concat_sequences(seqs, dim=d)
    return FeatureSet("frames", x, y.astype(np.int64), [f"u{i}" for i in range(n)], offsets=off)


def test_linear_head_single_logit_equals_bce() -> None:
    head = LinearHead(input_size=4, num_classes=2)
    x = torch.randn(5, 4)
    y = torch.tensor([0, 1, 1, 0, 1])
    logits = head(x)
    ce = torch.nn.functional.cross_entropy(logits, y)
    z = head.linear(x)[:, 0]
    bce = torch.nn.functional.binary_cross_entropy_with_logits(z, y.float())
    assert torch.allclose(ce, bce, atol=1e-6)


def test_linear_head_learns_and_is_deterministic() -> None:
    train, dev, test = _pooled(200, 8, 0), _pooled(60, 8, 1), _pooled(100, 8, 2)
    training = Training(lr=1e-2, batch_size=16, max_epochs=30, patience=5)
    results = []
    for _ in range(2):
        torch.manual_seed(0)
        head = LinearHead(input_size=8, num_classes=2)
        res = train_head(head, train=train, dev=dev, training=training, seed=0)
        pred, _ = predict(head, test)
        results.append((pred.tolist(), res.best_epoch, [h["train_loss"] for h in res.history]))
    assert results[0] == results[1]
    acc = classification_metrics(test.y, np.array(results[0][0]), num_classes=2)["accuracy"]
    assert acc > 85


def test_bilstm_head_learns_on_sequences() -> None:
    train, dev, test = _frames(120, 6, 0), _frames(40, 6, 1), _frames(60, 6, 2)
    torch.manual_seed(0)
    head = BiLSTMHead(input_size=6, num_classes=3, hidden_size=16, num_layers=1, mlp_sizes=[32], input_stride=2)
    res = train_head(head, train=train, dev=dev, training=Training(lr=5e-3, batch_size=16, max_epochs=15), seed=0)
    pred, _ = predict(head, test)
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]
    assert classification_metrics(test.y, pred, num_classes=3)["f1_micro"] > 80


def test_bilstm_is_padding_invariant() -> None:
    head = BiLSTMHead(input_size=4, num_classes=2, hidden_size=8, num_layers=2, mlp_sizes=[8]).eval()
    a = torch.randn(1, 7, 4)
    padded = torch.cat([a, torch.randn(1, 5, 4)], dim=1)
    with torch.no_grad():
        assert torch.allclose(head(a, torch.tensor([7])), head(padded, torch.tensor([7])), atol=1e-6)


def test_early_stopping_restores_best_dev_weights() -> None:
    train, dev = _pooled(100, 8, 0), _pooled(40, 8, 1)
    head = LinearHead(input_size=8, num_classes=2)
    res = train_head(head, train=train, dev=dev, training=Training(lr=5e-2, batch_size=8, max_epochs=40, patience=3), seed=1)
    assert res.epochs_run <= 40
    dev_now = 100.0 * float(np.mean(predict(head, dev)[0] == dev.y))
    assert dev_now == pytest.approx(res.best_dev_f1)
    assert res.best_dev_f1 == max(h["dev_f1"] for h in res.history)


def test_metrics_and_uar() -> None:
    m = classification_metrics([0, 0, 0, 1], [0, 0, 0, 0], num_classes=2)
    assert m["accuracy"] == 75.0 and m["f1_micro"] == 75.0 and m["uar"] == 50.0
    assert m["confusion_matrix"] == [[3, 0], [1, 0]]


def test_bootstrap_ci_contains_mean_and_widens_with_seed_spread() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    good = np.where(rng.random(200) < 0.9, y, 1 - y)
    bad = np.where(rng.random(200) < 0.6, y, 1 - y)
    mean1, lo1, hi1 = bootstrap_ci([(y, good)], metric="accuracy")
    assert lo1 <= mean1 <= hi1
    mean2, lo2, hi2 = bootstrap_ci([(y, good), (y, bad)], metric="accuracy")
    assert hi2 - lo2 > hi1 - lo1
