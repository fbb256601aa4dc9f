"""Every task kind in every language it exists in, through the real pipeline: ``bench matrix`` on
the smoke-size synthetic corpus of en, fi and fr (MFCC; gender, emotion, intent (en), topic (fi),
request (fr), emotion and word discrimination), then the leaderboards built from those results
(Tables I, III, IV, V, VII, VIII) and ``bench matrix --dry-run`` on the embedded profile.

One matrix run (a subprocess, as a user runs it) feeds every test of the module. On a 2-core
machine it takes about a minute (longer when the machine is busy), so the module is marked slow;
``test_cli_features`` and ``test_cli_e2e`` keep a cell of the default suite going through ``bench``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.bench_process import BenchSandbox, describe, result_files
from tests.matrix_fixtures import add_profile, seed_corpus

PROFILE = "languages"
DOWNSTREAMS = ["gender", "emotion", "intent", "topic", "request", "emotion_discrimination", "word_discrimination"]
SEMANTIC = {"en": "intent", "fi": "topic", "fr": "request"}
# classes of each task's synthetic labels (harness.synth: en 4 emotions as IEMOCAP, fi 5 as FESC,
# fr 7 as CaFE; en 12 SLURP-style intents, fi the 8 Lahjoita Puhetta topics, fr affil / presta)
N_CLASSES = {("gender", lang): 2 for lang in ("en", "fi", "fr")} | {
    ("emotion", "en"): 4, ("emotion", "fi"): 5, ("emotion", "fr"): 7,
    ("intent", "en"): 12, ("topic", "fi"): 8, ("request", "fr"): 2}
EXPECTED_CELLS = {(ds, lang) for lang in ("en", "fi", "fr")
                  for ds in ("gender", "emotion", SEMANTIC[lang], "emotion_discrimination", "word_discrimination")}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory, synth_corpora: Path) -> dict[str, Any]:
    """The ``languages`` profile run by ``bench matrix`` in a sandbox: its result files by
    (downstream, language), the leaderboard tables by name, and the sandbox."""
    box = BenchSandbox.create(tmp_path_factory.mktemp("languages"))
    seed_corpus(box.cache, synth_corpora)  # English; fi and fr are synthesised by the run itself
    add_profile(box.root, PROFILE, upstreams=["mfcc"], downstreams=DOWNSTREAMS, languages=["en", "fi", "fr"],
                analyses={"layer_sweep": True, "capacity": True, "capacity_fraction": 0.1, "capacity_ig_steps": 4,
                          "capacity_tasks": ["intent"], "overlap": False, "inference_time": False, "umap": False})
    out = box.run("matrix", "--profile", PROFILE, "--workers", "2", "--no-progress", timeout=1200)
    assert out.returncode == 0, describe(out)
    results = {}
    for rel, path in result_files(box.results / PROFILE).items():
        upstream, downstream, language, _ = rel.split("/")
        assert upstream == "mfcc"
        results[(downstream, language)] = json.loads(path.read_text())
    tables = {p.stem: json.loads(p.read_text()) for p in (box.paths["leaderboards"] / PROFILE).glob("table*.json")}
    return {"box": box, "results": results, "tables": tables, "stdout": out.stdout}


# --------------------------------------------------------------------------- the cells
def test_every_task_of_every_language_ran(ran: dict[str, Any]) -> None:
    results = ran["results"]
    assert set(results) == EXPECTED_CELLS
    assert {k: r["status"] for k, r in results.items() if r["status"] != "ok"} == {}
    assert "15 cells; ran 15" in ran["stdout"] and "ok 15, failed 0" in ran["stdout"]
    for (_downstream, language), res in results.items():
        assert res["cell"]["language"] == language and res["task"]["corpus"] == "synth"
        assert res["downstream"]["profile"] == PROFILE


@pytest.mark.parametrize(("task", "language"), sorted(N_CLASSES))
def test_classification_cell_is_consistent(ran: dict[str, Any], task: str, language: str) -> None:
    """Classes as the synthetic corpus defines them; predictions for every test item; the metrics
    are those of the predictions and of the confusion matrix."""
    res = ran["results"][(task, language)]
    assert len(res["classes"]) == N_CLASSES[(task, language)], res["classes"]
    y_true, y_pred = res["predictions"]["y_true"], res["predictions"]["y_pred"]
    n = res["metrics"]["n"]
    assert len(y_true) == len(y_pred) == n == res["data"]["items"]["test"] > 0
    assert all(0 <= y < len(res["classes"]) for y in y_true + y_pred)
    correct = sum(t == p for t, p in zip(y_true, y_pred, strict=True))
    assert res["metrics"]["accuracy"] == pytest.approx(100.0 * correct / n)
    confusion = res["metrics"]["confusion_matrix"]
    assert sum(map(sum, confusion)) == n and sum(confusion[i][i] for i in range(len(confusion))) == correct
    assert res["task"]["name"] == task and res["training"]["history"]


@pytest.mark.parametrize("language", ["fi", "fr"])
def test_gender_beats_chance_in_finnish_and_french(ran: dict[str, Any], language: str) -> None:
    assert ran["results"][("gender", language)]["metrics"]["f1_micro"] > 70.0


@pytest.mark.parametrize("language", ["en", "fi", "fr"])
def test_word_discrimination_beats_chance(ran: dict[str, Any], language: str) -> None:
    """MFCC word vectors: the same word is closer than a similar-sounding other word well above the
    50% of a random embedding, in every language."""
    res = ran["results"][("word_discrimination", language)]
    assert res["metrics"]["n"] > 10 and res["metrics"]["accuracy"] > 60.0, res["metrics"]


# --------------------------------------------------------------------------- the tables
def _row(table: dict[str, Any]) -> dict[str, Any]:
    rows = {r["upstream"]: r for r in table["rows"]}
    assert list(rows) == ["mfcc"], list(rows)
    return rows["mfcc"]["cells"]


def test_table4_semantic_tasks_come_from_the_cells(ran: dict[str, Any]) -> None:
    cells = _row(ran["tables"]["table4_intent_topic_request"])
    for language, task in SEMANTIC.items():
        res = ran["results"][(task, language)]
        for metric in ("f1_micro", "uar"):
            cell = cells[f"{task}.{language}.{metric}"]
            assert cell["value"] == pytest.approx(res["metrics"][metric]) and cell["seeds"] == 1
            assert cell["low"] <= cell["value"] <= cell["high"]
    assert not any(key.startswith(("gender.", "emotion.")) for key in cells)


def test_table8_capacity_comes_from_the_intent_cell(ran: dict[str, Any]) -> None:
    cells = _row(ran["tables"]["table8_capacity"])
    capacity = ran["results"][("intent", "en")]["analyses"]["capacity"]
    assert cells["intent.en.f1_micro"]["value"] == pytest.approx(capacity["full_metrics"]["f1_micro"])
    assert cells["intent.en.capacity"]["value"] == pytest.approx(capacity["metrics"]["f1_micro"])
    assert cells["capacity_k"]["text"] == str(capacity["k"]) == "75"  # 10% of MFCC's 759 dimensions


def test_table5_word_discrimination_comes_from_the_cells(ran: dict[str, Any]) -> None:
    cells = _row(ran["tables"]["table5_word_discrimination"])
    for language in ("en", "fi", "fr"):
        res = ran["results"][("word_discrimination", language)]
        assert cells[f"matched.{language}"]["value"] == pytest.approx(res["metrics"]["accuracy"])


def test_table7_emotion_discrimination_comes_from_the_cells(ran: dict[str, Any]) -> None:
    cells = _row(ran["tables"]["table7_emotion_discrimination"])
    for language in ("en", "fi", "fr"):
        res = ran["results"][("emotion_discrimination", language)]
        cell = cells[f"emotion_discrimination.{language}"]
        assert cell["value"] == pytest.approx(res["metrics"]["accuracy"])
        assert cell["value"] == pytest.approx(100.0 * sum(res["predictions"]["y_pred"]) / res["metrics"]["n"])


def test_tables_1_and_3_have_every_language(ran: dict[str, Any]) -> None:
    for name, task in (("table1_gender", "gender"), ("table3_emotion", "emotion")):
        cells = _row(ran["tables"][name])
        for language in ("en", "fi", "fr"):
            assert cells[f"{task}.{language}.f1_micro"]["value"] == \
                pytest.approx(ran["results"][(task, language)]["metrics"]["f1_micro"])


def test_dry_run_after_the_run_says_every_cell_is_done(ran: dict[str, Any]) -> None:
    out = ran["box"].run("matrix", "--profile", PROFILE, "--dry-run")
    assert out.returncode == 0, describe(out)
    assert f"profile {PROFILE}: 15 cells" in out.stdout and "summary: done 15" in out.stdout
    assert sum(line.lstrip().startswith("done ") for line in out.stdout.splitlines()) == 15
