"""From runs to cells: runs indexed by (row, task, language), seeds averaged with a bootstrap
interval, failures turned into numbered notes, published numbers put beside ours.

Scores are means over seeds with a 95% interval: speaker-clustered (:func:`harness.stats.clustered_ci`:
test speakers, then their utterances, resampled; seeds pooled), or the item bootstrap of
:func:`harness.metrics.bootstrap_ci` for results that do not name their items' speakers. A cell whose runs all failed or could not run is ``n/a`` citing
the reasons; a cell never run is ``missing``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..run.record import Capacity, CellResult, Metrics, Predictions, WordSetting
from ..schema import PaperLayout
from ..stats import Sample
from .model import Cell
from .records import RowMeta, Run, failure_reason, item_sample, make_run, number, row_meta


class RunIndex:
    """Runs by (row, task, language), and what each row is."""

    def __init__(self, records: Iterable[CellResult], layout: PaperLayout) -> None:
        self.layout = layout
        runs = sorted((make_run(r, layout) for r in records),
                      key=lambda r: (r.row, r.task, r.language, r.seed, r.status))
        self.runs = runs
        self.cells: dict[tuple[str, str, str], list[Run]] = {}
        by_row: dict[str, list[Run]] = {}
        for r in runs:
            self.cells.setdefault((r.row, r.task, r.language), []).append(r)
            by_row.setdefault(r.row, []).append(r)
        self.rows = {k: row_meta(k, v, layout) for k, v in by_row.items()}

    def at(self, row: str, task: str, language: str) -> list[Run]:
        return self.cells.get((row, task, language), [])

    def pairs(self, *, where: Callable[[Run], bool]) -> list[tuple[str, str]]:
        """(task, language) pairs of the runs matching ``where``, in the paper's order."""
        found = {(r.task, r.language) for r in self.runs if where(r)}
        return sorted(found, key=self.task_language_order)

    def rows_with(self, *, where: Callable[[Run], bool]) -> list[RowMeta]:
        keys = {r.row for r in self.runs if where(r)}
        groups = [g.key for g in self.layout.row_groups]
        return sorted((self.rows[k] for k in keys), key=lambda m: (groups.index(m.group), *m.order))

    def at_any(self, task: str, language: str) -> list[Run]:
        """Runs of (task, language) of every row."""
        return [r for r in self.runs if (r.task, r.language) == (task, language)]

    def row_runs(self, row: str) -> list[Run]:
        return [r for r in self.runs if r.row == row]

    def task_language_order(self, pair: tuple[str, str]) -> tuple[int, int, str, str]:
        task, lang = pair
        tasks, languages = list(self.layout.tasks), list(self.layout.languages)
        t = tasks.index(task) if task in tasks else len(tasks)
        la = languages.index(lang) if lang in languages else len(languages)
        return t, la, task, lang


# --------------------------------------------------------------------------- notes
class Notes:
    """Numbered reasons, in order of first citation; each lists the cells citing it."""

    def __init__(self) -> None:
        self._numbers: dict[str, int] = {}
        self._where: dict[int, set[str]] = {}

    def add(self, text: str, where: str) -> int:
        n = self._numbers.setdefault(text, len(self._numbers) + 1)
        self._where.setdefault(n, set()).add(where)
        return n

    def rendered(self) -> tuple[str, ...]:
        return tuple(f"{text} ({'; '.join(sorted(self._where[n]))})" for text, n in self._numbers.items())


def where(run: Run) -> str:
    return f"{run.row} {run.task}/{run.language}/seed {run.seed}"


def failure_notes(runs: Sequence[Run], notes: Notes) -> tuple[int, ...]:
    return tuple(sorted({notes.add(failure_reason(r.record), where(r)) for r in runs if r.status != "ok"}))


# --------------------------------------------------------------------------- scores over seeds
@dataclass(frozen=True)
class Measure:
    """How to read one score from a record: its value and, when stored, its per-item samples (one
    per trained probe: a capacity analysis with repeats has several)."""

    metric: str
    value: Callable[[CellResult], float | None]
    samples: Callable[[CellResult], list[Sample] | None]
    note_no_pairs: bool = True  # cite a note when a result has no per-item predictions


def metric_measure(metric: str) -> Measure:
    return Measure(metric, lambda r: _metric(r.metrics, metric), lambda r: _one(item_sample(r.predictions)))


def capacity_measure() -> Measure:
    return Measure("f1_micro", lambda r: number(capacity_f1(r)), capacity_samples, note_no_pairs=False)


def _one(s: Sample | None) -> list[Sample] | None:
    return [s] if s is not None else None


