"""Training a probe head on cached features: Adam, early stopping on dev micro-F1, best weights restored.

Deterministic on CPU for a given seed: the head's initialisation and the batch order both come
from the seed, and nothing else is random.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ..errors import BenchError
from ..faults import maybe_crash
from ..progress import make_progress
from ..registry import HEADS
from ..schema import Training
from .heads import LAYER_MODES, LayerMixHead

if TYPE_CHECKING:
    from ..config.plan import CellPlan
    from ..features.cache import FeatureStore


@dataclass
class FeatureSet:
    """Features of one split for one layer, with integer labels.

    ``kind == "pooled"``: ``x`` is [N, D]. ``kind == "frames"``: ``x`` is all frames [sum T, D]
    and ``offsets`` [N + 1] delimit the items. ``mean``/``std`` [D] standardise the features as
    the head reads them (statistics of the training split); ``dims`` then restricts the feature
    dimensions (the 10%-capacity retraining).

    Layer modes (``weighted_sum``, ``mean``) read every layer at once: ``x`` is then [N, L, D]
    or [sum T, L, D], ``mean``/``std`` are [L, D] (each layer standardised on its own) and
    ``dims`` restricts the last axis.
    """

    kind: str
    x: np.ndarray
    y: np.ndarray
    ids: list[str]
    offsets: np.ndarray | None = None
    dims: np.ndarray | None = None
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    speakers: list[str] | None = None  # per item, when the corpus names every one (the bootstrap's clusters)

    def __len__(self) -> int:
        return len(self.y)

    @property
    def dim(self) -> int:
        return int(len(self.dims)) if self.dims is not None else int(self.x.shape[-1])

    @property
    def layers(self) -> int | None:
        """The number of stacked layers (layer modes), or None for one layer's features."""
        return int(self.x.shape[1]) if self.x.ndim == 3 else None

    def subset(self, index: Sequence[int] | np.ndarray) -> FeatureSet:
        index = np.asarray(index, dtype=np.int64)
        ids = [self.ids[i] for i in index]
        speakers = [self.speakers[i] for i in index] if self.speakers is not None else None
        if self.kind == "pooled":
            return FeatureSet("pooled", self.x[index], self.y[index], ids, dims=self.dims, mean=self.mean, std=self.std,
                              speakers=speakers)
        assert self.offsets is not None
        seqs = [self.x[self.offsets[i]: self.offsets[i + 1]] for i in index]
        x, off = concat_sequences(seqs, dim=self.x.shape[1:])
        return FeatureSet("frames", x, self.y[index], ids, offsets=off, dims=self.dims, mean=self.mean, std=self.std,
                          speakers=speakers)

    def with_dims(self, dims: np.ndarray | None) -> FeatureSet:
        return replace(self, dims=None if dims is None else np.asarray(dims))

    def with_stats(self, mean: np.ndarray | None, std: np.ndarray | None) -> FeatureSet:
        return replace(self, mean=mean, std=std)

    def lengths(self) -> np.ndarray:
        """Frames per item (1 for pooled items)."""
        if self.kind == "pooled" or self.offsets is None:
            return np.ones(len(self.y), dtype=np.int64)
        return np.diff(self.offsets)

    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-dimension mean and standard deviation over all items (pooled) or frames (frames);
        [D], or [L, D] for stacked layers."""
        x = self.x
        mean = np.zeros(x.shape[1:], np.float64)
        sq = np.zeros(x.shape[1:], np.float64)
        n = max(len(x), 1)
        for start in range(0, len(x), 8192):  # chunks: float16 frames can be large (8192 x D x 8 bytes at a time)
            chunk = np.asarray(x[start: start + 8192], dtype=np.float64)
            mean += chunk.sum(0)
            sq += (chunk**2).sum(0)
        mean /= n
        std = np.sqrt(np.maximum(sq / n - mean**2, 0.0))
        return mean.astype(np.float32), np.where(std < 1e-5, 1.0, std).astype(np.float32)

    def _prepare(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if self.mean is not None and self.std is not None:
            x = (x - self.mean) / self.std
        return x[..., self.dims] if self.dims is not None else x

    def batch(self, index: Sequence[int] | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(features float32 [B, D] or zero-padded [B, T, D], lengths [B]); stacked layers add an
        axis before D ([B, L, D], [B, T, L, D])."""
        if self.kind == "pooled":
            x = self._prepare(self.x[np.asarray(index)])
            return torch.from_numpy(np.ascontiguousarray(x)), torch.ones(len(index), dtype=torch.long)
        assert self.offsets is not None
        lens = [int(self.offsets[i + 1] - self.offsets[i]) for i in index]
        out = np.zeros((len(index), max(lens), *self.x.shape[1:-1], self.dim), np.float32)
        for j, i in enumerate(index):
            out[j, : lens[j]] = self._prepare(self.x[self.offsets[i]: self.offsets[i + 1]])
        return torch.from_numpy(out), torch.tensor(lens, dtype=torch.long)


