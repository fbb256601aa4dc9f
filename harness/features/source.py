"""``features.source``: cache or stream a cell's frames, decided per (upstream, corpus) pair.

``cache`` and ``stream`` are the profile's; ``auto`` is decided once per pair, by one of three
rules, and the result record's ``features.source_reason`` names the rule and its numbers:

- **the plan's decision** (``bench matrix --disk-budget``, or any matrix on Ray): the matrix plans
  the cells to run (:mod:`harness.matrix.plan`), decides each pair against the budget and hands
  every job the decisions (:func:`planned_sources`); the run then caches or streams exactly the
  pairs the plan says, and the plan's resource requests (a GPU for a streamed pair's heads)
  match what the jobs do;
- **a planner** (``features.planner: "module:function"``, an import string so every worker
  process finds the same one): a function ``(estimate: FrameEstimate, spec: FeatureSpec) ->
  SourceChoice``. It also decides in the plan, with or without a budget; a budget then only
  checks that its choices fit (``bench matrix`` refuses them otherwise);
- **the threshold** (:func:`threshold_planner`, no planner, no budget): stream when the pair's
  frames exceed ``features.stream_above_gb``. ``bench plan`` without a budget applies the same
  rule to the same estimate, so it prints the decision the run makes.

The estimate (:class:`FrameEstimate`) counts what the plan counts: the bytes of the pair's frame
entries as :func:`harness.features.entries.entries_for` describes them (the bounded scheme's sweep
subset and chosen-layer frames, or every candidate layer for the whole corpus), for every
frame-level downstream of the profile reading the pair, through the functions of
:mod:`harness.features.pairs` that the plan calls too. No weights are loaded.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ..errors import BenchError
from ..identity import short_hash
from ..registry import import_string
from .pairs import (
    arch_of,
    audio_of,
    corpus_key,
    measured_audio,
    pair_cells,
    pair_entries,
    scheme_of,
)

if TYPE_CHECKING:
    from ..config.plan import CellPlan
    from ..config.snapshot import Snapshot
    from ..data import Dataset
    from ..schema import FeatureSpec
    from .entries import Arch, CorpusAudio, Scheme

Source = Literal["cache", "stream"]
PairKey = tuple[str, str]  # (card name, corpus key): harness.features.pairs.corpus_key


@dataclass(frozen=True)
class FrameEstimate:
    """The frames one (upstream, corpus) pair would put on disk in the profile's scheme.

    ``frame_bytes``: the pair's frame entries (every entry but the pooled one) as
    :func:`harness.features.entries.entries_for` counts them for every frame-level downstream of
    the profile reading the pair: in the ``bounded`` scheme the sweep's candidate layers on its
    subset and dev plus the chosen layer(s) on every split, in the ``all_candidates`` scheme the
    profile's frame layers on the whole corpus. ``layers``: the most layers one of those entries
    stores; ``entries``: their kinds, in the order they are written."""

    upstream: str
    corpus: str
    audio_seconds: float
    frame_rate_hz: float
    hidden_size: int
    layers: int
    scheme: str
    frame_bytes: int
    entries: tuple[str, ...] = ()
    layer_modes: tuple[str, ...] = ()  # weighted_sum / mean among the pair's frame cells: they cannot stream


@dataclass(frozen=True)
class SourceChoice:
    source: Source
    reason: str


def threshold_planner(estimate: FrameEstimate, spec: FeatureSpec) -> SourceChoice:
    """Stream when the estimated frames exceed ``spec.stream_above_gb``, else cache."""
    gb = estimate.frame_bytes / 1e9
    what = (f"{' + '.join(estimate.entries) or 'no frame entries'}, {estimate.layers} layer(s) at most, "
            f"{estimate.audio_seconds / 3600:.2f} h")
    if gb > spec.stream_above_gb:
        return SourceChoice("stream", f"auto: {gb:.1f} GB of frames ({what}) exceed stream_above_gb "
                                      f"{spec.stream_above_gb:g}")
    return SourceChoice("cache", f"auto: {gb:.3f} GB of frames ({what}) within stream_above_gb "
                                 f"{spec.stream_above_gb:g}")


def choose_source(spec: FeatureSpec, estimate: FrameEstimate | None) -> SourceChoice:
    """The profile's fixed source, or the planner's choice for ``auto`` (the threshold without one)."""
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


# --------------------------------------------------------------------------- the plan's decisions
# The decisions of the matrix's plan, set around each job by the job itself (the matrix passes
# them in the job's arguments, pickled to every worker process or Ray task). A context variable
# rather than a parameter: the decision is read deep inside run_cell, cell_inputs, features_for
# and the chosen-frames stage, and only here.
_PLANNED: ContextVar[Mapping[PairKey, SourceChoice] | None] = ContextVar("planned_sources", default=None)


@contextmanager
def planned_sources(decisions: Mapping[PairKey, SourceChoice] | None) -> Iterator[None]:
    """Within the block, ``auto`` pairs listed in ``decisions`` (``(card, corpus key) ->
    SourceChoice``, :meth:`harness.matrix.plan.MatrixPlan.decisions`) take the plan's decision;
    ``None``: each pair decides by its planner or threshold."""
    token = _PLANNED.set(decisions)
    try:
        yield
    finally:
        _PLANNED.reset(token)


# --------------------------------------------------------------------------- the estimate
def pair_estimate(snap: Snapshot, plan: CellPlan, *, audio: CorpusAudio, arch: Arch,
                  scheme: Scheme) -> FrameEstimate:
    """The :class:`FrameEstimate` of ``plan``'s pair over ``audio`` (what ``bench plan`` asks too)."""
    cells = pair_cells(snap, plan)
    entries = pair_entries(snap, cells, audio=audio, arch=arch, scheme=scheme, streamed=False)
    frames = [e for e in entries.entries if e.kind != "pooled"]
    return FrameEstimate(upstream=plan.card.name, corpus=corpus_key(plan), audio_seconds=float(audio.seconds),
                         frame_rate_hz=float(arch.frame_rate_hz), hidden_size=int(arch.hidden_size),
                         layers=max((len(e.layers) for e in frames), default=0), scheme=scheme,
                         frame_bytes=entries.frame_bytes, entries=tuple(e.kind for e in frames),
                         layer_modes=frame_layer_modes(cells))


