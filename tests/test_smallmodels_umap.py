"""UMAP figures: which words are plotted, the PNG, determinism (the UMAP fit itself is slow: numba)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.data import Utterance, Word
from harness.smallmodels.train import torch_threads
from harness.smallmodels.umap_plot import (
    frequent_word_occurrences,
    plot_panels,
    plot_word_umap,
    umap_2d,
)


def utterance(uid: str, words: list[str]) -> Utterance:
    return Utterance(id=uid, path="/none.wav", split="test", language="en", speaker="s",
                     words=tuple(Word(w, i * 0.3, i * 0.3 + 0.3) for i, w in enumerate(words)))


def test_frequent_words_are_chosen_by_count_then_name() -> None:
    utts = [utterance("a", ["the", "cat", "the", "dog"]), utterance("b", ["The", "cat", "sun", "dog", "the"])]
    occs = frequent_word_occurrences(utts, top_n=2, max_per_word=3)
    # "the" x4 (capped at 3); "cat" and "dog" x2 each: the tie goes to "cat" (alphabetical)
    assert [o.word for o in occs] == ["the", "cat", "the", "the", "cat"]


def test_panels_are_written_as_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    points = rng.normal(size=(30, 2))
    labels = [["cat", "dog", "sun"][i % 3] for i in range(30)]
    path = plot_panels([("Siamese", points, labels), ("LEE", points * 2, labels), ("x", points, labels)],
                       path=tmp_path / "f" / "umap.png", title="test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_umap_is_deterministic_and_plots_real_segments(tmp_path: Path) -> Any:
    from harness.smallmodels.testing import make_espeak_corpus
    from harness.smallmodels.word_discrimination import upstream_embedder
    from upstreams.lstm import WordLSTMUpstream

    corpus = make_espeak_corpus(tmp_path / "c", n_speakers=2, utterances_per_speaker=6, split_speakers=(0, 0, 2),
                                vocabulary=["cat", "dog", "sun", "table"], seed=4)
    x = np.random.default_rng(1).normal(size=(40, 8))
    assert np.array_equal(umap_2d(x, random_state=3), umap_2d(x, random_state=3))
    with torch_threads(1):
        embed = upstream_embedder(WordLSTMUpstream(model="siamese", random_init=True).eval())
        out = plot_word_umap(embedders={"Siamese (random init)": embed}, utterances=corpus.split("test"),
                             path=tmp_path / "umap.png", top_n=3)
    assert Path(out["path"]).is_file() and len(out["words"]) == 3 and out["points"] > 10
