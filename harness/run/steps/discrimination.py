"""Emotion discrimination (paper Table VII): triplets of test utterances, no training.

A triplet is (anchor, positive, negative): anchor and positive share an emotion, the negative
has another one. The score is the share of triplets with cos(anchor, positive) > cos(anchor,
negative) (a tie counts as a miss), in percent. The paper's code has no triplet builder; this one:

- draws from the TEST split only, with a generator seeded by the cell's seed (deterministic);
- by default makes one triplet per test utterance as anchor (``analyses.emotion_triplets``
  sets a count instead: anchors are then taken in a seeded random order, cycling through all
  eligible utterances before any repeats);
- picks the positive uniformly among the other utterances of the anchor's emotion and the
  negative uniformly among all utterances of the other emotions; an utterance whose emotion
  occurs only once in the test split cannot be an anchor (the count of such is reported).

Features: the mean over the whole utterance of the layer chosen for emotion ID (``layer_from``
in the downstream YAML names the downstream whose layer is reused, read through
:func:`harness.run.steps.sweep.choose_layer` with that downstream's plan, so the emotion cell
and this one share one sweep file). For word-level upstreams the pooled vector is the mean of
the word embeddings. Everything is read from the feature cache: the upstream runs only when the
cache has no entry yet (the first cell of the audio set), never a second time.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np

from ...config.plan import CellPlan, resolve_cell
from ...corpora.load import task_splits
from ...errors import BenchError, DataError
from ...features.build import features_for
from ..context import KindSections
from ..inputs import cell_inputs
from ..record import LayerChoice
from .sweep import choose_layer

if TYPE_CHECKING:
    from ...config.snapshot import Snapshot
    from ...data import Dataset
    from ...features.cache import FeatureStore


def make_triplets(labels_N: Any, *, seed: int, count: int | None = None) -> np.ndarray:
    """[M, 3] indices (anchor, positive, negative) into ``labels_N`` (see module doc for the rules)."""
    labels = np.asarray(labels_N)
    classes, sizes = np.unique(labels, return_counts=True)
    size_of = dict(zip(classes.tolist(), sizes.tolist(), strict=True))
    eligible = np.array([i for i in range(len(labels)) if size_of[labels[i].item()] >= 2], dtype=np.int64)
    if len(classes) < 2 or not len(eligible):
        return np.zeros((0, 3), dtype=np.int64)
    rng = np.random.default_rng(seed)
    if count is None:
        anchors = eligible
    else:
        rounds = -(-count // len(eligible))
        anchors = np.concatenate([rng.permutation(eligible) for _ in range(rounds)])[:count]
    out = np.empty((len(anchors), 3), dtype=np.int64)
    for row, a in enumerate(anchors):
        same = np.flatnonzero(labels == labels[a])
        positive = rng.choice(same[same != a])
        negative = rng.choice(np.flatnonzero(labels != labels[a]))
        out[row] = (a, positive, negative)
    return out


def triplet_correct(x_ND: np.ndarray, triplets: np.ndarray) -> np.ndarray:
    """[M] bool: cos(anchor, positive) > cos(anchor, negative) for each triplet (rows of ``x_ND``)."""
    x = np.asarray(x_ND, dtype=np.float64)
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    a, p, n = (unit[triplets[:, i]] for i in range(3))
    return np.sum(a * p, axis=1) > np.sum(a * n, axis=1)


def _anchor_speakers(ids: list[str], triplets: np.ndarray, utterances: Any) -> dict[str, list[str]]:
    """``{"speakers": the anchor's speaker per triplet}`` (the clusters of the leaderboard's
    bootstrap), or {} when a speaker is not named."""
    from ...data import item_speakers

    speakers = item_speakers([ids[a] for a in triplets[:, 0]], utterances)
    return {"speakers": speakers} if speakers is not None else {}


def discrimination_layer(*, snap: Snapshot, plan: CellPlan, store: FeatureStore, device: str,
                         progress: bool) -> LayerChoice:
    """The layer the cell reads: the one chosen by the ``layer_from`` downstream (same upstream,
    language and profile; its rule applied through :func:`~harness.run.steps.sweep.choose_layer`),
    else the downstream's own fixed or last layer."""
    rule = plan.layer
    n = store.meta.num_layers
    if rule.kind != "from_cell" or rule.source is None:
        if rule.kind == "last" or n == 1:
            return LayerChoice(chosen=n - 1, rule="last layer" if n > 1 else "single layer", num_layers=n)
        if rule.kind == "fixed":
            return LayerChoice(chosen=rule.index, rule="fixed in the downstream", num_layers=n)
        raise BenchError(f"downstream {plan.spec.downstream!r} asks for a layer {rule.kind} but trains nothing: set "
                         "`layer_from: <downstream>` (the layer chosen for that task) or a fixed `layer`")
    src_plan = resolve_cell(snap, rule.source)
    if src_plan.card.name != plan.card.name:
        raise BenchError(f"layer_from {src_plan.spec.downstream!r} resolves to card {src_plan.card.name!r}, "
                         f"this cell runs {plan.card.name!r}")
    src = cell_inputs(snap, src_plan, device=device, progress=progress)
    info = choose_layer(snap=snap, plan=src_plan, store=src.store, sets_for=src.sets_for, classes=src.classes,
                        device=device, progress=progress)
    if info.mode == "weighted_sum":  # the weights are learned per cell, by a head this cell does not train
        raise BenchError(f"downstream {plan.spec.downstream!r} reuses the layer of {src_plan.spec.downstream!r}, "
                         f"which runs layer mode weighted_sum in profile {plan.spec.profile!r}: a downstream that "
                         "trains nothing has no weights to learn. Run it in a profile without `layer: weighted_sum` "
                         "(its single-layer result is the comparison), or give it a fixed `layer`")
    if info.mode == "mean":
        info = info.model_copy(update={"weights": [1.0 / n] * n})
    return info.model_copy(update={"layer_from": src_plan.spec.downstream})


