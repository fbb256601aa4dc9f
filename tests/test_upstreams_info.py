"""``bench info --upstream``: exact parameter counts and weight locations without any weights."""

from __future__ import annotations

import pytest

from harness.features.info import render_info, upstream_info
from harness.testing import repo_workspace

# Exact counts of the module each adapter runs, from the cards' `arch` on the meta device.
# (The paper's Table IX: 95M base, 317M large, 244M Whisper-small for the whole encoder-decoder.)
EXPECTED = {
    "wav2vec2_base": (94_371_712, 13, 768), "hubert_base": (94_371_712, 13, 768),
    "wavlm_base_plus": (94_381_936, 13, 768), "whisper_small": (88_154_112, 13, 768),
    "wav2vec2_large": (315_428_992, 25, 1024), "hubert_large": (315_438_720, 25, 1024),
    "wavlm_large": (315_453_120, 25, 1024), "wav2vec2_large_ft": (315_438_720, 25, 1024),
    "hubert_large_ft": (315_438_720, 25, 1024), "wavlm_large_ft": (315_453_120, 25, 1024),
}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return repo_workspace(tmp_path_factory.mktemp("ws"))


@pytest.fixture(autouse=True)
def empty_caches(tmp_path, monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HOME", str(tmp_path))


def test_paper_rows_have_cards_with_the_published_metadata(workspace):
    by_row = {}
    for name in workspace.card_files():
        meta = workspace.card(name).card.meta
        if meta.paper_row:
            for lang in meta.languages:
                assert (meta.paper_row, lang) not in by_row, f"two cards fill {meta.paper_row}/{lang}"
                by_row[(meta.paper_row, lang)] = name
    assert {row for row, lang in by_row if lang == "en"} >= set(EXPECTED)
    assert by_row[("wav2vec2_base", "fr")] == "wav2vec2_base_fr"
    assert by_row[("whisper_small", "fi")] == "whisper_small_fi"
    assert by_row[("wavlm_large_ft", "fr")] == "wavlm_large_ft_fr"
    assert ("hubert_base", "fi") not in by_row  # "*" in Table II: the English model is used


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_exact_counts_without_weights(name, workspace):
    info = upstream_info(workspace, name)
    assert (info["params"], info["num_layers"], info["hidden_size"]) == EXPECTED[name]
    assert info["frame_rate_hz"] == 50.0 and info["weights"]["present"] is False
    assert "models--" in info["weights"]["location"]
    assert info["params_published"] in (95e6, 244e6, 317e6)


def test_whisper_reports_the_full_model_too(workspace):
    info = upstream_info(workspace, "whisper_small")
    assert info["extra"]["params_full_model"] == 241_734_144
    assert "encoder" in render_info(info)


def test_random_variant_and_cheap_adapters(workspace):
    assert upstream_info(workspace, "wavlm_base_plus@random")["params"] == 94_381_936
    mfcc = upstream_info(workspace, "mfcc")
    assert (mfcc["params"], mfcc["hidden_size"], mfcc["frame_rate_hz"]) == (0, 759, 100.0)


def test_s3prl_card_says_where_the_checkpoint_would_be(workspace, tmp_path):
    info = upstream_info(workspace, "wavlm_large_s3prl")
    assert info["weights"]["present"] is False
    assert info["weights"]["location"].startswith(str(tmp_path / ".cache" / "s3prl" / "download"))
    assert "wavlm_large" in " ".join(info["notes"])


def test_resemblyzer_counts_the_lstm(workspace):
    pytest.importorskip("resemblyzer")
    info = upstream_info(workspace, "resemblyzer")
    assert info["params"] == 1_423_616 and info["weights"]["present"] is True and info["granularity"] == "utterance"
