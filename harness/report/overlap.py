"""Dimension overlap (paper Figures 5-8): how many of the top-k dimensions two analyses share.

``overlap = |A intersect B| / k x 100`` between the top-k dimension sets of the 10% capacity
analysis (:mod:`harness.run.steps.capacity`); for three sets ``|A intersect B intersect C| / k``.
When two sets have different sizes (different hidden sizes, say), k is the smaller one and a
note says so.

- Across languages (Figures 5-7): same upstream, same task group, pairs of languages
  (en-fi, en-fr, fi-fr). The task group comes from the task YAML's ``group``: gender and
  emotion are one task each, and ``semantic`` joins intent (en), topic (fi) and request (fr)
  into one row, as Figure 7 does. A language-specific checkpoint makes the dimension indices of
  two languages belong to different weights; rows say which checkpoints were compared.
- Across tasks (Figure 8): same upstream and language, pairs of task groups
  (gender-emotion, gender-semantic, emotion-semantic) and all three.

:func:`overlap_report` is a pure function of the result files of a profile: the capacity files
(``<results>/<profile>/capacity/.../seed<k>.json``) and, for cells without one, the
``analyses.capacity.dims`` of the cell results (read as :class:`~harness.run.record.CellResult`).
One seed is used per analysis: seed 0 when present, else the smallest; the notes say when other
seeds were left out. The leaderboards run it through :func:`overlap_section`, which never lets it
stop the tables.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from itertools import combinations
from pathlib import Path

from ..results import read_json, write_json_atomic
from ..run.record import read_result
from ..tempfiles import save_figure
from .records import one_line

GROUP_ORDER = ("gender", "emotion", "semantic")
LANGUAGE_ORDER = ("en", "fi", "fr")


@dataclass(frozen=True)
class DimSet:
    """The top-k dimensions of one capacity analysis."""

    upstream: str  # the card named in the profile (the row of the tables)
    card: str  # the card that ran (a language-specific variant, or the same card)
    downstream: str
    task: str
    group: str
    language: str
    seed: int
    num_dims: int  # D of the layer
    dims: frozenset[int]
    source: str

    @property
    def k(self) -> int:
        return len(self.dims)


@dataclass(frozen=True)
class OverlapRow:
    """One comparison: the top-k sets of ``upstream`` in two (or all three) languages or task groups."""

    kind: str  # "languages" (Figures 5-7) or "tasks" (Figure 8)
    unit: str  # the task group (kind "languages") or the language (kind "tasks")
    upstream: str
    pair: str  # "en-fi", "gender-intent", ... or "all"
    overlap_pct: float
    intersection: int
    k: int
    languages: tuple[str, ...]
    tasks: tuple[str, ...]
    cards: tuple[str, ...]
    same_weights: bool  # the same checkpoint in every part
    seeds: tuple[int, ...]


@dataclass(frozen=True)
class OverlapReport:
    """What :func:`overlap_report` wrote (``overlap.json`` holds these fields)."""

    profile: str
    analyses: int  # capacity analyses compared
    languages: tuple[OverlapRow, ...]
    tasks: tuple[OverlapRow, ...]
    notes: tuple[str, ...]
    markdown: str
    files: tuple[str, ...]  # relative to the output folder


def overlap_pct(sets: Sequence[frozenset[int]]) -> tuple[float, int, int]:
    """(|intersection| / k x 100, |intersection|, k) with k = the smallest set size."""
    k = min(len(s) for s in sets)
    inter = len(frozenset.intersection(*sets))
    return (100.0 * inter / k if k else float("nan")), inter, k


# --------------------------------------------------------------------------- reading
def load_dim_sets(results_dir: Path, profile: str) -> list[DimSet]:
    """Every capacity analysis of ``profile``: capacity files first, then cell results without one."""
    found: dict[tuple[str, str, str, int], DimSet] = {}
    for path in sorted((Path(results_dir) / profile / "capacity").rglob("seed*.json")):
        data = read_json(path)
        if data and data.get("format", "").startswith("capacity/") and data.get("dims") is not None:
            c = data["cell"]
            ds = DimSet(upstream=c["upstream"], card=c.get("card", c["upstream"]), downstream=c["downstream"],
                        task=c["task"], group=c["group"], language=c["language"], seed=int(c["seed"]),
                        num_dims=int(data.get("D", 0)), dims=frozenset(int(d) for d in data["dims"]), source=str(path))
            found[(ds.upstream, ds.downstream, ds.language, ds.seed)] = ds
    base = Path(results_dir) / profile
    for path in sorted(base.rglob("seed*.json")) if base.is_dir() else []:
        res = read_result(path)
        cap = res.analyses.capacity if res is not None and res.analyses is not None else None
        if res is None or res.status != "ok" or cap is None or cap.dims is None:
            continue
        c = res.cell
        key = (c.upstream, c.downstream, c.language, c.seed)
        if key not in found:
            found[key] = DimSet(upstream=c.upstream, card=(res.upstream.name if res.upstream else None) or c.upstream,
                                downstream=c.downstream, task=c.task or (res.task.name if res.task else None) or "",
                                group=(res.task.group if res.task else None) or "", language=c.language, seed=c.seed,
                                num_dims=cap.D or 0, dims=frozenset(cap.dims), source=str(path))
    return [found[k] for k in sorted(found)]


def pick_one_per_analysis(sets: Iterable[DimSet], notes: list[str]) -> dict[tuple[str, str, str], DimSet]:
    """(upstream, group, language) -> one DimSet: seed 0 (else the smallest seed) of the first
    downstream by name; what was left out is added to ``notes``."""
    by_key: dict[tuple[str, str, str], list[DimSet]] = {}
    for s in sets:
        by_key.setdefault((s.upstream, s.group, s.language), []).append(s)
    chosen: dict[tuple[str, str, str], DimSet] = {}
    for key, cands in sorted(by_key.items()):
        downstreams = sorted({c.downstream for c in cands})
        first = [c for c in cands if c.downstream == downstreams[0]]
        seeds = sorted({c.seed for c in first})
        seed = 0 if 0 in seeds else seeds[0]
        chosen[key] = next(c for c in first if c.seed == seed)
        if len(seeds) > 1:
            notes.append(f"{key[0]} / {downstreams[0]} / {key[2]}: seeds {seeds} found, seed {seed} used")
        if len(downstreams) > 1:
            notes.append(f"{key[0]} / {key[1]} / {key[2]}: downstreams {downstreams} found, {downstreams[0]} used")
    return chosen


# --------------------------------------------------------------------------- tables
def _ordered(values: Iterable[str], order: Sequence[str]) -> list[str]:
    vals = set(values)
    return [v for v in order if v in vals] + sorted(vals - set(order))


def _row(kind: str, unit: str, upstream: str, parts: Sequence[DimSet], label: str,
         notes: list[str]) -> OverlapRow:
    pct, inter, k = overlap_pct([p.dims for p in parts])
    if len({p.k for p in parts}) > 1:
        notes.append(f"{upstream} / {unit} / {label}: top-k sizes {[p.k for p in parts]} differ; k = {k}")
    return OverlapRow(kind=kind, unit=unit, upstream=upstream, pair=label, overlap_pct=pct, intersection=inter, k=k,
                      languages=tuple(p.language for p in parts), tasks=tuple(p.task for p in parts),
                      cards=tuple(p.card for p in parts), same_weights=len({p.card for p in parts}) == 1,
                      seeds=tuple(p.seed for p in parts))


def across_languages(chosen: dict[tuple[str, str, str], DimSet], notes: list[str]) -> list[OverlapRow]:
    """Rows for every (upstream, task group) and pair of languages holding an analysis."""
    rows = []
    for group in _ordered({g for _, g, _ in chosen}, GROUP_ORDER):
        for upstream in sorted({u for u, g, _ in chosen if g == group}):
            langs = _ordered({la for u, g, la in chosen if u == upstream and g == group}, LANGUAGE_ORDER)
            for a, b in combinations(langs, 2):
                parts = [chosen[(upstream, group, a)], chosen[(upstream, group, b)]]
                rows.append(_row("languages", group, upstream, parts, f"{a}-{b}", notes))
    return rows


def across_tasks(chosen: dict[tuple[str, str, str], DimSet], notes: list[str]) -> list[OverlapRow]:
    """Rows for every (upstream, language) and pair of task groups, plus all of them when three or more."""
    rows = []
    for lang in _ordered({la for _, _, la in chosen}, LANGUAGE_ORDER):
        for upstream in sorted({u for u, _, la in chosen if la == lang}):
            groups = _ordered({g for u, g, la in chosen if u == upstream and la == lang}, GROUP_ORDER)
            parts_by_group = {g: chosen[(upstream, g, lang)] for g in groups}
            for a, b in combinations(groups, 2):
                label = f"{parts_by_group[a].task}-{parts_by_group[b].task}"
                rows.append(_row("tasks", lang, upstream, [parts_by_group[a], parts_by_group[b]], label, notes))
            if len(groups) >= 3:
                rows.append(_row("tasks", lang, upstream, list(parts_by_group.values()), "all", notes))
    return rows


def _unit_title(kind: str, unit: str, rows: list[OverlapRow]) -> str:
    if kind == "languages":
        task_of = {la: t for r in rows for la, t in zip(r.languages, r.tasks, strict=True)}
        if set(task_of.values()) == {unit}:
            return f"Dimension overlap across languages: {unit}"
        tasks = ", ".join(f"{la}: {task_of[la]}" for la in _ordered(task_of, LANGUAGE_ORDER))
        return f"Dimension overlap across languages: {unit} ({tasks})"
    return f"Dimension overlap across tasks: {unit}"


def _pivot(rows: list[OverlapRow]) -> tuple[list[str], list[str], dict[tuple[str, str], OverlapRow]]:
    ups = sorted({r.upstream for r in rows})
    cols: list[str] = []
    for r in rows:
        if r.pair not in cols:
            cols.append(r.pair)
    cols = [c for c in cols if c != "all"] + (["all"] if "all" in cols else [])
    return ups, cols, {(r.upstream, r.pair): r for r in rows}


def markdown_table(kind: str, unit: str, rows: list[OverlapRow]) -> str:
    """One markdown table: upstreams x pairs, overlap in percent (``*``: the same checkpoint in both)."""
    ups, cols, cell = _pivot(rows)
    lines = [f"### {_unit_title(kind, unit, rows)}", "", "| upstream | k | " + " | ".join(cols) + " |",
             "|---|---:|" + "---:|" * len(cols)]
    for u in ups:
        ks = sorted({cell[(u, c)].k for c in cols if (u, c) in cell})
        vals = []
        for c in cols:
            r = cell.get((u, c))
            star = "*" if r and kind == "languages" and r.same_weights else ""
            vals.append(f"{r.overlap_pct:.1f}{star}" if r else "-")
        lines.append(f"| {u} | {'/'.join(map(str, ks))} | " + " | ".join(vals) + " |")
    if kind == "languages":
        lines += ["", "`*`: the same checkpoint in both languages (no language-specific variant)."]
    return "\n".join(lines)


def _csv_text(rows: list[OverlapRow]) -> str:
    buf = io.StringIO()
    fields = ["kind", "unit", "upstream", "pair", "overlap_pct", "intersection", "k", "languages", "tasks", "cards",
              "same_weights", "seeds"]
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for row in rows:
        r = asdict(row)
        w.writerow({**r, **{f: " ".join(map(str, r[f])) for f in ("languages", "tasks", "cards", "seeds")},
                    "overlap_pct": f"{row.overlap_pct:.2f}"})
    return buf.getvalue()


def plot_heatmap(rows: list[OverlapRow], *, title: str, path: Path) -> None:
    """Upstreams x pairs heatmap of overlap percentages, values written in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    ups, cols, cell = _pivot(rows)
    grid = np.full((len(ups), len(cols)), np.nan)
    for i, u in enumerate(ups):
        for j, c in enumerate(cols):
            if (u, c) in cell:
                grid[i, j] = cell[(u, c)].overlap_pct
    fig, ax = plt.subplots(figsize=(1.2 * len(cols) + 3, 0.45 * len(ups) + 1.5))
    im = ax.imshow(grid, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(ups)), ups)
    for i in range(len(ups)):
        for j in range(len(cols)):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.1f}", ha="center", va="center", fontsize=8,
                        color="white" if grid[i, j] < 50 else "black")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, label="overlap (%)")
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)


