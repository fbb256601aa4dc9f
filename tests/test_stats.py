"""harness.stats against hand-computed cases: one item, one cluster, clusters that are all right or
all wrong (where the clustered and the item bootstrap must disagree), weighted UAR, paired
differences and relative changes."""

from __future__ import annotations

import numpy as np
import pytest

from harness.stats import (
    Design,
    clustered_ci,
    exact_floor,
    paired_difference,
    relative_change_ci,
    sample,
    weighted_metric,
)


def test_one_item_is_not_a_point_interval() -> None:
    """Every replicate of one item is that item: the percentile bootstrap is a point. The exact
    floor takes over: Clopper-Pearson for 1 of 1 right is [0.025^(1/1), 1] = [2.5, 100] at 95%
    (and [0, 97.5] for 0 of 1)."""
    one = sample([1], [1], clusters=["s1"], units=["u1"])
    for clustered in (True, False):
        iv = clustered_ci([one], metric="accuracy", n_boot=200, clustered=clustered)
        assert (iv.value, iv.high) == (100.0, 100.0) and iv.low == pytest.approx(2.5)
    wrong = sample([0], [1], clusters=["s1"], units=["u1"])
    iv = clustered_ci([wrong], metric="uar", n_boot=50)
    assert (iv.value, iv.low, iv.clusters) == (0.0, 0.0, 1) and iv.high == pytest.approx(97.5)


def test_all_right_keeps_a_width_at_the_ceiling() -> None:
    """56 utterances of 4 speakers, all right (the embedded test split): the bootstrap alone gives
    [100, 100]; the floor gives 100 x 0.025^(1/56) = 93.62 below. A second seed with one item wrong
    (55 of 56) widens it to that seed's exact lower bound, Beta(0.025; 55, 2) = 90.45 (scipy-free
    check: the CDF of Beta(55, 2) at x is 56 x^55 - 55 x^56)."""
    clusters, units = [c for c in "abcd" for _ in range(14)], [f"u{i}" for i in range(56)]
    perfect = sample([1] * 56, [1] * 56, clusters=clusters, units=units)
    iv = clustered_ci([perfect], metric="f1_micro", n_boot=500)
    assert iv.high == 100.0 and iv.low == pytest.approx(100 * 0.025 ** (1 / 56))
    alone = clustered_ci([perfect], metric="f1_micro", n_boot=500, floor=False)
    assert (alone.low, alone.high) == (100.0, 100.0)  # the bootstrap alone: a point
    one_off = sample([1] * 55 + [0], [1] * 56, clusters=clusters, units=units)
    both = clustered_ci([perfect, one_off], metric="f1_micro", n_boot=500)
    x = both.low / 100
    assert 56 * x**55 - 55 * x**56 == pytest.approx(0.025, abs=1e-9) and both.high == 100.0
    assert both.value == pytest.approx((100 + 100 * 55 / 56) / 2)


