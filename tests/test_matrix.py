"""The matrix, run for real on the smoke-size synthetic corpus: cell keys, skipping finished cells,
failure isolation, retry, unavailable cells and the dry run (local executor; Ray is in
test_matrix_ray.py).

A deliberately broken upstream is a card for :mod:`tests.hear_tiny` whose "checkpoint" file does
not exist (a plain FileNotFoundError, so the cell fails); creating the file fixes it without
changing the cell's key. ``wavlm_large`` (no weights here) and the ``paper`` profile's
LibriSpeech (no corpus here) are the unavailable cells.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.config import Workspace, parse_overrides
from harness.config.plan import CellSpec, plan_cell, result_file
from harness.features.cache import CacheCorruptWarning
from harness.features.extract import STATS
from harness.matrix import MatrixRun, dry_run, run_matrix
from harness.results import read_json
from harness.run.cell import run_cell
from tests.analysis_fixtures import one_torch_thread  # noqa: F401
from tests.matrix_fixtures import (
    add_profile,
    edit_yaml,
    file_bytes,
    seed_corpus,
    snapshot,
    tiny_hear_card,
    workspace,
    write_tiny_librispeech,
)

SPEC = CellSpec("smoke", "mfcc", "gender", "en", 0)
BROKEN = "tiny_broken"
MIXED = "mt_mixed"  # mfcc (ok), tiny_broken (failed), wavlm_large (unavailable) on gender, seeds 0 and 1


@pytest.fixture
def root(workspace_dir: Path, synth_corpora: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary workspace with the smoke corpus in its cache, the broken card, the mixed
    profile, and an empty Hugging Face cache (so ``wavlm_large`` is unavailable on any machine)."""
    seed_corpus(workspace_dir / ".bench" / "cache", synth_corpora)
    tiny_hear_card(workspace_dir, BROKEN, display="Tiny broken", model_file=str(tmp_path / "tiny.ckpt"))
    add_profile(workspace_dir, MIXED, upstreams=["mfcc", BROKEN, "wavlm_large"], downstreams=["gender"], seeds=[0, 1])
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf_home" / "hub"))
    return workspace_dir


def run(root: Path, profile: str, **kw) -> MatrixRun:
    """run_matrix on a fresh Workspace (no progress bars)."""
    return run_matrix(workspace(root), profile=profile, progress=False, **kw)


def result(root: Path, profile: str, upstream: str, downstream: str = "gender", seed: int = 0) -> dict:
    """The cell's result file as written (JSON); {} when there is none."""
    return read_json(result_file(workspace(root), CellSpec(profile, upstream, downstream, "en", seed))) or {}


def run_mixed_seed0(root: Path) -> MatrixRun:
    """The mixed profile's seed-0 cells: one ok, one failed, one unavailable."""
    return run(root, MIXED, only={"seed": {"0"}})


# --------------------------------------------------------------------------- cell key
def key_of(root: Path, spec: CellSpec = SPEC, overrides: tuple[str, ...] = ()) -> str:
    return plan_cell(Workspace(root, parse_overrides(overrides)), spec).key


@contextmanager
def edited(path: Path, **changes):
    """``path`` with top-level YAML keys changed, restored afterwards."""
    original = path.read_bytes()
    edit_yaml(path, **changes)
    try:
        yield
    finally:
        path.write_bytes(original)


def copy_profile(root: Path, source: str, name: str) -> None:
    raw = yaml.safe_load((root / "benchmark.yaml").read_text(encoding="utf-8"))
    add_profile(root, name, **raw["profiles"][source])


def test_cell_key_changes_with_every_part_of_its_identity(root: Path) -> None:
    """The key changes with the card's args, its revision, the resolved downstream (a --set),
    the task version, the language, the seed and the profile, each on its own."""
    copy_profile(root, "smoke", "smoke_copy")
    base = key_of(root)
    keys = {"downstream --set": key_of(root, overrides=("training.lr=5e-4",)),
            "head_args --set": key_of(root, overrides=("head_args.binary_output=softmax",)),
            "language": key_of(root, replace(SPEC, language="fi")),
            "seed": key_of(root, replace(SPEC, seed=1)),
            "profile": key_of(root, replace(SPEC, profile="smoke_copy"))}
    cards, tasks = root / "upstreams" / "cards", root / "tasks"
    with edited(cards / "mfcc.yaml", args={"context": 4}):
        keys["card args"] = key_of(root)
    with edited(cards / "mfcc.yaml", revision="2"):
        keys["card revision"] = key_of(root)
    with edited(tasks / "gender.yaml", version=2):
        keys["task version"] = key_of(root)
    assert all(k != base for k in keys.values()), {n: k for n, k in keys.items() if k == base}
    assert len(set(keys.values())) == len(keys)
    assert key_of(root) == base  # the edits were undone


