"""Presentation: what the ``bench`` commands print. Pure text from library values; no work.

The CLI (:mod:`harness.cli`) parses arguments, makes one library call and hands its value here.
"""

from __future__ import annotations

import os
from typing import Any

from .smallmodels import DISPLAY_NAMES


def print_cell_result(res: dict[str, Any]) -> None:
    from rich.table import Table

    cell = res.get("cell", {})
    title = f"{cell.get('upstream')} / {cell.get('downstream')} / {cell.get('language')} / seed {cell.get('seed')}"
    from rich.console import Console

    console = Console()
    status = res.get("status")
    if status != "ok":
        msg = res.get("reason") or (res.get("error") or {}).get("message", "")
        console.print(f"[bold]{title}[/]: [red]{status}[/]: {msg}")
        if status == "failed" and os.environ.get("BENCH_DEBUG"):
            console.print((res.get("error") or {}).get("traceback", ""))
        return
    table = Table(title=title + (" (finished earlier; cached result)" if res.get("_skipped") else ""))
    table.add_column("metric")
    table.add_column("test", justify="right")
    metrics = res.get("metrics", {})
    for k in ("f1_micro", "uar", "accuracy"):
        if k in metrics:
            table.add_row({"f1_micro": "micro-F1", "uar": "UAR", "accuracy": "accuracy"}[k], f"{metrics[k]:.1f}")
    if "utterance_metrics" in res:
        table.add_row("micro-F1 (utterance vote)", f"{res['utterance_metrics']['f1_micro']:.1f}")
    for name, val in (res.get("analyses") or {}).items():
        if isinstance(val, dict) and "summary" in val:
            table.add_row(name, str(val["summary"]))
    layer = res.get("layer", {})
    if layer:
        table.add_row("layer", f"{layer.get('chosen')} ({layer.get('rule')})")
    t = res.get("timings", {})
    table.add_row("wall time", f"{t.get('total_s', 0):.1f} s (features {t.get('features_s', 0):.1f} s, "
                               f"train {t.get('train_s', 0):.1f} s)")
    console.print(table)
    print_skipped(res.get("data") or {})
    console.print(f"result: {res.get('_path') or ''}".strip(), style="dim")


def print_skipped(data: dict[str, Any], *, shown: int = 10) -> None:
    """How many items the cell left out, by stage, and the first few with their reasons (plain
    print: long paths must not be wrapped)."""
    total = int(data.get("skipped") or 0)
    if not total:
        return
    stages = ", ".join(f"{k} {v}" for k, v in (data.get("skipped_by_stage") or {}).items() if v)
    print(f"skipped {total} item(s)" + (f" ({stages})" if stages else "") + ":")
    examples = data.get("skipped_examples") or []
    for line in examples[:shown]:
        print(f"  {line}")
    if total > shown:
        print(f"  ... and {total - min(shown, len(examples))} more (data.skipped_examples in the result file)")


def matrix_summary(out: dict[str, Any]) -> str:
    """The lines ``bench matrix`` prints after a run (counts, skipped cells, stages, leaderboards)."""
    c = out["counts"]
    text = (f"matrix {out['profile']}: {out['cells']} cells; ran {out['ran']} in {out['seconds']:.0f} s: "
            f"ok {c.get('ok', 0)}, failed {c.get('failed', 0)}, unavailable {c.get('unavailable', 0)}; "
            f"skipped {c.get('skipped_done', 0)} finished" +
            (f" and {c['skipped_failed']} failed (rerun them with --retry-failed)" if c.get("skipped_failed") else "") +
            ("; stages: " + ", ".join(f"{k.replace('_', ' ')} {v:.0f} s" for k, v in out["stages"].items())
             if out.get("stages") else ""))
    if "leaderboards" in out:
        text += f"\nleaderboards: {out['leaderboards']}"
    return text


def small_model_summary(info: dict[str, Any], *, model: str, language: str) -> str:
    """What ``bench train-upstream`` prints after training ``model`` for ``language``."""
    params = info.get("params", {})
    return (f"{DISPLAY_NAMES[model]} ({language}): {info.get('epochs')} epochs (best {info.get('best_epoch')}), "
            f"dev loss {info.get('best_dev_loss'):.4f}, {info.get('training_seconds'):.0f} s; parameters: encoder "
            f"{params.get('encoder')}, whole model {params.get('full')} (paper {params.get('paper')})\n"
            f"checkpoint: {info.get('checkpoint')}\ncard: {info.get('card')} (use --upstream {model}_{language}, "
            f"or --upstream {model} with --language {language})")