def capacity_samples(record: CellResult) -> list[Sample] | None:
    """The 10% probe's per-item samples: one per retraining (``repeats``), else the one stored;
    None when any is missing."""
    cap = capacity_section(record)
    if cap is None:
        return None
    if cap.repeats:
        found = [item_sample(r.predictions) for r in cap.repeats]
        return [s for s in found if s is not None] if all(s is not None for s in found) else None
    return _one(item_sample(cap.predictions))


def _metric(metrics: Metrics | None, name: str) -> float | None:
    return number(getattr(metrics, name, None)) if metrics is not None else None


def capacity_section(record: CellResult) -> Capacity | None:
    return record.analyses.capacity if record.analyses is not None else None


def capacity_f1(record: CellResult) -> float | None:
    """The 10%-capacity micro-F1 of a record (None: no capacity analysis)."""
    cap = capacity_section(record)
    return cap.metrics.f1_micro if cap is not None and cap.metrics is not None else None


def score_cell(runs: Sequence[Run], measure: Measure, *, notes: Notes, n_boot: int) -> Cell:
    """Mean over the ok seeds with a bootstrap interval; n/a (with notes) when none is ok.

    The interval is speaker-clustered (:func:`harness.stats.clustered_ci`) when every seed's
    predictions name their speakers; otherwise it is the item bootstrap of
    :func:`harness.metrics.bootstrap_ci` (the numbers of results written before speakers were
    recorded stay what they were) and the cell says so (``clustered=False``)."""
    bad_notes = failure_notes(runs, notes)
    ok = [r for r in runs if r.status == "ok"]
    if not ok:
        return Cell(status="n/a" if bad_notes else "missing", notes=bad_notes)
    values = [measure.value(r.record) for r in ok]
    if all(v is None for v in values):
        return Cell(status="missing", notes=bad_notes)
    fallback = any(language_fallback(r) for r in ok)
    found = [measure.samples(r.record) for r in ok]
    if all(f is not None for f in found):
        samples = tuple(s for f in found if f is not None for s in f)
        mean, low, high, clustered = seed_interval(samples, metric=measure.metric, n_boot=n_boot)
        return Cell(value=mean, low=low, high=high, seeds=len(ok), fallback=fallback, status="ok", notes=bad_notes,
                    clustered=clustered, samples=samples)
    present = [v for v in values if v is not None]
    cited = set(bad_notes)
    if measure.note_no_pairs:
        cited.add(notes.add("no per-item predictions stored: mean of the seeds' scores, no interval",
                            "; ".join(sorted({where(r) for r in ok}))))
    return Cell(value=float(np.mean(present)), seeds=len(present), fallback=fallback, status="ok",
                notes=tuple(sorted(cited)))


def seed_interval(samples: Sequence[Sample], *, metric: str, n_boot: int) -> tuple[float, float, float, bool]:
    """(mean over seeds, low, high, clustered): the clustered bootstrap when every sample names its
    speakers, else the item bootstrap (see :func:`score_cell`)."""
    from ..metrics import bootstrap_ci
    from ..stats import clustered_ci

    if all(s.clustered for s in samples):
        iv = clustered_ci(samples, metric=metric, n_boot=n_boot)
        return iv.value, iv.low, iv.high, True
    mean, low, high = bootstrap_ci([(s.y_true, s.y_pred) for s in samples], metric=metric, n_boot=n_boot)
    return mean, low, high, False


def language_fallback(run: Run) -> bool:
    up = run.record.upstream
    return bool(up.language_fallback) if up is not None else False


def capacity_cell(runs: Sequence[Run], *, notes: Notes, n_boot: int) -> Cell:
    """The 10% score over the seeds that ran the capacity analysis, and its relative change against
    the full-dimension score of the same seeds, both with intervals when every such seed stored
    its per-item predictions (the change's interval: :func:`harness.stats.relative_change_ci`, the
    base and the 10% probe reweighted alike)."""
    from ..stats import relative_change_ci

    with_capacity = [r for r in runs if r.status != "ok" or capacity_f1(r.record) is not None]
    if not any(r.status == "ok" for r in with_capacity):  # no analysis ran: "missing", citing any failure
        return score_cell(runs, capacity_measure(), notes=notes, n_boot=n_boot)
    cell = score_cell(with_capacity, capacity_measure(), notes=notes, n_boot=n_boot)
    if cell.status != "ok":
        return cell
    ok = [r for r in with_capacity if r.status == "ok"]
    base = [item_sample(r.record.predictions) for r in ok]
    new = [capacity_samples(r.record) for r in ok]
    if all(b is not None for b in base) and all(n is not None for n in new) and base:
        # each retraining of a seed is paired with that seed's full-dimension probe
        base_s = [b for b, n in zip(base, new, strict=True) if b is not None and n is not None for _ in n]
        new_s = [s for n in new if n is not None for s in n]
        iv = relative_change_ci(base_s, new_s, metric="f1_micro", n_boot=n_boot,
                                clustered=all(s.clustered for s in [*base_s, *new_s]))
        return replace(cell, delta=iv.value, delta_low=iv.low, delta_high=iv.high)
    full = [_metric(r.record.metrics, "f1_micro") for r in ok]
    cap = [number(capacity_f1(r.record)) for r in ok]
    pairs = [(f, c) for f, c in zip(full, cap, strict=True) if f is not None and c is not None]
    if len(pairs) > 1:  # no per-item predictions: the change of the seed means, no interval
        f_mean, c_mean = float(np.mean([f for f, _ in pairs])), float(np.mean([c for _, c in pairs]))
        return replace(cell, delta=100.0 * (c_mean - f_mean) / f_mean if f_mean else None)
    changes = [c for c in (capacity_change(r.record) for r in ok) if c is not None]
    return replace(cell, delta=float(np.mean(changes)) if changes else None)


