"""The executable upstream contract: it passes good adapters, catches the known traps, and runs over every card."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
import torch
import torchaudio

from harness.features.contract import check_upstream, check_upstream_by_name, contract_clips
from harness.features.upstream import build_upstream
from harness.schema import CardTest
from harness.testing import contract_card, contract_route, repo_workspace, write_tiny_hf
from upstreams.base import Upstream, UpstreamOutput
from upstreams.hf import HFUpstream
from upstreams.mfcc import MFCCUpstream

REPO = Path(__file__).resolve().parent.parent
CARD_NAMES = sorted(p.stem for p in (REPO / "upstreams" / "cards").glob("*.yaml"))
# how the every-card test runs each card offline (see harness.testing.contract_route)
EXPECTED_ROUTES = {"random_shrunk": 19, "tiny_checkpoint": 14, "as_is": 3}


def _can_have_weights(name: str) -> bool:
    """False for cards whose adapter has no weights at all (``has_weights = False``: MFCC)."""
    from harness.registry import ADAPTERS
    from harness.yamlio import load

    adapter = load(REPO / "upstreams" / "cards" / f"{name}.yaml", expand=False)["adapter"]
    return bool(getattr(ADAPTERS.load(adapter), "has_weights", True))


WEIGHTED_CARDS = [name for name in CARD_NAMES if _can_have_weights(name)]
SMALL_MODELS = ("audio_word2vec", "speech2vec", "siamese", "lee")


def isolate_hf_cache(monkeypatch: pytest.MonkeyPatch, folder: Path) -> Path:
    """Point the Hugging Face hub cache (environment and huggingface_hub's constants, read at its
    import) and s3prl's download folder (under HOME) at ``folder``, offline: weights a developer
    has cached cannot replace the cards' shrunk configs."""
    hub = folder / "hf" / "hub"
    monkeypatch.setenv("HF_HOME", str(folder / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HOME", str(folder / "home"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(hub))
    return hub

@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models run op by op; on a shared 2-core machine OpenMP barriers between threads cost seconds per op."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)



@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """The repository's workspace with empty user-card, model and cache folders (cards of models a
    developer trained in the checkout's ``.bench`` must not count as repository cards)."""
    with pytest.MonkeyPatch.context() as mp:
        for var, sub in (("BENCH_CARDS", "cards"), ("BENCH_MODELS", "models"), ("BENCH_CACHE", "cache")):
            mp.setenv(var, str(tmp_path_factory.mktemp(sub)))
        yield repo_workspace(tmp_path_factory.mktemp("ws"))


# --------------------------------------------------------------------------- deliberately broken adapters
class BatchMFCC(Upstream):
    """The trap: torchaudio's default MFCC on the padded batch (dB floor over the whole batch, centred frames)."""

    def __init__(self):
        super().__init__()
        self.hidden_size, self.downsample_rate, self.min_input_samples = 13, 160, 400
        self.mfcc = torchaudio.transforms.MFCC(sample_rate=16000, n_mfcc=13,
                                               melkwargs={"n_fft": 400, "hop_length": 160, "n_mels": 40})

    def forward(self, wavs_BT, lengths_B):
        feats_BTD = self.mfcc(wavs_BT).transpose(1, 2)
        return UpstreamOutput(layers=(feats_BTD,), lengths=(lengths_B // 160 + 1).long())


class Configurable(Upstream):
    """A frame upstream whose defects are switched on one at a time."""

    def __init__(self, *, layers_out=1, hop_claimed=160, noisy=False, min_claimed=400, min_real=400, hidden=4):
        super().__init__()
        self.hidden_size, self.downsample_rate, self.min_input_samples = hidden, hop_claimed, min_claimed
        self.layers_out, self.noisy, self.min_real = layers_out, noisy, min_real

    def forward(self, wavs_BT, lengths_B):
        if int(lengths_B.min()) < self.min_real:
            raise ValueError("too short")
        frames = (lengths_B // 160).long()
        h = wavs_BT[:, : int(frames.max()) * 160].reshape(wavs_BT.shape[0], -1, 160)[..., :4]
        if self.noisy:
            h = h + torch.rand_like(h)
        return UpstreamOutput(layers=(h,) * self.layers_out, lengths=frames)


# --------------------------------------------------------------------------- the traps
def test_torchaudio_default_mfcc_fails_batch_invariance():
    report = check_upstream(BatchMFCC(), card_test=CardTest(min_input_s=0.05))
    assert report.status("batch_invariance") == "fail", report.render()
    assert "batch-wide" in report.message("batch_invariance")
    assert report.status("output") == "pass"


def test_per_utterance_mfcc_passes():
    report = check_upstream(MFCCUpstream(), card_test=CardTest(min_input_s=0.05))
    assert report.ok, report.render()
    assert report.status("batch_invariance") == "pass"


def test_group_norm_front_end_is_caught(tmp_path):
    group = write_tiny_hf(tmp_path / "w2v", family="wav2vec2", feat_extract_norm="group")
    report = check_upstream(HFUpstream(model_id=str(group)), card_test=CardTest(min_input_s=0.05))
    assert report.status("batch_invariance") == "fail", report.render()
    exact = check_upstream(HFUpstream(model_id=str(group), per_utterance=True), card_test=CardTest(min_input_s=0.05))
    assert exact.ok, exact.render()


def test_layer_norm_front_end_with_mask_is_padding_invariant(tmp_path):
    layer = write_tiny_hf(tmp_path / "wavlm", family="wavlm", feat_extract_norm="layer")
    report = check_upstream(HFUpstream(model_id=str(layer)), card_test=CardTest(min_input_s=0.05))
    assert report.ok and report.status("batch_invariance") == "pass", report.render()


def test_declared_exception_needs_a_reason():
    declared = check_upstream(BatchMFCC(), card_test=CardTest(min_input_s=0.05, padding_invariant=False,
                                                               padding_note="dB floor over the batch"))
    assert declared.ok and declared.status("batch_invariance") == "skip"
    assert "dB floor over the batch" in declared.message("batch_invariance")
    silent = check_upstream(BatchMFCC(), card_test=CardTest(min_input_s=0.05, padding_invariant=False))
    assert silent.status("batch_invariance") == "fail"
    assert "padding_note" in silent.message("batch_invariance")


# --------------------------------------------------------------------------- each check fails on its defect
def test_bad_attributes_stop_the_run():
    module = Configurable(hidden=0)
    report = check_upstream(module)
    assert report.status("attributes") == "fail" and "hidden_size" in report.message("attributes")
    assert all(c.status == "skip" for c in report.checks[1:])


def test_wrong_layer_count_fails_output():
    report = check_upstream(Configurable(layers_out=2))
    assert report.status("output") == "fail" and "num_layers" in report.message("output")


def test_wrong_hop_fails_frame_lengths():
    report = check_upstream(Configurable(hop_claimed=320))
    assert report.status("frame_lengths") == "fail", report.render()


def test_random_forward_fails_determinism():
    report = check_upstream(Configurable(noisy=True))
    assert report.status("determinism") == "fail", report.render()


def test_claimed_minimum_too_small_fails_min_input():
    report = check_upstream(Configurable(min_claimed=200, min_real=300))
    assert report.status("min_input") == "fail", report.render()
    card_promise = check_upstream(Configurable(), card_test=CardTest(min_input_s=0.01))
    assert card_promise.status("min_input") == "fail" and "min_input_s" in card_promise.message("min_input")


def test_contract_clips_are_quiet_short_and_loud_long():
    short, long = contract_clips(16000)
    assert short.shape[0] < long.shape[0] // 1.5
    assert long.abs().max() > 5 * short.abs().max()
    assert (short == 0).sum() >= 1600  # 100 ms of digital silence


def test_render_lists_every_check():
    text = check_upstream(MFCCUpstream()).render()
    for name in ("attributes", "output", "frame_lengths", "determinism", "batch_invariance", "min_input"):
        assert name in text
    assert text.rstrip().endswith("OK")


# --------------------------------------------------------------------------- by name (bench check-upstream)
def test_check_by_card_name_and_by_target(workspace):
    by_card = check_upstream_by_name("mfcc", workspace=workspace)
    assert by_card.ok and by_card.subject == "mfcc", by_card.render()
    by_target = check_upstream_by_name("upstreams.mfcc:MFCCUpstream", workspace=workspace)
    assert by_target.ok, by_target.render()


def test_check_by_name_reports_missing_weights_fast(workspace, monkeypatch, tmp_path):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf"))
    start = time.monotonic()
    report = check_upstream_by_name("wavlm_large", workspace=workspace)
    assert time.monotonic() - start < 5
    assert not report.ok and report.checks[0].name == "build"
    assert "microsoft/wavlm-large" in report.checks[0].message


# --------------------------------------------------------------------------- every registered card
def test_every_card_is_counted(workspace):
    assert sorted(workspace.card_files()) == CARD_NAMES
    routes = Counter(contract_route(workspace.card(name)) for name in CARD_NAMES)
    assert dict(routes) == EXPECTED_ROUTES, "a card was added or changed route: update EXPECTED_ROUTES"
    assert len(CARD_NAMES) == sum(EXPECTED_ROUTES.values()) == 36
    assert sorted(set(CARD_NAMES) - set(WEIGHTED_CARDS)) == ["mfcc", "mfcc13"]


def test_a_cached_full_size_model_is_hidden_from_the_contract_run(tmp_path, monkeypatch):
    """The hazard the isolation removes: a machine whose HF cache holds a card's model makes
    ``locate_weights`` return it, and the adapter then takes the full-size config.json over the
    card's shrunk ``arch``; inside :func:`isolate_hf_cache` the same lookup finds nothing."""
    from upstreams.hf import locate_weights

    hub = tmp_path / "machine" / "hub"
    snapshot = hub / "models--microsoft--wavlm-base-plus" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text('{"model_type": "wavlm", "hidden_size": 768}')
    (snapshot / "model.safetensors").write_bytes(b"")
    (hub / "models--microsoft--wavlm-base-plus" / "refs").mkdir()
    (hub / "models--microsoft--wavlm-base-plus" / "refs" / "main").write_text("abc123")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(hub))
    assert locate_weights("microsoft/wavlm-base-plus") == snapshot
    isolate_hf_cache(monkeypatch, tmp_path / "isolated")
    assert locate_weights("microsoft/wavlm-base-plus") is None


@pytest.mark.parametrize("name", CARD_NAMES)
def test_card_passes_contract(name, workspace, tmp_path, monkeypatch):
    isolate_hf_cache(monkeypatch, tmp_path)
    card = workspace.card(name)
    if card.card.adapter == "resemblyzer":
        pytest.importorskip("resemblyzer", reason="optional extra `resemblyzer` not installed")
    runnable = contract_card(card, out_dir=tmp_path)
    module = build_upstream(runnable, workspace=workspace)
    assert not module.training
    report = check_upstream(module, card_test=runnable.card.test, subject=runnable.name)
    assert report.ok, report.render()
    declared = runnable.card.test.padding_invariant
    assert report.status("batch_invariance") == ("pass" if declared else "skip"), report.render()


@pytest.fixture(scope="module")
def weights_workspace(tmp_path_factory):
    """The repository's workspace with this machine's HF and s3prl caches (where real weights may
    be), and a models folder holding each small model trained for one epoch on a tiny espeak corpus."""
    from harness.schema import SmallModelSpec
    from harness.smallmodels.testing import make_espeak_corpus
    from harness.smallmodels.train import torch_threads, train_small_model

    with pytest.MonkeyPatch.context() as mp:
        for var, sub in (("BENCH_CARDS", "cards"), ("BENCH_MODELS", "models"), ("BENCH_CACHE", "cache")):
            mp.setenv(var, str(tmp_path_factory.mktemp(sub)))
        ws = repo_workspace(tmp_path_factory.mktemp("ws"))
        corpus = make_espeak_corpus(tmp_path_factory.mktemp("corpus"), language="en", n_speakers=6,
                                    utterances_per_speaker=4, words_per_utterance=(3, 5), split_speakers=(2, 2, 2),
                                    vocabulary=["cat", "hat", "dog", "door", "sun", "table"], seed=3)
        with torch_threads(1):
            for model in SMALL_MODELS:
                train_small_model(workspace=ws, model=model, language="en", dataset=corpus, progress=False,
                                  spec=SmallModelSpec(max_epochs=1, batch_size=32, teacher="minilm"))
        yield ws


@pytest.mark.slow
@pytest.mark.parametrize("name", WEIGHTED_CARDS)
def test_card_with_real_weights_passes_contract(name, weights_workspace):
    """Where the real weights are on this machine (HF cache, s3prl cache, trained small models):
    the real model, and its card's `arch`. Cards without weights (MFCC) are not parametrised."""
    from harness.features.info import upstream_info
    from upstreams.hf import arch_mismatches, locate_weights

    workspace = weights_workspace
    if upstream_info(workspace, name)["weights"]["present"] is not True:
        assert name not in SMALL_MODELS, f"{name}: the fixture trained it, yet its weights are not found"
        pytest.skip("real weights not on this machine")
    card = workspace.card(name)
    language = None
    if card.card.adapter == "lstm":  # trained per language and recipe: the first language it was trained for
        trained = sorted(workspace.path("models").glob(f"{card.args['model']}/*/*/model.pt"))[0]
        language = trained.parent.parent.name
    module = build_upstream(card, workspace=workspace, language=language)
    report = check_upstream(module, card_test=card.card.test, subject=name)
    assert report.ok, report.render()
    if card.card.adapter == "lstm":
        assert module.checkpoint_path == trained  # its only recipe
    if "arch" in card.card.args:
        folder = (locate_weights(card.card.args["model_id"], models_dir=str(workspace.path("models")))
                  if "model_id" in card.card.args else getattr(module, "source", None))
        assert not arch_mismatches(card.card.args["arch"], module.model.config if hasattr(module, "model")
                                   else module.encoder.config), f"{name}: card arch differs from {folder}"
