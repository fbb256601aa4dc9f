"""Which layers a probe may read: the sweep's candidates and the frame layers a profile needs.

Layer indices are those of the cache: 0 = the CNN / embedding output, i = transformer layer i
(the paper's 1-based Table II index). The sweep tries every other transformer layer of base
models and every third of large ones (``stride: paper``: 1, 3, 5, ... for 12 layers; 1, 4, 7,
... for 24), or every layer (``stride: all``), or every k-th (an integer). How a cell picks its
layer is its :class:`~harness.config.plan.LayerRule`; running the sweep is
:mod:`harness.run.steps.sweep`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import BenchError
from ..schema import downstream_layer

if TYPE_CHECKING:
    from ..config.snapshot import Snapshot
    from ..schema import Profile


def candidate_layers(num_layers: int, *, stride: str | int = "paper") -> list[int]:
    """Layers the sweep tries, for an upstream exposing ``num_layers`` hidden states."""
    if num_layers <= 1:
        return [0]
    if stride == "all":
        return list(range(num_layers))
    transformer_layers = num_layers - 1
    step = int(stride) if isinstance(stride, int) else (2 if transformer_layers <= 12 else 3)
    return list(range(1, num_layers, max(step, 1)))


def frame_layers_for_profile(snap: Snapshot, *, profile: Profile, num_layers: int,
                             granularity: str = "frame", pooled_only: bool = False) -> list[int]:
    """Every layer whose frames some downstream of the profile may read (sweep candidates, fixed
    layers, every layer for the layer modes), so that one cache entry serves every cell of the
    profile. Pooled downstreams read the per-layer pooled vectors, except on a word-level
    upstream (``granularity == "word"``), whose pooled items are the stored word rows, and under
    ``normalize: utterance_layer_norm``, which pools layer-normed frames. ``pooled_only``: only
    the layers those pooled downstreams read (frame-level heads read a bounded or streamed source:
    :mod:`harness.features.frames`)."""
    needed: set[int] = set()
    for name in profile.downstreams:
        try:
            ds = snap.downstream(name)
        except BenchError:
            continue
        if ds.features == "frames" and pooled_only:
            continue
        if ds.features != "frames" and granularity != "word" and not _pooled_from_frames(snap, ds, profile=profile):
            continue
        needed.update(layers_of(downstream_layer(ds, profile), stride=ds.sweep.stride, num_layers=num_layers))
    return sorted(needed)


def _pooled_from_frames(snap: Snapshot, ds: Any, *, profile: Profile) -> bool:
    """A pooled classification probe under ``normalize: utterance_layer_norm`` pools normalised
    frames (harness.probe.sets), so its candidate layers' frames must be in the cache too."""
    if profile.normalize != "utterance_layer_norm" or not ds.standardize:
        return False
    try:
        return snap.task(ds.task).kind == "classification"
    except BenchError:
        return False


def layers_of(layer: Any, *, stride: str | int, num_layers: int) -> list[int]:
    """The layers a downstream's ``layer`` setting may read."""
    if layer == "sweep":
        return candidate_layers(num_layers, stride=stride)
    if layer == "last":
        return [num_layers - 1]
    if layer in ("weighted_sum", "mean"):  # every layer, mixed by the head
        return list(range(num_layers))
    return [int(layer)]
