"""The paper's tables from result records: :func:`build_tables` (pure: reads nothing but its arguments).

Layout follows the paper (Porjazovski, Grosz, Kurimo 2024), as ``reference/paper_layout.yaml``
describes it: Table I gender, II chosen layers, III emotion, IV intent / topic / request, V word
discrimination, VII emotion discrimination, VIII 10% capacity, IX parameters and inference time,
then one table per other classification task. Rows are grouped as the paper groups them
(small-scale, base, large, large ASR fine-tuned), then rows the paper lacks (other models,
random-init controls); the best score per group and column is in bold.

Published numbers are shown beside ours, with the difference, only when the results come from
the real corpora: on the synthetic corpus the absolute scores have nothing to do with the paper's,
so a side-by-side column would invite reading the gap as a reproduction error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..run.record import CellResult, InferenceTime
from ..schema import PaperLayout, TableLayout
from .aggregate import (
    Notes,
    RunIndex,
    capacity_cell,
    capacity_f1,
    capacity_section,
    failure_notes,
    language_fallback,
    metric_measure,
    plain_cell,
    published_cell,
    score_cell,
    where,
    word_cell,
    word_entries,
)
from .model import (
    TIED_MARK,
    Cell,
    Column,
    PublishedTables,
    Row,
    RowGroupLabel,
    Table,
    format_params,
)
from .records import RowMeta, Run, as_records, number, repository_layout

N_BOOT = 1000
DISCRIMINATION_KINDS = ("word_discrimination", "emotion_discrimination")


@dataclass
class _Context:
    index: RunIndex
    layout: PaperLayout
    published: PublishedTables | None
    profile: str
    n_boot: int
    notes: Notes = field(default_factory=Notes)

    def fresh(self) -> _Context:
        return _Context(self.index, self.layout, self.published, self.profile, self.n_boot)

    def paper(self, *path: Any) -> object:
        return self.published.at(*path) if self.published is not None else None


def build_tables(results: Iterable[CellResult | Mapping[str, Any]], *, published: PublishedTables | None,
                 profile: str, n_boot: int = N_BOOT, show_published: bool | None = None,
                 layout: PaperLayout | None = None) -> list[Table]:
    """Every leaderboard table of ``profile`` from its results (pure: reads nothing else).

    ``results`` are records, or parsed result files (converted by :func:`as_records`).
    ``published`` is :func:`harness.report.write.load_published`'s; it is shown only when
    ``show_published`` is true, or, when None, when the results come from the real corpora (some
    result's ``task.corpus`` is not "synth"). ``layout`` defaults to the repository's
    ``reference/paper_layout.yaml``. Tables without any result are left out.
    """
    records = as_records(results)
    layout = layout or repository_layout()
    idx = RunIndex(records, layout)
    show = _from_real_corpora(records) if show_published is None else show_published
    ctx = _Context(idx, layout, published if show else None, profile, n_boot)
    builders: list[Callable[[_Context], Table | None]] = [
        _gender_table, _layers_table, _emotion_table, _semantic_table, _word_table, _emotion_discrimination_table,
        _capacity_table, _inference_table,
    ]
    tables = [b(ctx.fresh()) for b in builders]
    tables += [_extra_task_table(ctx.fresh(), task) for task in _extra_tasks(idx, layout)]
    footer = _published_footer(show=show, available=published is not None)
    windows = _whisper_windows(records)
    return [replace(t, footer=t.footer + _window_footer(t, windows) + footer)
            for t in tables if t is not None and t.rows]


WINDOW_TEXT = {
    "padded30": "the 30-s padded window Whisper was trained on (the paper's way), pooled over the real frames",
    "real_length": "the real audio length, positional table sliced (not the paper's 30-s padded window: "
                   "the features differ)",
}


def _whisper_windows(records: Sequence[CellResult]) -> dict[str, str]:
    """The Whisper encoder window each listed card ran with (``upstream.settings.window``)."""
    found: dict[str, str] = {}
    for r in records:
        up = r.upstream
        window = (up.settings or {}).get("window") if up is not None else None
        if window and up is not None and (up.listed or r.cell.upstream):
            found[str(up.listed or r.cell.upstream)] = str(window)
    return found


def _window_footer(table: Table, windows: Mapping[str, str]) -> tuple[str, ...]:
    """One footer line per window mode among the table's Whisper rows (none when it has none)."""
    by_window: dict[str, list[str]] = {}
    for row in table.rows:
        listed = row.key.split(" [", 1)[0]
        if listed in windows and row.display not in by_window.get(windows[listed], []):
            by_window.setdefault(windows[listed], []).append(row.display)
    return tuple(f"Whisper encoder window of {', '.join(names)}: {_window_text(window)} "
                 f"(upstream.args.window: {window})." for window, names in sorted(by_window.items()))


def _window_text(window: str) -> str:
    return WINDOW_TEXT.get(window, window)


def _from_real_corpora(records: Sequence[CellResult]) -> bool:
    corpora = {r.task.corpus for r in records if r.task is not None} - {None}
    return bool(corpora - {"synth"})


def _published_footer(*, show: bool, available: bool) -> tuple[str, ...]:
    if show and available:
        return ("paper (Δ): the published score (reference/paper_tables.yaml) and ours minus it, in points.",)
    if show:
        return ("Published numbers are not shown: reference/paper_tables.yaml was not found.",)
    return ("Published numbers are not shown: these results come from the synthetic corpus, on which the "
            "paper's real-corpus scores are not comparable (they are in reference/paper_tables.yaml).",)


def _extra_tasks(idx: RunIndex, layout: PaperLayout) -> list[str]:
    known = {t for table in layout.tables.task_tables() for t in table.tasks} | set(DISCRIMINATION_KINDS)
    return sorted({r.task for r in idx.runs if r.kind == "classification" and r.task not in known})


def _pair_prefix(ctx: _Context, task: str, language: str) -> str:
    tasks, languages = ctx.layout.tasks, ctx.layout.languages
    return f"{tasks[task].abbr if task in tasks else task.capitalize()}-{languages.get(language, language)}"


def _inference(record: CellResult) -> InferenceTime | None:
    return record.analyses.inference_time if record.analyses is not None else None


# --------------------------------------------------------------------------- classification tables
def _gender_table(ctx: _Context) -> Table | None:
    return _classification_table(ctx, ctx.layout.tables.gender, tasks=ctx.layout.tables.gender.tasks)


def _emotion_table(ctx: _Context) -> Table | None:
    return _classification_table(ctx, ctx.layout.tables.emotion, tasks=ctx.layout.tables.emotion.tasks)


def _semantic_table(ctx: _Context) -> Table | None:
    return _classification_table(ctx, ctx.layout.tables.semantic, tasks=ctx.layout.tables.semantic.tasks)


def _extra_task_table(ctx: _Context, task: str) -> Table | None:
    spec = ctx.layout.tables.extra_task
    named = TableLayout(name=spec.name.replace("{task}", task), title=spec.title.replace("{task}", task))
    return _classification_table(ctx, named, tasks=(task,))


def _classification_table(ctx: _Context, spec: TableLayout, *, tasks: Sequence[str]) -> Table | None:
    """Score columns (F1, UAR, each with the published one), the 10%-capacity column per
    (task, language), then parameters and inference time."""
    idx = ctx.index
    pairs = idx.pairs(where=lambda r: r.task in tasks)
    if not pairs:
        return None
    columns: list[Column] = []
    for task, lang in pairs:
        columns += _score_columns(ctx, task, lang)
        if any(capacity_f1(r.record) is not None for r in idx.at_any(task, lang)):
            columns.append(Column(f"{task}.{lang}.capacity", f"{_pair_prefix(ctx, task, lang)} 10% F1 (change)",
                                  "capacity", better="higher"))
    columns += _model_columns(ctx)
    rows = [_classification_row(ctx, meta, columns) for meta in idx.rows_with(where=lambda r: r.task in tasks)]
    footer = (_ci_footer(ctx, rows, columns), *_marks_footer(rows), *_model_columns_footer(ctx, columns),
              _heads_footer(ctx, tasks))
    return _finish(ctx, spec, columns=columns, rows=rows, footer=footer)


def _heads_footer(ctx: _Context, tasks: Iterable[str]) -> str:
    """The probe heads of ``tasks`` as the results record them: head, its arguments, epochs cap,
    patience and batch size (per distinct recipe, e.g. the word-level one of the small models)."""
    parts = []
    for task in tasks:
        recipes: dict[str, set[str]] = {}
        for r in ctx.index.runs:
            ds = r.record.downstream
            if r.task != task or r.status != "ok" or ds is None or r.kind != "classification":
                continue
            recipes.setdefault(_recipe_text(ds.head, ds.head_args, ds.training), set()).add(
                "word-level rows" if ds.word_level else "")
        if recipes:
            texts = [f"{text}{' (' + ', '.join(sorted(w for w in who if w)) + ')' if any(who) else ''}"
                     for text, who in sorted(recipes.items())]
            parts.append(f"{task}: {'; '.join(texts)}")
    if not parts:
        return ""
    return f"Probe heads of profile `{ctx.profile}`: " + ". ".join(parts) + "."


def _recipe_text(head: str | None, head_args: Mapping[str, Any] | None, training: Mapping[str, Any] | None) -> str:
    args = ", ".join(f"{k} {v}" for k, v in sorted((head_args or {}).items()))
    t = training or {}
    bits = [f"up to {t['max_epochs']} epochs" if t.get("max_epochs") is not None else "",
            f"patience {t['patience']}" if t.get("patience") is not None else "",
            f"batch {t['batch_size']}" if t.get("batch_size") is not None else "",
            f"lr {t['lr']:g}" if isinstance(t.get("lr"), int | float) else ""]
    return f"{head or '?'}{f' ({args})' if args else ''}, " + ", ".join(b for b in bits if b)


def _score_columns(ctx: _Context, task: str, lang: str) -> list[Column]:
    prefix = _pair_prefix(ctx, task, lang)
    cols = []
    for metric, label in (("f1_micro", "F1"), ("uar", "UAR")):
        cols.append(Column(f"{task}.{lang}.{metric}", f"{prefix} {label}", "score", better="higher"))
        if ctx.published is not None:
            cols.append(Column(f"{task}.{lang}.{metric}.paper", f"{prefix} {label} paper (Δ)", "published"))
    return cols


def _model_columns(ctx: _Context) -> list[Column]:
    cols = [Column("params", "Params", "params")]
    if any(_inference(r.record) is not None for r in ctx.index.runs):
        cols.append(Column("inference_full_s", "Inference (s)", "seconds"))
    return cols


def _model_columns_footer(ctx: _Context, columns: Sequence[Column]) -> tuple[str, ...]:
    lines = ["Params: parameters of the embedding model, counted by the inference-time analysis where it ran, "
             "else as published on the model card; for a model used through its encoder (the small models), "
             "encoder / whole training model (the paper's Table IX counts whole models)."]
    if any(c.key == "inference_full_s" for c in columns):
        lines.append(f"Inference (s): embedding the whole {_inference_cell_label(ctx)} test set, batch size 1 "
                     "(see Table IX).")
    if any(c.kind == "capacity" for c in columns):
        lines.append("10% F1 (change): micro-F1 of a probe on the 10% most important dimensions (Integrated "
                     "Gradients) and its relative change versus all dimensions, in % (+ is a gain; see Table VIII).")
    return tuple(lines)


def _inference_cell_label(ctx: _Context) -> str:
    timed = next((r for r in ctx.index.runs if _inference(r.record) is not None), None)
    return f"{timed.task}/{timed.language}" if timed else "?"


def _classification_row(ctx: _Context, meta: RowMeta, columns: Sequence[Column]) -> Row:
    idx = ctx.index
    cells: dict[str, Cell] = {}
    for col in columns:
        parts = col.key.split(".")
        if col.kind == "score":
            task, lang, metric = parts
            cells[col.key] = score_cell(idx.at(meta.key, task, lang), metric_measure(metric), notes=ctx.notes,
                                        n_boot=ctx.n_boot)
        elif col.kind == "published":
            task, lang, metric = parts[:3]
            paper = ctx.paper(task, lang, meta.paper_row, 0 if metric == "f1_micro" else 1)
            cells[col.key] = published_cell(paper, cells.get(".".join(parts[:3])))
        elif col.kind == "capacity":
            task, lang = parts[:2]
            cells[col.key] = capacity_cell(idx.at(meta.key, task, lang), notes=ctx.notes, n_boot=ctx.n_boot)
    cells.update(_model_cells(ctx, meta, columns))
    return Row(meta.key, meta.display, meta.group, cells)


def _model_cells(ctx: _Context, meta: RowMeta, columns: Sequence[Column]) -> dict[str, Cell]:
    """Params and inference time of a row: from its inference-time analysis, else the card."""
    runs = ctx.index.row_runs(meta.key)
    inference = next((t for t in (_inference(r.record) for r in runs) if t is not None), None)
    cells = {"params": params_cell(runs, inference)}
    if any(c.key == "inference_full_s" for c in columns):
        full = inference.subsets.full if inference is not None and inference.subsets is not None else None
        cells["inference_full_s"] = plain_cell(full.upstream_s if full is not None else None)
    return cells


def params_cell(runs: Sequence[Run], inference: InferenceTime | None) -> Cell:
    """Params of a row: the upstream counted by the inference-time analysis, else as published.
    For a model used through its encoder (the small models), "encoder / whole model": the whole
    training model as counted (``params_full_model``), else as published on the card (the
    paper's Table IX counts whole models)."""
    counted = number(inference.params) if inference is not None else None
    published = next((p for p in (_published_params(r) for r in runs) if p is not None), None)
    if counted is None:
        return plain_cell(published)
    whole = number(inference.params_full_model) if inference is not None else None
    if whole is None and _small_model(runs) and published and published != counted:
        whole = published
    if whole is None or format_params(whole) == format_params(counted):
        return plain_cell(counted)
    return Cell(value=counted, text=f"{format_params(counted)} / {format_params(whole)}", status="ok")


def _small_model(runs: Sequence[Run]) -> bool:
    ups = [r.record.upstream for r in runs if r.record.upstream is not None]
    return any(u.family == "small" or u.group == "small" or u.granularity == "word" for u in ups)


def _published_params(run: Run) -> float | None:
    up = run.record.upstream
    return number(up.params_published) if up is not None else None


# --------------------------------------------------------------------------- Table II: layers
def _layers_table(ctx: _Context) -> Table | None:
    """Table II: the layer each classification probe read, per task group and language."""
    idx, layout = ctx.index, ctx.layout
    layer_groups = layout.layer_groups

    def chosen(r: Run) -> bool:
        return r.kind == "classification" and r.task_group in layer_groups

    def group_index(task: str) -> int:
        group = layout.tasks[task].group if task in layout.tasks else None
        return layer_groups.index(group) if group in layer_groups else 9

    pairs = sorted(idx.pairs(where=chosen), key=lambda p: (group_index(p[0]), *idx.task_language_order(p)))
    columns: list[Column] = []
    for task, lang in pairs:
        columns.append(Column(f"{task}.{lang}.layer", _pair_prefix(ctx, task, lang), "layer", digits=0))
        if ctx.published is not None:
            columns.append(Column(f"{task}.{lang}.layer.paper", f"{_pair_prefix(ctx, task, lang)} paper (Δ)",
                                  "published", digits=0))
    rows = [_layer_row(ctx, meta, columns) for meta in idx.rows_with(where=chosen) if _has_layers(ctx, meta)]
    footer = ("Layer index: 0 = the CNN / embedding output, i = transformer layer i (the paper's 1-based "
              "index). Single-layer embeddings have no layer to choose and are not listed; – in a cell: a "
              "single-layer result or no result.",
              "Choice: the layer whose sweep probe (trained on the downstream's sweep.fraction of the training split) has the highest dev "
              "micro-F1; exact ties go to the lower layer, near-ties are not broken otherwise. The result files "
              "record each layer's dev score with its 95% interval (layer.curve_low / curve_high): layers inside "
              "the best one's interval cannot be told apart on the dev set, so such a choice is noise.",
              *_marks_footer(rows))
    return _finish(ctx, layout.tables.layers, columns=columns, rows=rows, footer=footer)


def _num_layers(run: Run) -> float:
    layer = run.record.layer
    return (number(layer.num_layers) if layer is not None else None) or 0


def _has_layers(ctx: _Context, meta: RowMeta) -> bool:
    ok = [r for r in ctx.index.row_runs(meta.key) if r.status == "ok" and r.kind == "classification"]
    if not ok:
        return meta.group != ctx.layout.row_groups[0].key
    return any(_num_layers(r) > 1 for r in ok)


def _layer_row(ctx: _Context, meta: RowMeta, columns: Sequence[Column]) -> Row:
    cells: dict[str, Cell] = {}
    languages = list(ctx.layout.languages)
    for col in columns:
        task, lang = col.key.split(".")[:2]
        if col.kind == "layer":
            cells[col.key] = _layer_cell(ctx.index.at(meta.key, task, lang), notes=ctx.notes)
        else:
            group = ctx.layout.tasks[task].group if task in ctx.layout.tasks else task
            lang_pos = languages.index(lang) if lang in languages else -1
            cells[col.key] = published_cell(ctx.paper("best_layer", group, meta.paper_row, lang_pos),
                                            cells.get(f"{task}.{lang}.layer"), digits=0)
    return Row(meta.key, meta.display, meta.group, cells)


def _layer_cell(runs: Sequence[Run], *, notes: Notes) -> Cell:
    bad = failure_notes(runs, notes)
    ok = [r for r in runs if r.status == "ok"]
    chosen = (number(r.record.layer.chosen) if r.record.layer is not None else None for r in ok)
    layers = sorted({int(v) for v in chosen if v is not None})
    multi = any(_num_layers(r) > 1 for r in ok)
    if not ok:
        return Cell(status="n/a" if bad else "missing", notes=bad)
    if not layers or not multi:
        return Cell(notes=bad)
    fallback = any(language_fallback(r) for r in ok)
    text = "/".join(str(la) for la in layers) if len(layers) > 1 else None
    # a "*" cell whose English source could not run swept on its own data: said, so the "*" never
    # claims an English layer that was not used (the sweep step writes this in the layer's rule)
    local = tuple(sorted({notes.add("English model, but its English source cell could not run here: the layer "
                                    "was swept on this language's data", where(r))
                          for r in ok if language_fallback(r) and r.record.layer is not None
                          and "cannot run here" in str(r.record.layer.rule or "")}))
    return Cell(value=float(layers[0]), text=text, seeds=len(ok), fallback=fallback, status="ok",
                notes=tuple(sorted({*bad, *local})))


# --------------------------------------------------------------------------- discrimination tables
def _word_table(ctx: _Context) -> Table | None:
    """Table V: word discrimination accuracy, matched and mismatched vocabularies."""
    idx, languages = ctx.index, ctx.layout.languages
    entries = {(e.setting, e.language) for r in idx.runs if r.kind == "word_discrimination" and r.status == "ok"
               for e in word_entries(r)}
    runs = [r for r in idx.runs if r.kind == "word_discrimination"]
    if not runs:
        return None
    settings = sorted(entries | {("matched", r.language) for r in runs},
                      key=lambda p: (p[0] != "matched", *idx.task_language_order(("", p[1]))[1:]))
    columns: list[Column] = []
    for setting, lang in settings:
        header = f"{setting.capitalize()} {languages.get(lang, lang)}"
        columns.append(Column(f"{setting}.{lang}", header, "score", better="higher"))
        if ctx.published is not None:
            columns.append(Column(f"{setting}.{lang}.paper", f"{header} paper (Δ)", "published"))
    rows = [_word_row(ctx, meta, columns, runs)
            for meta in idx.rows_with(where=lambda r: r.kind == "word_discrimination")]
    footer = (_ci_footer(ctx, rows, columns),
              "Accuracy: share of triplets with cos(anchor, positive) > cos(anchor, negative). Mismatched "
              "columns are named by the test language (the paper's convention) and hold scores only for models "
              "trained for a language (the small models): MFCC, a single-language model run everywhere and the "
              "random-init controls are the same model in every language, so their mismatched score would repeat "
              "the other language's matched one.", *_marks_footer(rows))
    return _finish(ctx, ctx.layout.tables.word_discrimination, columns=columns, rows=rows, footer=footer)


def _word_row(ctx: _Context, meta: RowMeta, columns: Sequence[Column], runs: Sequence[Run]) -> Row:
    cells: dict[str, Cell] = {}
    mine = [r for r in runs if r.row == meta.key]
    for col in columns:
        setting, lang = col.key.split(".")[:2]
        if col.kind == "published":
            cells[col.key] = published_cell(ctx.paper("word_discrimination", setting, meta.paper_row, lang),
                                            cells.get(f"{setting}.{lang}"))
            continue
        cells[col.key] = word_cell(mine, setting=setting, lang=lang, notes=ctx.notes, n_boot=ctx.n_boot)
    return Row(meta.key, meta.display, meta.group, cells)


def _emotion_discrimination_table(ctx: _Context) -> Table | None:
    """Table VII: emotion discrimination accuracy per language."""
    idx, languages = ctx.index, ctx.layout.languages

    def disc(r: Run) -> bool:
        return r.kind == "emotion_discrimination"

    columns: list[Column] = []
    for task, lang in idx.pairs(where=disc):
        columns.append(Column(f"{task}.{lang}", languages.get(lang, lang), "score", better="higher"))
        if ctx.published is not None:
            columns.append(Column(f"{task}.{lang}.paper", f"{languages.get(lang, lang)} paper (Δ)", "published"))
    rows = []
    for meta in idx.rows_with(where=disc):
        cells: dict[str, Cell] = {}
        for col in columns:
            task, lang = col.key.split(".")[:2]
            if col.kind == "score":
                cells[col.key] = score_cell(idx.at(meta.key, task, lang), metric_measure("accuracy"),
                                            notes=ctx.notes, n_boot=ctx.n_boot)
            else:
                cells[col.key] = published_cell(ctx.paper("emotion_discrimination", meta.paper_row, lang),
                                                cells.get(f"{task}.{lang}"))
        rows.append(Row(meta.key, meta.display, meta.group, cells))
    footer = (_ci_footer(ctx, rows, columns), "Accuracy: share of utterance triplets whose anchor is closer (cosine) to "
              "the same-emotion utterance than to the other-emotion one.", *_marks_footer(rows))
    return _finish(ctx, ctx.layout.tables.emotion_discrimination, columns=columns, rows=rows, footer=footer)


# --------------------------------------------------------------------------- Table VIII: capacity
def _capacity_table(ctx: _Context) -> Table | None:
    """Table VIII: micro-F1 with all dimensions and with the 10% most important ones."""
    idx = ctx.index
    pairs = idx.pairs(where=lambda r: capacity_f1(r.record) is not None)
    if not pairs:
        return None
    columns: list[Column] = []
    for task, lang in pairs:
        prefix = _pair_prefix(ctx, task, lang)
        columns += [Column(f"{task}.{lang}.f1_micro", f"{prefix} F1 (all dims)", "score", better="higher"),
                    Column(f"{task}.{lang}.capacity", f"{prefix} 10% F1 (change)", "capacity", better="higher")]
        if ctx.published is not None:
            columns += [Column(f"{task}.{lang}.capacity.paper", f"{prefix} 10% F1 paper (Δ)", "published"),
                        Column(f"{task}.{lang}.capacity.paper_change", f"{prefix} paper change", "pct")]
    columns.append(Column("capacity_k", "Dims kept (k)", "text"))
    capacity_tasks = {t for t, _ in pairs}
    rows = [_capacity_row(ctx, meta, columns)
            for meta in idx.rows_with(where=lambda r: r.task in capacity_tasks and r.kind == "classification")]
    footer = (_ci_footer(ctx, rows, columns),
              "10% F1 (change): a probe trained on the 10% most important embedding dimensions (Integrated "
              "Gradients), mean over the seeds that ran the analysis, [its interval], then (its relative change "
              "versus all dimensions, in %, + is a gain [interval]). The change is that of the seed means over "
              "the same seeds, 100 (10% F1 - F1) / F1; its interval reweights the full and the 10% probe's test "
              "items alike in each replicate (harness.stats.relative_change_ci). Results without per-item "
              "capacity predictions (written before they were stored) have no interval.",
              _repeats_footer(idx.runs),
              *_marks_footer(rows))
    return _finish(ctx, ctx.layout.tables.capacity, columns=columns, rows=rows, footer=footer)


def _repeats_footer(runs: Sequence[Run]) -> str:
    """How many times each seed's 10% head was retrained (``analyses.capacity_repeats``)."""
    counts = sorted({len(cap.seeds) if cap.seeds else 1
                     for cap in (capacity_section(r.record) for r in runs if r.status == "ok") if cap is not None})
    if counts in ([], [1]):
        return "One retraining of the 10% probe per seed (the paper's code)."
    text = " or ".join(map(str, counts))
    return (f"The 10% probe is retrained {text} times per seed on the same dimensions (analyses.capacity_repeats; "
            "seeds seed + 1000 r; the paper's code: once): the 10% F1 is the mean over every seed and "
            "retraining, and its interval and the change's draw one of them in each replicate, each "
            "retraining paired with its seed's full-dimension probe.")


def _capacity_k(run: Run) -> float | None:
    cap = capacity_section(run.record)
    return number(cap.k) if cap is not None else None


def _capacity_row(ctx: _Context, meta: RowMeta, columns: Sequence[Column]) -> Row:
    idx = ctx.index
    cells: dict[str, Cell] = {}
    for col in columns:
        if col.key == "capacity_k":
            ks = sorted({int(k) for k in (_capacity_k(r) for r in idx.row_runs(meta.key)) if k is not None})
            cells[col.key] = Cell(text="/".join(map(str, ks)), status="ok") if ks else Cell()
            continue
        task, lang = col.key.split(".")[:2]
        runs = idx.at(meta.key, task, lang)
        if col.kind == "score":
            cells[col.key] = score_cell(runs, metric_measure("f1_micro"), notes=ctx.notes, n_boot=ctx.n_boot)
        elif col.kind == "capacity":
            cells[col.key] = capacity_cell(runs, notes=ctx.notes, n_boot=ctx.n_boot)
        elif col.kind == "published":
            paper = ctx.paper(f"capacity_10pct_{lang}", meta.paper_row, task, 0)
            cells[col.key] = published_cell(paper, cells.get(f"{task}.{lang}.capacity"))
        else:
            cells[col.key] = plain_cell(ctx.paper(f"capacity_10pct_{lang}", meta.paper_row, task, 1))
    return Row(meta.key, meta.display, meta.group, cells)


# --------------------------------------------------------------------------- Table IX: inference time
def _subset_value(subset: str, attr: str) -> Callable[[InferenceTime], object]:
    def read(t: InferenceTime) -> object:
        part = getattr(t.subsets, subset) if t.subsets is not None else None
        return getattr(part, attr) if part is not None else None

    return read


# (key, header, kind, better, the value in the inference-time section)
INFERENCE_COLUMNS: tuple[tuple[str, str, str, str | None, Callable[[InferenceTime], object]], ...] = (
    ("params", "Params", "params", None, lambda t: t.params),
    ("full_s", "Full: upstream (s)", "seconds", "lower", _subset_value("full", "upstream_s")),
    ("head_s", "Full: head (s)", "seconds", "lower", _subset_value("full", "head_s")),
    ("short_s", "Short (s)", "seconds", "lower", _subset_value("short", "paper_style_s")),
    ("long_s", "Long (s)", "seconds", "lower", _subset_value("long", "paper_style_s")),
    ("throughput", "Audio s / s", "number", "higher",
     lambda t: t.extraction.audio_s_per_s if t.extraction is not None else None),
    ("device", "Device", "text", None, lambda t: t.device),
)


def _inference_table(ctx: _Context) -> Table | None:
    """Table IX: parameters and inference time, from each row's inference-time analysis."""
    idx = ctx.index
    timed = [r for r in idx.runs if _inference(r.record) is not None]
    if not timed:
        return None
    task, lang = timed[0].task, timed[0].language
    columns = [Column(key, header, kind, better=better, digits=0 if kind == "params" else 2)
               for key, header, kind, better, _ in INFERENCE_COLUMNS]
    if ctx.published is not None:
        columns += [Column("paper_params", "Params paper", "params"),
                    *(Column(f"paper_{k}", f"{k.capitalize()} paper (s)", "reference") for k in ("full", "short", "long"))]
    rows = [_inference_row(ctx, meta, task=task, lang=lang)
            for meta in idx.rows_with(where=lambda r: (r.task, r.language) == (task, lang))]
    footer = (f"Embedding the {task}/{lang} test set with batch size 1, warm-up excluded: Full = every test utterance, "
              "its upstream and probe-head times apart (the paper mixed them); Short / Long = the short and long "
              f"subsets, here {_subset_counts(timed)} (the paper: 15 utterances under 3 s and 15 over 15 s; times of "
              "so few utterances are indicative only), audio loading + upstream + head as the "
              "paper's wall clock. Audio s / s: throughput of the harness's batched extraction over the corpus. "
              "Seconds depend on the device and its threads (in the result files); the paper's were measured on an "
              "NVIDIA GeForce RTX 2080, so no difference is given.",
              *_marks_footer(rows))
    return _finish(ctx, ctx.layout.tables.inference_time, columns=columns, rows=rows, footer=footer)


def _subset_counts(runs: Sequence[Run]) -> str:
    """"N short and M long utterances" over the timed rows (a range where rows differ)."""
    def counts(name: str) -> str:
        found = sorted({int(c) for t in (_inference(r.record) for r in runs) if t is not None and t.subsets is not None
                        for part in [getattr(t.subsets, name)] if part is not None
                        for c in [number(part.count)] if c is not None})
        return "?" if not found else str(found[0]) if len(found) == 1 else f"{found[0]}–{found[-1]}"

    return f"{counts('short')} short and {counts('long')} long utterances"


def _inference_row(ctx: _Context, meta: RowMeta, *, task: str, lang: str) -> Row:
    runs = ctx.index.at(meta.key, task, lang)
    timed = next((t for t in (_inference(r.record) for r in runs) if t is not None), None)
    cells: dict[str, Cell]
    if timed is None:
        bad = failure_notes(runs, ctx.notes)
        empty = Cell(status="n/a" if bad else "missing", notes=bad)
        cells = {key: empty for key, *_ in INFERENCE_COLUMNS}
        cells["params"] = plain_cell(_published_params(runs[0]) if runs else None)
    else:
        cells = {key: plain_cell(read(timed)) for key, _, kind, _, read in INFERENCE_COLUMNS if kind != "text"}
        cells["params"] = params_cell(runs, timed)
        cells["device"] = Cell(text=str(timed.device), status="ok") if timed.device is not None else Cell()
    cells["paper_params"] = plain_cell(ctx.paper("models", meta.paper_row, "params"))
    for k in ("full", "short", "long"):
        cells[f"paper_{k}"] = plain_cell(ctx.paper("inference_time_s", meta.paper_row, k))
    return Row(meta.key, meta.display, meta.group, cells)


# --------------------------------------------------------------------------- finishing
def _finish(ctx: _Context, spec: TableLayout, *, columns: Sequence[Column], rows: Sequence[Row],
            footer: Sequence[str]) -> Table:
    groups = tuple(RowGroupLabel(g.key, g.label) for g in ctx.layout.row_groups)
    marked = _mark_ties(_mark_best(rows, columns, groups), columns, groups, n_boot=ctx.n_boot)
    tested = any(c.tied_with_best is not None for r in marked for c in r.cells.values())
    significance = significance_text(ctx.n_boot, marked) if tested else ""
    return Table(name=spec.name, title=spec.title, profile=ctx.profile, columns=tuple(columns),
                 rows=tuple(marked), notes=ctx.notes.rendered(),
                 footer=tuple(f for f in (*footer, *((f"{TIED_MARK} {significance}",) if tested else ())) if f),
                 groups=groups, significance=significance)


SIGNIFICANCE_LEVEL = 0.95


def significance_text(n_boot: int, rows: Sequence[Row]) -> str:
    """The footer's (and the JSON table's ``significance``) statement of the paired test."""
    kinds = {c.clustered for r in rows for c in r.cells.values() if c.tied_with_best is not None}
    clustered = "speaker-clustered (test speakers, then their utterances, resampled alike for both models)"
    items = "item bootstrap (test items resampled alike for both models, as if independent: these results do not " \
            "name their speakers)"
    how = items if kinds == {False} else clustered + ("; item bootstrap where a result does not name its speakers"
                                                      if False in kinds else "")
    return (f"not significantly worse than the best of its group in that column (tied_with_best in the JSON): "
            f"paired bootstrap on the same test items, {how}, {n_boot} replicates, scores averaged over seeds in "
            f"each replicate; the two-sided {SIGNIFICANCE_LEVEL:.0%} interval of (best - this) contains 0, i.e. "
            f"level {1 - SIGNIFICANCE_LEVEL:.2f} (harness.stats.paired_difference). The best itself is marked "
            "tied_with_best: true but shown in bold only.")


def _mark_ties(rows: Sequence[Row], columns: Sequence[Column], groups: Sequence[RowGroupLabel], *,
               n_boot: int) -> list[Row]:
    """``tied_with_best`` on every score of a column that has a better direction, per row group:
    True for the group's best (the highest or lowest unrounded mean among the cells with per-item
    samples) and for the cells the paired test does not find significantly worse, False for the
    others; None where nothing was tested (no samples, a group of one)."""
    from ..stats import paired_difference

    verdicts: dict[tuple[str, str], bool] = {}
    for col in columns:
        if col.better is None or col.kind not in ("score", "capacity"):
            continue
        metric = _column_metric(col)
        for group in groups:
            cells = [(r.key, c) for r in rows if r.group == group.key
                     for c in [r.cells.get(col.key)] if c is not None and c.status == "ok" and c.value is not None
                     and c.samples]
            if len(cells) < 2:
                continue
            sign = 1.0 if col.better == "higher" else -1.0
            best_key, best = max(cells, key=lambda kc: sign * (kc[1].value or 0.0))
            for key, cell in cells:
                if key == best_key:
                    verdicts[(key, col.key)] = True
                    continue
                test = paired_difference(best.samples, cell.samples, metric=metric, n_boot=n_boot,
                                         level=SIGNIFICANCE_LEVEL,
                                         clustered=all(s.clustered for s in (*best.samples, *cell.samples)))
                verdicts[(key, col.key)] = not test.significant if sign > 0 else not (
                    np.isfinite(test.high) and test.high < 0)
    return [replace(r, cells={k: replace(c, tied_with_best=verdicts[(r.key, k)]) if (r.key, k) in verdicts else c
                              for k, c in r.cells.items()}) for r in rows]


def _column_metric(col: Column) -> str:
    """The bootstrap metric of a score column (its key's last part when it names one)."""
    last = col.key.split(".")[-1]
    if col.kind == "capacity":
        return "f1_micro"
    return last if last in ("f1_micro", "uar") else "accuracy"


def _mark_best(rows: Sequence[Row], columns: Sequence[Column], groups: Sequence[RowGroupLabel]) -> list[Row]:
    """Bold the best value per row group and column (ties: all of them), where the group has two or
    more values to compare; values are compared as displayed."""
    best: dict[tuple[str, str], float] = {}
    for col in columns:
        if col.better is None:
            continue
        for group in groups:
            values = [round(c.value, col.digits) for r in rows if r.group == group.key
                      for c in [r.cells.get(col.key)] if c is not None and c.status == "ok" and c.value is not None]
            if len(values) >= 2:
                best[(group.key, col.key)] = max(values) if col.better == "higher" else min(values)
    out = []
    for r in rows:
        cells = {k: replace(c, best=True) if (r.group, k) in best and c.value is not None and c.status == "ok"
                 and round(c.value, next(col.digits for col in columns if col.key == k)) == best[(r.group, k)]
                 else c for k, c in r.cells.items()}
        out.append(replace(r, cells=cells))
    return out


def _ci_footer(ctx: _Context, rows: Sequence[Row], columns: Sequence[Column]) -> str:
    """How the scores and intervals were made: seeds per column, the bootstrap, and which cells
    fell back to the item bootstrap."""
    scored = [c for c in columns if c.kind in ("score", "capacity")]
    cells = [cell for r in rows for c in scored for cell in [r.cells.get(c.key)] if cell is not None and cell.status == "ok"]
    item_only = sum(1 for c in cells if c.clustered is False)
    with_interval = sum(1 for c in cells if c.clustered is not None)
    text = (f"Scores: mean over seeds ({_seed_counts(rows, scored)}) [95% confidence interval]. The interval is a "
            f"percentile bootstrap with {ctx.n_boot} replicates, speaker-clustered: each replicate draws the test "
            "speakers with replacement, then the utterances of each drawn speaker with replacement (word items "
            "go with their utterance; a triplet belongs to its anchor's speaker), and one seed uniformly, so "
            "speaker, item and seed variation are pooled (harness.stats.clustered_ci).")
    if with_interval > item_only:
        text += (" A clustered interval is never narrower than the exact binomial (Clopper-Pearson) interval of "
                 "each seed's share right over its test utterances (or triplets) taken as independent trials: "
                 "the bootstrap alone is a point at 0% and 100% (harness.stats.exact_floor).")
    if item_only:
        which = "every interval" if item_only == with_interval else f"{item_only} of {with_interval} intervals"
        text += (f" Item bootstrap for {which}: those results do not name their items' speakers (written before "
                 "speakers were recorded), so test items are resampled as if independent, which is too narrow "
                 "(harness.metrics.bootstrap_ci).")
    return text + " Bold: the best value per model group and column."


def _seed_counts(rows: Sequence[Row], columns: Sequence[Column]) -> str:
    """Seeds per score by column: "2 seeds per score" when uniform, else "seeds per score: 2 in
    <columns>; 1 in <columns>" (a column whose rows differ shows its range)."""
    by_count: dict[str, list[str]] = {}
    for col in columns:
        counts = sorted({c.seeds for r in rows for c in [r.cells.get(col.key)] if c is not None and c.status == "ok"})
        if not counts:
            continue
        text = str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
        by_count.setdefault(text, []).append(col.header)
    if not by_count:
        return "seeds per score: –"
    if len(by_count) == 1:
        return f"seeds per score: {next(iter(by_count))} in every column"
    return "seeds per score: " + "; ".join(f"{n} in {', '.join(headers)}" for n, headers in by_count.items())


def _marks_footer(rows: Sequence[Row]) -> tuple[str, ...]:
    cells = [c for r in rows for c in r.cells.values()]
    lines = []
    if any(c.fallback for c in cells):
        lines.append("\\* no model for this language: the English one was used (the paper's mark).")
    if any(c.status == "n/a" for c in cells):
        lines.append("n/a: the cell failed or could not run; the numbered note gives the reason.")
    if any(c.status == "missing" for c in cells):
        lines.append("–: no result (not run, or not measured for this model).")
    return tuple(lines)
