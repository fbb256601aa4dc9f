"""Writing a profile's leaderboards: every table (markdown, CSV and JSON beside it), the plots
found under the profile's results, the overlap report, an ``index.md`` linking all of it and an
``index.html`` showing all of it (:mod:`~harness.report.html`).

Same input, same bytes: nothing here depends on the clock except the optional "generated" line
of the index.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..tempfiles import TMP_TAG, remove_stale, temp_sibling
from .compare import layer_mode_table
from .html import render_html
from .model import PublishedTables, Table
from .overlap import OverlapSection, overlap_section
from .records import is_set, read_records
from .render import PLOT_KINDS, render_index, render_markdown, run_summary, table_csv, table_json
from .tables import N_BOOT, build_tables

if TYPE_CHECKING:
    from ..config import Workspace
    from ..config.deviations import Deviation
    from ..run.record import CellResult
    from ..schema import PaperLayout

REFERENCE_FILE = Path("reference") / "paper_tables.yaml"


def load_published(root: Path | None = None) -> PublishedTables | None:
    """The repository's copy of the paper's tables (``reference/paper_tables.yaml``), looked up in
    the workspace ``root`` first, then beside this package; None when neither exists."""
    from .. import yamlio

    candidates = ([root / REFERENCE_FILE] if root is not None else []) + [Path(__file__).resolve().parents[2] / REFERENCE_FILE]
    for path in candidates:
        if path.is_file():
            data = yamlio.load(path, expand=False)
            return PublishedTables(data) if isinstance(data, dict) else None
    return None


def find_plots(profile_results: Path) -> list[tuple[str, Path]]:
    """(kind, path relative to ``profile_results``) of every PNG under it, sorted; the kind is one of
    :data:`~harness.report.render.PLOT_KINDS` (by top folder, or ``umap`` for ``umap*.png`` anywhere)."""
    if not profile_results.is_dir():
        return []
    out = []
    for p in sorted(profile_results.rglob("*.png")):
        rel = p.relative_to(profile_results)
        top = rel.parts[0] if len(rel.parts) > 1 else ""
        kind = "umap" if p.name.startswith("umap") else top if top in dict(PLOT_KINDS) else "other"
        out.append((kind, rel))
    return out


def write_tables(tables: Sequence[Table], out_dir: Path) -> None:
    """``<name>.md``, ``<name>.csv`` and ``<name>.json`` of every table into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for t in tables:
        (out_dir / f"{t.name}.md").write_text(render_markdown(t), encoding="utf-8")
        (out_dir / f"{t.name}.csv").write_text(table_csv(t), encoding="utf-8")
        (out_dir / f"{t.name}.json").write_text(table_json(t), encoding="utf-8")


def write_leaderboards(ws: Workspace, *, profile: str, timestamp: bool = True, n_boot: int = N_BOOT,
                       show_published: bool | None = None) -> Path:
    """Write ``<paths.leaderboards>/<profile>/`` from the profile's result files and return it.

    The folder is rebuilt whole (written beside, then swapped in), so no stale table survives.
    Result files are only read. With ``timestamp=False`` the output is a function of the result
    files alone (byte-identical on rerun).
    """
    from datetime import UTC, datetime

    from ..config import load_paper_layout, paper_layout_path

    results_dir = ws.path("results")
    records = read_records(results_dir, profile)
    layout = load_paper_layout(paper_layout_path(ws.root))
    tables = build_tables(records, published=load_published(ws.root), profile=profile, n_boot=n_boot,
                          show_published=show_published, layout=layout)
    tables += layer_mode_tables(ws, records, profile=profile, layout=layout, n_boot=n_boot)
    out = ws.path("leaderboards") / profile
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(out.parent, prefix=f".{profile}{TMP_TAG}")
    stage = temp_sibling(out)
    stage.mkdir()
    try:
        write_tables(tables, stage)
        plots = find_plots(results_dir / profile)
        for _, rel in plots:
            (stage / "plots" / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(results_dir / profile / rel, stage / "plots" / rel)
        has_capacity = any(r.analyses is not None and is_set(r.analyses.capacity) for r in records)
        overlap = overlap_section(results_dir, profile, stage / "overlap") if has_capacity else OverlapSection()
        generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC") if timestamp else None
        summary = run_summary(records)
        deviations = profile_deviations(ws, profile)
        index = render_index(tables, profile=profile, summary=summary, plots=plots,
                             overlap=overlap.files, overlap_note=overlap.note, generated=generated,
                             deviations=deviations)
        (stage / "index.md").write_text(index, encoding="utf-8")
        page = render_html(tables, profile=profile, summary=summary, plots=plots, overlap=overlap.files,
                           overlap_note=overlap.note, languages=layout.languages, generated=generated,
                           deviations=deviations)
        (stage / "index.html").write_text(page, encoding="utf-8")
        _swap_in(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return out


def layer_mode_tables(ws: Workspace, records: Sequence[CellResult], *, profile: str, layout: PaperLayout,
                      n_boot: int) -> list[Table]:
    """The best-single-layer vs layer-mode table of a profile with a ``baseline_profile`` (read
    from the baseline's results), as a list of zero or one table."""
    from ..errors import BenchError

    try:
        baseline = ws.snapshot.profile(profile)[1].baseline_profile
    except BenchError:  # a results folder of a profile benchmark.yaml no longer has
        return []
    if baseline is None:
        return []
    table = layer_mode_table(records, read_records(ws.path("results"), baseline), profile=profile,
                             baseline=baseline, layout=layout, n_boot=n_boot)
    return [table] if table is not None and table.rows else []


def profile_deviations(ws: Workspace, profile: str) -> tuple[Deviation, ...]:
    """The profile's deviations table from its current settings; () for a profile benchmark.yaml
    does not define (leaderboards of results whose profile is gone)."""
    from ..config.deviations import deviation_table

    if profile not in ws.snapshot.benchmark.profiles:
        return ()
    return deviation_table(ws.snapshot, profile)


def _swap_in(stage: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = temp_sibling(out)
        os.replace(out, old)
    os.replace(stage, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
