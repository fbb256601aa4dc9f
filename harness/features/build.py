"""A cell's feature cache entry: one upstream pass per (card, audio set), shared by every cell.

The entry stores pooled vectors of every layer and the frames of the layers that some
frame-level downstream of the profile may read (:func:`harness.probe.layers.frame_layers_for_profile`),
so the cells of one profile never extract the same audio twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..probe.layers import frame_layers_for_profile
from .cache import FeatureRecipe
from .extract import ensure_features

if TYPE_CHECKING:
    from ..config.plan import CellPlan
    from ..config.snapshot import Snapshot
    from ..data import Dataset
    from .cache import FeatureStore


def features_for(snap: Snapshot, plan: CellPlan, dataset: Dataset, *, device: str, progress: bool) -> FeatureStore:
    """The cell's feature cache entry (computed now if missing; one upstream pass per card and audio set)."""

    def frame_layers(num_layers: int) -> list[int]:
        return frame_layers_for_profile(snap, profile=plan.profile, num_layers=num_layers, granularity=plan.granularity)

    return ensure_features(workspace=snap, card=plan.card, dataset=dataset, language=plan.spec.language,
                           frame_layers=frame_layers, recipe=feature_recipe(plan), device=device,
                           batch_s=plan.profile.extract_batch_s, progress=progress)


def feature_recipe(plan: CellPlan) -> FeatureRecipe:
    """The cache recipe of a cell: the downstream's ``input_window_s`` (the upstream sees only the
    first N s: a cache entry of its own; frame-level upstreams only, as ``pool_window_s``: a
    word-level small model reads every aligned word) and the profile's ``extract_dtype``."""
    window = plan.downstream.config.input_window_s if plan.granularity == "frame" else None
    return FeatureRecipe(input_window_s=window, extract_dtype=plan.profile.extract_dtype)
