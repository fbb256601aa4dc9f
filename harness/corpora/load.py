"""A task source as a dataset: the synthetic corpus (generated on first use) or a corpus declared
in benchmark.yaml, loaded through its registered adapter, labelled per split.

Datasets are kept per process (same corpus, root, language and options: the same value), so the
cells of one process read a corpus's metadata once.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from ..config.plan import Unavailable
from ..data import Dataset, LabelledSet, labelled
from ..errors import DataError
from ..registry import CORPORA
from ..schema import Profile, Task, TaskSource

if TYPE_CHECKING:
    from ..config.snapshot import Snapshot
    from ..config.workspace import Workspace


@lru_cache(maxsize=32)
def _load_dataset_cached(corpus: str, adapter: str, root: str, language: str, options_json: str) -> Dataset:
    loader = CORPORA.load(adapter)
    return loader(root=Path(root), language=language, options=json.loads(options_json))


def load_task_dataset(ws: Snapshot | Workspace, profile: Profile, source: TaskSource, language: str) -> Dataset:
    """The corpus behind a task source (the synthetic corpus is generated on first use).

    Raises :class:`~harness.config.plan.Unavailable` when the corpus is not declared, has no
    root folder, or its adapter cannot read it (the reason says what to do)."""
    if source.corpus == "synth":
        root = ws.path("cache") / "corpora" / "synth"
        return _load_dataset_cached("synth", "synth", str(root), language,
                                    json.dumps(profile.synth.model_dump(mode="json"), sort_keys=True))
    corpora = ws.benchmark.corpora
    if source.corpus not in corpora:
        raise Unavailable(f"corpus {source.corpus!r} is not declared in benchmark.yaml `corpora`")
    spec = corpora[source.corpus]
    if not spec.root:
        raise Unavailable(f"corpus {source.corpus!r} has no root folder: set it in benchmark.yaml "
                          f"(corpora.{source.corpus}.root) or its environment variable. {spec.url}".strip())
    root = Path(spec.root).expanduser()
    root = root if root.is_absolute() else ws.root / root
    try:
        return _load_dataset_cached(source.corpus, spec.adapter, str(root), language,
                                    json.dumps(spec.options, sort_keys=True))
    except DataError as e:
        raise Unavailable(str(e)) from e


def task_splits(dataset: Dataset, *, task: Task, source: TaskSource) -> dict[str, LabelledSet]:
    """train / dev / test of ``dataset`` labelled with the task's label (the source's classes, else
    every value found, sorted)."""
    label = source.label or task.label
    classes = source.classes or sorted({u.labels[label] for u in dataset.utterances if u.labels.get(label)})
    return {s: labelled(dataset.split(s), label=label, classes=classes) for s in ("train", "dev", "test")}
