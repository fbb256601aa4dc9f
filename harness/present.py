"""Presentation: what the ``bench`` commands print. Pure text from library values; no work.

The CLI (:mod:`harness.cli`) parses arguments, makes one library call and hands its value here.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .smallmodels import DISPLAY_NAMES

if TYPE_CHECKING:
    from .matrix.stages import MatrixRun
    from .run.cell import CellOutcome
    from .run.record import DataSummary


def print_cell_result(outcome: CellOutcome) -> None:
    """The metrics table of a finished cell (or its status and reason), then what it skipped."""
    from rich.console import Console
    from rich.table import Table

    res = outcome.result
    cell = res.cell
    title = f"{cell.upstream} / {cell.downstream} / {cell.language} / seed {cell.seed}"
    console = Console()
    if res.status != "ok":
        msg = res.reason or (res.error.message if res.error else "") or ""
        console.print(f"[bold]{title}[/]: [red]{res.status}[/]: {msg}")
        if res.status == "failed" and os.environ.get("BENCH_DEBUG") and res.error:
            console.print(res.error.traceback or "")
        return
    table = Table(title=title + (" (finished earlier; cached result)" if outcome.skipped else ""))
    table.add_column("metric")
    table.add_column("test", justify="right")
    metrics = res.metrics
    for k, label in (("f1_micro", "micro-F1"), ("uar", "UAR"), ("accuracy", "accuracy")):
        value = getattr(metrics, k) if metrics is not None else None
        if value is not None:
            table.add_row(label, f"{value:.1f}")
    if res.utterance_metrics is not None and res.utterance_metrics.f1_micro is not None:
        table.add_row("micro-F1 (utterance vote)", f"{res.utterance_metrics.f1_micro:.1f}")
    if res.analyses is not None:
        for name in ("capacity", "inference_time", "umap"):
            summary = getattr(getattr(res.analyses, name), "summary", None)
            if summary is not None:
                table.add_row(name, str(summary))
    if res.layer is not None:
        weights = res.layer.weights
        chosen = res.layer.chosen if weights is None else "weights " + " ".join(f"{w:.2f}" for w in weights)
        table.add_row("layer", f"{chosen} ({res.layer.rule})")
    t = res.timings
    table.add_row("wall time", f"{(t and t.total_s) or 0:.1f} s (features {(t and t.features_s) or 0:.1f} s, "
                               f"train {(t and t.train_s) or 0:.1f} s)")
    console.print(table)
    print_skipped(res.data)
    console.print(f"result: {outcome.path}", style="dim")


def print_skipped(data: DataSummary | None, *, shown: int = 10) -> None:
    """How many items the cell left out, by stage, and the first few with their reasons (plain
    print: long paths must not be wrapped)."""
    total = int((data and data.skipped) or 0)
    if not total or data is None:
        return
    stages = ", ".join(f"{k} {v}" for k, v in (data.skipped_by_stage or {}).items() if v)
    print(f"skipped {total} item(s)" + (f" ({stages})" if stages else "") + ":")
    examples = data.skipped_examples or []
    for line in examples[:shown]:
        print(f"  {line}")
    if total > shown:
        print(f"  ... and {total - min(shown, len(examples))} more (data.skipped_examples in the result file)")


def matrix_summary(out: MatrixRun) -> str:
    """The lines ``bench matrix`` prints after a run (counts, skipped cells, stages, leaderboards)."""
    c = out.counts
    text = (f"matrix {out.profile}: {out.cells} cells; ran {out.ran} in {out.seconds:.0f} s: "
            f"ok {c.get('ok', 0)}, failed {c.get('failed', 0)}, unavailable {c.get('unavailable', 0)}; "
            f"skipped {c.get('skipped_done', 0)} finished" +
            (f" and {c['skipped_failed']} failed (rerun them with --retry-failed)" if c.get("skipped_failed") else "") +
            ("; stages: " + ", ".join(f"{k.replace('_', ' ')} {v:.0f} s" for k, v in out.stages.items())
             if out.stages else ""))
    if out.leaderboards is not None:
        text += f"\nleaderboards: {out.leaderboards}"
    return text


def small_model_summary(info: dict[str, Any], *, model: str, language: str) -> str:
    """What ``bench train-upstream`` prints after training ``model`` for ``language``."""
    params = info.get("params", {})
    return (f"{DISPLAY_NAMES[model]} ({language}): {info.get('epochs')} epochs (best {info.get('best_epoch')}), "
            f"dev loss {info.get('best_dev_loss'):.4f}, {info.get('training_seconds'):.0f} s; parameters: encoder "
            f"{params.get('encoder')}, whole model {params.get('full')} (paper {params.get('paper')})\n"
            f"checkpoint: {info.get('checkpoint')} (recipe {info.get('recipe')})\n"
            f"card: {info.get('card')} (use --upstream {model}_{language}_{info.get('recipe')}, "
            f"or --upstream {model} with --language {language} and the same profile)")
