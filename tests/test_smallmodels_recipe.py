"""A small model's checkpoint belongs to the recipe that trained it (harness.config.small_models).

Two profiles sharing a workspace keep their own models (no reuse of one profile's model by the
other, no retraining back and forth), and what the recipe holds (the profile's ``small_models``
settings, LEE's loss and teacher, the training seed) moves the checkpoint path and the cell key,
so a result made with another recipe's model is stale. Training is real (Siamese, one epoch on
a capped smoke corpus); nothing of ours is mocked.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from harness.config import Workspace, parse_overrides
from harness.config.plan import CellSpec, plan_cell
from harness.config.small_models import profile_recipe, recipe_key
from harness.errors import WeightsMissingError
from harness.features.upstream import build_upstream
from harness.matrix.stages import _small_model_job, small_model_jobs
from harness.smallmodels.checkpoint import legacy_checkpoint_path, load_checkpoint
from harness.smallmodels.recipe import profile_checkpoint
from harness.smallmodels.train import torch_threads
from harness.testing import write_tiny_small_model
from tests.matrix_fixtures import add_profile, seed_corpus

# two recipes that differ only in the profile's small_models settings (both tiny: one epoch, 150 words)
A, B = "recipe_a", "recipe_b"
SMALL = {A: {"max_epochs": 1, "patience": 1, "batch_size": 64, "max_words": 150},
         B: {"max_epochs": 1, "patience": 1, "batch_size": 32, "max_words": 150}}


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Any:
    with torch_threads(1):
        yield


@pytest.fixture
def root(workspace_dir: Path, synth_corpora: Path) -> Path:
    """The workspace with the smoke corpus in its cache and the two profiles (Siamese on gender)."""
    seed_corpus(workspace_dir / ".bench" / "cache", synth_corpora)
    for name, small in SMALL.items():
        add_profile(workspace_dir, name, upstreams=["siamese"], downstreams=["gender"], small_models=small)
    return workspace_dir


def cell(profile: str, upstream: str = "siamese") -> CellSpec:
    return CellSpec(profile, upstream, "gender", "en", 0)


def jobs(ws: Workspace, profile: str) -> list[tuple[str, str]]:
    """What the matrix's stage 1 would train for the profile's Siamese cell."""
    return small_model_jobs(ws, ws.profile(profile)[1], [cell(profile)])


def train(ws: Workspace, profile: str) -> Path:
    """Stage 1's job for Siamese / en, as the matrix runs it; the checkpoint it wrote."""
    out = _small_model_job(("siamese", "en"), ws=ws, profile_name=profile, progress=False)
    assert out.get("executor_error") is None, out
    return Path(out["checkpoint"])


