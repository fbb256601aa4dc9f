"""Leaderboards from hand-made result files in the real layout (<results>/<profile>/<up>/<down>/<lang>/seedK.json)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.config import Workspace
from harness.metrics import bootstrap_ci
from harness.report import (
    build_tables,
    load_published,
    render_markdown,
    table_csv,
    write_leaderboards,
)
from harness.report.records import repository_layout
from harness.results import SCHEMA_VERSION, iter_results, result_path, write_json_atomic

N_BOOT = 200
CARDS = {  # listed name -> (display, card group, paper_row, random_init, published params)
    "mfcc": ("MFCC", "baseline", "mfcc", False, 0),
    "siamese": ("Siamese", "small", "siamese", False, 146e3),
    "wav2vec2_base": ("Wav2vec2-B", "base", "wav2vec2_base", False, 95e6),
    "hubert_base": ("HuBERT-B", "base", "hubert_base", False, 95e6),
    "wav2vec2_large": ("Wav2vec2-L", "large", "wav2vec2_large", False, 317e6),
    "wavlm_large_ft": ("WavLM-FT", "large_asr_ft", "wavlm_large_ft", False, 317e6),
    "resemblyzer": ("GE2E (Resemblyzer)", "other", None, False, 1.4e6),
    "wavlm_base_plus@random": ("WavLM-B+ (random init)", "base", "wavlm_base_plus", True, 95e6),
}
# Rows added after the frozen scenario (tests/report_scenario.py) was made: kept apart so it stays as it was.
ALL_CARDS = {**CARDS, "whisper_tiny_en": ("Whisper-tiny.en", "pretrained", None, False, 39e6),
             "whisper_tiny_en@random": ("Whisper-tiny.en (random init)", "pretrained", None, True, 39e6)}
TASKS = {"gender": ("gender", "gender"), "emotion": ("emotion", "emotion"), "intent": ("semantic", "intent"),
         "emotion_discrimination": ("emotion", "emotion_discrimination")}
ENV = {"python": "3.11.9", "platform": "Linux-x86_64", "machine": "x86_64", "cpu_count": 2,
       "packages": {"torch": "2.3.1", "numpy": "1.26.4"}, "device": "cpu"}


def predictions(*, n: int, accuracy: float, seed: int, classes: int = 2) -> dict[str, list[int]]:
    """Deterministic labels and predictions with about ``accuracy`` correct."""
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, classes, n)
    wrong = rng.random(n) > accuracy
    y_pred = np.where(wrong, (y_true + 1) % classes, y_true)
    return {"ids": [f"u{i}" for i in range(n)], "y_true": y_true.tolist(), "y_pred": y_pred.tolist()}


def make_result(upstream: str, task: str, language: str, seed: int = 0, *, status: str = "ok",
                profile: str = "smoke", corpus: str = "synth", accuracy: float = 0.8, fallback: bool = False,
                preds: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A result dict with the keys harness.cell writes (classification unless the task says otherwise)."""
    display, group, paper_row, random_init, params = ALL_CARDS[upstream]
    task_group, paper_table = TASKS[task]
    kind = "emotion_discrimination" if task == "emotion_discrimination" else "classification"
    res: dict[str, Any] = {
        "schema": SCHEMA_VERSION, "status": status, "key": f"k-{upstream}-{task}-{language}-{seed}",
        "cell": {"profile": profile, "upstream": upstream, "downstream": task, "language": language, "seed": seed,
                 "task": task},
        "upstream": {"name": upstream, "listed": upstream, "display": display, "group": group, "family": "x",
                     "paper_row": paper_row, "params_published": params, "random_init": random_init,
                     "languages": ["en"], "language_fallback": fallback, "granularity": "frame", "revision": "1"},
        "task": {"name": task, "kind": kind, "label": task, "group": task_group, "version": 1, "corpus": corpus,
                 "paper_table": paper_table},
        "timings": {"total_s": 2.5},
    }
    if status == "ok":
        p = preds or predictions(n=60, accuracy=accuracy, seed=zlib.crc32(f"{upstream}/{task}/{language}/{seed}".encode()))
        yt, yp = np.asarray(p.get("y_true", [])), np.asarray(p.get("y_pred", []))
        acc = 100.0 * float(np.mean(yt == yp)) if len(yt) else 0.0
        res.update({"metrics": {"f1_micro": acc, "uar": acc, "accuracy": acc, "n": len(yt)}, "predictions": p,
                    "layer": {"chosen": 3, "rule": "sweep", "num_layers": 13, "curve": {"1": 50.0, "3": 60.0}},
                    "analyses": {}, "environment": ENV, "features": {}})
    elif status == "unavailable":
        res["reason"] = extra.pop("reason", "corpus 'fesc' has no root folder: set it in benchmark.yaml")
    else:
        res["error"] = {"type": "RuntimeError", "message": "CUDA out of memory\nTried to allocate 2 GiB",
                        "traceback": "Traceback ...\nRuntimeError: CUDA out of memory"}
    res.update(extra)
    return res