def _pooled(store: FeatureStore, layer: int | None) -> np.ndarray:
    """[N, D] whole-utterance means of ``layer``, or of the mean of every layer (None)."""
    if layer is not None:
        return store.pooled(layer=layer, window_s=None)
    every = store.pooled(layer=tuple(range(store.meta.num_layers)), window_s=None)
    return every.astype(np.float32).mean(axis=1)


def run_emotion_discrimination(*, snap: Snapshot, plan: CellPlan, dataset: Dataset, device: str,
                               progress: bool) -> KindSections:
    """The cell's result sections: metrics (accuracy in percent), triplets, layer, predictions
    (per-triplet ``y_pred`` = 1 when correct against ``y_true`` = 1, so the leaderboard's item
    bootstrap applies unchanged), data, features, timings, summary."""
    timings: dict[str, float] = {}
    splits = task_splits(dataset, task=plan.task, source=plan.source)
    test = splits["test"]
    if not test.utterances:
        raise DataError(f"the test split of {dataset.name} has no utterance labelled with {plan.task.label} "
                        f"in {list(test.classes)}")
    t = time.perf_counter()
    store = features_for(snap, plan, dataset, device=device, progress=progress)
    timings["features_s"] = time.perf_counter() - t
    t = time.perf_counter()
    layer_info = discrimination_layer(snap=snap, plan=plan, store=store, device=device, progress=progress)
    timings["layer_selection_s"] = time.perf_counter() - t
    layer = None if layer_info.mode else int(layer_info.chosen or 0)  # None: the mean of every layer
    kept = [(u.id, y) for u, y in zip(test.utterances, test.labels, strict=True) if u.id in store]
    ids = [i for i, _ in kept]
    y = np.array([lab for _, lab in kept], dtype=np.int64)
    t = time.perf_counter()
    x = _pooled(store, layer)[store.index_of(ids)] if ids else np.zeros((0, 1))
    triplets = make_triplets(y, seed=plan.spec.seed, count=plan.profile.analyses.emotion_triplets)
    if not len(triplets):
        raise DataError(f"no emotion triplet can be built from the {len(ids)} test utterances of {dataset.name} "
                        "(needs two emotions, one of them at least twice)")
    correct = triplet_correct(x, triplets)
    timings["score_s"] = time.perf_counter() - t
    accuracy = 100.0 * float(correct.mean())
    counts = Counter(test.classes[i] for i in y)
    lone = sum(c for c in counts.values() if c == 1)
    return KindSections.model_validate({
        "metrics": {"accuracy": accuracy, "n": len(triplets)},
        "triplets": len(triplets),
        "layer": layer_info,
        "classes": list(test.classes),
        "predictions": {"ids": ["|".join(ids[j] for j in row) for row in triplets],
                        "y_true": [1] * len(triplets), "y_pred": correct.astype(int).tolist(),
                        **_anchor_speakers(ids, triplets, test.utterances)},
        "data": {"corpus": dataset.name, "fingerprint": dataset.fingerprint, "split": "test",
                 "utterances": len(ids), "label_counts": dict(counts), "not_anchors_single_emotion": lone,
                 "skipped": len(test.utterances) - len(ids) + len(test.skipped),
                 "triplet_rule": ("one per test utterance as anchor" if plan.profile.analyses.emotion_triplets is None
                                  else f"{plan.profile.analyses.emotion_triplets} with seeded anchors"),
                 "seed": plan.spec.seed},
        "features": {"cache_entry": store.path.name, "pooling": "mean over the whole utterance",
                     "layer": layer, "upstream_forward_calls": store.meta.upstream_forward_calls},
        "timings": timings,
        "summary": (f"{accuracy:.1f}% of {len(triplets)} emotion triplets (test split, seed {plan.spec.seed}) "
                    f"with cos(anchor, positive) > cos(anchor, negative); "
                    f"{'every layer' if layer is None else f'layer {layer}'} ({layer_info.rule})"),
    })
