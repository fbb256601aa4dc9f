"""Leaderboards: the paper's tables rebuilt from result records, as a pure function of them.

The pipeline, one module per seam:

- :mod:`~harness.report.records`: result records (:class:`~harness.run.record.CellResult`, read
  by attribute access) as runs grouped by row, task and language;
- :mod:`~harness.report.aggregate`: seeds averaged with bootstrap intervals, failures as notes;
- :mod:`~harness.report.tables`: :func:`build_tables`, laid out by ``reference/paper_layout.yaml``;
- :mod:`~harness.report.compare`: a layer-mode profile's scores beside its baseline profile's
  best single layer (``layer_modes``);
- :mod:`~harness.report.model`: the frozen :class:`Table` / :class:`Row` / :class:`Cell` values;
- :mod:`~harness.report.render`: :func:`render_markdown`, :func:`table_csv`, :func:`table_json`,
  ``index.md``;
- :mod:`~harness.report.html`: :func:`render_html`, ``index.html`` (the same tables, sortable and
  filterable, with the plots; opened from disk);
- :mod:`~harness.report.write`: :func:`write_leaderboards` (the folder of a profile, swapped in
  whole), with the plots and :mod:`~harness.report.overlap`'s dimension-overlap report.
"""

from .model import Cell, Column, PublishedTables, Row, Table
from .records import failure_reason, read_records
from .render import render_markdown, table_csv, table_json
from .tables import build_tables
from .write import load_published, write_leaderboards

__all__ = ["Cell", "Column", "PublishedTables", "Row", "Table", "build_tables", "failure_reason", "load_published",
           "read_records", "render_markdown", "table_csv", "table_json", "write_leaderboards"]