def capacity_change(record: CellResult) -> float | None:
    """Relative change of micro-F1 in percent (+ is a gain): as reported, else recomputed."""
    cap = capacity_section(record)
    reported = cap.relative_change_pct if cap is not None else None
    if isinstance(reported, dict):
        reported = reported.get("f1_micro")
    if number(reported) is not None:
        return number(reported)
    new, full = number(capacity_f1(record)), _metric(record.metrics, "f1_micro")
    return 100.0 * (new - full) / full if new is not None and full else None


def published_cell(value: object, ours: Cell | None, *, digits: int = 1) -> Cell:
    v = number(value)
    if v is None:
        return Cell()
    delta = round(ours.value, digits) - v if ours is not None and ours.value is not None else None
    return Cell(value=v, delta=delta, status="ok")


def plain_cell(value: object) -> Cell:
    v = number(value)
    return Cell(value=v, status="ok") if v is not None else Cell()


# --------------------------------------------------------------------------- word discrimination
@dataclass(frozen=True)
class WordEntry:
    """One (setting, test language) score of a word-discrimination record."""

    setting: str
    language: str
    accuracy: float | None
    predictions: Predictions | None


def word_entries(run: Run) -> list[WordEntry]:
    """The matched and mismatched scores of a word-discrimination record; a record without a
    matched entry scores its own ``metrics.accuracy`` and predictions as matched."""
    section = run.record.word_discrimination
    out = []
    for setting in ("matched", "mismatched"):
        entry: WordSetting | None = getattr(section, setting) if section is not None else None
        if entry is not None and (setting == "matched" or _trained_on_a_language(run, entry)):
            out.append(WordEntry(setting, entry.test_language or run.language, number(entry.accuracy),
                                 _setting_predictions(entry)))
    accuracy = _metric(run.record.metrics, "accuracy")
    if not any(e.setting == "matched" for e in out) and accuracy is not None:
        out.append(WordEntry("matched", run.language, accuracy, run.record.predictions))
    return out


def _trained_on_a_language(run: Run, entry: WordSetting) -> bool:
    """Whether a mismatched score means anything: the model was trained for the cell's language
    (``train_language`` recorded by the cell). Results written before it was recorded: a
    word-level model (the small models, one per language) that is neither a random-init control
    nor the English model standing in for another language (card group "small" or word granularity)."""
    if "train_language" in entry.model_fields_set:
        return entry.train_language is not None
    up = run.record.upstream
    small = up is not None and (up.group == "small" or up.granularity == "word")
    return small and up is not None and not up.random_init and not up.language_fallback


def _setting_predictions(entry: WordSetting) -> Predictions | None:
    """The entry's own predictions section when it has one, else its per-triplet flags."""
    if "predictions" in entry.model_fields_set:
        return entry.predictions
    return Predictions(correct=entry.correct) if entry.correct is not None else None


def word_cell(runs: Sequence[Run], *, setting: str, lang: str, notes: Notes, n_boot: int) -> Cell:
    """The runs giving (setting, lang) entries, scored as pseudo-runs; failed cells of ``lang`` cited."""
    found: list[Run] = []
    for r in runs:
        for e in (word_entries(r) if r.status == "ok" else []):
            if (e.setting, e.language) == (setting, lang):
                record = r.record.model_copy(update={"metrics": Metrics(accuracy=e.accuracy),
                                                     "predictions": e.predictions})
                found.append(replace(r, record=record))
    if setting == "matched":
        found += [r for r in runs if r.status != "ok" and r.language == lang]
    return score_cell(found, metric_measure("accuracy"), notes=notes, n_boot=n_boot)
