"""Emotion discrimination: triplet rules, determinism, accuracy, and a cell that reads only the cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.config import Workspace
from harness.config.plan import CellSpec, plan_cell
from harness.features.build import features_for
from harness.features.extract import STATS, ensure_features
from harness.run import inputs as cell_inputs
from harness.run.cell import execute, run_cell
from harness.run.steps.discrimination import make_triplets, triplet_correct
from tests.analysis_fixtures import (  # noqa: F401
    ProjectedMFCC,
    emotion_dataset,
    one_torch_thread,
    write_tiny3_card,
)

LABELS = np.array([0, 0, 1, 1, 1, 2, 0, 3])  # class 2 and 3 occur once: never anchors


def test_triplet_rules() -> None:
    t = make_triplets(LABELS, seed=0)
    assert t.shape == (6, 3) and t[:, 0].tolist() == [0, 1, 2, 3, 4, 6]
    assert (LABELS[t[:, 0]] == LABELS[t[:, 1]]).all() and (t[:, 0] != t[:, 1]).all()
    assert (LABELS[t[:, 0]] != LABELS[t[:, 2]]).all()
    assert {int(i) for i in t[:, 2]} & {5, 7}  # single-member classes still serve as negatives


def test_triplets_deterministic_and_counted() -> None:
    assert np.array_equal(make_triplets(LABELS, seed=3), make_triplets(LABELS, seed=3))
    draws = {make_triplets(LABELS, seed=s).tobytes() for s in range(5)}
    assert len(draws) > 1
    t = make_triplets(LABELS, seed=1, count=15)
    assert t.shape == (15, 3)
    first_round = t[:6, 0].tolist()
    assert sorted(first_round) == [0, 1, 2, 3, 4, 6]  # every eligible anchor once before any repeat
    assert make_triplets([0, 0, 0], seed=0).shape == (0, 3)  # one emotion: no negative
    assert make_triplets([0, 1, 2], seed=0).shape == (0, 3)  # no emotion twice: no positive


def test_triplet_accuracy_on_hand_made_vectors() -> None:
    x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [2.0, 0.2], [-1.0, 0.0]])
    triplets = np.array([[0, 1, 2], [0, 2, 1], [0, 3, 4], [2, 2, 2]])
    assert triplet_correct(x, triplets).tolist() == [True, False, True, False]  # a tie is a miss
    scale_free = triplet_correct(x * np.array([[3.0], [0.5], [7.0], [1.0], [2.0]]), triplets)
    assert scale_free.tolist() == [True, False, True, False]


@pytest.fixture
def emo_ws(workspace_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The smoke profile on a 16-utterance espeak dataset with emotion labels (the synthetic
    corpus is another module's job; cells load this dataset instead)."""
    ds = emotion_dataset(tmp_path / "audio", n=16)
    monkeypatch.setattr(cell_inputs, "load_task_dataset", lambda *a, **k: ds)
    return Workspace(workspace_dir), ds


def test_cell_with_mfcc(emo_ws) -> None:
    ws, ds = emo_ws
    spec = CellSpec("smoke", "mfcc", "emotion_discrimination", "en", 0)
    res = json.loads(run_cell(ws, spec, progress=False).path.read_text(encoding="utf-8"))  # the result file
    assert res["status"] == "ok", res.get("error")
    assert res["triplets"] == 4 and res["metrics"]["n"] == 4 and len(res["predictions"]["y_pred"]) == 4
    assert res["layer"]["chosen"] == 0 and res["layer"]["layer_from"] == "emotion"
    assert res["data"]["label_counts"] == {"neutral": 2, "angry": 2}
    assert "emotion triplets" in res["summary"]
    # each triplet's flag, recomputed here from the cached vectors: anchor closer (cosine) to the positive
    store = features_for(ws.snapshot, plan_cell(ws, spec), ds, device="cpu", progress=False)
    x = store.pooled(layer=0, window_s=None)
    emotion = {u.id: u.labels["emotion"] for u in ds.utterances}

    def cos(a: str, b: str) -> float:
        va, vb = (x[store.index_of([i])][0].astype(np.float64) for i in (a, b))
        return float(va @ vb / (np.linalg.norm(va) * np.linalg.norm(vb)))

    rows = [row.split("|") for row in res["predictions"]["ids"]]
    assert all(emotion[a] == emotion[p] != emotion[n] and a != p for a, p, n in rows)
    speaker = {u.id: u.speaker for u in ds.utterances}  # a triplet's cluster: its anchor's speaker
    assert res["predictions"]["speakers"] == [speaker[a] for a, _, _ in rows]
    expected = [int(cos(a, p) > cos(a, n)) for a, p, n in rows]
    assert res["predictions"]["y_pred"] == expected
    assert res["metrics"]["accuracy"] == pytest.approx(100.0 * sum(expected) / len(expected))
    passes = STATS["passes"]
    again = run_cell(ws, CellSpec("smoke", "mfcc", "emotion_discrimination", "en", 1), progress=False)
    assert again.result.status == "ok" and STATS["passes"] == passes  # the second cell reads the cache only


def test_layer_from_reuses_the_emotion_sweep_without_upstream(emo_ws, workspace_dir: Path) -> None:
    """A 3-layer upstream: the layer comes from the emotion downstream's sweep, computed on cached
    features only, and saved where the emotion cell will find it."""
    ws, ds = emo_ws
    write_tiny3_card(workspace_dir)
    up = ProjectedMFCC()
    ensure_features(workspace=ws, card=ws.card("tiny3"), dataset=ds, language="en", upstream=up, progress=False)
    calls, passes = up.forward_calls, STATS["passes"]
    plan = plan_cell(ws, CellSpec("smoke", "tiny3", "emotion_discrimination", "en", 0))
    res = execute(ws.snapshot, plan, device="cpu", progress=False)
    assert res.layer is not None and res.layer.layer_from == "emotion"
    assert res.layer.chosen in (res.layer.candidates or [])
    assert (ws.path("results") / "smoke" / "sweeps" / "tiny3" / "emotion" / "en.json").is_file()
    assert up.forward_calls == calls and STATS["passes"] == passes
