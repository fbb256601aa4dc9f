"""A `paper` run's leaderboards: fixture corpora in the official layouts (LibriSpeech, IEMOCAP) read
through the adapters, every cell of the paper's matrix planned by resolve_cell, hand-made results
written as the runner writes them; `bench leaderboard --profile paper` then shows every paper
table with the published column, and the deviations table in index.md."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_corpora_iemocap import write_iemocap

from harness.cli import main
from harness.config import CellSpec, Workspace, resolve_cell
from harness.config.deviations import deviation_table
from harness.config.plan import Unavailable
from harness.corpora.load import task_splits
from harness.run.cell import _base_result, deviations_of
from harness.run.inputs import dataset_for
from harness.run.record import CellResult, write_result
from tests.matrix_fixtures import write_tiny_librispeech
from tests.test_leaderboard import INFERENCE

DOWNSTREAMS = ("gender", "emotion", "intent", "topic", "request", "emotion_discrimination", "word_discrimination")
SMALL = ("audio_word2vec", "speech2vec", "siamese", "lee")


def _predictions(plan: Any, snap: Any) -> dict[str, list[Any]]:
    """From the fixture corpus's test split when the cell's corpus is one of them, else made up."""
    if plan.source.corpus in ("librispeech", "iemocap"):
        ds = dataset_for(snap, plan)
        test = task_splits(ds, task=plan.task, source=plan.source)["test"]
        ids, y_true = [u.id for u in test.utterances], [int(y) for y in test.labels]
        assert ids, plan.spec.label
    else:
        rng = np.random.default_rng(zlib.crc32(plan.spec.label.encode()))
        ids, y_true = [f"u{i}" for i in range(40)], rng.integers(0, 2, 40).tolist()
    y_pred = [y if i % 4 else 1 - min(y, 1) for i, y in enumerate(y_true)]
    return {"ids": ids, "y_true": y_true, "y_pred": y_pred}


def _record(snap: Any, plan: Any) -> CellResult:
    spec = plan.spec
    res = _base_result(plan, spec, "ok")
    res["timings"] = {"total_s": 1.0}
    res["deviations"] = deviations_of(snap, spec.profile)
    if plan.task.kind == "word_discrimination":
        res["word_discrimination"] = {"matched": {"accuracy": 80.0, "test_language": spec.language, "correct": [1, 0, 1]},
                                      "mismatched": {"accuracy": 70.0, "test_language": "fi"}}
        res["metrics"] = {"accuracy": 80.0}
        return CellResult.model_validate(res)
    if plan.task.kind == "emotion_discrimination":
        res["metrics"] = {"accuracy": 60.0}
        res["predictions"] = {"ids": ["t0", "t1", "t2"], "correct": [1, 0, 1]}
        return CellResult.model_validate(res)
    p = _predictions(plan, snap)
    acc = 100.0 * float(np.mean(np.asarray(p["y_true"]) == np.asarray(p["y_pred"])))
    res.update({"metrics": {"f1_micro": acc, "uar": acc, "accuracy": acc, "n": len(p["ids"])}, "predictions": p,
                "layer": {"chosen": 3, "rule": "sweep", "num_layers": 13,
                          **({"from_language": "en"} if plan.language_fallback else {})},
                "analyses": {}})
    if spec.language == "en" and plan.task_name in ("gender", "emotion", "intent"):
        res["analyses"]["capacity"] = {"metrics": {"f1_micro": acc - 2.0}, "full_metrics": {"f1_micro": acc},
                                       "relative_change_pct": {"f1_micro": -2.0}, "k": 76, "D": 768, "fraction": 0.1}
    if (plan.task_name, spec.language) == ("emotion", "en"):
        res["analyses"]["inference_time"] = INFERENCE
    return CellResult.model_validate(res)


@pytest.fixture
def paper_run(workspace_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setenv("LIBRISPEECH_ROOT", str(write_tiny_librispeech(tmp_path / "LibriSpeech")))
    monkeypatch.setenv("IEMOCAP_ROOT", str(write_iemocap(tmp_path / "IEMOCAP_full_release").parent))
    ws = Workspace(workspace_dir)
    snap = ws.snapshot
    _, profile = snap.profile("paper")
    written = 0
    for up in profile.upstreams:
        for downstream in DOWNSTREAMS:
            if downstream == "word_discrimination" and up not in SMALL:
                continue
            for language in profile.languages:
                try:
                    plan = resolve_cell(snap, CellSpec("paper", up, downstream, language, 0))
                except Unavailable:  # intent has only English, topic Finnish, request French
                    continue
                write_result(plan.result_path, _record(snap, plan))
                written += 1
    assert written == 15 * 12 + 4 * 3  # 15 rows x 12 task-languages, + word discrimination of the small models
    return ws


def test_bench_leaderboard_paper_shows_every_table_published_and_the_deviations(paper_run: Workspace,
                                                                                capsys: pytest.CaptureFixture[str]) -> None:
    ws = paper_run
    assert main(["--root", str(ws.root), "leaderboard", "--profile", "paper"]) == 0
    out = ws.path("leaderboards") / "paper"
    index = (out / "index.md").read_text(encoding="utf-8")
    tables = ("table1_gender", "table2_layers", "table3_emotion", "table4_intent_topic_request",
              "table5_word_discrimination", "table7_emotion_discrimination", "table8_capacity",
              "table9_inference_time")
    for name in tables:
        md = (out / f"{name}.md").read_text(encoding="utf-8")
        header = next(line for line in md.splitlines() if line.startswith("| "))
        assert "paper" in header.lower(), f"{name}: no published column in {header!r}"
        assert f"({name}.md)" in index
    gender = (out / "table1_gender.md").read_text(encoding="utf-8")
    assert "| HuBERT-B " in gender and "| Wav2vec2-FT " in gender
    # the deviations table, generated from the settings: every row, with this profile's value
    assert "## Deviations from the paper" in index
    rows = deviation_table(ws.snapshot, "paper")
    for row in rows:
        assert f"| {row.element}" in index, row.id
    line = next(x for x in index.splitlines() if x.startswith("| probe input normalisation"))
    assert "utterance_layer_norm" in line and line.rstrip().endswith("| same |")
    assert "| Whisper frames (G5) |" in index and "differs" in index
    # the records carry the same table
    record = next(iter((ws.path("results") / "paper" / "hubert_base" / "topic").rglob("seed0.json")))
    assert '"deviations"' in record.read_text(encoding="utf-8")


def test_table2_says_when_a_star_layer_was_swept_locally() -> None:
    """G1: a "*" cell whose English source cell could not run swept on its own data; Table II says so."""
    from harness.report import build_tables, load_published, render_markdown
    from tests.test_leaderboard import make_result

    reused = make_result("hubert_base", "gender", "fi", fallback=True, profile="paper", corpus="lahjoita_puhetta")
    reused["layer"] = {"chosen": 3, "rule": "layer chosen on the English task", "num_layers": 13, "from_language": "en"}
    local = make_result("hubert_base", "gender", "fr", fallback=True, profile="paper", corpus="commonvoice_fr")
    local["layer"] = {"chosen": 5, "num_layers": 13, "rule": "sweep (stride paper, 0.3 of train); the source cell "
                      "hubert_base / gender / en / seed 0 cannot run here, so swept on fr data"}
    tables = {t.name: t for t in build_tables([reused, local], published=load_published(), profile="paper", n_boot=20)}
    md = render_markdown(tables["table2_layers"])
    assert "could not run here: the layer was swept on this language's data" in md
    row = next(r for r in tables["table2_layers"].rows if r.key == "hubert_base")
    assert not row.cells["gender.fi.layer"].notes and row.cells["gender.fr.layer"].notes
