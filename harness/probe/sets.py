"""Feature sets per split, as a cell's head reads them from the cache.

The cell, the layer sweep and the analyses all build their inputs here, so all of them see the
same items: items the extraction skipped are dropped (and named), word-level upstreams under an
utterance-level head give one item per word, and features are z-scored with the training split's
statistics when the downstream asks for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from .train import FeatureSet

if TYPE_CHECKING:
    from ..config.plan import CellPlan
    from ..data import LabelledSet
    from ..features.cache import FeatureStore

# A layer index, or a tuple of layers stacked on an axis before D (the layer modes).
LayerSel = int | tuple[int, ...]
SetsFor = Callable[[LayerSel], tuple[dict[str, FeatureSet], list[str]]]


def build_feature_sets(store: FeatureStore, splits: dict[str, LabelledSet], *, layer: LayerSel, features: str,
                       pool_window_s: float | None, word_items: bool,
                       standardize: bool = False) -> tuple[dict[str, FeatureSet], list[str]]:
    """Feature sets per split from the cache; items the extraction skipped are dropped and named.

    With ``standardize`` every split is z-scored with the training split's statistics (per layer
    when ``layer`` is a tuple of layers: features [N, L, D] or [sum T, L, D])."""
    out: dict[str, FeatureSet] = {}
    dropped: list[str] = []
    for name, ls in splits.items():
        keep = [(u, y) for u, y in zip(ls.utterances, ls.labels, strict=True) if u.id in store]
        dropped += [f"{u.id}: {store.meta.skipped.get(u.id, 'not in the feature cache')}"
                    for u in ls.utterances if u.id not in store]
        ids = [u.id for u, _ in keep]
        y = np.array([y for _, y in keep], dtype=np.int64)
        if word_items:  # word-level upstream with an utterance-level head: one item per word
            x, off = store.gather(ids, layer=layer)
            counts = np.diff(off)
            item_ids = [f"{uid}#{k}" for uid, n in zip(ids, counts, strict=True) for k in range(int(n))]
            out[name] = FeatureSet("pooled", x, np.repeat(y, counts).astype(np.int64), item_ids)
        elif features == "pooled":
            x = store.pooled(layer=layer, window_s=pool_window_s)[store.index_of(ids)] if ids else \
                np.zeros((0, *_layer_shape(layer), store.meta.hidden_size), np.float16)
            out[name] = FeatureSet("pooled", np.asarray(x), y, ids)
        else:
            x, off = store.gather(ids, layer=layer)
            out[name] = FeatureSet("frames", x, y, ids, offsets=off)
    if standardize and len(out.get("train", [])):
        mean, std = out["train"].stats()
        out = {name: fs.with_stats(mean, std) for name, fs in out.items()}
    return out, dropped


def feature_sets_for(store: FeatureStore, splits: dict[str, LabelledSet],
                     plan: CellPlan) -> SetsFor:
    """``layer -> (feature sets per split, dropped items)`` as the cell's head reads them (used by
    the cell, the layer sweep and the analyses, so that all of them see the same items)."""
    cfg = plan.downstream.config
    word_items = plan.granularity == "word" and cfg.features == "pooled"
    pool_window = cfg.pool_window_s if plan.granularity == "frame" else None

    def sets_for(layer: LayerSel) -> tuple[dict[str, FeatureSet], list[str]]:
        return build_feature_sets(store, splits, layer=layer, features=cfg.features, pool_window_s=pool_window,
                                  word_items=word_items, standardize=cfg.standardize)

    return sets_for


def _layer_shape(layer: LayerSel) -> tuple[int, ...]:
    return () if isinstance(layer, int) else (len(layer),)
