"""The feature cache: one pass, hits never call the upstream, atomic entries, corruption detected."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from harness.config import Workspace
from harness.features.cache import CacheCorruptWarning, FeatureRecipe, FeatureStore
from harness.features.extract import STATS, ensure_features
from harness.features.upstream import build_upstream
from tests.audio_fixtures import make_dataset


class CountingUpstream:
    """Wraps an upstream and counts forward calls (not a mock: the real MFCC runs underneath)."""

    def __init__(self, inner):
        self.inner = inner
        self.calls = 0
        for attr in ("sample_rate", "num_layers", "hidden_size", "downsample_rate", "granularity", "min_input_samples"):
            setattr(self, attr, getattr(inner, attr))

    def __call__(self, wavs, lengths):
        self.calls += 1
        return self.inner(wavs, lengths)


@pytest.fixture
def tiny(tmp_path: Path, workspace_dir: Path):
    ws = Workspace(workspace_dir)
    ds = make_dataset(tmp_path / "audio", n=6)
    card = ws.card("mfcc")
    up = CountingUpstream(build_upstream(card))
    return ws, ds, card, up


def test_extract_once_then_hits_without_forward(tiny) -> None:
    ws, ds, card, up = tiny
    store = ensure_features(workspace=ws, card=card, dataset=ds, language="en", upstream=up, progress=False)
    calls = up.calls
    assert calls >= 1 and len(store.ids) == 6
    assert store.meta.hidden_size == 759 and store.meta.frame_layers == [0]
    for _ in range(3):
        again = ensure_features(workspace=ws, card=card, dataset=ds, language="en", upstream=up, progress=False)
        assert again.path == store.path
    assert up.calls == calls
    pooled = store.pooled(layer=0)
    frames, off = store.frames(layer=0)
    assert pooled.dtype == np.float16 and frames.shape[0] == off[-1]
    i = 2
    np.testing.assert_allclose(pooled[i], np.asarray(frames[off[i]:off[i + 1]], np.float32).mean(0), atol=2e-2)


def test_features_match_a_direct_forward(tiny) -> None:
    import torch

    ws, ds, card, up = tiny
    store = ensure_features(workspace=ws, card=card, dataset=ds, language="en", upstream=up, progress=False,
                            batch_s=2.0)
    utt = ds.utterances[3]
    wav, _ = sf.read(utt.path, dtype="float32")
    out = up.inner(torch.from_numpy(wav)[None], torch.tensor([len(wav)]))
    direct = out.layers[0][0].numpy()
    cached = store.sequences([utt.id], layer=0)[0].astype(np.float32)
    assert cached.shape == direct.shape
    np.testing.assert_allclose(cached, direct, rtol=1e-2, atol=2e-2)


def test_corrupted_entry_is_detected_and_recomputed(tiny) -> None:
    ws, ds, card, up = tiny
    store = ensure_features(workspace=ws, card=card, dataset=ds, language="en", upstream=up, progress=False)
    FeatureStore._verified.clear()
    f = store.path / "frames_L00.f16"
    data = bytearray(f.read_bytes())
    data[100] ^= 0xFF
    f.write_bytes(bytes(data))
    calls = up.calls
    with pytest.warns(CacheCorruptWarning, match="checksum"):
        ensure_features(workspace=ws, card=card, dataset=ds, language="en", upstream=up, progress=False)
    assert up.calls > calls


def test_truncated_entry_is_detected(tiny) -> None:
    ws, ds, card, up = tiny
    store = ensure_features(workspace=ws, card=card, dataset=ds, language="en", upstream=up, progress=False)
    FeatureStore._verified.clear()
    f = store.path / "pooled_full.f16"
    f.write_bytes(f.read_bytes()[:-10])
    with pytest.warns(CacheCorruptWarning, match="truncated"):
        assert FeatureStore.open(store.path) is None


def test_half_written_entry_is_never_read(tiny) -> None:
    ws, ds, card, up = tiny
    store = ensure_features(workspace=ws, card=card, dataset=ds, language="en", upstream=up, progress=False)
    (store.path / "COMPLETE").unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert FeatureStore.open(store.path) is None


def test_bad_audio_is_skipped_with_reason(tiny, tmp_path: Path) -> None:
    from dataclasses import replace

    ws, ds, card, up = tiny
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00garbage")
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000, np.float32), 16000)
    utts = list(ds.utterances) + [replace(ds.utterances[0], id="bad", path=str(bad), duration_s=None),
                                  replace(ds.utterances[0], id="silent", path=str(silent), duration_s=None)]
    store = ensure_features(workspace=ws, card=card, dataset=ds.subset(utts), language="en", upstream=up,
                            progress=False)
    assert "bad" not in store and "silent" not in store and len(store.ids) == 6
    assert "unreadable" in store.meta.skipped["bad"]
    assert "silent" in store.meta.skipped["silent"]


def test_recipe_key_changes_entry(tiny) -> None:
    ws, ds, card, up = tiny
    a = ensure_features(workspace=ws, card=card, dataset=ds, language="en", upstream=up, progress=False)
    b = ensure_features(workspace=ws, card=card, dataset=ds, language="en", upstream=up, progress=False,
                        recipe=FeatureRecipe(pool_windows_s=(None, 2.0)))
    assert a.path != b.path
    assert STATS["passes"] >= 2


def test_cpu_runs_one_utterance_per_forward_and_a_gpu_batches() -> None:
    from harness.features.extract import GPU_BATCH_S, batch_seconds

    assert batch_seconds(None, "cpu") == 0.0
    assert batch_seconds(None, "cuda") == GPU_BATCH_S and batch_seconds(None, "cuda:1") == GPU_BATCH_S
    assert batch_seconds(8.0, "cpu") == 8.0 and batch_seconds(8.0, "cuda") == 8.0


@pytest.mark.parametrize("batch_s, expect_calls", [(None, 6), (60.0, 1)])
def test_batching_follows_the_device_default_or_the_profile(tiny, batch_s, expect_calls) -> None:
    """Unset on CPU: one forward per utterance; a profile's ``extract_batch_s`` batches; same features."""
    ws, ds, card, up = tiny
    store = ensure_features(workspace=ws, card=card, dataset=ds, language="en", upstream=up, progress=False,
                            batch_s=batch_s)
    assert up.calls == expect_calls and store.meta.upstream_forward_calls == expect_calls
    assert store.meta.batch_s == (0.0 if batch_s is None else batch_s)
    assert 0 < store.meta.forward_seconds <= store.meta.extract_seconds