def frame_layer_modes(cells: Sequence[CellPlan]) -> tuple[str, ...]:
    """The layer modes (weighted_sum, mean; from the profile or the downstream) of the frame-level
    cells among ``cells``: such a head reads every layer stacked and the stream computes one, so
    their pair's frames cannot stream."""
    return tuple(sorted({c.layer.kind for c in cells if uses_frames(c) and c.layer.kind in ("weighted_sum", "mean")}))


def auto_source(snap: Snapshot, plan: CellPlan, *, audio: CorpusAudio, arch: Arch, scheme: Scheme) -> SourceChoice:
    """The planner's (or the threshold's) choice for ``plan``'s pair under ``features.source: auto``."""
    return _auto_choice(plan, pair_estimate(snap, plan, audio=audio, arch=arch, scheme=scheme))


def _auto_choice(plan: CellPlan, estimate: FrameEstimate) -> SourceChoice:
    """``auto``'s choice on ``estimate``; a layer mode among the pair's frame cells keeps the frames
    cached whatever the planner says (:func:`frame_layer_modes`)."""
    choice = choose_source(plan.profile.features, estimate)
    if choice.source == "stream" and estimate.layer_modes:
        return SourceChoice("cache", f"{choice.reason}; but its {'/'.join(estimate.layer_modes)} cells read every "
                                     "layer's frames and the stream computes one, so they are cached")
    return choice


_ESTIMATES: dict[tuple[str, str, str, str, str, str, str], FrameEstimate] = {}


def estimate_frames(snap: Snapshot, plan: CellPlan, dataset: Dataset) -> FrameEstimate:
    """The :class:`FrameEstimate` of ``plan``'s pair from the corpus on this machine (``dataset``
    only when the whole corpus cannot be measured), without loading weights; memoised per process
    (every cell of a corpus asks)."""
    memo = (str(snap.root), short_hash(plan.profile.model_dump(mode="json")), plan.spec.profile, plan.spec.upstream,
            plan.spec.language, plan.card.name, corpus_key(plan))
    if memo not in _ESTIMATES:
        audio = measured_audio(snap, plan) or audio_of(corpus_key(plan), dataset)
        _ESTIMATES[memo] = pair_estimate(snap, plan, audio=audio, arch=arch_of(snap, plan, audio),
                                         scheme=scheme_of(plan))
    return _ESTIMATES[memo]


def corpus_source(snap: Snapshot, plan: CellPlan, dataset: Dataset) -> SourceChoice:
    """Cache or stream for the frames of (``plan``'s upstream, ``dataset``), whatever the cell's
    own head reads: the main entry is shared by every downstream of the corpus. Under ``auto``:
    the plan's decision when the matrix handed one (:func:`planned_sources`), else the planner's
    or the threshold's on :func:`estimate_frames`."""
    spec = plan.profile.features
    if spec.source != "auto":
        return choose_source(spec, None)
    planned = _PLANNED.get()
    if planned is not None and (plan.card.name, corpus_key(plan)) in planned:
        return planned[(plan.card.name, corpus_key(plan))]
    return _auto_choice(plan, estimate_frames(snap, plan, dataset))


def source_for(snap: Snapshot, plan: CellPlan, dataset: Dataset) -> SourceChoice:
    """Cache or stream for ``plan``'s frames (pooled heads: cache, nothing to decide)."""
    if not uses_frames(plan):
        return SourceChoice("cache", "pooled vectors")
    return corpus_source(snap, plan, dataset)
