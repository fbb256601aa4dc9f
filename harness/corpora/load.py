"""A task source as a dataset: the synthetic corpus (generated on first use) or a corpus declared
in benchmark.yaml, loaded through its registered adapter, labelled per split.

Datasets are kept per process (same corpus, root, language and options: the same value), so the
cells of one process read a corpus's metadata once.
"""

from __future__ import annotations

import json
from dataclasses import replace
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


def require_dev(splits: dict[str, LabelledSet], *, dataset: Dataset, source: TaskSource, task: str) -> None:
    """A :class:`~harness.errors.DataError` when the dev split is empty: the layer sweep and the
    head's model selection read dev micro-F1, and without a dev split every candidate layer would
    score -1 and the lowest would win without a word (the fidelity audit's G2). The message names
    the corpus and the option that carves a speaker-disjoint dev from train."""
    if splits["dev"].utterances:
        return
    corpus = source.corpus
    raise DataError(
        f"corpus {corpus!r} ({dataset.name}, language {dataset.language}) has no dev split for task {task!r}: "
        "the layer sweep and the choice of the head's best epoch need one (without it every layer scores -1 "
        "and layer 1 would win silently). Expected: dev rows in the corpus, or a dev carved from train. "
        f"Fix: set benchmark.yaml corpora.{corpus}.options.dev_speakers_from_train: N (manifest corpora: N "
        "whole training speakers become dev, in SHA-256 order of their names; the rule is recorded in every "
        "result), or add dev rows to the corpus (docs/corpora.md).")


def for_task(dataset: Dataset, task: str) -> Dataset:
    """``dataset`` as ``task`` reads it: only the rows of the subset its corpus names for the task
    (manifest option ``task_subsets``, e.g. Lahjoita Puhetta's 360 h for gender and the small
    models, 490 h for topic), the rule recorded in ``split_rules``; the whole dataset otherwise.
    ``task``: a task name, or ``small_models`` for the small models' training corpus."""
    subset = dict(dataset.task_subsets).get(task)
    if subset is None:
        return dataset
    kept = [u for u in dataset.utterances if subset in u.subsets]
    if not kept:
        raise DataError(f"corpus {dataset.name} ({dataset.language}): option task_subsets gives task {task!r} "
                        f"the subset {subset!r}, which no row's `subsets` field names; add it to the rows of that "
                        "subset (docs/corpora.md, manifest format) or remove the task from task_subsets")
    hours = sum(u.duration_s or 0.0 for u in kept) / 3600
    rule = (f"subset {subset!r} for task {task!r}: {len(kept)} of {len(dataset.utterances)} rows, "
            f"{hours:.1f} h (option task_subsets)")
    return replace(dataset, name=f"{dataset.name}.{subset}", utterances=tuple(kept),
                   split_rules=(*dataset.split_rules, rule))
