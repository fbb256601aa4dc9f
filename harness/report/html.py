"""The profile's leaderboards as one browsable page, ``index.html`` (:func:`render_html`; pure).

Made from the same :class:`~harness.report.model.Table` values as the markdown, CSV and JSON
tables (never parsed back from them), beside ``index.md`` in the profile's folder. The page needs
no server and no network: its CSS and JavaScript (``leaderboard.css``, ``leaderboard.js`` beside
this module, a few hundred lines, no library) are inlined, and it opens from disk.

What a reader gets that markdown cannot give: every column sorts (inside each row group, so the
paper's grouping and its best-per-group marks stay meaningful); filters by language, model group
and task hide the other columns, rows and tables; a model's name opens its plots (sweep curves,
capacity attribution, UMAP); the plots and overlap heatmaps are shown inline.

Plots are relative ``<img>`` links into ``plots/`` and ``overlap/`` (copied there by
:func:`~harness.report.write.write_leaderboards`), not data URIs: the folder is the unit that is
committed and opened (the markdown index links the same files), a data URI would store every
PNG twice in the repository on every regeneration and make the page several megabytes, and
``loading="lazy"`` keeps the first paint fast. The images need the folder, the tables do not.

The DOM is a contract the browser test (tests/test_report_html.py) checks against the JSON
tables: each ``<section class="board">`` has ``data-table`` (the table's name); each body cell a
``data-col`` (column key) and the cell's numbers as ``data-value`` / ``data-low`` / ``data-high``
(Python ``repr``, so they read back as the JSON's floats), ``data-status``, ``data-best`` and
``data-tied`` ("true" / "false" / "" when the table has no significance test); its text is the
markdown cell's text without the markdown marks. Columns carry ``data-lang`` / ``data-task``
(empty when the column is not about one), rows ``data-group`` and ``data-upstream``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from .model import Cell, Column, Table
from .render import PLOT_KINDS, RunSummary, _fmt, _fmt_params, _fmt_seconds, _fmt_signed

ASSETS = Path(__file__).parent
# Column key heads that are not task names: Table V's vocabularies are one task, word discrimination.
TASK_OF_KEY_HEAD = {"matched": "word_discrimination", "mismatched": "word_discrimination"}
TIED_MARK = "≈"
TIED_LEGEND = "not significantly worse than the best of its group"


# --------------------------------------------------------------------------- the page
def render_html(tables: Sequence[Table], *, profile: str, summary: RunSummary | None = None,
                plots: Sequence[tuple[str, PurePosixPath | Path]] = (), overlap: Sequence[PurePosixPath | Path] = (),
                overlap_note: str = "", languages: Mapping[str, str] | None = None,
                deviations: Sequence[object] = (), deviations_title: str = "Deviations from the paper",
                generated: str | None = None) -> str:
    """``index.html`` of a profile: every table, filters, the run summary, the deviations and the plots.

    ``plots`` are :func:`~harness.report.write.find_plots`'s (kind, path under ``plots/``);
    ``overlap`` the overlap report's files (paths relative to the folder; its PNGs are shown).
    ``languages`` maps language codes to their labels (the layout's); a column is about a language
    when the second part of its key is one of them. ``deviations`` are the rows of one table (each a
    mapping or a pydantic model; columns in order of first appearance), shown only when given.
    Same input, same text.
    """
    languages = dict(languages or {})
    model_plots = _plots_by_model(tables, plots)
    body = [f"<header><h1>Leaderboards: profile <code>{escape(profile)}</code></h1>"]
    if generated:
        body.append(f"<p class=\"generated\">Generated {escape(generated)}.</p>")
    body.append("</header>")
    body.append(_filters(tables, languages))
    body.append(_contents(tables, deviations=bool(deviations), deviations_title=deviations_title,
                          plots=bool(plots or overlap)))
    body.append("<main>")
    if summary is not None:
        body.append(_run_section(summary))
    if not tables:
        body.append("<p class=\"empty\">No result yet: run <code>bench matrix</code> first.</p>")
    body += [_table_section(t, languages, model_plots) for t in tables]
    if deviations:
        body.append(_deviations_section(deviations, title=deviations_title))
    body.append(_plots_section(plots, overlap, overlap_note))
    body.append("</main>")
    body.append(_plots_dialog())
    css = (ASSETS / "leaderboard.css").read_text(encoding="utf-8")
    js = (ASSETS / "leaderboard.js").read_text(encoding="utf-8")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>Leaderboards: {escape(profile)}</title>\n<style>\n{css}</style>\n</head>\n<body>\n"
            + "\n".join(body) + f"\n<script>\n{js}</script>\n</body>\n</html>\n")


def _contents(tables: Sequence[Table], *, deviations: bool, deviations_title: str, plots: bool) -> str:
    items = [f"<li><a href=\"#{_table_id(t)}\">{escape(t.title)}</a></li>" for t in tables]
    if deviations:
        items.append(f"<li><a href=\"#deviations\">{escape(deviations_title)}</a></li>")
    if plots:
        items.append("<li><a href=\"#plots\">Plots</a></li>")
    return "<nav class=\"contents\"><h2>Contents</h2><ol>" + "".join(items) + "</ol></nav>"


def _run_section(summary: RunSummary) -> str:
    st = summary.status
    items = [f"cells: {summary.cells} ({st.get('ok', 0)} ok, {st.get('failed', 0)} failed, "
             f"{st.get('unavailable', 0)} unavailable)",
             f"total wall time: {summary.total_s:.1f} s (sum of the cells' timings.total_s)"]
    items += [f"environment: {env} ({n} cells)" for env, n in summary.environments] or ["environment: not recorded"]
    return ("<section id=\"run\"><h2>Run</h2><ul>" + "".join(f"<li>{escape(i)}</li>" for i in items)
            + "</ul></section>")


# --------------------------------------------------------------------------- filters
def column_facets(key: str, languages: Iterable[str]) -> tuple[str, str]:
    """(task, language) a column is about, from its key (``gender.en.f1_micro`` -> gender, en;
    ``matched.fi`` -> word_discrimination, fi); ("", "") for columns about neither (params)."""
    parts = key.split(".")
    if len(parts) >= 2 and parts[1] in set(languages):
        return TASK_OF_KEY_HEAD.get(parts[0], parts[0]), parts[1]
    return "", ""


def _filters(tables: Sequence[Table], languages: Mapping[str, str]) -> str:
    facets = [column_facets(c.key, languages) for t in tables for c in t.columns]
    langs = [code for code in languages if any(lang == code for _, lang in facets)]
    langs += sorted({lang for _, lang in facets if lang and lang not in languages})
    tasks = list(dict.fromkeys(task for task, _ in facets if task))
    groups = list(dict.fromkeys((g.key, g.label) for t in tables for g in t.groups
                                if any(r.group == g.key for r in t.rows)))

    def select(name: str, label: str, options: Sequence[tuple[str, str]]) -> str:
        opts = "".join(f"<option value=\"{escape(v)}\">{escape(text)}</option>" for v, text in options)
        return (f"<label>{label} <select id=\"filter-{name}\" data-filter=\"{name}\">"
                f"<option value=\"\">all</option>{opts}</select></label>")

    return ("<form class=\"filters\" id=\"filters\" onsubmit=\"return false\">"
            + select("lang", "Language", [(c, languages.get(c, c)) for c in langs])
            + select("group", "Model group", groups)
            + select("task", "Task", [(t, t.replace("_", " ")) for t in tasks])
            + "<span id=\"filter-status\" role=\"status\"></span></form>")


# --------------------------------------------------------------------------- one table
def _table_id(table: Table) -> str:
    return "t-" + re.sub(r"[^A-Za-z0-9_-]", "-", table.name)


def _table_section(table: Table, languages: Mapping[str, str], model_plots: Mapping[str, list[str]]) -> str:
    tid = _table_id(table)
    links = " ".join(f"<a href=\"{quote(table.name)}.{ext}\">{ext}</a>" for ext in ("md", "csv", "json"))
    parts = [f"<section class=\"board\" id=\"{tid}\" data-table=\"{escape(table.name)}\">",
             f"<h2>{escape(table.title)}</h2>", f"<p class=\"files\">{links}</p>",
             "<div class=\"scroll\"><table>", _thead(table, languages)]
    width = len(table.columns) + 1
    for group in table.groups:
        rows = [r for r in table.rows if r.group == group.key]
        if not rows:
            continue
        parts.append(f"<tbody data-group=\"{escape(group.key)}\"><tr class=\"group\">"
                     f"<th colspan=\"{width}\" scope=\"rowgroup\">{escape(group.label)}</th></tr>")
        for row in rows:
            parts.append(_row_html(table, row.key, row.display, row.group, row.cells, model_plots))
        parts.append("</tbody>")
    parts.append("</table></div>")
    parts.append(_legend(table))
    parts += [f"<p class=\"footer\">{_prose(line)}</p>" for line in table.footer]
    if table.notes:
        parts.append("<ol class=\"notes\">" + "".join(
            f"<li id=\"{tid}-note-{i}\">{_prose(n)}</li>" for i, n in enumerate(table.notes, 1)) + "</ol>")
    parts.append("</section>")
    return "\n".join(parts)


def _prose(text: str) -> str:
    """A footer or note line as HTML text: the footers are written for markdown, so a backslash
    escape (``\\*``, the fallback mark) shows as the character it escapes and a code span as code."""
    text = escape(re.sub(r"\\([\\`*_{}\[\]()#+\-.!|])", r"\1", text))
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)


def _thead(table: Table, languages: Mapping[str, str]) -> str:
    cells = ["<th scope=\"col\" data-col=\"\" data-kind=\"model\" data-lang=\"\" data-task=\"\">"
             "<button type=\"button\" class=\"sort\">Embeddings</button></th>"]
    for col in table.columns:
        task, lang = column_facets(col.key, languages)
        classes = " class=\"paper\"" if col.kind == "published" else ""
        cells.append(f"<th scope=\"col\"{classes} data-col=\"{escape(col.key)}\" data-kind=\"{escape(col.kind)}\" "
                     f"data-better=\"{escape(col.better or '')}\" data-lang=\"{escape(lang)}\" "
                     f"data-task=\"{escape(task)}\"><button type=\"button\" class=\"sort\">"
                     f"{escape(col.header)}</button></th>")
    return "<thead><tr>" + "".join(cells) + "</tr></thead>"


def _row_html(table: Table, key: str, display: str, group: str, cells: Mapping[str, Cell],
              model_plots: Mapping[str, list[str]]) -> str:
    mine = model_plots.get(key, [])
    name = (f"<button type=\"button\" class=\"model\" data-plots=\"{escape('|'.join(mine))}\" "
            f"title=\"{len(mine)} plots of this model\">{escape(display)}</button>" if mine else escape(display))
    tds = [_cell_html(table, cells.get(col.key, Cell()), col) for col in table.columns]
    return (f"<tr data-upstream=\"{escape(key)}\" data-group=\"{escape(group)}\">"
            f"<th scope=\"row\" data-sort=\"{escape(display)}\">{name}</th>" + "".join(tds) + "</tr>")


# --------------------------------------------------------------------------- one cell
def _num(value: float | None) -> str:
    """The number as Python writes it (reads back as the JSON table's float); "" where the JSON has null."""
    return "" if value is None or not math.isfinite(value) else repr(float(value))


def _cell_html(table: Table, cell: Cell, column: Column) -> str:
    """``<td>``: the markdown cell's text with HTML marks (bold best, starred fallback, interval,
    note links, the tied-with-best mark) and the cell's numbers in ``data-*`` attributes."""
    tied = getattr(cell, "tied_with_best", None)
    sort = (_num(cell.value) if cell.status == "ok" and cell.value is not None else
            cell.text or "" if cell.status == "ok" else "")
    attrs = (f" data-col=\"{escape(column.key)}\" data-status=\"{escape(cell.status)}\" data-value=\"{_num(cell.value)}\""
             f" data-low=\"{_num(cell.low)}\" data-high=\"{_num(cell.high)}\" data-delta=\"{_num(cell.delta)}\""
             f" data-seeds=\"{cell.seeds}\" data-best=\"{str(cell.best).lower()}\""
             f" data-tied=\"{'' if tied is None else str(bool(tied)).lower()}\" data-sort=\"{escape(sort)}\"")
    classes = " class=\"paper\"" if column.kind == "published" else ""
    notes = _note_links(table, cell.notes)
    if cell.status == "n/a":
        return f"<td{classes}{attrs}>n/a{notes}</td>"
    if cell.status != "ok" or (cell.value is None and cell.text is None):
        return f"<td{classes}{attrs}>–{notes}</td>"
    return f"<td{classes}{attrs}>{_value_html(cell, column, tied=tied)}{notes}</td>"


def _value_html(cell: Cell, column: Column, *, tied: object) -> str:
    """The value as :func:`~harness.report.render.render_cell` writes it, marked up in HTML."""
    kind, v = column.kind, cell.value
    if kind == "text" or v is None:
        return escape(str(cell.text or ""))
    if kind == "published":
        delta = f" <span class=\"delta\">({_fmt_signed(cell.delta, column.digits)})</span>" if cell.delta is not None else ""
        return escape(_fmt(v, column.digits)) + delta
    if kind == "pct":
        return escape(f"{_fmt_signed(v, 1)}%")
    if kind == "diff":
        return escape(_fmt_signed(v, column.digits))
    if kind == "params":
        return escape(cell.text or _fmt_params(v))
    main = escape(cell.text if kind == "layer" and cell.text else
                  _fmt_seconds(v) if kind in ("seconds", "reference") else _fmt(v, column.digits))
    if cell.best:
        main = f"<strong>{main}</strong>"
    if tied is True and not cell.best:
        main += f"<span class=\"tied\" title=\"{TIED_LEGEND}\">{TIED_MARK}</span>"
    if cell.fallback:
        main += "<sup class=\"fallback\" title=\"English model or data used for this language\">*</sup>"
    if cell.low is not None and cell.high is not None:
        main += f" <span class=\"ci\">[{_fmt(cell.low, column.digits)}, {_fmt(cell.high, column.digits)}]</span>"
    if kind == "capacity" and cell.delta is not None:
        main += f" <span class=\"delta\">({_fmt_signed(cell.delta, 1)}%{_change_interval(cell)})</span>"
    if kind == "score_layer" and cell.text:
        main += f" <span class=\"layer\">({escape(cell.text)})</span>"
    return main


def _change_interval(cell: Cell) -> str:
    """The capacity change's interval where the cell has one (``delta_low`` / ``delta_high``)."""
    low, high = getattr(cell, "delta_low", None), getattr(cell, "delta_high", None)
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return ""
    return f" [{_fmt_signed(low, 1)}, {_fmt_signed(high, 1)}]"


def _note_links(table: Table, notes: Sequence[int]) -> str:
    if not notes:
        return ""
    tid = _table_id(table)
    links = ", ".join(f"<a href=\"#{tid}-note-{n}\">{n}</a>" for n in notes)
    return f"<span class=\"note-ref\"> (note {links})</span>"


def _legend(table: Table) -> str:
    """Bold and, when the table has a significance test (or any cell says it is tied), its mark
    (unless a footer line already explains the mark)."""
    significance = str(getattr(table, "significance", "") or "")
    tied_any = any(getattr(c, "tied_with_best", None) is True for r in table.rows for c in r.cells.values())
    has_best = any(c.best for r in table.rows for c in r.cells.values())
    items = ["<strong>bold</strong>: the best of its group"] if has_best else []
    if (significance or tied_any) and not any(line.startswith(TIED_MARK) for line in table.footer):
        items.append(f"<span class=\"tied\">{TIED_MARK}</span>: {escape(significance or TIED_LEGEND)}")
    return f"<p class=\"legend\">{'; '.join(items)}.</p>" if items else ""


# --------------------------------------------------------------------------- deviations and plots
def _as_mapping(row: object) -> Mapping[str, object]:
    if isinstance(row, Mapping):
        return row
    dump = getattr(row, "model_dump", None)  # a pydantic record (the deviations table's rows)
    if callable(dump):
        return dict(dump())
    raise TypeError(f"a deviations row must be a mapping or a pydantic model, not {type(row).__name__}")


def _deviations_section(given: Sequence[object], *, title: str) -> str:
    rows = [_as_mapping(r) for r in given]
    keys = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th scope=\"col\">{escape(str(k))}</th>" for k in keys)
    body = "".join("<tr>" + "".join(f"<td>{escape('' if r.get(k) is None else str(r.get(k)))}</td>" for k in keys)
                   + "</tr>" for r in rows)
    return (f"<section id=\"deviations\"><h2>{escape(title)}</h2><div class=\"scroll\"><table class=\"plain\">"
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div></section>")


def _src(path: str) -> str:
    return quote(path, safe="/")


def _figure(path: str) -> str:
    return (f"<figure><a href=\"{_src(path)}\"><img src=\"{_src(path)}\" alt=\"{escape(path)}\" loading=\"lazy\">"
            f"</a><figcaption>{escape(path)}</figcaption></figure>")


def _plots_section(plots: Sequence[tuple[str, PurePosixPath | Path]], overlap: Sequence[PurePosixPath | Path],
                   overlap_note: str) -> str:
    parts = ["<section id=\"plots\"><h2>Plots</h2>"]
    if not plots and not overlap:
        parts.append("<p>No plot found under the profile's results.</p>")
    for kind, label in PLOT_KINDS:
        mine = [f"plots/{rel.as_posix()}" for k, rel in plots if k == kind]
        if kind == "overlap":
            mine += [p.as_posix() for p in overlap if p.suffix == ".png"]
        if not mine:
            continue
        parts.append(f"<details class=\"plots\" data-kind=\"{kind}\"><summary>{escape(label)} ({len(mine)})</summary>"
                     "<div class=\"grid\">" + "".join(_figure(p) for p in mine) + "</div></details>")
    others = [p.as_posix() for p in overlap if p.suffix != ".png"]
    if others:
        parts.append("<p>Overlap report: " + ", ".join(f"<a href=\"{_src(p)}\">{escape(p)}</a>" for p in others) + "</p>")
    if overlap_note:
        parts.append(f"<p>{escape(overlap_note)}</p>")
    parts.append("</section>")
    return "\n".join(parts)


def _plots_dialog() -> str:
    return ("<dialog id=\"model-plots\"><form method=\"dialog\"><h2 id=\"model-plots-title\"></h2>"
            "<button type=\"submit\" class=\"close\">close</button></form><div class=\"grid\"></div></dialog>")


def _plots_by_model(tables: Sequence[Table], plots: Sequence[tuple[str, PurePosixPath | Path]]) -> dict[str, list[str]]:
    """Each row key's plots (paths under the folder): sweeps and capacity folders named after the
    upstream (``sweeps/<upstream>/...``), and ``umap_<upstream>_<language>.png``."""
    out: dict[str, list[str]] = {}
    for key in dict.fromkeys(r.key for t in tables for r in t.rows):
        upstream = key.split(" [", 1)[0]
        umap = re.compile(rf"umap_{re.escape(upstream)}_[A-Za-z-]{{2,8}}\.png")
        mine = [f"plots/{rel.as_posix()}" for _, rel in plots
                if (len(rel.parts) > 2 and rel.parts[1] == upstream) or umap.fullmatch(rel.name)]
        if mine:
            out[key] = mine
    return out
