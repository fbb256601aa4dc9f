"""Where a frame-level head's frames come from (the profile's ``features`` section).

The main cache entry of (card, audio set) always holds the pooled vectors of every layer and the
frame count of every utterance. Its frames are one of three sources:

- :class:`CachedFrames` (``sweep_frames: all``): the main entry stores the frames of every
  sweep-candidate layer for the whole corpus (the scheme before issue 17);
- :class:`BoundedFrames` (``sweep_frames: bounded``): two derived entries beside the main one,
  each a normal entry (atomic, checksummed, resumable) without pooled vectors:

  - ``<key>.sweep-<ids>``: the candidate layers' frames of the sweep's training subset and of
    dev only, with the float64 moments of the whole training split per layer (the head
    standardises with them, as it does from the full split's frames in the ``all`` scheme);
    ``<ids>`` hashes the stored and summarised utterance ids, so a sweep of the same subset is
    never extracted twice;
  - ``<key>.frames``: the chosen layers' frames of every utterance (train, dev, test), extended
    in place when another downstream chooses another layer;

- :class:`StreamFrames` (``source: stream``): no frames on disk; the upstream runs inside head
  training, batch by batch (:class:`StreamingFeatureSet`), through the same forward and chunking
  as the extraction (:func:`harness.features.extract.forward_rows`).

Every source hands the head a :class:`~harness.probe.train.FeatureSet` with the same items,
labels, lengths and order, so the batching and the seed give the same training.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..data import Utterance, load_audio
from ..errors import BenchError
from ..identity import short_hash
from ..probe.train import FeatureSet
from .cache import FeatureStore, FrameMoments, stats_from_moments
from .extract import _batch_full, _rows_for, assemble, batch_seconds, forward_rows, rng_untouched

if TYPE_CHECKING:
    from torch import nn


STREAM_LAYER_MODES = (
    "features.source: stream does not run the layer modes: a weighted_sum or mean frame head reads every layer "
    "stacked, and the stream computes one layer per batch. Expected: a single layer (layer: sweep, last or an "
    "index) or cached frames. Fix: set the profile's `layer:` to null, or its `features: {source: cache}` "
    "(with `sweep_frames: bounded` every layer's frames are stored once, in the `<key>.frames` entry), or raise "
    "`features.stream_above_gb` so that `source: auto` caches this corpus.")


class CachedFrames:
    """Frames read from one entry that holds them for every utterance (``sweep_frames: all``)."""

    kind = "cache"
    scheme = "all"

    def __init__(self, store: FeatureStore):
        self.store = store

    def feature_set(self, ids: list[str], y: np.ndarray, *, layer: int | tuple[int, ...]) -> FeatureSet:
        x, off = self.store.gather(ids, layer=layer)
        return FeatureSet("frames", x, y, ids, offsets=off)

    def sweep_sets(self, **_: Any) -> None:
        return None  # the sweep reads the whole training split and subsets it

    def entries(self) -> list[FeatureStore]:
        return []


# (entry name, layers, utterance ids to store, utterance ids to summarise or None) -> the entry
EnsureEntry = Callable[[str, list[int], set[str], "set[str] | None"], FeatureStore]


class BoundedFrames:
    """Frames from the derived entries of the bounded scheme (see the module docstring)."""

    kind = "cache"
    scheme = "bounded"

    def __init__(self, store: FeatureStore, *, ensure: EnsureEntry):
        self.store = store
        self._ensure = ensure
        self._opened: dict[str, FeatureStore] = {}

    def chosen_entry(self, layers: Sequence[int]) -> FeatureStore:
        entry = self._ensure("frames", sorted(set(layers)), set(self.store.ids), None)
        self._opened["frames"] = entry
        return entry

    def feature_set(self, ids: list[str], y: np.ndarray, *, layer: int | tuple[int, ...]) -> FeatureSet:
        """The frames of ``layer`` (a layer mode's tuple: every layer, stacked) from the chosen entry."""
        x, off = self.chosen_entry([layer] if isinstance(layer, int) else list(layer)).gather(ids, layer=layer)
        return FeatureSet("frames", x, y, ids, offsets=off)

    def sweep_sets(self, *, layer: int, layers: Sequence[int], train: tuple[list[str], np.ndarray],
                   dev: tuple[list[str], np.ndarray], subset: np.ndarray,
                   standardize: bool) -> tuple[FeatureSet, FeatureSet]:
        """(training subset, dev) of ``layer`` from the sweep entry: frames of ``subset`` (indices
        into ``train``) and dev only; standardised with the moments of the whole ``train``."""
        train_ids, train_y = train
        sub_ids = [train_ids[i] for i in subset]
        keep = set(sub_ids) | set(dev[0])
        summarise = set(train_ids) if standardize else None
        name = "sweep-" + short_hash({"store": sorted(keep), "moments": sorted(summarise or ())}, n=12)
        entry = self._ensure(name, sorted(set(layers)), keep, summarise)
        self._opened[name] = entry
        x, off = entry.gather(sub_ids, layer=layer)
        tr = FeatureSet("frames", x, train_y[subset], sub_ids, offsets=off)
        x, off = entry.gather(dev[0], layer=layer)
        dv = FeatureSet("frames", x, dev[1], list(dev[0]), offsets=off)
        if standardize:
            mean, std = entry.moments(layer=layer)
            tr, dv = tr.with_stats(mean, std), dv.with_stats(mean, std)
        return tr, dv

    def entries(self) -> list[FeatureStore]:
        """The derived entries this cell opened (their bytes count in the cell's record)."""
        return list(self._opened.values())


@dataclass
class StreamingFeatureSet(FeatureSet):
    """A frame-level :class:`FeatureSet` whose frames are computed by the upstream when a batch is
    read. ``x`` is empty [0, D]; ``offsets`` come from the main entry's frame counts, so the
    length bucketing of :func:`harness.probe.train.batches` is that of the cached set."""

    stream: StreamFrames | None = None
    layer: int = 0
    # per item, applied to its frames as the batch is computed (utterance_layer_norm: harness.probe.sets)
    item_norm: Callable[[np.ndarray], np.ndarray] | None = None

    def _stream(self) -> StreamFrames:
        if self.stream is None:  # pragma: no cover - built by StreamFrames only
            raise RuntimeError("a streaming feature set without its stream")
        return self.stream

    def subset(self, index: Sequence[int] | np.ndarray) -> FeatureSet:
        index = np.asarray(index, dtype=np.int64)
        lengths = self.lengths()[index]
        off = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
        speakers = [self.speakers[i] for i in index] if self.speakers is not None else None
        return replace(self, y=self.y[index], ids=[self.ids[i] for i in index], offsets=off, speakers=speakers)

    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        return self._stream().stats(self.ids, layer=self.layer)

    def batch(self, index: Sequence[int] | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        seqs = self._stream().frames([self.ids[i] for i in index], layer=self.layer)
        lens = [len(s) for s in seqs]
        out = np.zeros((len(seqs), max(lens), self.dim), np.float32)
        for j, s in enumerate(seqs):
            out[j, : lens[j]] = self._prepare(self.item_norm(s) if self.item_norm is not None else s)
        return torch.from_numpy(out), torch.tensor(lens, dtype=torch.long)


class StreamFrames:
    """The upstream run on demand: an utterance's frames of a layer as the cache would store them
    (float16), from the same audio reading, chunking and forward as the extraction. On a CPU
    every row runs alone (as the extraction does there), so the frames are those of the cache."""

    kind = "stream"
    scheme = "stream"

    def __init__(self, store: FeatureStore, *, utterances: Sequence[Utterance], make_module: Callable[[], nn.Module],
                 device: str, batch_s: float | None, bf16: bool, max_chunk_s: float,
                 input_window_s: float | None = None):
        self.store = store
        self.input_window_s = input_window_s
        self._utts = {u.id: u for u in utterances}
        self._make_module = make_module
        self._module: Any = None
        self.device, self.bf16, self.max_chunk_s = device, bf16, max_chunk_s
        self.batch_s = batch_seconds(batch_s, device)
        self._stats: dict[tuple[str, ...], FrameMoments] = {}
        # the upstream gets the threads of the process that built this source, not the single thread
        # heads train with (harness.probe.train.head_threads)
        self.threads = torch.get_num_threads()
        self.forward_s = 0.0
        self.forwards = 0

    @property
    def module(self) -> Any:
        """The upstream, built on first use under a forked RNG: building draws initial weights from
        torch's global generator, and the head's initialisation and dropout must draw the same
        numbers as in a cached run."""
        if self._module is None:
            with rng_untouched(self.device):
                self._module = self._make_module()
        return self._module

    def feature_set(self, ids: list[str], y: np.ndarray, *, layer: int | tuple[int, ...]) -> FeatureSet:
        if not isinstance(layer, int):
            raise BenchError(STREAM_LAYER_MODES)
        counts = np.asarray(self.store.meta.frame_counts, dtype=np.int64)[self.store.index_of(ids)] if ids \
            else np.zeros(0, np.int64)
        off = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
        empty = np.zeros((0, self.store.meta.hidden_size), np.float16)
        return StreamingFeatureSet("frames", empty, y, list(ids), offsets=off, stream=self, layer=layer)

    def sweep_sets(self, **_: Any) -> None:
        return None  # the sweep streams its subset through StreamingFeatureSet.subset

    def entries(self) -> list[FeatureStore]:
        return []

    def stats(self, ids: Sequence[str], *, layer: int) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) of ``layer``'s frames over ``ids``; one pass gives every layer's moments."""
        key = tuple(ids)
        if key not in self._stats:
            moments = FrameMoments(range(self.store.meta.num_layers), self.store.meta.hidden_size)
            for start in range(0, len(ids), 16):
                for frames in self._forward(ids[start: start + 16]):
                    moments.add(frames)
            self._stats[key] = moments
        m = self._stats[key]
        return stats_from_moments(m.sums[layer][0], m.sums[layer][1], m.frames)

    def frames(self, ids: Sequence[str], *, layer: int) -> list[np.ndarray]:
        """[T_i, D] float16 frames of ``layer`` for each of ``ids``."""
        return [np.asarray(f[layer], dtype=np.float16) for f in self._forward(ids)]

    def _forward(self, ids: Sequence[str]) -> list[list[np.ndarray]]:
        """Per utterance, per layer, its frames (float32), in the order of ``ids``."""
        import time

        module = self.module
        sr = int(module.sample_rate)
        granularity = getattr(module, "granularity", "frame")
        min_samples = int(getattr(module, "min_input_samples", 400))
        batch_samples = int(self.batch_s * sr)
        autocast = self.device.startswith("cuda") and self.bf16
        parts: dict[int, list[tuple[int, list[np.ndarray]]]] = {i: [] for i in range(len(ids))}
        pending: list[tuple[Any, np.ndarray]] = []
        t0 = time.perf_counter()

        def run(batch: list[tuple[Any, np.ndarray]]) -> None:
            rows = forward_rows(module, [w for _, w in batch], device=self.device, autocast=autocast,
                                granularity=granularity)
            self.forwards += 1
            for (row, _), frames in zip(batch, rows, strict=True):
                parts[row.utt_index].append((row.start, frames))

        threads = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            with rng_untouched(self.device):  # the head's dropout must draw what it draws in a cached run
                self._read_and_run(ids, parts, run=run, pending=pending, sr=sr, granularity=granularity,
                                   min_samples=min_samples, batch_samples=batch_samples)
        finally:
            torch.set_num_threads(threads)
        self.forward_s += time.perf_counter() - t0
        return [assemble(parts[i]) for i in range(len(ids))]

    def _read_and_run(self, ids: Sequence[str], parts: dict[int, list[tuple[int, list[np.ndarray]]]], *,
                      run: Callable[[list[tuple[Any, np.ndarray]]], None], pending: list[tuple[Any, np.ndarray]],
                      sr: int, granularity: str, min_samples: int, batch_samples: int) -> None:
        """Read each utterance, cut it into the extraction's rows and run them in its batches."""
        with torch.nn.utils.parametrize.cached():
            for i, uid in enumerate(ids):
                utt = self._utts[uid]
                wav = load_audio(utt.path, sample_rate=sr, start_s=utt.start_s, end_s=utt.end_s)
                if self.input_window_s is not None:  # as the extraction cut it (a downstream's input_window_s)
                    wav = wav[: int(round(self.input_window_s * sr))]
                for row in _rows_for(i, utt, len(wav), granularity=granularity, sample_rate=sr,
                                     max_chunk_samples=int(self.max_chunk_s * sr), min_samples=min_samples):
                    seg = wav[row.start: row.stop]
                    if pending and _batch_full(pending, seg, row, batch_samples=batch_samples, granularity=granularity):
                        run(pending)
                        pending.clear()
                    pending.append((row, seg))
            if pending:
                run(pending)
