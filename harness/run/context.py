"""What the analysis steps after training receive: everything the cell computed, nothing they
must recompute. Each step returns its own section of the result (:mod:`harness.run.steps`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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
    layer: int
    splits: dict[str, FeatureSet]
    classes: tuple[str, ...]
    head: nn.Module | None
    metrics: dict[str, Any]
    device: str
    progress: bool
