"""Hugging Face adapters on tiny real-format checkpoints: loading paths, layers, lengths, normalisation, Whisper windows."""

from __future__ import annotations

import logging
import math
import shutil
import time
from pathlib import Path

import pytest
import torch
import transformers as T

from harness.config import ResolvedCard
from harness.errors import WeightsMissingError
from harness.features.contract import check_upstream
from harness.features.upstream import build_upstream, count_parameters
from harness.schema import Card, CardTest
from harness.testing import repo_workspace, shrink_arch, write_tiny_hf, write_tiny_whisper
from upstreams.hf import HFUpstream, WhisperEncoderUpstream, normalize_utterances


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models run op by op; on a shared 2-core machine OpenMP barriers between threads cost seconds per op."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)



@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return repo_workspace(tmp_path_factory.mktemp("ws"))


@pytest.fixture(scope="module")
def ctc_dir(tmp_path_factory):
    return write_tiny_hf(tmp_path_factory.mktemp("hf") / "wavlm_ctc", family="wavlm", ctc=True,
                         feat_extract_norm="layer")


@pytest.fixture(scope="module")
def whisper_dir(tmp_path_factory):
    return write_tiny_whisper(tmp_path_factory.mktemp("hf") / "whisper")


@pytest.fixture(autouse=True)
def empty_hf_cache(tmp_path, monkeypatch):
    """Every test sees an empty HF cache unless it fills one: no test depends on this machine's cache."""
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf_cache"))


def card(adapter: str, **args) -> ResolvedCard:
    c = Card(adapter=adapter, args=args, test=CardTest(min_input_s=0.05))
    return ResolvedCard(name="t", base_name="t", path=Path("t.yaml"), card=c)


def speech(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, generator=torch.Generator().manual_seed(seed)) * 0.1


# --------------------------------------------------------------------------- wav2vec2 / HuBERT / WavLM
def test_ctc_checkpoint_gives_every_encoder_hidden_state(ctc_dir):
    up = build_upstream(card("hf", model_id=str(ctc_dir)))
    assert not up.training and up.num_layers == 3 and up.hidden_size == 32 and up.downsample_rate == 320
    ref = T.WavLMForCTC.from_pretrained(ctc_dir, local_files_only=True).eval()
    wav = speech(16000)[None]
    with torch.no_grad():
        out = up(wav, torch.tensor([16000]))
        want = ref.wavlm((wav - wav.mean()) / torch.sqrt(wav.var(unbiased=False) + 1e-7),
                         attention_mask=torch.ones(1, 16000, dtype=torch.long), output_hidden_states=True)
    assert len(out.layers) == len(want.hidden_states) == 3
    for got, exp in zip(out.layers, want.hidden_states, strict=True):
        torch.testing.assert_close(got, exp)


def test_lengths_follow_the_conv_arithmetic(ctc_dir):
    up = build_upstream(card("hf", model_id=str(ctc_dir)))
    n = torch.tensor([400, 719, 720, 16000])
    wavs = torch.stack([torch.nn.functional.pad(speech(int(k)), (0, 16000 - int(k))) for k in n])
    with torch.no_grad():
        out = up(wavs, n)
    assert out.lengths.tolist() == [(k - 400) // 320 + 1 for k in n.tolist()] == [1, 1, 2, 49]
    assert out.lengths.dtype == torch.int64
    assert float(out.layers[-1][0, 1:].abs().max()) == 0.0  # padding frames are zeroed


def test_normalisation_matches_the_feature_extractor():
    a, b = speech(12000, seed=1) * 3 + 0.2, speech(16000, seed=2)
    wavs = torch.zeros(2, 16000)
    wavs[0, :12000], wavs[1] = a, b
    ours = normalize_utterances(wavs, torch.tensor([12000, 16000]))
    fe = T.Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True)
    theirs = fe([a.numpy(), b.numpy()], sampling_rate=16000, padding=True, return_tensors="pt").input_values
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def test_preprocessor_and_norm_type_set_the_input_policy(tmp_path):
    group = build_upstream(card("hf", model_id=str(write_tiny_hf(tmp_path / "g", family="hubert", do_normalize=False))))
    assert group.normalize is False and group.use_attention_mask is False
    layer = build_upstream(card("hf", model_id=str(write_tiny_hf(tmp_path / "l", family="wav2vec2",
                                                                 feat_extract_norm="layer"))))
    assert layer.normalize is True and layer.use_attention_mask is True
    forced = build_upstream(card("hf", model_id=str(tmp_path / "g"), normalize=True, attention_mask=True))
    assert forced.normalize is True and forced.use_attention_mask is True


def test_offline_miss_is_fast_and_says_how_to_fix():
    start = time.monotonic()
    with pytest.raises(WeightsMissingError) as err:
        HFUpstream(model_id="microsoft/wavlm-large", models_dir="/nonexistent/models")
    assert time.monotonic() - start < 5
    text = str(err.value)
    for needle in ("microsoft/wavlm-large", "models--microsoft--wavlm-large", "huggingface-cli download microsoft/wavlm-large",
                   "--set upstream.args.model_id=", "/nonexistent/models/microsoft/wavlm-large", "@random"):
        assert needle in text, needle


def test_missing_local_directory_is_named(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsMissingError, match="save_pretrained"):
        HFUpstream(model_id=str(tmp_path / "empty"))


