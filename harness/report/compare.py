"""Best single layer (the paper) beside a layer mode (SUPERB's weighted sum, or the mean): one table.

A profile with ``layer: weighted_sum`` (or ``mean``) and a ``baseline_profile`` (``superb`` and
``embedded`` in benchmark.yaml) runs the same cells as its baseline except for the layer rule.
:func:`layer_mode_table` puts, per model and (task, language), the baseline's micro-F1 with the
layer its sweep chose, this profile's micro-F1 and the difference (mode minus single layer, in
F1 points) side by side. Pure: it reads nothing but its arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..run.record import CellResult
from ..schema import PaperLayout
from .aggregate import Notes, RunIndex, metric_measure, score_cell
from .model import Cell, Column, Row, RowGroupLabel, Table
from .records import Run, number

TABLE_NAME = "layer_modes"
MODE_LABEL = {"weighted_sum": "weighted sum", "mean": "mean of layers"}


def layer_mode_table(records: Sequence[CellResult], baseline_records: Sequence[CellResult], *, profile: str,
                     baseline: str, layout: PaperLayout, n_boot: int) -> Table | None:
    """The comparison table, or None when no classification result of ``profile`` ran a layer mode."""
    modes = sorted({r.layer.mode for r in records if r.layer is not None and r.layer.mode})
    if not modes:
        return None
    mine, theirs = RunIndex(records, layout), RunIndex(baseline_records, layout)
    pairs = mine.pairs(where=lambda r: r.kind == "classification" and r.status == "ok")
    label = " / ".join(MODE_LABEL.get(m, m) for m in modes)
    columns: list[Column] = []
    for task, lang in pairs:
        prefix = f"{task} {lang}"
        columns += [Column(f"{task}.{lang}.single", f"{prefix} best single layer (layer)", "score_layer"),
                    Column(f"{task}.{lang}.mode", f"{prefix} {label}", "score", better="higher"),
                    Column(f"{task}.{lang}.diff", f"{prefix} Δ", "diff")]
    notes = Notes()
    rows = [_row(meta.key, meta.display, meta.group, pairs=pairs, mine=mine, theirs=theirs, notes=notes, n_boot=n_boot)
            for meta in mine.rows_with(where=lambda r: r.kind == "classification")]
    groups = tuple(RowGroupLabel(g.key, g.label) for g in layout.row_groups)
    footer = (f"Best single layer: micro-F1 of profile `{baseline}` (the paper's rule: the layer its sweep chose, in "
              f"parentheses after the score's interval as 'L<k>'). {label.capitalize()}: micro-F1 of profile `{profile}`, "
              "whose heads read every layer (weighted sum: softmax weights learned with the head, SUPERB's rule; "
              "the learned weights are in each result's `layer.weights` and plotted beside the sweep curve). "
              "Δ: layer mode minus single layer, in F1 points. Both: mean over seeds [95% bootstrap interval].",
              "–: no result in that profile (run `bench matrix --profile " + baseline + "` for the single-layer side).")
    return Table(name=TABLE_NAME, title=f"Best single layer (paper) vs {label} (SUPERB)", profile=profile,
                 columns=tuple(columns), rows=tuple(rows), notes=notes.rendered(), footer=footer, groups=groups)


def _row(key: str, display: str, group: str, *, pairs: Sequence[tuple[str, str]], mine: RunIndex, theirs: RunIndex,
         notes: Notes, n_boot: int) -> Row:
    measure = metric_measure("f1_micro")
    cells: dict[str, Cell] = {}
    for task, lang in pairs:
        base_runs = theirs.at(key, task, lang)
        single = score_cell(base_runs, measure, notes=notes, n_boot=n_boot)
        layer = _chosen_layers(base_runs)
        if single.status == "ok" and layer:
            single = _with_layer(single, layer)
        mode = score_cell(mine.at(key, task, lang), measure, notes=notes, n_boot=n_boot)
        cells[f"{task}.{lang}.single"] = single
        cells[f"{task}.{lang}.mode"] = mode
        cells[f"{task}.{lang}.diff"] = _difference(mode, single)
    return Row(key, display, group, cells)


def _difference(mode: Cell, single: Cell) -> Cell:
    """Layer mode minus single layer, in F1 points; missing unless both are scored."""
    if mode.status != "ok" or single.status != "ok" or mode.value is None or single.value is None:
        return Cell()
    return Cell(value=mode.value - single.value, status="ok")


def _chosen_layers(runs: Sequence[Run]) -> str:
    layers = sorted({int(v) for r in runs if r.status == "ok" and r.record.layer is not None
                     for v in [number(r.record.layer.chosen)] if v is not None})
    return "/".join(f"L{la}" for la in layers)


def _with_layer(cell: Cell, layer: str) -> Cell:
    return replace(cell, text=layer)
