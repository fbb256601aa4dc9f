"""Result records as the tables see them: each :class:`~harness.run.record.CellResult` becomes a
:class:`Run` (the row, task and language it is grouped by), each row a :class:`RowMeta`.

Results are read through the record (attribute access); version-1 files and dicts are converted
by :mod:`harness.run.record`. A section that is absent reads as "not there", never as an error.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from ..config import load_paper_layout, paper_layout_path
from ..run.record import CellResult, Predictions, ResultFileError, parse_result, read_result
from ..schema import PaperLayout
from ..stats import Sample

ItemPairs = tuple[np.ndarray, np.ndarray]


@lru_cache(maxsize=1)
def repository_layout() -> PaperLayout:
    """The repository's ``reference/paper_layout.yaml`` (read and validated once per process)."""
    return load_paper_layout(paper_layout_path(None))


def read_records(results_dir: Path, profile: str) -> list[CellResult]:
    """Every cell result of ``profile`` under ``results_dir`` (``seed*.json``; side files such as the
    capacity dimensions, and unreadable files, left out), in path order."""
    base = Path(results_dir) / profile
    if not base.is_dir():
        return []
    return [r for r in (read_result(p) for p in sorted(base.rglob("seed*.json"))) if r is not None]


def as_records(results: Iterable[CellResult | Mapping[str, Any]]) -> list[CellResult]:
    """Records from records or parsed result files (version 1 or 2, as :func:`parse_result` reads them)."""
    out = []
    for i, r in enumerate(results):
        record = r if isinstance(r, CellResult) else parse_result(r, where=f"result {i}")
        if record is None:
            raise ResultFileError(f"result {i} is not a cell result (no \"schema\": 1 or \"schema_version\": 2)")
        out.append(record)
    return out


def is_set(section: BaseModel | None) -> bool:
    """True when a section is there and holds at least one field (an empty one reads as absent)."""
    return section is not None and bool(section.model_fields_set)


def number(x: Any) -> float | None:
    """``x`` as a finite float, else None (booleans are not numbers here)."""
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(float(x)):
        return None
    return float(x)


def item_pairs(pred: Predictions | None) -> ItemPairs | None:
    """(y_true, y_pred) of a predictions section: labels, or per-item correctness flags scored
    against all-ones."""
    if pred is None:
        return None
    if pred.y_true is not None and pred.y_pred is not None:
        yt, yp = np.asarray(pred.y_true), np.asarray(pred.y_pred)
        return (yt, yp) if len(yt) and len(yt) == len(yp) else None
    if pred.correct:
        flags = np.asarray(pred.correct).astype(np.int64)
        return np.ones_like(flags), flags
    return None


def item_sample(pred: Predictions | None) -> Sample | None:
    """The predictions section as a bootstrap :class:`~harness.stats.Sample`: (y_true, y_pred) as
    :func:`item_pairs` reads them, the items' speakers as clusters (when recorded, one per item) and
    the utterance of each item as its unit (a word item ``<utterance>#<k>`` belongs to its
    utterance; without ids, items are units by position)."""
    pairs = item_pairs(pred)
    if pairs is None or pred is None:
        return None
    n = len(pairs[0])
    ids = pred.ids if pred.ids is not None and len(pred.ids) == n else None
    speakers = pred.speakers if pred.speakers is not None and len(pred.speakers) == n else None
    units = tuple(i.split("#", 1)[0] for i in ids) if ids is not None else None
    return Sample(pairs[0], pairs[1], tuple(speakers) if speakers is not None else None, units)


@dataclass(frozen=True)
class Run:
    """One result, with the identity the tables group by."""

    row: str
    task: str
    kind: str
    task_group: str
    language: str
    seed: int
    status: str
    record: CellResult


@dataclass(frozen=True)
class RowMeta:
    key: str
    display: str
    group: str
    paper_row: str | None
    order: tuple[int, str]


def make_run(record: CellResult, layout: PaperLayout) -> Run:
    """The grouping identity of ``record``: its row (the listed card, with the downstream in
    brackets when it is not the task's own), task, kind, task group, language and seed."""
    cell, task_sec, up = record.cell, record.task, record.upstream
    downstream = cell.downstream
    task = (task_sec.name if task_sec else None) or cell.task or downstream or "?"
    kind = (task_sec.kind if task_sec else None) or (task if task.endswith("discrimination") else "classification")
    listed = (up.listed if up else None) or cell.upstream or "?"
    row = listed if not downstream or downstream == task else f"{listed} [{downstream}]"
    group = (task_sec.group if task_sec else None) or (layout.tasks[task].group if task in layout.tasks else task)
    return Run(row=row, task=task, kind=kind, task_group=group, language=cell.language or "?", seed=cell.seed,
               status=record.status, record=record)


def row_meta(row: str, runs: Sequence[Run], layout: PaperLayout) -> RowMeta:
    """How a row is shown and sorted: display name, row group (controls for random-init cards,
    else by the card's group), the paper row it compares with, and its place in the paper's order."""
    ups = [r.record.upstream for r in runs if r.record.upstream is not None]
    listed = row.split(" [", 1)[0]
    up = ups[0] if ups and is_set(ups[0]) else None
    paper_models = layout.paper_models
    random_init = bool(up.random_init) if up else listed.endswith("@random")
    paper_row = up.paper_row if up else (listed if listed in paper_models else None)
    if random_init:
        group = layout.controls_group
    elif up:
        group = next((g.key for g in layout.row_groups if str(up.group) in g.card_groups), layout.other_group)
    else:
        group = next((g.key for g in layout.row_groups if listed in g.paper_models), layout.other_group)
    display = (up.display if up else None) or listed
    if row != listed:
        display += row[len(listed):]
    order = paper_models.index(paper_row) if paper_row in paper_models else len(paper_models)
    return RowMeta(key=row, display=display, group=group, paper_row=None if random_init else paper_row,
                   order=(order, row))


def one_line(text: Any) -> str:
    return " ".join(str(text).split())


def failure_reason(record: CellResult) -> str:
    """The note text of a failed or unavailable result: the reason, or the error type and the
    first line of its message."""
    if record.status == "unavailable":
        return f"unavailable: {one_line(record.reason or 'no reason recorded')}"
    err = record.error
    message = str((err.message if err else None) or "").strip().splitlines()
    first = one_line(message[0]) if message else "no message"
    return f"{record.status}: {(err.type if err else None) or 'error'}: {first}"
