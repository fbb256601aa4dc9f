"""What the steps of a cell receive and return.

:class:`CellContext`: what the analysis steps after training receive, everything the cell
computed, nothing they must recompute (each returns its own section of the record).
:class:`KindSections`: what a task-kind runner (emotion or word discrimination) returns, the
sections of the record it fills."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .record import (
    Analyses,
    DataSummary,
    FeaturesInfo,
    LayerChoice,
    Metrics,
    Predictions,
    Section,
    Timings,
    WordDiscrimination,
)

if TYPE_CHECKING:
    from torch import nn

    from ..config.plan import CellPlan
    from ..config.snapshot import Snapshot
    from ..data import Dataset
    from ..features.cache import FeatureStore
    from ..probe.train import FeatureSet


@dataclass
class CellContext:
    """``snap``: the configuration (paths, and resolution of other cells); ``splits``: the feature
    sets the head was trained and tested on; ``metrics``: the head's test metrics."""

    snap: Snapshot
    plan: CellPlan
    dataset: Dataset
    store: FeatureStore | None
    layer: int | None  # None: every layer, mixed by the head (layer modes weighted_sum / mean)
    splits: dict[str, FeatureSet]
    classes: tuple[str, ...]
    head: nn.Module | None
    metrics: dict[str, Any]
    device: str
    progress: bool


class KindSections(Section):
    """The record sections a task-kind runner fills (see :class:`harness.run.record.CellResult`)."""

    metrics: Metrics | None = None
    triplets: int | None = None
    layer: LayerChoice | None = None
    classes: list[str] | None = None
    predictions: Predictions | None = None
    word_discrimination: WordDiscrimination | None = None
    data: DataSummary | None = None
    features: FeaturesInfo | None = None
    timings: Timings | None = None
    analyses: Analyses | None = None
    summary: str | None = None
