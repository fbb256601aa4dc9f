"""The configuration is read once: one `bench run` parses each YAML file a single time, and the
plan of a cell is resolved by one function from that snapshot."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from harness import yamlio
from harness.cli import main
from harness.config import CellSpec, LayerRule, Workspace, resolve_cell
from tests.matrix_fixtures import seed_corpus


def test_bench_run_reads_each_yaml_file_once(workspace_dir: Path, synth_corpora: Path,
                                             monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "mpl"))  # main() runs in this process: keep its env
    cache = yamlio.load(workspace_dir / "benchmark.yaml")["paths"]["cache"]  # before counting starts
    seed_corpus(workspace_dir / cache, synth_corpora)
    reads: Counter[Path] = Counter()
    real_load = yamlio.load

    def counting_load(path: str | Path, *args: object, **kwargs: object) -> object:
        reads[Path(path).resolve()] += 1
        return real_load(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(yamlio, "load", counting_load)
    code = main(["--root", str(workspace_dir), "run", "--profile", "smoke", "--upstream", "mfcc",
                 "--downstream", "gender", "--language", "en", "--no-progress"])
    assert code == 0
    result = json.loads((Workspace(workspace_dir).path("results") / "smoke/mfcc/gender/en/seed0.json").read_text())
    assert result["status"] == "ok"
    root = workspace_dir.resolve()
    for must in ("benchmark.yaml", "tasks/gender.yaml", "downstreams/gender.yaml", "upstreams/cards/mfcc.yaml"):
        assert reads[root / must] == 1, must
    assert set(root.rglob("*.yaml")) <= set(reads)  # `bench run` validates every file first ...
    assert {p: n for p, n in reads.items() if n != 1} == {}  # ... and reads none twice


def test_resolve_cell_fills_the_layer_rule(workspace_dir: Path) -> None:
    snap = Workspace(workspace_dir).snapshot
    en = resolve_cell(snap, CellSpec("smoke", "mfcc", "gender", "en", 0))
    assert en.layer == LayerRule("sweep", stride="paper") and not en.language_fallback
    assert en.key == resolve_cell(snap, CellSpec("smoke", "mfcc", "gender", "en", 0)).key
    assert en.key != resolve_cell(snap, CellSpec("smoke", "mfcc", "gender", "en", 1)).key
    discrimination = resolve_cell(snap, CellSpec("smoke", "mfcc", "emotion_discrimination", "en", 0))
    assert discrimination.layer.kind == "from_cell" and discrimination.layer.source == CellSpec(
        "smoke", "mfcc", "emotion", "en", 0)


def test_a_file_read_once_still_sees_the_environment_of_each_call(tmp_path: Path, monkeypatch) -> None:
    """The kept data is the parsed text: ``${VAR:-default}`` is expanded per call, so a process
    that changes BENCH_* (a test, a worker) gets its own folders, not the first caller's."""
    from harness.config.snapshot import read_yaml

    path = tmp_path / "paths.yaml"
    path.write_text("cards: ${BENCH_CARDS:-.bench/cards}\n", encoding="utf-8")
    monkeypatch.delenv("BENCH_CARDS", raising=False)
    assert read_yaml(path) == {"cards": ".bench/cards"}
    monkeypatch.setenv("BENCH_CARDS", str(tmp_path / "mine"))
    assert read_yaml(path) == {"cards": str(tmp_path / "mine")}


def test_paper_topic_and_request_take_the_english_intent_layer(workspace_dir: Path) -> None:
    """G1 in the paper profile: the 11 "*" cells of topic (fi) and request (fr) read the layer of
    the English intent cell; models with a Finnish / French variant sweep on their own data."""
    snap = Workspace(workspace_dir).snapshot
    for upstream, downstream, language in (("hubert_base", "topic", "fi"), ("wavlm_large", "request", "fr"),
                                           ("wav2vec2_base", "topic", "fi")):
        plan = resolve_cell(snap, CellSpec("paper", upstream, downstream, language, 0))
        assert plan.language_fallback and plan.layer.kind == "from_cell", (upstream, downstream)
        assert plan.layer.source == CellSpec("paper", upstream, "intent", "en", 0)
    own = resolve_cell(snap, CellSpec("paper", "wav2vec2_large", "topic", "fi", 0))  # uralic variant
    assert not own.language_fallback and own.layer.kind == "sweep"
    gender = resolve_cell(snap, CellSpec("paper", "hubert_base", "gender", "fi", 0))
    assert gender.layer.source == CellSpec("paper", "hubert_base", "gender", "en", 0)
