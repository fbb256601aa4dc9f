"""``NAME@random`` works for every card: a random-init control where the card has weights, the
same module with a recorded note where it has none (MFCC), and a clear refusal where random init
cannot reach every weight (a HEAR model with parameters that no ``reset_parameters`` covers)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import torch
from torch import nn

from harness.config.adapters import bind_args, random_init_note
from harness.errors import BenchError
from harness.features.info import upstream_info
from harness.features.upstream import build_upstream
from harness.testing import repo_workspace
from upstreams.hear import HEARUpstream

N_CARDS = 36
WEIGHTLESS = {"mfcc", "mfcc13"}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory):
    """The repository's cards, with empty model / card / cache folders and an empty HF cache."""
    with pytest.MonkeyPatch.context() as mp:
        for var in ("BENCH_CARDS", "BENCH_MODELS", "BENCH_CACHE"):
            mp.setenv(var, str(tmp_path_factory.mktemp(var.lower())))
        hf = tmp_path_factory.mktemp("hf")
        mp.setenv("HF_HOME", str(hf))
        mp.setenv("HF_HUB_CACHE", str(hf / "hub"))
        mp.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(hf / "hub"))
        yield repo_workspace(tmp_path_factory.mktemp("ws"))


def test_every_card_resolves_and_describes_as_a_random_init_control(workspace) -> None:
    names = sorted(workspace.card_files())
    assert len(names) == N_CARDS
    seen = 0
    for name in names:
        card = workspace.card(f"{name}@random")
        assert card.random_init and card.base_name == name and card.args["random_init"] is True
        info = upstream_info(workspace, f"{name}@random")  # binds the args: an unknown argument would raise here
        notes = " ".join(info["notes"])
        if name in WEIGHTLESS:
            assert random_init_note(card) and "no-op" in notes and info["params"] == 0, (name, notes)
        else:
            assert random_init_note(card) == "" and "no-op" not in notes, (name, notes)
        seen += 1
    assert seen == N_CARDS


def test_selection_check_accepts_random_for_every_card(workspace) -> None:
    """What ``bench run`` checks before any work (``Workspace.check``) passes for every ``NAME@random``."""
    names = [f"{name}@random" for name in sorted(workspace.card_files())]
    assert len(names) == N_CARDS
    workspace.check(upstreams=names, selection=True)
    with pytest.raises(BenchError, match="mfc@random"):
        workspace.check(upstreams=["mfc@random"], selection=True)


def test_mfcc_random_is_the_same_module(workspace) -> None:
    wav = torch.randn(1, 16000) * 0.1
    lengths = torch.tensor([16000])
    for name in sorted(WEIGHTLESS):
        plain = build_upstream(workspace.card(name), workspace=workspace)
        control = build_upstream(workspace.card(f"{name}@random"), workspace=workspace)
        assert type(control) is type(plain)
        assert torch.equal(plain(wav, lengths).layers[0], control(wav, lengths).layers[0])


def test_small_model_random_differs_from_the_trained_one(workspace, tmp_path: Path) -> None:
    from harness.smallmodels.recipe import profile_checkpoint
    from harness.testing import write_tiny_small_model

    # where the default profile's recipe puts it (the path the card's cells read)
    write_tiny_small_model(profile_checkpoint(workspace, profile=None, model="siamese", language="en"),
                           model="siamese", seed=5)
    trained = build_upstream(workspace.card("siamese"), workspace=workspace, language="en")
    control = build_upstream(workspace.card("siamese@random"), workspace=workspace, language="en")
    wav, lengths = torch.randn(1, 8000) * 0.1, torch.tensor([8000])
    a, b = trained(wav, lengths).layers[0], control(wav, lengths).layers[0]
    assert a.shape == b.shape == (1, 1, 128)
    assert not torch.allclose(a, b)


# --------------------------------------------------------------------------- the hear adapter
class LinearHEAR(nn.Module):
    """A HEAR model with weights: a linear map of 8 log band energies (see tests.hear_tiny)."""

    sample_rate, timestamp_embedding_size, scene_embedding_size = 16000, 4, 4

    def __init__(self, *, raw_parameter: bool = False):
        super().__init__()
        torch.manual_seed(123)
        self.proj = nn.Linear(8, 4)
        if raw_parameter:
            self.scale = nn.Parameter(torch.ones(4))