def concat_sequences(seqs: Sequence[np.ndarray], *, dim: int | tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Sequences [T_i, *dim] concatenated and their offsets; ``dim``: the shape of one frame."""
    lens = [len(s) for s in seqs]
    off = np.concatenate([[0], np.cumsum(lens, dtype=np.int64)])
    shape = (dim,) if isinstance(dim, int) else tuple(dim)
    x = np.concatenate(seqs, axis=0) if seqs else np.zeros((0, *shape), np.float16)
    return x, off


def make_head(name: str, *, head_args: dict[str, Any], input_size: int, num_classes: int,
              input_frame_rate_hz: float | None = None) -> nn.Module:
    """Build a registered head; ``input_frame_rate_hz`` reaches heads whose signature asks for it."""
    import inspect

    cls = HEADS.load(name)
    kwargs = dict(head_args)
    if input_frame_rate_hz is not None and "input_frame_rate_hz" in inspect.signature(cls).parameters:
        kwargs.setdefault("input_frame_rate_hz", input_frame_rate_hz)
    return cls(input_size=input_size, num_classes=num_classes, **kwargs)


def batches(data: FeatureSet, *, batch_size: int, rng: np.random.Generator, bucket: int = 50) -> list[np.ndarray]:
    """Shuffled batches; sequence items are bucketed by length (pools of ``bucket`` batches sorted
    by length, then cut), so a batch pads to similar lengths and the LSTM runs fewer steps."""
    order = rng.permutation(len(data))
    if data.kind == "pooled":
        return [order[i: i + batch_size] for i in range(0, len(order), batch_size)]
    lengths = data.lengths()
    out: list[np.ndarray] = []
    pool = batch_size * bucket
    for start in range(0, len(order), pool):
        chunk = order[start: start + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        out += [chunk[i: i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [out[i] for i in rng.permutation(len(out))]


@dataclass
class TrainResult:
    state_dict: dict[str, torch.Tensor]
    best_epoch: int
    epochs_run: int
    best_dev_f1: float
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    stopped_early: bool = False


@contextmanager
def head_threads() -> Iterator[None]:
    """Run probe-head work with ``BENCH_HEAD_THREADS`` torch threads (default 1).

    Heads are small recurrent or linear networks: their per-step kernels are too small to gain
    from intra-op threads, and on a busy machine OpenMP threads waiting for a shared core made a
    BiLSTM epoch 10x slower with 2 threads than with 1 (measured here). Extraction, whose
    matrix products do gain, keeps every thread.
    """
    n = int(os.environ.get("BENCH_HEAD_THREADS", "1"))
    old = torch.get_num_threads()
    torch.set_num_threads(max(n, 1))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def set_seed(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


def train_head(head: nn.Module, *, train: FeatureSet, dev: FeatureSet | None, training: Training, seed: int,
               progress: bool = False, label: str = "train") -> TrainResult:
    """Train ``head`` in place; the best-dev weights are loaded back before returning."""
    if len(train) == 0:
        raise ValueError("empty training set")
    with head_threads():
        return _train_head(head, train=train, dev=dev, training=training, seed=seed, progress=progress, label=label)


def _train_head(head: nn.Module, *, train: FeatureSet, dev: FeatureSet | None, training: Training, seed: int,
                progress: bool, label: str) -> TrainResult:
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(head.parameters(), lr=training.lr, weight_decay=training.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    best_state = copy.deepcopy(head.state_dict())
    best_f1, best_epoch, since_best = -1.0, 0, 0
    history: list[dict[str, float]] = []
    t0 = time.perf_counter()
    stopped = False
    y_all = torch.from_numpy(train.y.astype(np.int64))
    prog = make_progress(enabled=progress)
    with prog:
        task = prog.add_task(label, total=training.max_epochs, info="")
        epoch = 0
        for epoch in range(1, training.max_epochs + 1):
            head.train()
            total, count = 0.0, 0
            for idx in batches(train, batch_size=training.batch_size, rng=rng):
                x, lengths = train.batch(idx)
                logits = head(x, lengths)
                loss = loss_fn(logits, y_all[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if training.grad_clip:
                    nn.utils.clip_grad_norm_(head.parameters(), training.grad_clip)
                opt.step()
                total += float(loss.detach()) * len(idx)
                count += len(idx)
            dev_f1 = accuracy_of(head, dev, batch_size=training.batch_size) if dev is not None and len(dev) else float("nan")
            history.append({"epoch": epoch, "train_loss": total / count, "dev_f1": dev_f1})
            prog.update(task, advance=1, info=f"loss {total / count:.3f} dev F1 {dev_f1:.1f}")
            maybe_crash("train")
            if dev is None or not len(dev):
                best_state, best_epoch = copy.deepcopy(head.state_dict()), epoch
                continue
            if dev_f1 > best_f1:
                best_f1, best_epoch, since_best = dev_f1, epoch, 0
                best_state = copy.deepcopy(head.state_dict())
            else:
                since_best += 1
                if training.patience is not None and since_best >= training.patience:
                    stopped = True
                    break
    head.load_state_dict(best_state)
    head.eval()
    return TrainResult(state_dict=best_state, best_epoch=best_epoch, epochs_run=epoch, best_dev_f1=best_f1,
                       history=history, seconds=time.perf_counter() - t0, stopped_early=stopped)


@torch.no_grad()
def predict(head: nn.Module, data: FeatureSet, *, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(predicted class [N], logits [N, C]) in the order of ``data``."""
    head.eval()
    outs = []
    with head_threads():
        for start in range(0, len(data), batch_size):
            idx = list(range(start, min(start + batch_size, len(data))))
            x, lengths = data.batch(idx)
            outs.append(head(x, lengths).float().numpy())
    logits = np.concatenate(outs, axis=0) if outs else np.zeros((0, 0), np.float32)
    return logits.argmax(axis=1) if len(logits) else np.zeros(0, np.int64), logits


def accuracy_of(head: nn.Module, data: FeatureSet, *, batch_size: int) -> float:
    """micro-F1 (= accuracy for single-label classification), in percent."""
    pred, _ = predict(head, data, batch_size=batch_size)
    return 100.0 * float(np.mean(pred == data.y))


def head_for(plan: CellPlan, store: FeatureStore | None, *, input_size: int, num_classes: int,
             num_layers: int | None = None) -> nn.Module:
    """A fresh head of the cell's downstream (the cell, the sweep and the 10% retraining all use
    this); frame-level heads get the cache's frame rate.

    ``num_layers``: the head reads that many stacked layers ([..., L, D]) through a
    :class:`~harness.probe.heads.LayerMix` of the cell's layer mode (``weighted_sum`` / ``mean``);
    None: one layer's features, as the sweep and single-layer cells read them."""
    ds = plan.downstream
    if ds.head is None:
        raise BenchError(f"downstream {plan.spec.downstream!r} declares no head")
    rate = getattr(store.meta, "frame_rate_hz", None) if plan.granularity == "frame" and store is not None else None
    head = make_head(ds.head, head_args=ds.head_args, input_size=input_size, num_classes=num_classes,
                     input_frame_rate_hz=rate)
    if num_layers is None:
        return head
    mode = next((m for m in LAYER_MODES if m == plan.layer.kind), None)
    if mode is None:
        raise BenchError(f"cell {plan.spec.label}: a head over {num_layers} stacked layers needs a layer mode "
                         f"({' or '.join(LAYER_MODES)}); the cell's layer rule is {plan.layer.kind!r}")
    return LayerMixHead(head, num_layers=num_layers, mode=mode)
