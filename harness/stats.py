"""Speaker-clustered bootstrap: intervals, paired differences and relative changes of per-item scores.

Test items are not independent: they come from a few test speakers, and a word-level probe
scores many words of one utterance. A bootstrap that resamples items as if they were independent
gives intervals that are too narrow. This module resamples the way the data were drawn:

1. **clusters** (speakers) with replacement, as many as there are;
2. within each drawn cluster, its **units** (utterances; for word items, the utterance the word
   belongs to, all its words carried along; for triplets, the triplet) with replacement, as many
   as the cluster has. A cluster drawn twice contributes two independent within-cluster draws.

A replicate is expressed as integer weights on the units (how often each was drawn), so one set
of weights serves every sample that shares those units: the seeds of one cell, or two models
scored on the same test items (a *paired* comparison). Units are pooled into one
:class:`Design` (the union over the samples); a sample that holds only part of a cluster's units
(another seed's triplets) uses the weights of its own.

Seeds: as :func:`harness.metrics.bootstrap_ci` did, each replicate of an interval draws one seed
uniformly, so seed-to-seed variation widens the interval; paired differences average the seeds
within each replicate (the comparison is of seed-averaged scores).

Fallback: when any sample lacks cluster ids (results written before speakers were recorded, or a
corpus without speakers), every item is its own cluster and unit: the plain item bootstrap;
:attr:`Interval.clustered` is then False so that tables can say so.

Metrics (percent): ``accuracy`` and ``f1_micro`` (equal for single-label predictions: share of
items right), ``uar`` (mean over the classes present in the replicate of their recall). The
percentile interval drops replicates in which a sample has no weight (possible only when seeds
hold different units).

Floor at the bounds: a percentile bootstrap of a sample whose units are all right (or all wrong)
is the point [100, 100], whatever the resampling; one changed item then leaves it (measured: a
score of 100.0 [100.0, 100.0] moved to 99.1 on another CPU). So :func:`clustered_ci` never
returns an interval narrower than the exact binomial (Clopper-Pearson) interval of each seed's
share right, counted over its resampling *units* as if they were independent (:func:`exact_floor`;
units, not items: the words of one utterance are not independent trials). Clustering can only
widen that interval, so the floor binds only where the bootstrap has collapsed, near 0 and 100.
UAR: the per-class exact intervals, averaged.

Leaf module: numpy, and scipy's beta distribution for the exact floor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

METRICS = ("accuracy", "f1_micro", "uar")


@dataclass(frozen=True)
class Sample:
    """One seed's per-item outcome: labels and predictions ``[N]``; ``clusters`` (speaker per item)
    and ``units`` (resampling unit per item, e.g. the utterance id) as text, or None when unknown.
    Without units, each item is its own unit (keyed by position, so seeds of the same length share
    them)."""

    y_true: np.ndarray
    y_pred: np.ndarray
    clusters: tuple[str, ...] | None = None
    units: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        n = len(self.y_true)
        if len(self.y_pred) != n:
            raise ValueError(f"y_true has {n} items, y_pred {len(self.y_pred)}: one prediction per item is needed")
        for name in ("clusters", "units"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"{name} has {len(value)} entries for {n} items: one per item is needed")

    @property
    def clustered(self) -> bool:
        return self.clusters is not None and all(self.clusters)


def sample(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, *,
           clusters: Sequence[str] | None = None, units: Sequence[str] | None = None) -> Sample:
    """A :class:`Sample` from lists (labels as int arrays)."""
    return Sample(np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64),
                  tuple(map(str, clusters)) if clusters is not None else None,
                  tuple(map(str, units)) if units is not None else None)


@dataclass(frozen=True)
class Interval:
    """``value`` (mean over seeds of the metric) and its percentile interval; ``clustered``: the
    speaker-clustered bootstrap was used (False: the item bootstrap, see the module doc)."""

    value: float
    low: float
    high: float
    clustered: bool
    clusters: int = 0


class Design:
    """The resampling units of some samples, grouped by cluster; :meth:`weights` draws replicates.

    ``clustered=False`` (or any sample without clusters) makes every item of every sample its own
    cluster and unit: the item bootstrap."""

    def __init__(self, samples: Sequence[Sample], *, clustered: bool = True) -> None:
        self.clustered = clustered and bool(samples) and all(s.clustered for s in samples)
        keys: dict[tuple[str, str], int] = {}
        self.index: list[np.ndarray] = []  # per sample: the unit index of each item
        for s in samples:
            self.index.append(np.array([keys.setdefault(key, len(keys)) for key in self._keys(s)], dtype=np.int64))
        cluster_of_unit = [c for c, _ in keys]
        names = sorted(set(cluster_of_unit))
        self.cluster_names = tuple(names)
        position = {c: i for i, c in enumerate(names)}
        unit_cluster = np.array([position[c] for c in cluster_of_unit], dtype=np.int64)
        order = np.argsort(unit_cluster, kind="stable")
        bounds = np.searchsorted(unit_cluster[order], np.arange(len(names) + 1))
        self.members = [order[bounds[i]:bounds[i + 1]] for i in range(len(names))]  # units per cluster
        self.num_units = len(keys)

    def _keys(self, s: Sample) -> list[tuple[str, str]]:
        """(cluster, unit) of each item of ``s``. Item bootstrap: the item is its own cluster, named
        by its unit and its rank within the unit (the j-th word of an utterance), so that samples on
        the same items share them."""
        units = s.units if s.units is not None else tuple(f"#{i}" for i in range(len(s.y_true)))
        if not self.clustered:
            seen: dict[str, int] = {}
            out = []
            for u in units:
                j = seen[u] = seen.get(u, -1) + 1
                out.append((f"{u}\x00{j}", ""))
            return out
        assert s.clusters is not None
        return list(zip(s.clusters, units, strict=True))

    @property
    def num_clusters(self) -> int:
        return len(self.members)

    def weights(self, rng: np.random.Generator, n_boot: int) -> np.ndarray:
        """``[n_boot, num_units]`` draw counts: clusters with replacement, then each drawn cluster's
        units with replacement (a cluster drawn m times: m x its size draws over its units)."""
        out = np.zeros((n_boot, self.num_units), dtype=np.float64)
        s = self.num_clusters
        if s == 0:
            return out
        drawn = rng.multinomial(s, np.full(s, 1.0 / s), size=n_boot)  # [B, S] times each cluster is drawn
        if self.num_units == s:  # one unit per cluster (the item bootstrap): the cluster draw is the weight
            out[:, np.concatenate(self.members)] = drawn
            return out
        for c, units in enumerate(self.members):
            n = len(units)
            out[:, units] = rng.multinomial(drawn[:, c] * n, np.full(n, 1.0 / n))
        return out

    def item_weights(self, unit_weights: np.ndarray, k: int) -> np.ndarray:
        """``[B, N_k]``: the weights of sample ``k``'s items."""
        return unit_weights[:, self.index[k]]


