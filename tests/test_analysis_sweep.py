"""Layer sweep: finds the layer with the signal, reads only the feature cache, English-layer rule."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.config import Workspace, parse_overrides
from harness.config.plan import CellSpec, plan_cell
from harness.corpora.load import task_splits
from harness.features.extract import STATS, ensure_features
from harness.probe.layers import candidate_layers
from harness.probe.sets import feature_sets_for
from harness.results import read_json
from harness.run import inputs as cell_inputs
from harness.run.steps.sweep import choose_layer, run_sweep, sweep_path
from tests.analysis_fixtures import (  # noqa: F401
    ProjectedMFCC,
    emotion_dataset,
    one_torch_thread,
    planted_pooled,
    write_probe_downstreams,
    write_tiny3_card,
)


def test_candidate_layers() -> None:
    assert candidate_layers(13) == [1, 3, 5, 7, 9, 11]  # base: every other transformer layer
    assert candidate_layers(25) == [1, 4, 7, 10, 13, 16, 19, 22]  # large: every third
    assert candidate_layers(13, stride="all") == list(range(13))
    assert candidate_layers(13, stride=4) == [1, 5, 9]
    assert candidate_layers(1) == [0]


def _fake_store(num_layers: int) -> SimpleNamespace:
    """What the sweep reads of a store: its layer count and entry name (features come from sets_for)."""
    return SimpleNamespace(meta=SimpleNamespace(num_layers=num_layers), path=Path("planted-entry"))


def test_sweep_picks_the_layer_with_the_planted_signal(workspace_dir: Path) -> None:
    write_probe_downstreams(workspace_dir)
    ws = Workspace(workspace_dir)
    plan = plan_cell(ws, CellSpec("smoke", "mfcc", "probe_linear", "en", 0))
    calls: list[int] = []

    def sets_for(layer: int):
        calls.append(layer)
        shift = 1.5 if layer == 5 else 0.0  # only layer 5 carries the label
        return {"train": planted_pooled(120, dim=8, informative=[2], seed=10 + layer, shift=shift),
                "dev": planted_pooled(80, dim=8, informative=[2], seed=50, shift=shift)}, []  # one dev set

    res = run_sweep(snap=ws.snapshot, plan=plan, store=_fake_store(9), sets_for=sets_for, classes=("female", "male"),
                    language="en", progress=False).model_dump(exclude_unset=True)
    assert res["chosen"] == 5 and res["candidates"] == list(range(9)) and res["subset_size"] == 60
    assert res["curve"]["5"] == max(res["curve"].values()) and res["curve"]["5"] > 80
    assert sweep_path(ws, plan, "en").is_file() and Path(res["plot"]).is_file()
    # the dev items and every layer's dev predictions are recorded, with the curve's interval
    assert len(res["dev_ids"]) == len(res["dev_y_true"]) == 80 and set(res["dev_predictions"]) == set(res["curve"])
    for layer, pred in res["dev_predictions"].items():
        f1 = 100.0 * sum(p == y for p, y in zip(pred, res["dev_y_true"], strict=True)) / 80
        assert f1 == pytest.approx(res["curve"][layer])  # the curve is the score of these predictions
        assert res["curve_low"][layer] <= res["curve"][layer] <= res["curve_high"][layer]
    assert res["curve_high"]["5"] - res["curve_low"]["5"] > 0 and "dev_speakers" not in res  # no speakers here
    assert res["curve_low"]["5"] > max(res["curve_high"][k] for k in res["curve"] if k != "5")
    assert "exact ties: the lower layer" in res["tie_rule"]
    calls.clear()
    again = choose_layer(snap=ws.snapshot, plan=plan, store=_fake_store(9), sets_for=sets_for, classes=("female", "male"),
                         device="cpu", progress=False).model_dump(exclude_unset=True)
    assert again == res and calls == []  # every seed of the cell reuses the saved curve


def test_fixed_last_and_single_layer_rules(workspace_dir: Path) -> None:
    write_probe_downstreams(workspace_dir)
    for override, n, expected in (("downstream.layer=last", 9, 8), ("downstream.layer=3", 9, 3),
                                  ("downstream.layer=sweep", 1, 0)):
        ws = Workspace(workspace_dir, parse_overrides([override]))
        plan = plan_cell(ws, CellSpec("smoke", "mfcc", "probe_linear", "en", 0))
        res = choose_layer(snap=ws.snapshot, plan=plan, store=_fake_store(n), sets_for=None, classes=("a", "b"),
                           device="cpu", progress=False).model_dump(exclude_unset=True)
        assert res["chosen"] == expected


@pytest.fixture
def tiny3(workspace_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A 3-layer upstream whose features are in the cache; cells load the tiny espeak dataset."""
    write_probe_downstreams(workspace_dir)
    write_tiny3_card(workspace_dir)
    ws = Workspace(workspace_dir)
    ds = emotion_dataset(tmp_path / "audio", n=8)
    monkeypatch.setattr(cell_inputs, "load_task_dataset", lambda *a, **k: ds)
    up = ProjectedMFCC()
    store = ensure_features(workspace=ws, card=ws.card("tiny3"), dataset=ds, language="en", upstream=up,
                            progress=False)
    assert up.forward_calls >= 1 and store.meta.num_layers == 3
    return ws, ds, up, store


