"""A cell's feature cache entry and the source of its frames.

The main entry (one upstream pass per (card, audio set), shared by every cell) stores pooled
vectors of every layer. In the profile's ``features.sweep_frames: all`` scheme with cached frames
it also stores the frames of the layers that some frame-level downstream of the profile may read
(:func:`harness.probe.layers.frame_layers_for_profile`); in the ``bounded`` scheme, or when the
frames are streamed, it stores none and :func:`frame_source_for` says where they come from
(:mod:`harness.features.frames`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

from ..errors import BenchError
from ..probe.layers import frame_layers_for_profile
from .cache import FeatureRecipe
from .extract import derived_recipe, ensure_derived, ensure_features
from .frames import STREAM_LAYER_MODES, BoundedFrames, CachedFrames, StreamFrames
from .source import SourceChoice, corpus_source, source_for

if TYPE_CHECKING:
    from ..config.plan import CellPlan
    from ..config.snapshot import Snapshot
    from ..data import Dataset
    from .cache import FeatureStore

FrameSource: TypeAlias = CachedFrames | BoundedFrames | StreamFrames


def main_entry_frames(snap: Snapshot, plan: CellPlan, dataset: Dataset) -> bool:
    """Whether the main entry stores frames (the ``all`` scheme with cached frames)."""
    if plan.profile.features.sweep_frames == "bounded":
        return False
    return corpus_source(snap, plan, dataset).source == "cache"


def features_for(snap: Snapshot, plan: CellPlan, dataset: Dataset, *, device: str, progress: bool) -> FeatureStore:
    """The cell's main feature cache entry (computed now if missing; one upstream pass per card and audio set)."""
    with_frames = main_entry_frames(snap, plan, dataset)

    def frame_layers(num_layers: int) -> list[int]:
        if with_frames:
            return frame_layers_for_profile(snap, profile=plan.profile, num_layers=num_layers,
                                            granularity=plan.granularity)
        # the frames the pooled path reads stay in the main entry (a word-level upstream's word rows,
        # pooled layer-normed frames); frame-level heads read the bounded or streamed source
        return frame_layers_for_profile(snap, profile=plan.profile, num_layers=num_layers,
                                        granularity=plan.granularity, pooled_only=True)

    return ensure_features(workspace=snap, card=plan.card, dataset=dataset, language=plan.spec.language,
                           frame_layers=frame_layers, recipe=feature_recipe(plan), device=device,
                           batch_s=plan.profile.extract_batch_s, progress=progress)


def feature_recipe(plan: CellPlan) -> FeatureRecipe:
    """The cache recipe of a cell: the downstream's ``input_window_s`` (the upstream sees only the
    first N s: a cache entry of its own; frame-level upstreams only, as ``pool_window_s``: a
    word-level small model reads every aligned word) and the profile's ``extract_dtype``."""
    window = plan.downstream.config.input_window_s if plan.granularity == "frame" else None
    return FeatureRecipe(input_window_s=window, extract_dtype=plan.profile.extract_dtype)


def frame_source_for(snap: Snapshot, plan: CellPlan, dataset: Dataset, store: FeatureStore, *, device: str,
                     progress: bool = False) -> tuple[FrameSource, SourceChoice]:
    """Where ``plan``'s head reads frames from, and why (see :mod:`harness.features.frames`).
    Every source runs the upstream as the main entry ``store`` did: its recipe (chunk length, input
    window, forward precision) is the one the derived entries and the stream use."""
    choice = source_for(snap, plan, dataset)
    if choice.source == "stream" and plan.layer.kind in ("weighted_sum", "mean"):
        raise BenchError(f"cell {plan.spec.label} ({choice.reason}): {STREAM_LAYER_MODES}")
    recipe = derived_recipe(store)
    if choice.source == "stream":
        from .upstream import build_upstream

        def make_module():  # noqa: ANN202 - an nn.Module
            return build_upstream(plan.card, language=plan.spec.language, workspace=snap, device=device)

        return StreamFrames(store, utterances=dataset.utterances, make_module=make_module, device=device,
                            batch_s=plan.profile.extract_batch_s, bf16=recipe.autocast_bf16(plan.card.card.bf16),
                            max_chunk_s=recipe.max_chunk_s, input_window_s=recipe.input_window_s), choice
    if plan.profile.features.sweep_frames == "bounded":
        def ensure(name: str, layers: list[int], ids: set[str], moment_ids: set[str] | None) -> FeatureStore:
            return ensure_derived(workspace=snap, card=plan.card, dataset=dataset, language=plan.spec.language,
                                  base=store, name=name, layers=layers, store_ids=ids, moment_ids=moment_ids,
                                  device=device, batch_s=plan.profile.extract_batch_s, progress=progress)

        return BoundedFrames(store, ensure=ensure), choice
    return CachedFrames(store), choice