def test_loads_from_models_dir(ctc_dir, tmp_path):
    shutil.copytree(ctc_dir, tmp_path / "models" / "acme" / "tiny-wavlm")
    up = HFUpstream(model_id="acme/tiny-wavlm", models_dir=str(tmp_path / "models"))
    assert up.num_layers == 3


def test_loads_from_the_hf_cache_layout(ctc_dir, tmp_path, monkeypatch):
    """The real cache layout: models--org--name/{refs/main, snapshots/<commit>/...}."""
    cache = tmp_path / "hub"
    repo = cache / "models--acme--tiny-wavlm"
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(ctc_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    up = HFUpstream(model_id="acme/tiny-wavlm")
    assert up.num_layers == 3
    info = HFUpstream.describe(model_id="acme/tiny-wavlm")
    assert info.weights_present and commit in info.weights_location


def test_random_init_needs_no_weights_and_is_seeded(workspace):
    arch = shrink_arch(workspace.card("wavlm_large").card.args["arch"])
    a = HFUpstream(model_id="microsoft/wavlm-large", random_init=True, arch=arch)
    b = HFUpstream(model_id="microsoft/wavlm-large", random_init=True, arch=arch)
    c = HFUpstream(model_id="microsoft/wavlm-large", random_init=True, arch=arch, seed=1)
    pa, pb, pc = (torch.cat([p.flatten() for p in m.parameters()]) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)
    assert a.use_attention_mask  # layer-norm front end, as in the real wavlm-large
    described = HFUpstream.describe(model_id="microsoft/wavlm-large", random_init=True, arch=arch)
    assert described.params == count_parameters(a)


def test_card_arch_disagreeing_with_checkpoint_warns(ctc_dir, caplog):
    arch = {"config_class": "WavLMConfig", "hidden_size": 64}
    with caplog.at_level(logging.WARNING, logger="upstreams.hf"):
        HFUpstream(model_id=str(ctc_dir), arch=arch)
    assert "hidden_size" in caplog.text


def test_per_utterance_equals_single_runs(tmp_path):
    folder = write_tiny_hf(tmp_path / "g", family="wav2vec2")
    up = build_upstream(card("hf", model_id=str(folder), per_utterance=True))
    wavs = torch.zeros(2, 16000)
    wavs[0, :9000], wavs[1] = speech(9000), speech(16000, seed=3)
    with torch.no_grad():
        batch = up(wavs, torch.tensor([9000, 16000]))
        alone = up(wavs[:1, :9000], torch.tensor([9000]))
    n = int(alone.lengths[0])
    torch.testing.assert_close(batch.layers[-1][0, :n], alone.layers[-1][0])


# --------------------------------------------------------------------------- Whisper
def _encode_window(whisper_dir: Path, wav: torch.Tensor) -> tuple[torch.Tensor, ...]:
    fe = T.WhisperFeatureExtractor.from_pretrained(whisper_dir, local_files_only=True)
    enc = T.WhisperModel.from_pretrained(whisper_dir, local_files_only=True).get_encoder().eval()
    feats = fe([wav.numpy()], sampling_rate=16000, return_tensors="pt").input_features
    with torch.no_grad():
        return enc(feats, output_hidden_states=True).hidden_states


def test_whisper_drops_frames_beyond_the_audio(whisper_dir):
    up = build_upstream(card("whisper", model_id=str(whisper_dir)))
    assert up.num_layers == 3 and up.downsample_rate == 320 and up.hidden_size == 32
    wav = speech(16000)
    with torch.no_grad():
        out = up(wav[None], torch.tensor([16000]))
    assert out.lengths.tolist() == [50] and out.layers[0].shape == (1, 50, 32)
    full = _encode_window(whisper_dir, wav)
    assert full[0].shape[1] == 1500
    for got, window in zip(out.layers, full, strict=True):
        torch.testing.assert_close(got[0], window[0, :50])


def test_whisper_long_audio_goes_in_30s_chunks(whisper_dir):
    up = build_upstream(card("whisper", model_id=str(whisper_dir)))
    n = 31 * 16000 + 100
    wav = speech(n, seed=5)
    with torch.no_grad():
        out = up(wav[None], torch.tensor([n]))
    assert out.lengths.tolist() == [math.ceil(n / 320)] == [1551]
    first, second = _encode_window(whisper_dir, wav[:480000]), _encode_window(whisper_dir, wav[480000:])
    torch.testing.assert_close(out.layers[-1][0, :1500], first[-1][0])
    torch.testing.assert_close(out.layers[-1][0, 1500:], second[-1][0, :51])


def test_whisper_without_preprocessor_file_builds_the_extractor(tmp_path):
    folder = write_tiny_whisper(tmp_path / "w", with_preprocessor=False)
    up = WhisperEncoderUpstream(model_id=str(folder))
    assert up.feature_extractor.feature_size == 80 and up.window_samples == 480000
    report = check_upstream(up, card_test=CardTest(min_input_s=0.05))
    assert report.ok, report.render()


def test_whisper_offline_miss_names_the_id():
    with pytest.raises(WeightsMissingError, match="openai/whisper-small.en"):
        WhisperEncoderUpstream(model_id="openai/whisper-small.en")