# --------------------------------------------------------------------------- report
def overlap_report(results_dir: Path, profile: str, out_dir: Path) -> OverlapReport:
    """Overlap tables of ``profile`` written to ``out_dir`` and returned.

    Files: ``overlap.md``, ``overlap.csv``, ``overlap.json`` and one heatmap per table
    (``overlap_languages_<group>.png``, ``overlap_tasks_<language>.png``).
    """
    notes: list[str] = []
    chosen = pick_one_per_analysis(load_dim_sets(Path(results_dir), profile), notes)
    lang_rows = across_languages(chosen, notes)
    task_rows = across_tasks(chosen, notes)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sections, files = [f"## Dimension overlap ({profile})", ""], []
    for kind, rows in (("languages", lang_rows), ("tasks", task_rows)):
        for unit in _ordered({r.unit for r in rows}, GROUP_ORDER + LANGUAGE_ORDER):
            unit_rows = [r for r in rows if r.unit == unit]
            sections += [markdown_table(kind, unit, unit_rows), ""]
            png = out_dir / f"overlap_{kind}_{unit}.png"
            try:
                plot_heatmap(unit_rows, title=_unit_title(kind, unit, unit_rows), path=png)
                files.append(str(png))
            except Exception:  # noqa: BLE001 - a plot must never lose the tables
                notes.append(f"heatmap {png.name} could not be drawn")
    if not lang_rows and not task_rows:
        sections += ["No pair of capacity analyses to compare (run cells with `analyses.capacity`).", ""]
    if notes:
        sections += ["Notes:", ""] + [f"- {n}" for n in notes] + [""]
    markdown = "\n".join(sections)
    (out_dir / "overlap.md").write_text(markdown, encoding="utf-8")
    (out_dir / "overlap.csv").write_text(_csv_text(lang_rows + task_rows), encoding="utf-8")
    report = OverlapReport(profile=profile, analyses=len(chosen), languages=tuple(lang_rows), tasks=tuple(task_rows),
                           notes=tuple(notes), markdown=markdown,
                           files=("overlap.md", "overlap.csv", "overlap.json", *(Path(f).name for f in files)))
    write_json_atomic(out_dir / "overlap.json", asdict(report))  # names relative to out_dir: output independent of it
    return report


# --------------------------------------------------------------------------- in the leaderboards
@dataclass(frozen=True)
class OverlapSection:
    """The files the overlap report wrote (relative to the leaderboard folder), or why there are none."""

    files: tuple[Path, ...] = ()
    note: str = ""


def overlap_section(results_dir: Path, profile: str, out_dir: Path) -> OverlapSection:
    """Run the overlap report of ``profile`` into ``out_dir``; a failure becomes the note."""
    try:
        overlap_report(results_dir=results_dir, profile=profile, out_dir=out_dir)
    except Exception as e:  # noqa: BLE001 - an analysis must not stop the leaderboards
        first = one_line(str(e).splitlines()[0] if str(e) else "")
        return OverlapSection(note=f"The overlap report failed: {type(e).__name__}: {first}")
    files = sorted(p.relative_to(out_dir.parent) for p in out_dir.rglob("*") if p.is_file()) if out_dir.is_dir() else []
    return OverlapSection(files=tuple(files))