def test_cell_key_ignores_what_is_not_its_identity(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The key does not change with a fresh Workspace, a --set to the value already in force,
    the profile's seed list, YAML comments, other cards and downstreams, or the results folder."""
    base = key_of(root)
    assert key_of(root, overrides=("training.lr=1e-3",)) == base
    assert key_of(root, overrides=("profile.seeds=[0,1,2]",)) == base
    card = root / "upstreams" / "cards" / "mfcc.yaml"
    card.write_text("# a comment\n" + card.read_text(encoding="utf-8") + "\n# another\n", encoding="utf-8")
    edit_yaml(root / "upstreams" / "cards" / "siamese.yaml", revision="9")
    edit_yaml(root / "downstreams" / "emotion.yaml", training={"lr": 0.5})
    monkeypatch.setenv("BENCH_RESULTS", str(root / "elsewhere"))
    assert key_of(root) == base


def test_cell_key_ignores_other_profiles_recipes_and_descriptions(root: Path) -> None:
    """Rewording a downstream's description or tuning its recipe for another profile leaves the
    smoke cell's resolved downstream, hence its key, as it was."""
    base = key_of(root)
    edit_yaml(root / "downstreams" / "gender.yaml", description="reworded",
              profiles={"paper": {"training": {"max_epochs": 3}}})
    assert key_of(root) == base


def test_cell_key_ignores_the_card_display_metadata(root: Path) -> None:
    """The card's display name and reference are not part of the features or the result: editing
    them keeps the key (and the feature cache entry)."""
    base = key_of(root)
    edit_yaml(root / "upstreams" / "cards" / "mfcc.yaml", meta={"display": "MFCC (renamed)", "reference": "x"})
    assert key_of(root) == base


def test_cell_key_ignores_the_task_description_and_other_sources(root: Path) -> None:
    """Rewording the task's description or dropping its real-corpus sources of other languages
    leaves a synthetic English cell's key as it was."""
    base = key_of(root)
    task = root / "tasks" / "gender.yaml"
    real = yaml.safe_load(task.read_text(encoding="utf-8"))["sources"]["real"]
    edit_yaml(task, description="reworded", sources={"real": {"en": real["en"]}})
    assert key_of(root) == base


# --------------------------------------------------------------------------- skip finished
def test_rerun_skips_finished_cells_without_touching_them(root: Path) -> None:
    """A second run of the same matrix runs 0 cells, makes 0 upstream passes and leaves every
    result file (and side file: sweep, capacity dims) byte-identical and unwritten."""
    only = {"upstream": {"mfcc"}, "downstream": {"gender"}}
    first = run(root, "smoke", only=only)
    assert (first.ran, first.counts.get("ok")) == (1, 1), first
    results = workspace(root).path("results")
    stored = result(root, "smoke", "mfcc")
    assert stored["key"] == plan_cell(workspace(root), SPEC).key
    contents, stamps, passes = file_bytes(results), snapshot(results), STATS["passes"]
    second = run(root, "smoke", only=only)
    assert second.ran == 0 and second.counts["skipped_done"] == 1, second
    assert STATS["passes"] == passes
    assert file_bytes(results) == contents and snapshot(results) == stamps


# --------------------------------------------------------------------------- failure isolation
def test_failed_cell_is_recorded_and_the_others_complete(root: Path) -> None:
    """One cell raising a plain exception fails alone: its result holds status failed, the error
    type, message and traceback; the ok and unavailable cells are recorded too, and the
    leaderboard shows the failed cell as n/a with the reason."""
    out = run_mixed_seed0(root)
    assert out.ran == 3 and out.counts == {"skipped_done": 0, "skipped_failed": 0, "ok": 1, "failed": 1,
                                                 "unavailable": 1}, out
    assert result(root, MIXED, "mfcc")["status"] == "ok"
    failed = result(root, MIXED, BROKEN)
    assert failed["status"] == "failed" and failed["key"] == plan_cell(workspace(root), CellSpec(
        MIXED, BROKEN, "gender", "en", 0)).key
    err = failed["error"]
    assert err["type"] == "FileNotFoundError" and "tiny.ckpt does not exist" in err["message"]
    assert err["traceback"].startswith("Traceback") and "load_model" in err["traceback"]
    table = (Path(out.leaderboards or "") / "table1_gender.md").read_text(encoding="utf-8")
    row = next(line for line in table.splitlines() if line.startswith("| Tiny broken"))
    assert "n/a (note" in row
    assert "failed: FileNotFoundError: tiny HEAR checkpoint" in table
    page = (Path(out.leaderboards or "") / "index.html").read_text(encoding="utf-8")  # bench matrix writes it too
    assert "data-status=\"n/a\"" in page and "failed: FileNotFoundError: tiny HEAR checkpoint" in page


def test_retry_failed_reruns_exactly_the_failed_cells(root: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A plain rerun skips the failed cell and says so (``bench matrix``); once the cause is
    fixed, ``retry_failed`` reruns the failed cell and nothing else."""
    run_mixed_seed0(root)
    results = workspace(root).path("results")
    before = file_bytes(results)
    argv = ["--root", str(root), "matrix", "--profile", MIXED, "--only", "seed=0", "--no-progress", "--no-leaderboard"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "ran 1" in printed and "skipped 1 finished and 1 failed (rerun them with --retry-failed)" in printed
    rel = f"{MIXED}/{BROKEN}/gender/en/seed0.json"
    unavailable = f"{MIXED}/wavlm_large/gender/en/seed0.json"
    after_plain = file_bytes(results)
    assert after_plain[rel] == before[rel]  # the failed cell was not rerun (the unavailable one was re-checked)

    (tmp_path / "tiny.ckpt").write_bytes(b"fixed")
    out = run(root, MIXED, only={"seed": {"0"}}, retry_failed=True, leaderboard=False)
    assert out.ran == 1 and out.counts.get("ok") == 1 and out.counts["skipped_done"] == 1, out
    assert result(root, MIXED, BROKEN)["status"] == "ok"
    after_retry = file_bytes(results)
    changed = {p for p in after_retry if after_retry[p] != after_plain.get(p)}
    assert rel in changed and unavailable not in changed
    assert not any(p.startswith(f"{MIXED}/mfcc/") for p in changed)
    assert run(root, MIXED, only={"seed": {"0"}}, retry_failed=True, leaderboard=False).ran == 0


# --------------------------------------------------------------------------- unavailable
def test_missing_weights_are_unavailable_reported_and_rechecked(root: Path) -> None:
    """``wavlm_large`` without its weights is unavailable with the reason (what is missing, how to
    fix it), listed in the leaderboard; a rerun checks it again (it is not skipped)."""
    out = run_mixed_seed0(root)
    res = result(root, MIXED, "wavlm_large")
    assert res["status"] == "unavailable" and "microsoft/wavlm-large" in res["reason"]
    assert "not available offline" in res["reason"] and "--set upstream.args.model_id" in res["reason"]
    table = (Path(out.leaderboards or "") / "table1_gender.md").read_text(encoding="utf-8")
    assert "| WavLM-L" in table and "unavailable: weights for Hugging Face model 'microsoft/wavlm-large'" in table
    again = run(root, MIXED, only={"seed": {"0"}}, leaderboard=False)
    assert again.ran == 1 and again.counts == {"skipped_done": 1, "skipped_failed": 1, "unavailable": 1}


def test_missing_corpus_is_unavailable_until_it_appears(root: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A real-corpus cell whose corpus root is missing is unavailable with the expected layout;
    once the corpus is there, the rerun re-checks the cell (same key) and it runs."""
    libri = tmp_path / "LibriSpeech"
    monkeypatch.setenv("LIBRISPEECH_ROOT", str(libri))
    only = {"upstream": {"mfcc"}, "downstream": {"gender"}, "language": {"en"}}
    out = run(root, "paper", only=only, leaderboard=False)
    assert out.cells == 1 and out.counts.get("unavailable") == 1, out
    res = result(root, "paper", "mfcc")
    assert res["status"] == "unavailable" and str(libri) in res["reason"] and "SPEAKERS.TXT" in res["reason"]
    key = res["key"]
    write_tiny_librispeech(libri)
    again = run(root, "paper", only=only)
    assert again.ran == 1 and again.counts.get("ok") == 1, again
    res = result(root, "paper", "mfcc")
    assert res["status"] == "ok" and res["key"] == key and res["data"]["corpus"] == "librispeech"
    assert "| MFCC" in (Path(again.leaderboards or "") / "table1_gender.md").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- dry run
def test_dry_run_on_a_fresh_workspace_runs_and_writes_nothing(workspace_dir: Path) -> None:
    """On a fresh workspace the dry run lists every smoke cell as todo with features to extract,
    generates no corpus, runs no upstream and writes no file."""
    before, passes = snapshot(workspace_dir), STATS["passes"]
    text = dry_run(workspace(workspace_dir), profile="smoke")
    assert snapshot(workspace_dir) == before and STATS["passes"] == passes
    lines = text.splitlines()
    assert lines[0] == "profile smoke: 6 cells"
    cells = [line for line in lines if line.startswith("  ")]
    assert len(cells) == 6 and all(c.split()[0] == "todo" and "features to extract" in c for c in cells)
    assert "summary: todo 6" in text and "upstream passes needed: 2 (of 2 card x corpus pairs)" in text


def test_dry_run_lists_states_cached_features_and_an_estimate(root: Path) -> None:
    """After a run with one ok, one failed and one unavailable cell, the dry run shows each cell's
    state and reason, which cells have features cached, and an estimate from the finished cell's
    timing, without writing a file or running an upstream."""
    run_mixed_seed0(root)
    before, passes = snapshot(root), STATS["passes"]
    text = dry_run(workspace(root), profile=MIXED)
    assert snapshot(root) == before and STATS["passes"] == passes
    state = {line.split("/")[0].split()[1]: line for line in text.splitlines() if "/ seed 0" in line}
    assert state["mfcc"].split()[0] == "done" and "features cached" in state["mfcc"]
    assert state[BROKEN].split()[0] == "failed"
    assert state["wavlm_large"].split()[0] == "unavailable" and "not available offline" in state["wavlm_large"]
    todo_mfcc = next(line for line in text.splitlines() if line.split()[1:2] == ["mfcc"] and "seed 1" in line)
    assert todo_mfcc.split()[0] == "todo" and "features cached" in todo_mfcc
    assert "summary: done 1, failed 1, todo 3, unavailable 1" in text
    assert "estimated cell time: about" in text and "for 3 cells" in text
    assert json.loads((workspace(root).path("results") / MIXED / "mfcc" / "gender" / "en" / "seed0.json")
                      .read_text())["status"] == "ok"


def test_word_discrimination_vectors_come_from_the_features_stage(root: Path) -> None:
    """Word discrimination of two seeds: the features stage embeds the word segments once; both
    cells read the cached vectors (neither builds the upstream) and get the same accuracy; a torn
    vectors file is recomputed."""
    add_profile(root, "mt_words", upstreams=["mfcc"], downstreams=["word_discrimination"], seeds=[0, 1])
    out = run(root, "mt_words", workers=1)
    assert out.counts["ok"] == 2, out
    first, second = (result(root, "mt_words", "mfcc", "word_discrimination", seed=s) for s in (0, 1))
    assert first["features"]["word_vectors"] == second["features"]["word_vectors"] == "read from the cache"
    assert first["metrics"] == second["metrics"] and first["metrics"]["n"] > 0
    words = first["word_discrimination"]  # MFCC is the same model in every language: no training language
    assert words["matched"]["train_language"] is None and "mismatched" not in words
    pred = words["matched"]["predictions"]  # per triplet: the anchor's speaker (the bootstrap's cluster)
    assert len(pred["speakers"]) == len(pred["ids"]) == len(pred["correct"]) == first["metrics"]["n"]
    assert all(i.split(":", 1)[0].startswith(f"{s}_") for i, s in zip(pred["ids"], pred["speakers"], strict=True))
    vectors = sorted((root / ".bench" / "cache" / "word_discrimination" / "vectors" / "mfcc").glob("*.npz"))
    assert len(vectors) == 1
    vectors[0].write_bytes(vectors[0].read_bytes()[:100])  # torn
    ws = workspace(root)
    with pytest.warns(CacheCorruptWarning, match="unreadable"):
        rerun = read_json(run_cell(ws, CellSpec("mt_words", "mfcc", "word_discrimination", "en", 0), progress=False,
                                   force=True).path) or {}
    assert rerun["features"]["word_vectors"] == "computed in this cell"
    assert rerun["metrics"] == first["metrics"]