def test_whole_sweep_reads_the_cache_only(tiny3) -> None:
    ws, ds, up, store = tiny3
    calls, passes = up.forward_calls, STATS["passes"]
    plan = plan_cell(ws, CellSpec("smoke", "tiny3", "probe_linear", "en", 0))
    splits = task_splits(ds, task=plan.task, source=plan.source)
    res = run_sweep(snap=ws.snapshot, plan=plan, store=store, sets_for=feature_sets_for(store, splits, plan),
                    classes=splits["train"].classes, language="en", progress=False).model_dump(exclude_unset=True)
    assert res["candidates"] == [0, 1, 2] and set(res["curve"]) == {"0", "1", "2"}
    assert up.forward_calls == calls and STATS["passes"] == passes


def test_english_layer_rule_for_a_model_without_variant(tiny3) -> None:
    """tiny3 is English-only: its Finnish cell reuses the layer chosen on the English task."""
    ws, ds, up, store = tiny3
    calls, passes = up.forward_calls, STATS["passes"]
    fi_plan = plan_cell(ws, CellSpec("smoke", "tiny3", "probe_linear", "fi", 0))
    assert fi_plan.language_fallback
    res = choose_layer(snap=ws.snapshot, plan=fi_plan, store=store, sets_for=None, classes=("female", "male"),
                       device="cpu", progress=False).model_dump(exclude_unset=True)
    en_file = ws.path("results") / "smoke" / "sweeps" / "tiny3" / "probe_linear" / "en.json"
    assert res["from_language"] == "en" and "English task" in res["rule"]
    assert en_file.is_file() and res["chosen"] == read_json(en_file)["result"]["chosen"]
    assert not en_file.with_name("fi.json").exists()
    assert up.forward_calls == calls and STATS["passes"] == passes


def test_topic_and_request_reuse_the_english_intent_layer(tiny3, monkeypatch: pytest.MonkeyPatch) -> None:
    """G1: topic (fi) and request (fr) have no English data; a model without a Finnish / French
    variant takes the layer chosen on the English *intent* task (the paper's semantic task), so the
    "*" of Tables II and IV is true. No sweep runs on the Finnish / French data."""
    ws, ds, up, store = tiny3
    intents = ("set_alarm", "play_music")
    labelled = ds.subset([replace(u, labels={**u.labels, "intent": intents[(i // 4) % 2]})
                          for i, u in enumerate(ds.utterances)])
    monkeypatch.setattr(cell_inputs, "load_task_dataset", lambda *a, **k: labelled)
    sweeps = ws.path("results") / "smoke" / "sweeps" / "tiny3"
    for downstream, language in (("topic", "fi"), ("request", "fr")):
        plan = plan_cell(ws, CellSpec("smoke", "tiny3", downstream, language, 0))
        assert plan.language_fallback  # the "*" of the leaderboards
        assert plan.layer.kind == "from_cell"
        assert plan.layer.source == CellSpec("smoke", "tiny3", "intent", "en", 0)
        res = choose_layer(snap=ws.snapshot, plan=plan, store=store, sets_for=None, classes=("a", "b"),
                           device="cpu", progress=False)
        assert res.from_language == "en" and res.layer_from == "intent" and "'intent'" in str(res.rule)
        assert res.chosen == read_json(sweeps / "intent" / "en.json")["result"]["chosen"]
        assert not (sweeps / downstream).exists()  # nothing swept on fi / fr data
    assert up.forward_calls >= 1


def test_english_layer_source_unavailable_is_said_in_the_rule(tiny3, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the English source cell cannot run here, the cell sweeps on its own data and its
    record says so (the "*" then marks the English model only, never a silent reuse)."""
    ws, ds, up, store = tiny3
    from harness.config.plan import Unavailable

    def unavailable(*a, **k):
        raise Unavailable("corpus missing")

    plan = plan_cell(ws, CellSpec("smoke", "tiny3", "probe_linear", "fi", 0))
    monkeypatch.setattr(cell_inputs, "load_task_dataset", unavailable)
    splits = task_splits(ds, task=plan.task, source=plan.source)
    res = choose_layer(snap=ws.snapshot, plan=plan, store=store, sets_for=feature_sets_for(store, splits, plan),
                       classes=splits["train"].classes, device="cpu", progress=False)
    assert res.from_language is None and "cannot run here, so swept on fi data" in str(res.rule)
