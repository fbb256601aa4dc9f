"""Tables as text: :func:`render_markdown`, :func:`table_csv` and :func:`table_json` (pure; same
table, same bytes), and the profile's ``index.md`` (:func:`render_index`) with its run summary."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config.deviations import Deviation
from ..run.record import CellResult, Environment
from .model import CSV_FIELDS, TIED_MARK, Cell, Column, Table, format_params
from .records import number


# --------------------------------------------------------------------------- numbers
def _fmt(value: float, digits: int) -> str:
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def _fmt_signed(value: float, digits: int) -> str:
    text = _fmt(value, digits)
    return text if text.startswith("-") else f"+{text}"


def _fmt_params(value: float) -> str:
    return format_params(value)


def _fmt_seconds(value: float) -> str:
    return _fmt(value, 0 if value >= 100 else 1 if value >= 10 else 2)


def _note_refs(notes: Sequence[int]) -> str:
    return f" (note {', '.join(map(str, notes))})" if notes else ""


# --------------------------------------------------------------------------- markdown
def render_cell(cell: Cell, column: Column) -> str:
    """The markdown text of one cell (``n/a``, ``–``, or the value with its interval and marks)."""
    if cell.status == "n/a":
        return "n/a" + _note_refs(cell.notes)
    if cell.status != "ok" or (cell.value is None and cell.text is None):
        return "–" + _note_refs(cell.notes)
    return _render_value(cell, column) + _note_refs(cell.notes)


def _render_value(cell: Cell, column: Column) -> str:
    kind, v = column.kind, cell.value
    if kind == "text" or v is None:
        return str(cell.text or "")
    if kind == "published":
        return _fmt(v, column.digits) + (f" ({_fmt_signed(cell.delta, column.digits)})" if cell.delta is not None else "")
    if kind == "pct":
        return f"{_fmt_signed(v, 1)}%"
    if kind == "diff":
        return _fmt_signed(v, column.digits)
    if kind == "params":
        return cell.text or _fmt_params(v)
    main = (cell.text if kind == "layer" and cell.text else
            _fmt_seconds(v) if kind in ("seconds", "reference") else _fmt(v, column.digits))
    if cell.best:
        main = f"**{main}**"
    elif cell.tied_with_best:
        main += TIED_MARK
    if cell.fallback:
        main += "\\*"
    if cell.low is not None and cell.high is not None:
        main += f" [{_fmt(cell.low, column.digits)}, {_fmt(cell.high, column.digits)}]"
    if kind == "capacity" and cell.delta is not None:
        change = (f" [{_fmt_signed(cell.delta_low, 1)}, {_fmt_signed(cell.delta_high, 1)}]"
                  if cell.delta_low is not None and cell.delta_high is not None
                  and math.isfinite(cell.delta_low) and math.isfinite(cell.delta_high) else "")
        main += f" ({_fmt_signed(cell.delta, 1)}%{change})"
    if kind == "score_layer" and cell.text:
        main += f" ({cell.text})"
    return main


def render_markdown(table: Table) -> str:
    """The table as GitHub markdown: title, group header rows, footer lines and numbered notes."""
    from tabulate import tabulate

    headers = ["Embeddings", *(c.header for c in table.columns)]
    body: list[list[str]] = []
    for group in table.groups:
        rows = [r for r in table.rows if r.group == group.key]
        if not rows:
            continue
        body.append([f"**{group.label}**", *([""] * len(table.columns))])
        body += [[_escape(r.display), *(_escape(render_cell(r.cells.get(c.key, Cell()), c)) for c in table.columns)]
                 for r in rows]
    lines = [f"# {table.title}", "", f"Profile `{table.profile}`.", "",
             tabulate(body, headers=headers, tablefmt="github", disable_numparse=True), ""]
    lines += [f"{line}\n" for line in table.footer]
    if table.notes:
        lines += ["Notes:", ""] + [f"{i}. {_escape(n)}" for i, n in enumerate(table.notes, 1)] + [""]
    return "\n".join(lines)


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


# --------------------------------------------------------------------------- csv and json
def _csv_value(value: Any) -> Any:
    if isinstance(value, float):
        return "" if not math.isfinite(value) else repr(round(value, 6))
    return "" if value is None else value


def table_csv(table: Table) -> str:
    """One line per model row: group, upstream, display, then each column's numeric fields
    (``key``, and ``key.low`` / ``key.high`` / ``key.diff`` / ... where the kind has them), then
    the fallback languages and the note numbers cited by the row."""
    header = ["group", "upstream", "display"]
    for col in table.columns:
        header += [col.key + suffix for suffix, _ in CSV_FIELDS.get(col.kind, (("", "value"),))]
    header += ["fallback", "notes"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for r in table.rows:
        line: list[Any] = [r.group, r.key, r.display]
        for col in table.columns:
            cell = r.cells.get(col.key, Cell())
            for _, attr in CSV_FIELDS.get(col.kind, (("", "value"),)):
                value = getattr(cell, attr)
                line.append(_csv_value(cell.text if attr == "value" and value is None and cell.text else value))
        fallback = sorted(c.key for c in table.columns if r.cells.get(c.key, Cell()).fallback)
        notes = sorted({n for c in r.cells.values() for n in c.notes})
        line += [" ".join(fallback), " ".join(map(str, notes))]
        writer.writerow(line)
    return buf.getvalue()


def table_json(table: Table) -> str:
    """The table as JSON text (the ``.json`` file): columns, groups, rows with every cell field,
    notes and footer; non-finite numbers as null."""
    return json.dumps(_table_data(table), indent=1, ensure_ascii=False) + "\n"


def _table_data(table: Table) -> dict[str, Any]:
    def cell_data(c: Cell) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in {"value": c.value, "low": c.low, "high": c.high, "delta": c.delta, "seeds": c.seeds,
                             "text": c.text, "fallback": c.fallback, "status": c.status, "notes": list(c.notes),
                             "best": c.best, "tied_with_best": c.tied_with_best, "clustered": c.clustered,
                             "delta_low": c.delta_low, "delta_high": c.delta_high}.items()}

    return {"name": table.name, "title": table.title, "profile": table.profile,
            "columns": [{"key": c.key, "header": c.header, "kind": c.kind, "better": c.better} for c in table.columns],
            "groups": [{"key": g.key, "label": g.label} for g in table.groups],
            "rows": [{"upstream": r.key, "display": r.display, "group": r.group,
                      "cells": {c.key: cell_data(r.cells.get(c.key, Cell())) for c in table.columns}}
                     for r in table.rows],
            "notes": list(table.notes), "footer": list(table.footer), "significance": table.significance or None}


# --------------------------------------------------------------------------- index.md
PLOT_KINDS: tuple[tuple[str, str], ...] = (
    ("sweeps", "Layer sweep curves"),
    ("capacity", "Capacity attribution"),
    ("overlap", "Overlap of important dimensions"),
    ("umap", "UMAP projections"),
    ("other", "Other plots"),
)


@dataclass(frozen=True)
class RunSummary:
    """What the index says about the run: cells by status, summed wall time, distinct environments
    (one line each, with how many cells ran in it)."""

    cells: int
    status: dict[str, int]
    total_s: float
    environments: tuple[tuple[str, int], ...]


def run_summary(records: Sequence[CellResult]) -> RunSummary:
    """Counts by status, total wall time (sum of ``timings.total_s``) and the distinct environments."""
    counts = {s: 0 for s in ("ok", "failed", "unavailable")}
    for r in records:
        counts[r.status] = counts.get(r.status, 0) + 1
    total_s = sum(number(r.timings.total_s if r.timings else None) or 0.0 for r in records)
    envs: dict[str, int] = {}
    for r in records:
        if r.environment is not None:
            line = _environment_line(r.environment)
            envs[line] = envs.get(line, 0) + 1
    return RunSummary(cells=len(records), status=counts, total_s=total_s, environments=tuple(sorted(envs.items())))


def _environment_line(env: Environment) -> str:
    def get(name: str) -> Any:  # a field written as null shows as None, one never written as ?
        return getattr(env, name) if name in env.model_fields_set else "?"

    packages = env.packages or {}
    parts = [f"Python {get('python')}", str(get("platform")), f"device {env.device_name or get('device')}",
             f"{get('cpu_count')} CPUs"]
    parts += [f"{p} {packages[p]}" for p in ("torch", "transformers", "scikit-learn", "numpy") if p in packages]
    return ", ".join(parts)


def render_index(tables: Sequence[Table], *, profile: str, summary: RunSummary,
                 plots: Sequence[tuple[str, Path]], overlap: Sequence[Path] = (), overlap_note: str = "",
                 generated: str | None = None, deviations: Sequence[Deviation] = ()) -> str:
    """``index.md``: the run summary, a link to every table (md, csv, json), the deviations table
    of the profile (:func:`render_deviations`) and every copied plot."""
    st = summary.status
    lines = [f"# Leaderboards: profile `{profile}`", ""]
    if generated:
        lines += [f"Generated {generated}.", ""]
    lines += ["## Run", "",
              f"- cells: {summary.cells} ({st.get('ok', 0)} ok, {st.get('failed', 0)} failed, "
              f"{st.get('unavailable', 0)} unavailable)",
              f"- total wall time: {summary.total_s:.1f} s (sum of the cells' timings.total_s)"]
    lines += [f"- environment: {env} ({n} cells)" for env, n in summary.environments] or ["- environment: not recorded"]
    lines += ["", "## Tables", ""]
    lines += [f"- [{t.title}]({t.name}.md) ([csv]({t.name}.csv), [json]({t.name}.json))" for t in tables]
    if not tables:
        lines.append("No result yet: run `bench matrix` first.")
    if deviations:
        lines += ["", *render_deviations(deviations, profile=profile)]
    lines += _plot_lines(plots, overlap, overlap_note)
    return "\n".join(lines) + "\n"


def render_deviations(rows: Sequence[Deviation], *, profile: str) -> list[str]:
    """The deviations table as markdown lines: the rows that differ from the paper first, then
    those where the paper is silent, then those that match it."""
    order = {"differs": 0, "paper silent": 1, "same": 2}
    counts = {k: sum(1 for r in rows if r.status == k) for k in order}
    lines = ["## Deviations from the paper", "",
             f"Built from the settings of profile `{profile}` and `reference/deviations.yaml`: "
             f"{counts['differs']} differ from the paper (its text, or its authors' code where the text is "
             f"silent), {counts['paper silent']} are choices neither makes, {counts['same']} match it.", "",
             "| Element | Paper | Authors' code | This profile | Setting | Status |",
             "|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: order[r.status]):
        cells = [r.element + (f" ({r.gap})" if r.gap != "-" else ""), r.paper, r.code, r.profile, f"`{r.setting}`"
                 if not r.setting.startswith("-") else r.setting[1:].strip(" ()") or "fixed", r.status]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _plot_lines(plots: Sequence[tuple[str, Path]], overlap: Sequence[Path], overlap_note: str) -> list[str]:
    lines = ["", "## Plots", ""]
    if not plots and not overlap:
        lines.append("No plot found under the profile's results.")
    for kind, label in PLOT_KINDS:
        mine = [rel for k, rel in plots if k == kind]
        extra = [p for p in overlap if kind == "overlap"]
        if not mine and not extra:
            continue
        lines += [f"### {label}", ""]
        lines += [f"- [{rel.as_posix()}](plots/{rel.as_posix()})" for rel in mine]
        lines += [f"- [{p.as_posix()}]({p.as_posix()})" for p in extra]
        lines.append("")
    if overlap_note:
        lines += ["", overlap_note]
    return lines
