"""Feature sets per split, as a cell's head reads them from the cache.

The cell, the layer sweep and the analyses all build their inputs here, so all of them see the
same items: items the extraction skipped are dropped (and named), word-level upstreams under an
utterance-level head give one item per word, and features are normalised as the profile's
``normalize`` says (z-scored with the training split's statistics, layer-normed per utterance as
the paper's code did, or left as they are; a downstream's ``standardize: false`` means none).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Literal

import numpy as np

from ..data import item_speakers
from ..errors import BenchError
from .train import FeatureSet

if TYPE_CHECKING:
    from ..config.plan import CellPlan
    from ..data import LabelledSet
    from ..features.build import FrameSource
    from ..features.cache import FeatureStore

# A layer index, or a tuple of layers stacked on an axis before D (the layer modes).
LayerSel = int | tuple[int, ...]
SetsFor = Callable[[LayerSel], tuple[dict[str, FeatureSet], list[str]]]


Normalization = Literal["train_zscore", "utterance_layer_norm", "none"]
LAYER_NORM_EPS = 1e-5  # torch.nn.functional.layer_norm's default, as SpeechBrain's output_norm used it


def build_feature_sets(store: FeatureStore, splits: dict[str, LabelledSet], *, layer: LayerSel, features: str,
                       pool_window_s: float | None, word_items: bool, standardize: bool = False,
                       normalize: Normalization | None = None,
                       frames: FrameSource | None = None) -> tuple[dict[str, FeatureSet], list[str]]:
    """Feature sets per split from the cache; items the extraction skipped are dropped and named.

    ``layer``: one layer, or a tuple of layers stacked on an axis before D (features [N, L, D] or
    [sum T, L, D]: the layer modes). ``frames``: where frame sequences of a frame-level head come
    from (:mod:`harness.features.frames`; default: ``store``). ``normalize`` (default:
    ``train_zscore`` when ``standardize``, else ``none``):

    - ``train_zscore``: every split z-scored per dimension (and layer) with the training split's
      statistics;
    - ``utterance_layer_norm``: each utterance's frames of a layer normalised over time x dims,
      no affine (SpeechBrain's ``output_norm``, what the paper's code fed its heads); pooled
      features are the mean of the normalised frames, so they need the layer's frames in the cache
      (:func:`harness.probe.layers.frame_layers_for_profile` stores them); word items: each word
      vector over its dims;
    - ``none``: the cached features as they are."""
    normalize = normalize or ("train_zscore" if standardize else "none")
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
            if normalize == "utterance_layer_norm":
                x = _layer_norm_rows(x)
            out[name] = FeatureSet("pooled", x, np.repeat(y, counts).astype(np.int64), item_ids,
                                   speakers=item_speakers(item_ids, ls.utterances))
        elif features == "pooled" and normalize == "utterance_layer_norm":
            out[name] = FeatureSet("pooled", _normed_pooled(store, ids, layer=layer, window_s=pool_window_s), y, ids,
                                   speakers=item_speakers(ids, ls.utterances))
        elif features == "pooled":
            x = store.pooled(layer=layer, window_s=pool_window_s)[store.index_of(ids)] if ids else \
                np.zeros((0, *_layer_shape(layer), store.meta.hidden_size), np.float16)
            out[name] = FeatureSet("pooled", np.asarray(x), y, ids, speakers=item_speakers(ids, ls.utterances))
        elif frames is not None:
            fs = replace(frames.feature_set(ids, y, layer=layer), speakers=item_speakers(ids, ls.utterances))
            out[name] = layer_normed(fs) if normalize == "utterance_layer_norm" else fs
        else:
            x, off = store.gather(ids, layer=layer)
            if normalize == "utterance_layer_norm":
                x = _layer_norm_items(x, off)
            out[name] = FeatureSet("frames", x, y, ids, offsets=off, speakers=item_speakers(ids, ls.utterances))
    if normalize == "train_zscore" and len(out.get("train", [])):
        mean, std = out["train"].stats()
        out = {name: fs.with_stats(mean, std) for name, fs in out.items()}
    return out, dropped


def _layer_norm_items(x: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Each item's frames ``x[offsets[i]:offsets[i + 1]]`` ([T, D], or [T, L, D]: per layer)
    normalised over time x dims (float16 out)."""
    out = np.empty_like(x, dtype=np.float16)
    for a, b in zip(offsets[:-1], offsets[1:], strict=True):
        seg = np.asarray(x[a:b], dtype=np.float32)
        mean = seg.mean(axis=(0, -1), keepdims=True)
        var = seg.var(axis=(0, -1), keepdims=True)
        out[a:b] = (seg - mean) / np.sqrt(var + LAYER_NORM_EPS)
    return out


def _layer_norm_rows(x: np.ndarray) -> np.ndarray:
    """Each row normalised over its dims (the last axis; float16 out)."""
    x32 = np.asarray(x, dtype=np.float32)
    mean, var = x32.mean(axis=-1, keepdims=True), x32.var(axis=-1, keepdims=True)
    return ((x32 - mean) / np.sqrt(var + LAYER_NORM_EPS)).astype(np.float16)


