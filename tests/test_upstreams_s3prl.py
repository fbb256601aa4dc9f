"""The s3prl adapter on tiny real-format checkpoints: local entries, named entries from the cache, offline misses."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from harness.config import Workspace, parse_overrides
from harness.errors import BenchError, UnknownNameError, WeightsMissingError
from harness.features.contract import check_upstream
from harness.features.upstream import build_upstream
from harness.schema import CardTest
from harness.testing import repo_workspace, write_tiny_s3prl
from upstreams.s3prl_hub import S3PRLHubUpstream, cache_path, hub_index, offline_downloads

WAVLM_LARGE_URL = "https://huggingface.co/s3prl/converted_ckpts/resolve/main/wavlm_large.pt"

@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models run op by op; on a shared 2-core machine OpenMP barriers between threads cost seconds per op."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)



@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return repo_workspace(tmp_path_factory.mktemp("ws")).root


def with_overrides(root: Path, *sets: str) -> Workspace:
    """A workspace with CLI-style ``--set`` overrides (the path a user takes)."""
    return Workspace(root, parse_overrides(sets))


@pytest.mark.parametrize("family", ["wavlm", "hubert", "wav2vec2"])
def test_local_entries_through_the_card_and_set(family, root, tmp_path):
    ckpt = write_tiny_s3prl(family, tmp_path / f"{family}.pt")
    ws = with_overrides(root, f"upstream.args.path_or_url={ckpt}")
    up = build_upstream(ws.card(f"{family}_local"), workspace=ws)
    assert not up.training and up.num_layers == 3 and up.hidden_size == 32 and up.downsample_rate == 320
    wavs = torch.zeros(2, 16000)
    wavs[0, :9000], wavs[1] = torch.randn(9000) * 0.1, torch.randn(16000) * 0.1
    with torch.no_grad():
        out = up(wavs, torch.tensor([9000, 16000]))
    assert out.lengths.tolist() == [29, 50]  # s3prl's ceil(samples / 320)
    assert len(out.layers) == 3 and out.layers[0].shape == (2, 50, 32)


def test_local_card_without_checkpoint_says_how_to_pass_one(root):
    ws = Workspace(root)
    with pytest.raises(BenchError, match="path_or_url"):
        build_upstream(ws.card("wavlm_local"), workspace=ws)


def test_named_entry_reads_its_cache_file(tmp_path):
    path = cache_path(WAVLM_LARGE_URL, download_dir=tmp_path)
    assert path.name.endswith(".wavlm_large.pt") and len(path.name.split(".")[0]) == 64
    write_tiny_s3prl("wavlm", path, layer_norm=True)
    up = S3PRLHubUpstream(name="wavlm_large", download_dir=str(tmp_path))
    assert up.num_layers == 3


def test_named_entry_offline_miss_is_fast_and_says_where(tmp_path):
    start = time.monotonic()
    with pytest.raises(WeightsMissingError) as err:
        S3PRLHubUpstream(name="wavlm_large", download_dir=str(tmp_path))
    assert time.monotonic() - start < 5
    text = str(err.value)
    for needle in (str(cache_path(WAVLM_LARGE_URL, download_dir=tmp_path)), WAVLM_LARGE_URL, "name=wavlm_local",
                   "path_or_url=", "WAVLM_CKPT=", "`wavlm_large`"):
        assert needle in text, needle


def test_default_cache_folder_is_s3prls(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(WeightsMissingError) as err:
        S3PRLHubUpstream(name="hubert_base")
    assert str(tmp_path / ".cache" / "s3prl" / "download") in str(err.value)


def test_random_init_without_checkpoint_points_to_the_hf_card(tmp_path):
    with pytest.raises(BenchError, match="wavlm_large@random"):
        S3PRLHubUpstream(name="wavlm_large", random_init=True, download_dir=str(tmp_path))


def test_random_init_with_checkpoint_reinitialises(tmp_path):
    ckpt = write_tiny_s3prl("hubert", tmp_path / "h.pt")
    loaded = S3PRLHubUpstream(name="hubert_local", path_or_url=str(ckpt))
    random = S3PRLHubUpstream(name="hubert_local", path_or_url=str(ckpt), random_init=True)
    flat = [torch.cat([p.flatten() for p in m.parameters()]) for m in (loaded, random)]
    assert flat[0].shape == flat[1].shape and not torch.equal(*flat)


def test_named_entry_refuses_a_local_path(tmp_path):
    with pytest.raises(BenchError, match="wavlm_local"):
        S3PRLHubUpstream(name="wavlm_large", path_or_url=str(tmp_path / "x.pt"))


def test_unknown_entry_suggests_names():
    with pytest.raises(UnknownNameError, match="wavlm_large"):
        S3PRLHubUpstream(name="wavlm_larg")


def test_per_utterance_is_padding_invariant(tmp_path):
    ckpt = write_tiny_s3prl("wavlm", tmp_path / "w.pt")
    batched = S3PRLHubUpstream(name="wavlm_local", path_or_url=str(ckpt))
    exact = S3PRLHubUpstream(name="wavlm_local", path_or_url=str(ckpt), per_utterance=True)
    strict = CardTest(min_input_s=0.05, padding_invariant=True)
    assert check_upstream(batched, card_test=strict).status("batch_invariance") == "fail"
    report = check_upstream(exact, card_test=strict)
    assert report.ok, report.render()


def test_hub_index_is_static_and_complete():
    index = hub_index()
    assert index["wavlm_large"] == (WAVLM_LARGE_URL, "wavlm")
    assert index["hubert"][0] == index["hubert_base"][0]  # `hubert` delegates to `hubert_base`
    assert index["wav2vec2_large_960"][0].endswith("/libri960_big.pt")  # converted, not the fairseq legacy URL
    assert index["wavlm_local"] == (None, "wavlm")
    assert len(index) > 150


def test_offline_patch_is_restored(tmp_path):
    import s3prl.util.download as dl

    before = (dl.get_dir, dl._download)
    with pytest.raises(WeightsMissingError), offline_downloads(str(tmp_path)):
        dl._urls_to_filepaths(WAVLM_LARGE_URL)
    assert (dl.get_dir, dl._download) == before


def test_describe_reads_the_checkpoint_without_building(tmp_path):
    path = cache_path(WAVLM_LARGE_URL, download_dir=tmp_path)
    assert S3PRLHubUpstream.describe(name="wavlm_large", download_dir=str(tmp_path)).weights_present is False
    write_tiny_s3prl("wavlm", path, layer_norm=True)
    info = S3PRLHubUpstream.describe(name="wavlm_large", download_dir=str(tmp_path))
    assert info.weights_present and info.weights_location == str(path)
    assert info.params == sum(t.numel() for t in torch.load(path, weights_only=True)["model"].values())