def _hear_module(name: str, make_model) -> str:
    """Register a HEAR-API module ``name`` whose ``load_model`` returns ``make_model()``."""
    from tests import hear_tiny

    module = types.ModuleType(name)

    def get_timestamp_embeddings(audio, model):
        emb, ts = hear_tiny.get_timestamp_embeddings(audio, hear_tiny.TinyHEARModel())
        return (model.proj(emb) if isinstance(model, nn.Module) else emb[..., :4]), ts

    module.load_model = lambda model_file="": make_model()
    module.get_timestamp_embeddings = get_timestamp_embeddings
    module.get_scene_embeddings = lambda audio, model: get_timestamp_embeddings(audio, model)[0].mean(1)
    sys.modules[name] = module
    return name


@pytest.fixture
def hear_modules(monkeypatch: pytest.MonkeyPatch):
    names = {"linear": "_t_hear_linear", "raw": "_t_hear_raw", "foreign": "_t_hear_foreign"}
    for name in names.values():
        monkeypatch.delitem(sys.modules, name, raising=False)
    _hear_module(names["linear"], LinearHEAR)
    _hear_module(names["raw"], lambda: LinearHEAR(raw_parameter=True))

    class Foreign:  # not a torch module (e.g. a TensorFlow model)
        sample_rate, timestamp_embedding_size, scene_embedding_size = 16000, 4, 4

    _hear_module(names["foreign"], Foreign)
    yield names
    for name in names.values():
        sys.modules.pop(name, None)


def test_hear_random_redraws_every_weight_deterministically(hear_modules) -> None:
    loaded = HEARUpstream(module=hear_modules["linear"])
    control = HEARUpstream(module=hear_modules["linear"], random_init=True, seed=0)
    again = HEARUpstream(module=hear_modules["linear"], random_init=True, seed=0)
    other = HEARUpstream(module=hear_modules["linear"], random_init=True, seed=1)
    w = {k: dict(m.model.named_parameters())["proj.weight"] for k, m in
         (("loaded", loaded), ("control", control), ("again", again), ("other", other))}
    assert not torch.equal(w["loaded"], w["control"])
    assert torch.equal(w["control"], w["again"]) and not torch.equal(w["control"], w["other"])
    assert loaded.init_notes == () and "2 parameter tensors" in control.init_notes[0]
    wav, lengths = torch.randn(1, 8000) * 0.1, torch.tensor([8000])
    assert not torch.allclose(loaded(wav, lengths).layers[0], control(wav, lengths).layers[0])


def test_hear_random_without_weights_is_a_noted_no_op() -> None:
    plain = HEARUpstream(module="tests.hear_tiny")
    control = HEARUpstream(module="tests.hear_tiny", random_init=True)
    assert "no weights" in control.init_notes[0] and "no-op" in control.init_notes[0]
    wav, lengths = torch.randn(1, 8000) * 0.1, torch.tensor([8000])
    assert torch.equal(plain(wav, lengths).layers[0], control(wav, lengths).layers[0])


def test_hear_random_refuses_weights_it_cannot_reach(hear_modules) -> None:
    with pytest.raises(BenchError, match=r"@random is not available .*scale.*reset_parameters"):
        HEARUpstream(module=hear_modules["raw"], random_init=True)
    with pytest.raises(BenchError, match=r"@random is not available .*Foreign, not a torch module"):
        HEARUpstream(module=hear_modules["foreign"], random_init=True)
    HEARUpstream(module=hear_modules["raw"])  # without @random both load
    HEARUpstream(module=hear_modules["foreign"])


def test_hear_card_at_random_through_the_registry(workspace_dir: Path) -> None:
    from harness.config import Workspace
    from tests.matrix_fixtures import tiny_hear_card

    tiny_hear_card(workspace_dir, "tiny_hear", display="Tiny HEAR")
    ws = Workspace(workspace_dir)
    info = upstream_info(ws, "tiny_hear@random")
    assert any("no weights" in n for n in info["notes"]), info["notes"]
    module = build_upstream(ws.card("tiny_hear@random"), workspace=ws)
    assert "no-op" in module.init_notes[0]


def test_an_adapter_without_random_init_is_refused_with_the_reason() -> None:
    class Plugin(nn.Module):  # a third-party adapter with weights and no random_init option
        def __init__(self, *, width: int = 4):
            super().__init__()

    with pytest.raises(BenchError, match=r"@random \(random init\) is not available for Plugin: its constructor "
                                         r"has no random_init argument"):
        bind_args(Plugin, {"width": 2, "random_init": True}, context={})

    class Weightless(Plugin):
        has_weights = False

    assert bind_args(Weightless, {"width": 2, "random_init": True}, context={}) == {"width": 2}
    assert bind_args(Plugin, {"width": 2}, context={}) == {"width": 2}