def write(results_dir: Path, res: dict[str, Any]) -> Path:
    c = res["cell"]
    path = result_path(results_dir, profile=c["profile"], upstream=c["upstream"], downstream=c["downstream"],
                       language=c["language"], seed=c["seed"])
    write_json_atomic(path, res)
    return path


def tables_by_name(results: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    kw.setdefault("published", load_published())
    kw.setdefault("profile", "smoke")
    return {t.name: t for t in build_tables(results, n_boot=N_BOOT, **kw)}


def markdown_line(md: str, display: str) -> str:
    return next(line for line in md.splitlines() if line.startswith(f"| {display} "))


# --------------------------------------------------------------------------- grouping and bold
def test_rows_grouped_in_paper_order_with_header_rows() -> None:
    results = [make_result(up, "gender", "en") for up in ALL_CARDS]
    md = render_markdown(tables_by_name(results)["table1_gender"])
    labels = [g.label for g in repository_layout().row_groups]
    positions = [md.index(f"| **{label}**") for label in labels]
    assert positions == sorted(positions), "groups: small, base, large, large ASR fine-tuned, pretrained, other, controls"
    order = [md.index(f"| {CARDS[u][0]} ") for u in ("mfcc", "siamese", "wav2vec2_base", "hubert_base",
                                                      "wav2vec2_large", "wavlm_large_ft", "resemblyzer",
                                                      "wavlm_base_plus@random")]
    assert order == sorted(order)
    assert positions[0] < order[0] < order[1] < positions[1] < order[2]
    assert positions[4] < md.index("| Whisper-tiny.en ") < positions[5]
    assert positions[5] < md.index("| GE2E (Resemblyzer) ") < positions[6] < md.index("| WavLM-B+ (random init) ")


def test_best_per_group_and_column_is_bold() -> None:
    y_true = [0] * 8 + [1] * 2
    all_zero = {"y_true": y_true, "y_pred": [0] * 10}  # F1 80, UAR 50
    balanced = {"y_true": y_true, "y_pred": [0] * 5 + [1] * 3 + [1] * 2}  # F1 70, UAR 81.25
    results = [make_result("wav2vec2_base", "gender", "en", preds=all_zero),
               make_result("hubert_base", "gender", "en", preds=balanced),
               make_result("mfcc", "gender", "en", preds=all_zero)]
    table = tables_by_name(results)["table1_gender"]
    rows = {r.key: r for r in table.rows}
    assert rows["wav2vec2_base"].cells["gender.en.f1_micro"].best
    assert not rows["wav2vec2_base"].cells["gender.en.uar"].best
    assert rows["hubert_base"].cells["gender.en.uar"].best
    assert not rows["hubert_base"].cells["gender.en.f1_micro"].best
    assert not rows["mfcc"].cells["gender.en.f1_micro"].best, "a group of one has nothing to beat"
    md = render_markdown(table)
    assert "| **80.0** [" in markdown_line(md, "Wav2vec2-B")
    assert "**81.2**" in markdown_line(md, "HuBERT-B") or "**81.3**" in markdown_line(md, "HuBERT-B")
    assert "**" not in markdown_line(md, "MFCC")


# --------------------------------------------------------------------------- confidence intervals
def test_score_is_seed_mean_with_bootstrap_interval_from_predictions() -> None:
    results = [make_result("wav2vec2_base", "emotion", "en", seed=s, accuracy=a) for s, a in ((0, 0.7), (1, 0.9))]
    cell = tables_by_name(results)["table3_emotion"].rows[0].cells["emotion.en.f1_micro"]
    runs = [(np.asarray(r["predictions"]["y_true"]), np.asarray(r["predictions"]["y_pred"])) for r in results]
    mean, low, high = bootstrap_ci(runs, metric="f1_micro", n_boot=N_BOOT)
    assert mean == pytest.approx(np.mean([r["metrics"]["f1_micro"] for r in results]))
    assert (cell.value, cell.low, cell.high, cell.seeds) == (pytest.approx(mean), pytest.approx(low),
                                                            pytest.approx(high), 2)
    uar = tables_by_name(results)["table3_emotion"].rows[0].cells["emotion.en.uar"]
    assert uar.value == pytest.approx(bootstrap_ci(runs, metric="uar", n_boot=N_BOOT)[0])
    md = render_markdown(tables_by_name(results)["table3_emotion"])
    assert f"{mean:.1f} [{low:.1f}, {high:.1f}]" in md
    assert "seeds per score: 2" in md and f"{N_BOOT} replicates" in md and "pooled" in md


def test_missing_predictions_give_mean_without_interval_and_a_note() -> None:
    res = make_result("hubert_base", "gender", "en")
    del res["predictions"]
    table = tables_by_name([res])["table1_gender"]
    cell = table.rows[0].cells["gender.en.f1_micro"]
    assert cell.value == pytest.approx(res["metrics"]["f1_micro"]) and cell.low is None
    assert any("no per-item predictions" in n for n in table.notes)


# --------------------------------------------------------------------------- published numbers
def test_paper_profile_shows_published_and_difference() -> None:
    results = [make_result("mfcc", "gender", "en", profile="paper", corpus="librispeech"),
               make_result("wav2vec2_base", "gender", "en", profile="paper", corpus="librispeech")]
    table = tables_by_name(results, profile="paper")["table1_gender"]
    row = {r.key: r for r in table.rows}["mfcc"]
    ours = row.cells["gender.en.f1_micro"].value
    paper = row.cells["gender.en.f1_micro.paper"]
    assert paper.value == 93.8 and paper.delta == pytest.approx(round(ours, 1) - 93.8)
    assert row.cells["gender.en.uar.paper"].value == 93.9
    md = render_markdown(table)
    assert "Gen-En F1 paper (Δ)" in md and f"93.8 ({round(ours, 1) - 93.8:+.1f})" in markdown_line(md, "MFCC")
    header = next(csv.reader(io.StringIO(table_csv(table))))
    assert "gender.en.f1_micro.paper" in header and "gender.en.f1_micro.paper.diff" in header


def test_synthetic_profile_omits_published_and_says_why() -> None:
    table = tables_by_name([make_result("mfcc", "gender", "en")])["table1_gender"]
    assert not any(c.kind == "published" for c in table.columns)
    assert "not comparable" in render_markdown(table)


def test_random_init_control_is_not_compared_with_the_published_model() -> None:
    res = make_result("wavlm_base_plus@random", "gender", "en", profile="paper", corpus="librispeech")
    row = tables_by_name([res], profile="paper")["table1_gender"].rows[0]
    assert row.group == "controls" and row.cells["gender.en.f1_micro.paper"].status == "missing"


def test_whisper_rows_have_their_group_and_a_footer_naming_the_window() -> None:
    """Whisper tiny.en (real weights) sits in its own group, its random-init twin among the controls,
    and the table says which encoder window both ran with; a table without Whisper rows says nothing."""
    results = [make_result(name, "gender", "en") for name in ("mfcc", "whisper_tiny_en", "whisper_tiny_en@random")]
    for res in results[1:]:
        res["upstream"]["settings"] = {"window": "real_length"}
    table = tables_by_name(results)["table1_gender"]
    assert {r.key: r.group for r in table.rows} == {"mfcc": "small", "whisper_tiny_en": "pretrained",
                                                     "whisper_tiny_en@random": "controls"}
    md = render_markdown(table)
    assert "Pretrained speech transformer, real weights" in md
    line = next(f for f in table.footer if f.startswith("Whisper encoder window"))
    assert "Whisper-tiny.en, Whisper-tiny.en (random init)" in line and "real_length" in line
    assert not any(f.startswith("Whisper") for f in tables_by_name(results[:1])["table1_gender"].footer)


# --------------------------------------------------------------------------- failures, fallback mark
def test_unavailable_and_failed_cells_are_na_with_reasons() -> None:
    results = [make_result("hubert_base", "gender", "en"),
               make_result("hubert_base", "gender", "fi", status="unavailable"),
               make_result("wav2vec2_large", "gender", "en", status="failed"),
               {"schema": SCHEMA_VERSION, "status": "failed", "key": None,  # failed while planning: no sections
                "cell": {"profile": "smoke", "upstream": "wavlm_large", "downstream": "gender", "language": "en",
                         "seed": 0},
                "error": {"type": "UnknownNameError", "message": "no upstream card 'wavlm_large'"},
                "timings": {"total_s": 0.1}}]
    table = tables_by_name(results)["table1_gender"]
    md = render_markdown(table)
    assert "n/a (note" in markdown_line(md, "HuBERT-B")
    assert "n/a (note" in markdown_line(md, "Wav2vec2-L") and "n/a (note" in markdown_line(md, "wavlm_large")
    notes = "\n".join(table.notes)
    assert "unavailable: corpus 'fesc' has no root folder" in notes
    assert "failed: RuntimeError: CUDA out of memory" in notes and "Tried to allocate" not in notes
    assert "failed: UnknownNameError: no upstream card 'wavlm_large'" in notes
    assert "hubert_base gender/fi/seed 0" in notes
    assert {r.key for r in table.rows} == {"hubert_base", "wav2vec2_large", "wavlm_large"}


def test_partially_failed_seeds_keep_the_ok_seeds_and_cite_the_failure() -> None:
    results = [make_result("hubert_base", "gender", "en", seed=0),
               make_result("hubert_base", "gender", "en", seed=1, status="failed")]
    table = tables_by_name(results)["table1_gender"]
    cell = table.rows[0].cells["gender.en.f1_micro"]
    assert cell.status == "ok" and cell.seeds == 1 and cell.notes
    assert "seed 1" in table.notes[cell.notes[0] - 1]


def test_language_fallback_is_marked_with_a_star() -> None:
    results = [make_result("hubert_base", "gender", "en"), make_result("hubert_base", "gender", "fi", fallback=True)]
    tables = tables_by_name(results)
    md = render_markdown(tables["table1_gender"])
    en_cell, fi_cell = markdown_line(md, "HuBERT-B").split("|")[2], markdown_line(md, "HuBERT-B").split("|")[4]
    assert "\\*" not in en_cell and "\\*" in fi_cell
    assert "the English one was used" in md
    row = next(csv.DictReader(io.StringIO(table_csv(tables["table1_gender"]))))
    assert row["fallback"] == "gender.fi.f1_micro gender.fi.uar"
    assert "3\\*" in render_markdown(tables["table2_layers"])


# --------------------------------------------------------------------------- capacity and inference time
CAPACITY = {"metrics": {"f1_micro": 71.5}, "relative_change_pct": -4.2, "k": 77,
            "plot": "capacity/hubert_base/gender/en.png"}
# the shape harness.analysis.timing writes (test_analysis_timing checks the analysis side)
INFERENCE = {"params": 94_370_000, "device": "cpu", "dtype": "float32", "torch_threads": 2, "batch_size": 1,
             "subsets": {"full": {"count": 56, "upstream_s": 12.34, "head_s": 0.77, "paper_style_s": 13.2},
                         "short": {"count": 15, "upstream_s": 0.4, "head_s": 0.05, "paper_style_s": 0.51},
                         "long": {"count": 4, "upstream_s": 1.7, "head_s": 0.1, "paper_style_s": 1.87}},
             "extraction": {"audio_s_per_s": 35.2}}


def test_capacity_and_inference_time_columns_beside_the_scores() -> None:
    results = [make_result("hubert_base", "gender", "en", analyses={"capacity": CAPACITY, "inference_time": INFERENCE}),
               make_result("wav2vec2_base", "gender", "en")]
    tables = tables_by_name(results)
    main = tables["table1_gender"]
    assert [c.key for c in main.columns][-3:] == ["gender.en.capacity", "params", "inference_full_s"]
    line = markdown_line(render_markdown(main), "HuBERT-B")
    assert "71.5 (-4.2%)" in line and "94M" in line and "12.3" in line
    assert "95M" in markdown_line(render_markdown(main), "Wav2vec2-B"), "card's params without a measurement"
    cap = markdown_line(render_markdown(tables["table8_capacity"]), "HuBERT-B")
    assert "71.5 (-4.2%)" in cap and "| 77 " in cap
    inf = markdown_line(render_markdown(tables["table9_inference_time"]), "HuBERT-B")
    assert all(x in inf for x in ("94M", "12.3", "0.77", "0.51", "1.87", "35.2", "cpu"))


def test_capacity_change_is_recomputed_when_not_reported() -> None:
    res = make_result("hubert_base", "gender", "en", analyses={"capacity": {"metrics": {"f1_micro": 50.0}}})
    cell = tables_by_name([res])["table8_capacity"].rows[0].cells["gender.en.capacity"]
    full = res["metrics"]["f1_micro"]
    assert cell.delta == pytest.approx(100 * (50.0 - full) / full)


def test_paper_capacity_and_layers_published() -> None:
    res = make_result("hubert_base", "gender", "en", profile="paper", corpus="librispeech",
                      analyses={"capacity": CAPACITY})
    tables = tables_by_name([res], profile="paper")
    cap = tables["table8_capacity"].rows[0].cells
    assert cap["gender.en.capacity.paper"].value == 97.6 and cap["gender.en.capacity.paper_change"].value == 0.4
    layer = tables["table2_layers"].rows[0].cells
    assert layer["gender.en.layer"].value == 3 and layer["gender.en.layer.paper"].value == 1
    assert layer["gender.en.layer.paper"].delta == 2


# --------------------------------------------------------------------------- discrimination tables
def test_emotion_discrimination_from_correct_flags() -> None:
    flags = [1, 0, 1, 1, 1, 0, 1, 1]
    res = make_result("hubert_base", "emotion_discrimination", "fr", profile="paper", corpus="cafe",
                      preds={"ids": [f"t{i}" for i in range(8)], "correct": flags})
    res["metrics"] = {"accuracy": 75.0}
    table = tables_by_name([res], profile="paper")["table7_emotion_discrimination"]
    cells = table.rows[0].cells
    mean, low, high = bootstrap_ci([(np.ones(8, int), np.asarray(flags))], metric="accuracy", n_boot=N_BOOT)
    assert cells["emotion_discrimination.fr"].value == pytest.approx(75.0) == pytest.approx(mean)
    assert cells["emotion_discrimination.fr"].low == pytest.approx(low)
    assert cells["emotion_discrimination.fr.paper"].value == 89.7


def test_word_discrimination_matched_and_mismatched() -> None:
    res = make_result("siamese", "gender", "en")
    res["cell"]["downstream"] = res["cell"]["task"] = "word_discrimination"
    res["task"].update({"name": "word_discrimination", "kind": "word_discrimination", "group": "words",
                        "paper_table": "word_discrimination"})
    res["word_discrimination"] = {"matched": {"accuracy": 90.0, "test_language": "en", "correct": [1] * 9 + [0]},
                                  "mismatched": {"accuracy": 70.0, "test_language": "fi", "train_language": "en"}}
    res["metrics"] = {"accuracy": 90.0}
    res["task"]["corpus"] = "librispeech"
    table = tables_by_name([res], profile="paper")["table5_word_discrimination"]
    cells = table.rows[0].cells
    assert cells["matched.en"].value == pytest.approx(90.0) and cells["matched.en"].low is not None
    assert cells["mismatched.fi"].value == pytest.approx(70.0) and cells["mismatched.fi"].low is None
    assert cells["matched.en.paper"].value == 91.0 and cells["mismatched.fi.paper"].value == 69.0


def test_tolerant_of_missing_sections() -> None:
    bare = {"schema": SCHEMA_VERSION, "status": "ok", "cell": {"upstream": "x", "downstream": "gender",
                                                               "language": "en", "seed": 0}}
    weird = make_result("hubert_base", "gender", "en", analyses={"capacity": "not a dict", "inference_time": None})
    weird["predictions"] = {"y_true": [], "y_pred": []}
    weird["layer"] = None
    tables = tables_by_name([bare, weird])
    md = render_markdown(tables["table1_gender"])
    assert "| x " in md and "HuBERT-B" in md


# --------------------------------------------------------------------------- files
@pytest.fixture
def ws_with_results(workspace_dir: Path) -> tuple[Workspace, Path]:
    ws = Workspace.discover(workspace_dir)
    results_dir = ws.path("results")
    for up in ("mfcc", "hubert_base", "wavlm_base_plus@random"):
        for seed in (0, 1):
            extra = {"analyses": {"capacity": CAPACITY, "inference_time": INFERENCE}} if up == "hubert_base" and seed == 0 else {}
            write(results_dir, make_result(up, "gender", "en", seed=seed, **extra))
            write(results_dir, make_result(up, "emotion", "en", seed=seed))
    write(results_dir, make_result("hubert_base", "gender", "fi", status="unavailable"))
    write(results_dir, make_result("wav2vec2_large", "gender", "en", status="failed"))
    plots = ["sweeps/hubert_base/gender/en.png", "capacity/hubert_base/gender/en.png",
             "overlap/hubert_base_heatmap.png", "umap/umap_en_test.png"]
    for rel in plots:
        (results_dir / "smoke" / rel).parent.mkdir(parents=True, exist_ok=True)
        (results_dir / "smoke" / rel).write_bytes(b"\x89PNG\r\n\x1a\n" + rel.encode())
    return ws, results_dir


def test_write_leaderboards_files_beside_each_table_and_index(ws_with_results: tuple[Workspace, Path]) -> None:
    ws, results_dir = ws_with_results
    out = write_leaderboards(ws, profile="smoke", timestamp=False, n_boot=N_BOOT)
    assert out == ws.path("leaderboards") / "smoke"
    names = ["table1_gender", "table2_layers", "table3_emotion", "table8_capacity", "table9_inference_time"]
    for name in names:
        md = (out / f"{name}.md").read_text()
        rows = list(csv.DictReader(io.StringIO((out / f"{name}.csv").read_text())))
        data = json.loads((out / f"{name}.json").read_text())
        assert [r["upstream"] for r in rows] == [r["upstream"] for r in data["rows"]]
        assert all(f"| {r['display']} " in md for r in rows)
    gender = json.loads((out / "table1_gender.json").read_text())
    hubert = next(r for r in gender["rows"] if r["upstream"] == "hubert_base")
    assert hubert["cells"]["gender.en.f1_micro"]["low"] < hubert["cells"]["gender.en.f1_micro"]["value"]
    row = next(r for r in csv.DictReader(io.StringIO((out / "table1_gender.csv").read_text()))
               if r["upstream"] == "hubert_base")
    assert float(row["gender.en.f1_micro.low"]) == pytest.approx(hubert["cells"]["gender.en.f1_micro"]["low"])
    index = (out / "index.md").read_text()
    for name in names:
        assert f"]({name}.md)" in index and f"]({name}.csv)" in index and f"]({name}.json)" in index
    for rel in ("sweeps/hubert_base/gender/en.png", "capacity/hubert_base/gender/en.png",
                "overlap/hubert_base_heatmap.png", "umap/umap_en_test.png"):
        assert f"](plots/{rel})" in index
        assert (out / "plots" / rel).read_bytes() == (results_dir / "smoke" / rel).read_bytes()
    assert "cells: 14 (12 ok, 1 failed, 1 unavailable)" in index
    assert "total wall time: 35.0 s" in index and "Python 3.11.9" in index and "Generated" not in index


def test_leaderboards_are_pure(ws_with_results: tuple[Workspace, Path]) -> None:
    ws, results_dir = ws_with_results

    def digest(folder: Path) -> dict[str, str]:
        return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(folder.rglob("*")) if p.is_file()}

    before = digest(results_dir)
    out = write_leaderboards(ws, profile="smoke", timestamp=False, n_boot=N_BOOT)
    first = digest(out)
    (out / "stale.md").write_text("left over from an older run")
    write_leaderboards(ws, profile="smoke", timestamp=False, n_boot=N_BOOT)
    assert digest(out) == first, ("same results -> byte-identical output, stale files gone",
                                  {k for k in set(first) | set(digest(out)) if first.get(k) != digest(out).get(k)})
    assert digest(results_dir) == before, "no result file was modified"
    results = list(iter_results(results_dir, "smoke"))
    a = [render_markdown(t) for t in build_tables(results, published=None, profile="smoke", n_boot=N_BOOT)]
    b = [render_markdown(t) for t in build_tables(results[::-1], published=None, profile="smoke", n_boot=N_BOOT)]
    assert a == b, "the order results are read in does not matter"
    stamped = write_leaderboards(ws, profile="smoke", n_boot=N_BOOT)
    assert "Generated " in (stamped / "index.md").read_text()


def test_cli_leaderboard_command(ws_with_results: tuple[Workspace, Path], capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    ws, _ = ws_with_results
    assert main(["--root", str(ws.root), "leaderboard", "--profile", "smoke"]) == 0
    assert (ws.path("leaderboards") / "smoke" / "index.md").is_file()
    assert "leaderboards written to" in capsys.readouterr().out


def test_no_results_gives_an_index_saying_so(workspace_dir: Path) -> None:
    out = write_leaderboards(Workspace.discover(workspace_dir), profile="smoke", timestamp=False)
    assert "No result yet" in (out / "index.md").read_text()
    assert "No result yet" in (out / "index.html").read_text()
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "index.md"]