def test_two_profiles_keep_their_own_checkpoints_in_one_workspace(root: Path) -> None:
    ws = Workspace(root)
    assert jobs(ws, A) == jobs(ws, B) == [("siamese", "en")]
    path_a = train(ws, A)
    assert path_a == profile_checkpoint(ws, profile=A, model="siamese", language="en")
    assert jobs(ws, A) == []
    assert jobs(ws, B) == [("siamese", "en")]  # A's model is not B's: B still needs its own
    mtime_a = path_a.stat().st_mtime_ns
    path_b = train(ws, B)
    assert path_b != path_a and path_a.is_file() and path_b.is_file()
    assert path_a.parent.parent == path_b.parent.parent == ws.path("models") / "siamese" / "en"
    ckpt_a, ckpt_b = load_checkpoint(path_a), load_checkpoint(path_b)
    assert (ckpt_a["spec"]["batch_size"], ckpt_b["spec"]["batch_size"]) == (64, 32)
    assert ckpt_a["recipe_key"] == path_a.parent.name and ckpt_b["recipe_key"] == path_b.parent.name
    assert ckpt_a["recipe"] == profile_recipe(ws, profile=A, model="siamese", language="en")
    assert ckpt_a["dataset"]["fingerprint"]  # stored beside the recipe
    # the first profile again: nothing to retrain, its checkpoint untouched by B's training
    ws = Workspace(root)
    assert jobs(ws, A) == jobs(ws, B) == []
    assert path_a.stat().st_mtime_ns == mtime_a
    # each profile's cell runs its own model, and their keys name different recipes
    plans = {p: plan_cell(ws, cell(p)) for p in (A, B)}
    for p, path in ((A, path_a), (B, path_b)):
        assert plans[p].card.card.args["recipe"] == path.parent.name
        module = build_upstream(plans[p].card, language="en", workspace=ws)
        assert module.checkpoint_path == path
    weights_a = build_upstream(plans[A].card, language="en", workspace=ws).encoder.state_dict()
    weights_b = build_upstream(plans[B].card, language="en", workspace=ws).encoder.state_dict()
    assert any(not torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    # a generated card per recipe, each pinning its checkpoint
    cards = {p.stem for p in ws.path("user_cards").glob("siamese_en_*.yaml")}
    assert cards == {f"siamese_en_{path_a.parent.name}", f"siamese_en_{path_b.parent.name}"}


def key_and_path(root: Path, spec: CellSpec, *overrides: str) -> tuple[str, str, Path]:
    """(cell key, recipe key in the cell's card, the checkpoint the cell reads) under ``--set overrides``."""
    ws = Workspace(root, parse_overrides(overrides))
    plan = plan_cell(ws, spec)
    model = str(plan.card.card.args["model"])
    return plan.key, plan.card.card.args["recipe"], profile_checkpoint(ws, profile=spec.profile, model=model,
                                                                         language=spec.language)


def test_lee_loss_and_teacher_are_part_of_the_recipe_and_the_cell_key(root: Path) -> None:
    """No training needed: the recipe, the path and the key follow the profile's settings."""
    lee = cell(A, "lee")
    base = key_and_path(root, lee)
    l1 = key_and_path(root, lee, "profile.small_models.lee_loss=l1")
    bert = key_and_path(root, lee, "profile.small_models.teacher=bert")
    full = key_and_path(root, lee, "profile.small_models.lee_full_epochs=true")
    for other in (l1, bert, full):
        assert other[0] != base[0] and other[1] != base[1] and other[2] != base[2]
    assert len({base[1], l1[1], bert[1], full[1]}) == 4
    assert key_and_path(root, lee) == base  # the same settings: the same recipe, path and key
    # LEE's settings are not Siamese's: its recipe and key do not move; its own settings do
    siamese = replace(lee, upstream="siamese")
    assert key_and_path(root, siamese, "profile.small_models.lee_loss=l1") == key_and_path(root, siamese)
    epochs = key_and_path(root, siamese, "profile.small_models.max_epochs=2")
    assert epochs[0] != key_and_path(root, siamese)[0] and epochs[1] != key_and_path(root, siamese)[1]
    # another synthetic corpus is another training set
    corpus = key_and_path(root, siamese, "profile.synth.utterances_per_speaker=5")
    assert corpus[1] != key_and_path(root, siamese)[1]


def test_seed_is_part_of_the_recipe(root: Path) -> None:
    ws = Workspace(root)
    recipes = [profile_recipe(ws, profile=A, model="siamese", language="en", seed=s) for s in (0, 1)]
    assert recipe_key(recipes[0]) != recipe_key(recipes[1])
    assert profile_checkpoint(ws, profile=A, model="siamese", language="en") \
        == profile_checkpoint(ws, profile=A, model="siamese", language="en", seed=0)


def test_a_checkpoint_from_before_recipes_is_not_used(root: Path) -> None:
    """A model at the old path (``<models>/<model>/<language>/model.pt``) has no known recipe:
    the matrix trains the profile's own, and the cell's upstream says why the old one is not read."""
    ws = Workspace(root)
    old = write_tiny_small_model(legacy_checkpoint_path(ws.path("models"), "siamese", "en"), model="siamese")
    assert jobs(ws, A) == [("siamese", "en")]
    plan = plan_cell(ws, cell(A))
    with pytest.raises(WeightsMissingError) as err:
        build_upstream(plan.card, language="en", workspace=ws)
    message = str(err.value)
    assert str(old) in message and "not used" in message
    assert "bench train-upstream --model siamese --language en" in message


def test_several_recipes_without_a_choice_is_a_clear_error(root: Path) -> None:
    """A direct adapter call (no profile) picks the only checkpoint, and refuses to guess among several."""
    from harness.errors import BenchError
    from upstreams.lstm import WordLSTMUpstream

    ws = Workspace(root)
    models = str(ws.path("models"))
    for profile in (A, B):
        write_tiny_small_model(profile_checkpoint(ws, profile=profile, model="siamese", language="en"),
                               model="siamese")
        if profile == A:
            assert WordLSTMUpstream(model="siamese", language="en", models_dir=models).checkpoint_path \
                == profile_checkpoint(ws, profile=A, model="siamese", language="en")
    with pytest.raises(BenchError, match="2 trained recipes"):
        WordLSTMUpstream(model="siamese", language="en", models_dir=models)


@pytest.mark.slow
def test_the_matrix_keeps_each_profiles_model_and_reruns_a_changed_recipe(root: Path) -> None:
    """``bench matrix`` on one profile, another, the first again (nothing trained, nothing rerun),
    then the first with a changed ``small_models`` (a new model trained, its cell stale and rerun)."""
    from harness.matrix import run_matrix

    for name, small in SMALL.items():  # word discrimination: the small models' own task, no head to train
        add_profile(root, name, upstreams=["siamese"], downstreams=["word_discrimination"], small_models=small)

    def matrix(profile: str) -> Any:
        return run_matrix(Workspace(root), profile=profile, progress=False, workers=1, leaderboard=False)

    first = matrix(A)
    assert first.counts.get("ok") == 1, first.counts
    path_a = profile_checkpoint(Workspace(root), profile=A, model="siamese", language="en")
    mtime_a = path_a.stat().st_mtime_ns
    assert matrix(B).counts.get("ok") == 1
    path_b = profile_checkpoint(Workspace(root), profile=B, model="siamese", language="en")
    assert path_b.is_file() and path_b != path_a and path_a.stat().st_mtime_ns == mtime_a
    again = matrix(A)
    assert again.ran == 0 and again.counts.get("skipped_done") == 1, again.counts
    assert path_a.stat().st_mtime_ns == mtime_a
    assert sorted(p.parent.name for p in path_a.parent.parent.glob("*/model.pt")) \
        == sorted([path_a.parent.name, path_b.parent.name])
    add_profile(root, A, upstreams=["siamese"], downstreams=["word_discrimination"],
                small_models={**SMALL[A], "max_words": 120})
    changed = matrix(A)
    assert changed.ran == 1 and changed.counts.get("ok") == 1, changed.counts
    path_a2 = profile_checkpoint(Workspace(root), profile=A, model="siamese", language="en")
    assert path_a2 not in (path_a, path_b) and path_a2.is_file() and path_a.stat().st_mtime_ns == mtime_a
