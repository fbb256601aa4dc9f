"""``features: auto``: cache or stream a cell's frames, decided per (upstream, corpus) by a planner.

The interface (for ``bench plan``, which estimates every stage, to provide a better planner):

- :class:`FrameEstimate`: what the frames of one (upstream, audio set) would cost on disk,
  computed before any extraction from the corpus's durations and the card's architecture
  (``describe``, no weights loaded);
- a planner is a function ``(estimate: FrameEstimate, spec: FeatureSpec) -> SourceChoice``,
  named in the profile as ``features.planner: "module:function"`` (an import string, so every
  worker process of a matrix finds the same one);
- without a planner, :func:`threshold_planner` streams when the estimate exceeds
  ``features.stream_above_gb``.

``source: cache`` and ``source: stream`` never consult a planner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ..errors import BenchError
from ..registry import import_string

if TYPE_CHECKING:
    from ..config.plan import CellPlan
    from ..config.snapshot import Snapshot
    from ..data import Dataset
    from ..schema import FeatureSpec

Source = Literal["cache", "stream"]


@dataclass(frozen=True)
class FrameEstimate:
    """The frames one (upstream, audio set) would put on disk in the profile's scheme.

    ``layers``: frame layers the scheme stores for the whole corpus (the sweep candidates in the
    ``all`` scheme, 1 in the ``bounded`` scheme, or every layer under a profile's layer mode; the
    bounded sweep's subset is not counted)."""

    upstream: str
    corpus: str
    audio_seconds: float
    frame_rate_hz: float
    hidden_size: int
    layers: int
    scheme: str

    @property
    def frame_bytes(self) -> int:
        """float16 frames: seconds x frames per second x hidden size x 2 bytes x layers."""
        return int(self.audio_seconds * self.frame_rate_hz * self.hidden_size * 2 * self.layers)


@dataclass(frozen=True)
class SourceChoice:
    source: Source
    reason: str


def threshold_planner(estimate: FrameEstimate, spec: FeatureSpec) -> SourceChoice:
    """Stream when the estimated frames exceed ``spec.stream_above_gb``, else cache."""
    gb = estimate.frame_bytes / 1e9
    if gb > spec.stream_above_gb:
        return SourceChoice("stream", f"auto: {gb:.1f} GB of frames ({estimate.layers} layer(s), "
                                      f"{estimate.audio_seconds / 3600:.2f} h) exceed stream_above_gb "
                                      f"{spec.stream_above_gb:g}")
    return SourceChoice("cache", f"auto: {gb:.3f} GB of frames ({estimate.layers} layer(s), "
                                 f"{estimate.audio_seconds / 3600:.2f} h) within stream_above_gb {spec.stream_above_gb:g}")


def choose_source(spec: FeatureSpec, estimate: FrameEstimate | None) -> SourceChoice:
    """The profile's fixed source, or the planner's choice for ``auto``."""
    if spec.source != "auto":
        return SourceChoice(spec.source, f"profile features.source: {spec.source}")
    if estimate is None:
        return SourceChoice("cache", "auto: the head reads pooled vectors (no frames to place)")
    planner = import_string(spec.planner) if spec.planner else threshold_planner
    choice = planner(estimate, spec)
    if not isinstance(choice, SourceChoice) or choice.source not in ("cache", "stream"):
        raise BenchError(f"features.planner {spec.planner!r} returned {choice!r}; expected a SourceChoice "
                         "with source 'cache' or 'stream' (harness.features.source.SourceChoice)")
    return choice


def uses_frames(plan: CellPlan) -> bool:
    """Whether the cell's head reads frame sequences (only those have a source to choose)."""
    return plan.task.kind == "classification" and plan.downstream.config.features == "frames"


_ESTIMATES: dict[tuple[str, str | None, str, int, str], FrameEstimate] = {}


def estimate_frames(snap: Snapshot, plan: CellPlan, dataset: Dataset) -> FrameEstimate:
    """The :class:`FrameEstimate` of ``plan``'s upstream over ``dataset``, without loading weights
    or running anything (durations from the corpus, header reads where a duration is missing);
    memoised per process (every cell of a corpus asks)."""
    memo = (plan.card.name, plan.spec.language, dataset.name, len(dataset.utterances), plan.spec.profile)
    if memo not in _ESTIMATES:
        _ESTIMATES[memo] = _estimate(snap, plan, dataset)
    return _ESTIMATES[memo]


def _estimate(snap: Snapshot, plan: CellPlan, dataset: Dataset) -> FrameEstimate:
    from ..probe.layers import frame_layers_for_profile
    from .extract import _header_duration
    from .info import card_arch

    arch = card_arch(snap, plan.card, language=plan.spec.language)
    seconds = sum(u.duration_s if u.duration_s else _header_duration(u) for u in dataset.utterances)
    rate = arch["sample_rate"] / max(int(arch["downsample_rate"] or 1), 1) if arch["granularity"] == "frame" else 1.0
    n_layers = int(arch["num_layers"])
    scheme = plan.profile.features.sweep_frames
    if scheme == "bounded":  # the chosen layer, or every layer for a layer mode (weighted_sum, mean)
        layers = n_layers if plan.profile.layer is not None else 1
    else:
        layers = len(frame_layers_for_profile(snap, profile=plan.profile, num_layers=n_layers,
                                              granularity=plan.granularity))
    return FrameEstimate(upstream=plan.card.name, corpus=dataset.name, audio_seconds=float(seconds),
                         frame_rate_hz=float(rate), hidden_size=int(arch["hidden_size"]), layers=max(layers, 1),
                         scheme=scheme)


def corpus_source(snap: Snapshot, plan: CellPlan, dataset: Dataset) -> SourceChoice:
    """Cache or stream for the frames of (``plan``'s upstream, ``dataset``), whatever the cell's
    own head reads: the main entry is shared by every downstream of the corpus."""
    spec = plan.profile.features
    return choose_source(spec, estimate_frames(snap, plan, dataset) if spec.source == "auto" else None)


def source_for(snap: Snapshot, plan: CellPlan, dataset: Dataset) -> SourceChoice:
    """Cache or stream for ``plan``'s frames (pooled heads: cache, nothing to decide)."""
    if not uses_frames(plan):
        return SourceChoice("cache", "pooled vectors")
    return corpus_source(snap, plan, dataset)
