"""The values a leaderboard table is made of: :class:`Table` of :class:`Row` of :class:`Cell`,
laid out by :class:`Column`. Frozen and free of I/O: :mod:`harness.report.tables` builds them,
:mod:`harness.report.render` turns them into markdown, CSV and JSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..stats import Sample


@dataclass(frozen=True)
class Column:
    """One markdown column. ``kind`` picks the renderer and the CSV fields (see :data:`CSV_FIELDS`);
    ``better`` ("higher" / "lower") marks the columns whose best value per row group is bold."""

    key: str
    header: str
    kind: str
    better: str | None = None
    digits: int = 1


@dataclass(frozen=True)
class Cell:
    """One table cell. ``status``: "ok" (a value), "n/a" (failed or unavailable, see ``notes``),
    "missing" (never run). ``delta`` is ours minus published for published cells and the relative
    change in percent for capacity cells (``delta_low`` / ``delta_high``: its interval). ``seeds``
    counts the results averaged. ``samples`` (not rendered) are the per-seed items a paired
    significance test compares; ``tied_with_best`` is that test's verdict."""

    value: float | None = None
    low: float | None = None
    high: float | None = None
    delta: float | None = None
    seeds: int = 0
    text: str | None = None
    fallback: bool = False
    status: str = "missing"
    notes: tuple[int, ...] = ()
    best: bool = False
    tied_with_best: bool | None = None  # not significantly worse than the group's best (None: not tested)
    clustered: bool | None = None  # the interval is speaker-clustered (False: item bootstrap; None: no interval)
    delta_low: float | None = None  # capacity cells: the interval of the relative change
    delta_high: float | None = None
    samples: tuple[Sample, ...] = field(default=(), compare=False, repr=False)  # per seed, for paired tests


@dataclass(frozen=True)
class Row:
    key: str
    display: str
    group: str
    cells: Mapping[str, Cell]


@dataclass(frozen=True)
class RowGroupLabel:
    """A row group as tables show it (from ``reference/paper_layout.yaml``), in table order."""

    key: str
    label: str


@dataclass(frozen=True)
class Table:
    """A rendered-ready table: ``notes`` are numbered (1-based) reasons cells cite; ``footer`` explains
    the method and marks; ``groups`` orders and labels the row groups."""

    name: str
    title: str
    profile: str
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    notes: tuple[str, ...] = ()
    footer: tuple[str, ...] = ()
    groups: tuple[RowGroupLabel, ...] = ()
    significance: str = ""  # the paired test behind ``Cell.tied_with_best`` ("" when none ran)


def format_params(value: float) -> str:
    """Parameters as tables print them (146K, 94.7M)."""
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= scale:
            scaled = value / scale
            return f"{scaled:.1f}{suffix}" if scaled < 10 and scaled != int(scaled) else f"{scaled:.0f}{suffix}"
    return f"{value:.0f}"


# Marks a score not significantly worse than its group's best (Table.significance says how tested).
TIED_MARK = "≈"

# The CSV columns of a column kind: (suffix of the column key, Cell attribute).
CSV_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "score": (("", "value"), (".low", "low"), (".high", "high"), (".seeds", "seeds"),
              (".tied_with_best", "tied_with_best")),
    "capacity": (("", "value"), (".low", "low"), (".high", "high"), (".change_pct", "delta"),
                 (".change_low", "delta_low"), (".change_high", "delta_high"), (".seeds", "seeds"),
                 (".tied_with_best", "tied_with_best")),
    "published": (("", "value"), (".diff", "delta")),
    "score_layer": (("", "value"), (".low", "low"), (".high", "high"), (".seeds", "seeds"), (".layer", "text")),
}


class PublishedTables:
    """The paper's published numbers (``reference/paper_tables.yaml``), looked up by key path."""

    def __init__(self, data: Mapping[str, object]) -> None:
        self._data = data

    def at(self, *path: object) -> object:
        """The leaf at ``path`` (mapping keys, list indices), or None where any step is missing. A
        leaf written like ``95e6`` (no dot, which YAML 1.1 reads as text) is read as a number."""
        data: object = self._data
        for key in path:
            if isinstance(data, Mapping):
                data = data.get(key)
            elif isinstance(data, list) and isinstance(key, int) and 0 <= key < len(data):
                data = data[key]
            else:
                return None
        if isinstance(data, str):
            try:
                return float(data)
            except ValueError:
                return data
        return data
