"""Classification metrics (scikit-learn) and bootstrap confidence intervals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def classification_metrics(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, *,
                           num_classes: int) -> dict[str, Any]:
    """micro-F1, UAR (macro recall), accuracy, macro-F1 (percent) and the confusion matrix."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score

    labels = list(range(num_classes))
    yt, yp = np.asarray(y_true), np.asarray(y_pred)
    present = sorted(set(yt.tolist()))  # UAR over the classes that occur in the reference
    return {
        "f1_micro": 100.0 * float(f1_score(yt, yp, labels=labels, average="micro", zero_division=0)),
        "uar": 100.0 * float(recall_score(yt, yp, labels=present, average="macro", zero_division=0)),
        "accuracy": 100.0 * float(accuracy_score(yt, yp)),
        "f1_macro": 100.0 * float(f1_score(yt, yp, labels=present, average="macro", zero_division=0)),
        "confusion_matrix": confusion_matrix(yt, yp, labels=labels).tolist(),
        "n": int(len(yt)),
    }


def metric_value(name: str, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """One metric in percent, fast (used inside bootstrap loops)."""
    if name in ("f1_micro", "accuracy"):
        return 100.0 * float(np.mean(y_true == y_pred)) if len(y_true) else float("nan")
    if name == "uar":
        _, inverse = np.unique(y_true, return_inverse=True)
        per_class = np.bincount(inverse, weights=(y_pred == y_true)) / np.bincount(inverse)
        return 100.0 * float(per_class.mean())
    if name == "f1_macro":
        from sklearn.metrics import f1_score

        return 100.0 * float(f1_score(y_true, y_pred, labels=np.unique(y_true), average="macro", zero_division=0))
    raise KeyError(name)


def bootstrap_ci(runs: Sequence[tuple[np.ndarray, np.ndarray]], *, metric: str, n_boot: int = 1000,
                 seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """(mean over runs, low, high): 95% CI pooling test-item and seed variation.

    Each bootstrap replicate draws one run (seed) uniformly, then resamples that run's test
    items with replacement and computes the metric; the interval is the percentile interval of
    the replicates. With one seed this is the plain item bootstrap; with several, the spread
    between seeds widens the interval as it should.
    """
    if not runs:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    mean = float(np.mean([metric_value(metric, yt, yp) for yt, yp in runs]))
    stats = np.empty(n_boot)
    for b in range(n_boot):
        yt, yp = runs[int(rng.integers(len(runs)))]
        idx = rng.integers(0, len(yt), len(yt))
        stats[b] = metric_value(metric, yt[idx], yp[idx])
    alpha = (1 - level) / 2
    return mean, float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha))