def test_the_floor_counts_units_not_words() -> None:
    """40 words of 4 utterances, all right: 4 independent trials, so the floor is 0.025^(1/4)
    = 39.8, not 0.025^(1/40) = 91.2. UAR averages the classes' floors: two classes of 2 utterances
    each give 0.025^(1/2) = 15.8."""
    units = [f"u{i // 10}" for i in range(40)]
    words = sample([i // 20 for i in range(40)], [i // 20 for i in range(40)], clusters=["a"] * 40, units=units)
    assert exact_floor(words, metric="accuracy") == pytest.approx((100 * 0.025 ** 0.25, 100.0))
    assert exact_floor(words, metric="uar") == pytest.approx((100 * 0.025 ** 0.5, 100.0))
    assert clustered_ci([words], metric="accuracy", n_boot=300).low == pytest.approx(100 * 0.025 ** 0.25)


def test_one_cluster_is_the_item_bootstrap_within_it() -> None:
    """One speaker: the speaker draw is always that speaker, so each replicate draws its n
    utterances with replacement: the weights sum to n, as in the item bootstrap."""
    s = sample([1, 1, 0, 0], [1, 0, 0, 0], clusters=["a"] * 4, units=["u1", "u2", "u3", "u4"])
    design = Design([s])
    w = design.weights(np.random.default_rng(0), 500)
    assert w.shape == (500, 4) and np.all(w.sum(axis=1) == 4)
    assert w.std(axis=0).min() > 0.5  # units are resampled, not fixed
    iv = clustered_ci([s], metric="accuracy", n_boot=2000)
    assert iv.value == 75.0 and iv.clustered and iv.clusters == 1
    # 4 draws of Bernoulli(3/4): P(0 right) = 0.004 < 0.025 <= P(at most 1 right) = 0.051, and
    # P(all 4 right) = 0.316 > 0.025 -> [25, 100]; the exact floor of 3 of 4 (Beta(0.025; 3, 2)
    # = 19.41) is lower, so it sets the low end
    assert iv.high == 100.0 and iv.low == pytest.approx(19.412, abs=1e-3)


def test_a_cluster_drawn_twice_gets_twice_its_size_in_draws() -> None:
    s = sample([1] * 5, [1] * 5, clusters=["a", "a", "a", "b", "b"], units=list("vwxyz"))
    design = Design([s])
    w = design.weights(np.random.default_rng(1), 400)
    per_a, per_b = w[:, :3].sum(axis=1), w[:, 3:].sum(axis=1)
    assert set(np.unique(per_a)) <= {0, 3, 6} and set(np.unique(per_b)) <= {0, 2, 4}
    assert np.all((per_a / 3) + (per_b / 2) == 2)  # two speakers drawn in every replicate


def test_clusters_all_right_or_all_wrong_hand_computed() -> None:
    """Speaker A: 10 items all right; speaker B: 10 items all wrong. Clustered replicates can only
    be 0 (B twice, p 1/4), 50 (A and B, p 1/2) or 100 (A twice, p 1/4): interval [0, 100]. The item
    bootstrap sees 20 independent coin flips: a far narrower interval around 50."""
    s = sample([1] * 20, [1] * 10 + [0] * 10, clusters=["A"] * 10 + ["B"] * 10, units=[f"u{i}" for i in range(20)])
    design = Design([s])
    rng = np.random.default_rng(3)
    w = design.weights(rng, 4000)
    acc = weighted_metric("accuracy", s.y_true, s.y_pred, design.item_weights(w, 0))
    values, counts = np.unique(acc, return_counts=True)
    assert values.tolist() == [0.0, 50.0, 100.0]
    assert counts / counts.sum() == pytest.approx([0.25, 0.5, 0.25], abs=0.03)
    clustered = clustered_ci([s], metric="accuracy", n_boot=2000)
    items = clustered_ci([s], metric="accuracy", n_boot=2000, clustered=False)
    assert (clustered.low, clustered.high) == (0.0, 100.0) and clustered.clustered
    assert not items.clustered and 20.0 <= items.low <= 35.0 and 65.0 <= items.high <= 80.0


def test_weighted_uar_hand_computed() -> None:
    yt, yp = np.array([0, 0, 1]), np.array([0, 1, 1])
    w = np.array([[2.0, 0.0, 1.0], [1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    # class 0 recall 2/2 and class 1 recall 1/1 -> 100; class 0 1/2, class 1 absent -> 50;
    # class 0 0/1, class 1 1/1 -> 50; no weight -> NaN
    got = weighted_metric("uar", yt, yp, w)
    assert got[:3].tolist() == [100.0, 50.0, 50.0] and np.isnan(got[3])
    assert weighted_metric("f1_micro", yt, yp, w[:3]).tolist() == [100.0, 50.0, 50.0]


def test_without_speakers_the_item_bootstrap_is_used() -> None:
    s = sample([1, 0, 1], [1, 1, 1], units=["a", "b", "c"])
    iv = clustered_ci([s], metric="accuracy", n_boot=300)
    assert not iv.clustered and iv.clusters == 3
    assert iv.value == pytest.approx(200 / 3)


def test_word_items_are_resampled_with_their_utterance() -> None:
    """Two words of one utterance share its unit: their weights are equal in every replicate."""
    s = sample([1, 1, 1, 0], [1, 1, 0, 0], clusters=["a", "a", "a", "b"], units=["u1", "u1", "u2", "u3"])
    design = Design([s])
    w = design.item_weights(design.weights(np.random.default_rng(0), 300), 0)
    assert np.array_equal(w[:, 0], w[:, 1]) and not np.array_equal(w[:, 0], w[:, 2])
    items = Design([s], clustered=False)  # item bootstrap: each word on its own
    wi = items.item_weights(items.weights(np.random.default_rng(0), 300), 0)
    assert not np.array_equal(wi[:, 0], wi[:, 1])


def test_seeds_widen_the_interval() -> None:
    """Same items, two seeds that disagree: each replicate draws one seed, so the interval spans both."""
    clusters, units = ["a"] * 5 + ["b"] * 5, [f"u{i}" for i in range(10)]
    good = sample([1] * 10, [1] * 10, clusters=clusters, units=units)
    bad = sample([1] * 10, [0] * 10, clusters=clusters, units=units)
    iv = clustered_ci([good, bad], metric="accuracy", n_boot=1000)
    assert iv.value == 50.0 and (iv.low, iv.high) == (0.0, 100.0)


def test_paired_difference_identical_and_dominated() -> None:
    clusters, units = ["a"] * 4 + ["b"] * 4, [f"u{i}" for i in range(8)]
    y = [0, 1] * 4
    a = sample(y, y, clusters=clusters, units=units)
    same = paired_difference([a], [a], metric="accuracy", n_boot=300)
    assert (same.difference, same.low, same.high, same.significant) == (0.0, 0.0, 0.0, False)
    # b misses every item of speaker b: the difference is 50 points in the observed data; per
    # replicate it is 100 x (share of weight on speaker b's items) > 0 unless speaker a is drawn
    # twice (p 1/4): the 2.5% quantile is 0, so not significant with 2 speakers.
    b = sample(y, [0, 1] * 2 + [1, 0] * 2, clusters=clusters, units=units)
    two = paired_difference([a], [b], metric="accuracy", n_boot=2000)
    assert two.difference == 50.0 and two.low == 0.0 and two.high == 100.0 and not two.significant
    # the same pattern over 8 speakers (a misses 1 of 2 items of each): significant
    clusters8 = [f"s{i // 2}" for i in range(16)]
    a8 = sample([0, 1] * 8, [0, 1] * 8, clusters=clusters8, units=[f"u{i}" for i in range(16)])
    b8 = sample([0, 1] * 8, [0, 0] * 8, clusters=clusters8, units=[f"u{i}" for i in range(16)])
    eight = paired_difference([a8], [b8], metric="accuracy", n_boot=1000)
    assert eight.difference == 50.0 and eight.low > 0 and eight.significant


def test_paired_difference_averages_seeds() -> None:
    clusters, units = ["a", "b"], ["u1", "u2"]
    best = [sample([1, 1], [1, 1], clusters=clusters, units=units)] * 2
    other = [sample([1, 1], [1, 1], clusters=clusters, units=units),
             sample([1, 1], [0, 0], clusters=clusters, units=units)]
    # seeds averaged: best 100, other (100 + 0) / 2 = 50 in every replicate -> [50, 50]
    res = paired_difference(best, other, metric="accuracy", n_boot=200)
    assert (res.difference, res.low, res.high, res.significant) == (50.0, 50.0, 50.0, True)


def test_relative_change_hand_computed() -> None:
    one_base = sample([1], [1], clusters=["a"], units=["u"])
    one_new = sample([1], [0], clusters=["a"], units=["u"])
    iv = relative_change_ci([one_base], [one_new], metric="f1_micro", n_boot=100)
    assert (iv.value, iv.low, iv.high) == (-100.0, -100.0, -100.0)
    # base all right; new right on speaker a only: change = -50%, replicates -100 (b twice),
    # -50 (both) or 0 (a twice) -> [-100, 0]
    clusters, units = ["a"] * 3 + ["b"] * 3, [f"u{i}" for i in range(6)]
    base = sample([1] * 6, [1] * 6, clusters=clusters, units=units)
    new = sample([1] * 6, [1] * 3 + [0] * 3, clusters=clusters, units=units)
    iv = relative_change_ci([base], [new], metric="f1_micro", n_boot=2000)
    assert iv.value == -50.0 and (iv.low, iv.high) == (-100.0, 0.0)
    with pytest.raises(ValueError, match="one pair per seed"):
        relative_change_ci([base], [], metric="f1_micro")


def test_bad_input_is_refused_with_the_counts() -> None:
    with pytest.raises(ValueError, match="y_true has 2 items, y_pred 1"):
        sample([1, 0], [1])
    with pytest.raises(ValueError, match="clusters has 1 entries for 2 items"):
        sample([1, 0], [1, 0], clusters=["a"])
    with pytest.raises(KeyError, match="f1_macro"):
        clustered_ci([sample([1], [1])], metric="f1_macro")
