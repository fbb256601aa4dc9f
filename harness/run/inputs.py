"""What a cell reads: its dataset, labelled splits, feature cache entry and feature sets.

The cell and every step that needs another cell (the English sweep of a model without a variant
for the language, the ``layer_from`` downstream of emotion discrimination) get their inputs
through :func:`cell_inputs`, so all of them see the same items the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..corpora.load import for_task, load_task_dataset, require_dev, task_splits
from ..features.build import features_for, frame_source_for
from ..probe.sets import SetsFor, feature_sets_for

if TYPE_CHECKING:
    from ..config.plan import CellPlan
    from ..config.snapshot import Snapshot
    from ..data import Dataset, LabelledSet
    from ..features.build import FrameSource
    from ..features.cache import FeatureStore
    from ..features.source import SourceChoice


@dataclass(frozen=True)
class CellInputs:
    dataset: Dataset
    splits: dict[str, LabelledSet]
    store: FeatureStore
    sets_for: SetsFor  # layer -> (feature sets per split, dropped items)
    frames: FrameSource | None = None  # where frame sequences come from (harness.features.frames)
    source: SourceChoice | None = None  # cache or stream, and why

    @property
    def classes(self) -> tuple[str, ...]:
        return self.splits["train"].classes


def dataset_for(snap: Snapshot, plan: CellPlan, *, language: str | None = None) -> Dataset:
    """The dataset of ``plan``'s task source (for ``language``, default the cell's), as the task
    reads it (:func:`~harness.corpora.load.for_task`: a corpus may give a task one subset)."""
    dataset = load_task_dataset(snap, plan.profile, plan.source, language or plan.spec.language)
    return for_task(dataset, plan.task_name)


def cell_inputs(snap: Snapshot, plan: CellPlan, *, device: str, progress: bool,
                dataset: Dataset | None = None) -> CellInputs:
    """Dataset (unless given), splits, the feature cache entry (extracted when missing) and the
    feature sets of ``plan``'s cell."""
    dataset = dataset if dataset is not None else dataset_for(snap, plan)
    splits = task_splits(dataset, task=plan.task, source=plan.source)
    if plan.task.kind == "classification":
        require_dev(splits, dataset=dataset, source=plan.source, task=plan.task_name)
    store = features_for(snap, plan, dataset, device=device, progress=progress)
    frames, choice = frame_source_for(snap, plan, dataset, store, device=device, progress=progress)
    return CellInputs(dataset, splits, store, feature_sets_for(store, splits, plan, frames=frames), frames, choice)