# --------------------------------------------------------------------------- metrics
def metric_of(name: str, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The metric of one sample, unweighted (percent; NaN without items)."""
    w = np.ones((1, len(y_true)))
    return float(weighted_metric(name, y_true, y_pred, w)[0])


def weighted_metric(name: str, y_true: np.ndarray, y_pred: np.ndarray, w_BN: np.ndarray) -> np.ndarray:
    """``[B]`` metric in percent under item weights ``w_BN`` (NaN where the weights sum to 0)."""
    if name not in METRICS:
        raise KeyError(f"metric {name!r}: the bootstrap knows {list(METRICS)}")
    right = (np.asarray(y_true) == np.asarray(y_pred)).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        if name in ("accuracy", "f1_micro"):
            return 100.0 * (w_BN @ right) / w_BN.sum(axis=1)
        recalls = []
        for c in np.unique(y_true):
            mask = np.asarray(y_true) == c
            total = w_BN[:, mask].sum(axis=1)
            recalls.append(np.where(total > 0, (w_BN[:, mask] @ right[mask]) / np.where(total > 0, total, 1), np.nan))
        if not recalls:
            return np.full(len(w_BN), np.nan)
        stacked = np.vstack(recalls)
        present = ~np.isnan(stacked)
        return 100.0 * np.where(present.any(axis=0), np.nansum(stacked, axis=0) / np.maximum(present.sum(axis=0), 1),
                                np.nan)


def _percentiles(stats: np.ndarray, level: float) -> tuple[float, float]:
    stats = stats[np.isfinite(stats)]
    if not len(stats):
        return float("nan"), float("nan")
    alpha = (1 - level) / 2
    return float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha))


def _replicate_scores(samples: Sequence[Sample], design: Design, metric: str, w_BU: np.ndarray) -> np.ndarray:
    """``[K, B]``: each sample's metric in each replicate."""
    return np.vstack([weighted_metric(metric, s.y_true, s.y_pred, design.item_weights(w_BU, k))
                      for k, s in enumerate(samples)])


# --------------------------------------------------------------------------- intervals
def clustered_ci(samples: Sequence[Sample], *, metric: str, n_boot: int = 1000, seed: int = 0,
                 level: float = 0.95, clustered: bool = True, floor: bool = True) -> Interval:
    """Mean over ``samples`` (seeds) of ``metric`` and its clustered percentile interval; each
    replicate draws one seed uniformly (see the module doc). ``clustered=False`` forces the item
    bootstrap; ``floor=False`` leaves out the exact floor (the bootstrap alone, for comparisons
    such as benchmarks/coverage.py)."""
    if not samples:
        return Interval(float("nan"), float("nan"), float("nan"), clustered=False)
    design = Design(samples, clustered=clustered)
    rng = np.random.default_rng(seed)
    value = float(np.mean([metric_of(metric, s.y_true, s.y_pred) for s in samples]))
    w_BU = design.weights(rng, n_boot)
    which = rng.integers(len(samples), size=n_boot)
    scores_KB = _replicate_scores(samples, design, metric, w_BU)
    low, high = _percentiles(scores_KB[which, np.arange(n_boot)], level)
    floors = [exact_floor(s, metric=metric, level=level) for s in samples] if floor else []
    low = min([low, *(f[0] for f in floors)]) if np.isfinite(low) else low
    high = max([high, *(f[1] for f in floors)]) if np.isfinite(high) else high
    return Interval(value, low, high, clustered=design.clustered, clusters=design.num_clusters)


def exact_floor(s: Sample, *, metric: str, level: float = 0.95) -> tuple[float, float]:
    """The Clopper-Pearson interval (percent) of ``s``'s share right, over its resampling units
    taken as independent trials: ``k`` of ``n`` units right, where ``n`` is the number of units and
    ``k`` = ``n`` x the share of items right (a unit's words count by their share). UAR: the mean
    over the classes present of the per-class intervals (units of that class). (NaN, NaN) without
    items. See the module doc ("Floor at the bounds")."""
    if not len(s.y_true):
        return float("nan"), float("nan")
    right = (np.asarray(s.y_true) == np.asarray(s.y_pred)).astype(np.float64)
    units = np.asarray(s.units if s.units is not None else [f"#{i}" for i in range(len(right))], dtype=object)
    if metric in ("accuracy", "f1_micro"):
        return _clopper_pearson(right, units, level)
    bounds = [_clopper_pearson(right[mask], units[mask], level)
              for mask in (np.asarray(s.y_true) == c for c in np.unique(s.y_true))]
    return float(np.mean([b[0] for b in bounds])), float(np.mean([b[1] for b in bounds]))


def _clopper_pearson(right: np.ndarray, units: np.ndarray, level: float) -> tuple[float, float]:
    from scipy.stats import beta

    n = float(len(set(units.tolist())))
    k = n * float(right.mean())
    alpha = (1 - level) / 2
    low = float(beta.ppf(alpha, k, n - k + 1)) if k > 0 else 0.0
    high = float(beta.ppf(1 - alpha, k + 1, n - k)) if k < n else 1.0
    return 100.0 * low, 100.0 * high


@dataclass(frozen=True)
class Paired:
    """``difference`` = mean score of ``better`` minus that of ``other`` (seeds averaged) with its
    interval; ``significant``: the interval lies above 0 (``other`` is significantly worse)."""

    difference: float
    low: float
    high: float
    clustered: bool
    significant: bool


def paired_difference(better: Sequence[Sample], other: Sequence[Sample], *, metric: str, n_boot: int = 1000,
                      seed: int = 0, level: float = 0.95, clustered: bool = True) -> Paired:
    """Paired clustered bootstrap of the difference of seed-averaged scores: both models' items are
    weighted by the same replicate (shared speakers and, where the units coincide, shared
    utterances), so what the two have in common cancels out."""
    if not better or not other:
        return Paired(float("nan"), float("nan"), float("nan"), clustered=False, significant=False)
    samples = [*better, *other]
    design = Design(samples, clustered=clustered)
    rng = np.random.default_rng(seed)
    diff = (float(np.mean([metric_of(metric, s.y_true, s.y_pred) for s in better]))
            - float(np.mean([metric_of(metric, s.y_true, s.y_pred) for s in other])))
    scores_KB = _replicate_scores(samples, design, metric, design.weights(rng, n_boot))
    d_B = scores_KB[:len(better)].mean(axis=0) - scores_KB[len(better):].mean(axis=0)
    low, high = _percentiles(d_B, level)
    return Paired(diff, low, high, clustered=design.clustered, significant=bool(np.isfinite(low) and low > 0))


def relative_change_ci(base: Sequence[Sample], new: Sequence[Sample], *, metric: str, n_boot: int = 1000,
                       seed: int = 0, level: float = 0.95, clustered: bool = True) -> Interval:
    """Relative change in percent, ``100 (mean new - mean base) / mean base`` over the seeds given
    (``base[k]`` and ``new[k]`` are the same seed, scored on the same items), with the interval of
    the change: each replicate draws one seed and reweights both of its samples alike."""
    if not base or len(base) != len(new):
        raise ValueError(f"relative change: {len(base)} base and {len(new)} new samples; one pair per seed is needed")
    design = Design([*base, *new], clustered=clustered)
    rng = np.random.default_rng(seed)
    b = float(np.mean([metric_of(metric, s.y_true, s.y_pred) for s in base]))
    n = float(np.mean([metric_of(metric, s.y_true, s.y_pred) for s in new]))
    value = 100.0 * (n - b) / b if b else float("nan")
    w_BU = design.weights(rng, n_boot)
    which = rng.integers(len(base), size=n_boot)
    scores_KB = _replicate_scores([*base, *new], design, metric, w_BU)
    cols = np.arange(n_boot)
    base_B, new_B = scores_KB[which, cols], scores_KB[len(base) + which, cols]
    with np.errstate(invalid="ignore", divide="ignore"):
        change_B = np.where(base_B != 0, 100.0 * (new_B - base_B) / np.where(base_B != 0, base_B, 1), np.nan)
    low, high = _percentiles(change_B, level)
    return Interval(value, low, high, clustered=design.clustered, clusters=design.num_clusters)