def _normed_pooled(store: FeatureStore, ids: list[str], *, layer: LayerSel, window_s: float | None) -> np.ndarray:
    """[N, D] (or [N, L, D]): per utterance, the mean over the pooling window of its frames
    normalised over every frame the upstream saw (time x dims, per layer) -- SpeechBrain's
    ``output_norm`` before the mean pooling."""
    wanted = (layer,) if isinstance(layer, int) else tuple(layer)
    missing = [la for la in wanted if not store.has_frames(la)]
    if missing:
        raise BenchError(f"normalize: utterance_layer_norm on pooled features needs the frames of layers {missing} "
                         f"in the cache entry {store.path}, which has frames of layers {store.meta.frame_layers}; "
                         "harness.probe.layers.frame_layers_for_profile asks for them: rerun to extend the entry")
    x, off = store.gather(ids, layer=layer)
    out = np.zeros((len(ids), *_layer_shape(layer), store.meta.hidden_size), np.float32)
    for i, (a, b) in enumerate(zip(off[:-1], off[1:], strict=True)):
        seg = np.asarray(x[a:b], dtype=np.float32)
        n = len(seg) if window_s is None else max(min(int(math.ceil(window_s * store.meta.frame_rate_hz)), len(seg)), 1)
        mean = seg.mean(axis=(0, -1), keepdims=True)
        std = np.sqrt(seg.var(axis=(0, -1), keepdims=True) + LAYER_NORM_EPS)
        out[i] = ((seg[:n].mean(axis=0, keepdims=True) - mean) / std)[0]
    return out.astype(np.float16)


def normalization(plan: CellPlan) -> Normalization:
    """How the cell's probe inputs are normalised: none when the downstream says ``standardize:
    false``, else the profile's ``normalize``."""
    return plan.profile.normalize if plan.downstream.config.standardize else "none"


def feature_sets_for(store: FeatureStore, splits: dict[str, LabelledSet],
                     plan: CellPlan, *, frames: FrameSource | None = None) -> SetsFor:
    """``layer -> (feature sets per split, dropped items)`` as the cell's head reads them (used by
    the cell, the layer sweep and the analyses, so that all of them see the same items).
    ``frames``: where frame sequences come from (default: ``store``)."""
    return CellSets(store, splits, plan, frames=frames)


class CellSets:
    """:data:`SetsFor` of one cell, plus the bounded sweep's sets (:meth:`sweep_sets`)."""

    def __init__(self, store: FeatureStore, splits: dict[str, LabelledSet], plan: CellPlan, *,
                 frames: FrameSource | None = None):
        cfg = plan.downstream.config
        self.store, self.splits, self.frames = store, splits, frames
        self.features, self.normalize = cfg.features, normalization(plan)
        self.word_items = plan.granularity == "word" and cfg.features == "pooled"
        self.pool_window = cfg.pool_window_s if plan.granularity == "frame" else None

    def __call__(self, layer: LayerSel) -> tuple[dict[str, FeatureSet], list[str]]:
        return build_feature_sets(self.store, self.splits, layer=layer, features=self.features,
                                  pool_window_s=self.pool_window, word_items=self.word_items,
                                  normalize=self.normalize, frames=self.frames)

    def kept(self, split: str) -> tuple[list[str], np.ndarray]:
        """(ids, labels) of ``split``'s items the cache holds, in the order of the feature sets."""
        ls = self.splits[split]
        keep = [(u.id, y) for u, y in zip(ls.utterances, ls.labels, strict=True) if u.id in self.store]
        return [u for u, _ in keep], np.array([y for _, y in keep], dtype=np.int64)

    def sweep_sets(self, layer: int, *, layers: list[int],
                   subset: Callable[[int], np.ndarray]) -> tuple[FeatureSet, FeatureSet] | None:
        """(training subset, dev) of ``layer`` read from the bounded scheme's sweep entry, or None
        when the frame source has none (the sweep then subsets ``self(layer)``'s training split).
        ``subset(n)``: the sorted indices of the training items the sweep trains on. Normalised as
        :meth:`__call__` normalises (``train_zscore``: with the whole training split's moments)."""
        if self.frames is None or self.features != "frames" or self.word_items:
            return None
        train = self.kept("train")
        pair = self.frames.sweep_sets(layer=layer, layers=layers, train=train, dev=self.kept("dev"),
                                      subset=subset(len(train[0])), standardize=self.normalize == "train_zscore")
        if pair is None:
            return None
        out = []
        for fs, split in zip(pair, ("train", "dev"), strict=True):
            fs = replace(fs, speakers=item_speakers(fs.ids, self.splits[split].utterances))
            out.append(layer_normed(fs) if self.normalize == "utterance_layer_norm" else fs)
        return out[0], out[1]


def layer_normed(fs: FeatureSet) -> FeatureSet:
    """``fs``'s frame sequences under ``utterance_layer_norm``: each item over time x dims (a
    streamed set normalises each item as its batch is computed)."""
    from ..features.frames import StreamingFeatureSet

    if isinstance(fs, StreamingFeatureSet):
        return replace(fs, item_norm=_layer_norm_one)
    assert fs.offsets is not None
    return replace(fs, x=_layer_norm_items(fs.x, fs.offsets))


def _layer_norm_one(seg: np.ndarray) -> np.ndarray:
    return _layer_norm_items(seg, np.array([0, len(seg)], dtype=np.int64))


def _layer_shape(layer: LayerSel) -> tuple[int, ...]:
    return () if isinstance(layer, int) else (len(layer),)
