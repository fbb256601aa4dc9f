"""Word discrimination: triplet rules (difflib with the paper code's fallback, levenshtein), accuracy, caching."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.errors import BenchError
from harness.schema import SmallModelSpec
from harness.smallmodels.testing import make_espeak_corpus, make_workspace
from harness.smallmodels.train import torch_threads, train_small_model
from harness.smallmodels.word_discrimination import (
    Occurrence,
    TripletSet,
    build_triplets,
    closest_other_by_edit_distance,
    evaluate_card_word_discrimination,
    evaluate_triplets,
    evaluate_word_discrimination,
    levenshtein,
    paper_negative_word,
    triplet_accuracy,
    triplets_for,
    upstream_embedder,
)
from upstreams.mfcc import MFCCUpstream


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Any:
    with torch_threads(1):
        yield


def occ(words: list[str]) -> list[Occurrence]:
    return [Occurrence(f"u{i // 4:02d}", i % 4, w) for i, w in enumerate(words)]


# "zebra" has no other word within difflib's 0.6 cutoff: the paper code's negative is "zebra" itself.
WORDS = ["cat", "hat", "cat", "zebra", "hat", "zebra", "house", "mouse", "house", "cart", "zebra", "mouse"]


def test_paper_rule_and_its_fallback() -> None:
    vocab = sorted(set(WORDS))
    assert paper_negative_word("cat", vocab) == difflib.get_close_matches("cat", vocab, 2, cutoff=0.6)[-1]
    assert paper_negative_word("zebra", vocab) == "zebra"  # the defect
    replaced = build_triplets(occ(WORDS))
    assert replaced.counts["no_match_within_cutoff"] == 1 and replaced.counts["replaced"] == 1
    by_anchor = {t.anchor.word: t for t in replaced.triplets}
    assert set(by_anchor) == {"cat", "hat", "zebra", "house", "mouse"}  # words with >= 2 occurrences
    assert all(t.negative.word != t.anchor.word for t in replaced.triplets)
    assert by_anchor["house"].negative.word == "mouse" and by_anchor["mouse"].negative.word == "house"
    cat = by_anchor["cat"]
    assert (cat.anchor.key, cat.positive.key) == (("u00", 0), ("u00", 2))  # first and second occurrence
    skipped = build_triplets(occ(WORDS), on_no_match="skip")
    assert skipped.counts["skipped"] == 1 and "zebra" not in {t.anchor.word for t in skipped.triplets}
    kept = build_triplets(occ(WORDS), on_no_match="keep")  # the paper code's behaviour, for comparison
    zebra = next(t for t in kept.triplets if t.anchor.word == "zebra")
    assert zebra.negative.word == "zebra" and zebra.negative.key == ("u02", 2)  # the third occurrence
    assert kept.counts["same_word_negatives"] == 1


def test_levenshtein_rule() -> None:
    assert levenshtein("kitten", "sitting") == 3 and levenshtein("", "abc") == 3 and levenshtein("same", "same") == 0
    # "cart" and "hat" are both 1 edit away; "cart" has the higher difflib ratio (0.86 vs 0.67)
    assert closest_other_by_edit_distance("cat", ["cat", "cart", "hat", "zebra"]) == "cart"
    assert closest_other_by_edit_distance("cat", ["cat", "bat", "hat"]) == "bat"  # full tie: alphabetical
    triplets = build_triplets(occ(WORDS), rule="levenshtein")
    assert triplets.counts["no_match_within_cutoff"] == 0
    assert {t.anchor.word: t.negative.word for t in triplets.triplets}["zebra"] in {"hat", "cart", "cat", "house"}
    with pytest.raises(BenchError, match="rule"):
        build_triplets(occ(WORDS), rule="soundex")


def test_triplets_are_deterministic_and_round_trip_through_json() -> None:
    words = WORDS * 3
    a = build_triplets(occ(words), seed=5)
    b = build_triplets(occ(words), seed=5)
    assert a == b
    assert TripletSet.from_json(json.loads(json.dumps(a.to_json()))) == a
    differs = [build_triplets(occ(words), seed=s).triplets for s in range(6)]
    assert len({tuple(t.negative.key for t in d) for d in differs}) > 1  # the seed picks the negative occurrence


def test_accuracy_on_hand_made_vectors() -> None:
    anchor = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    positive = np.array([[2.0, 0.1], [0.0, 1.0], [0.0, 1.0], [1.0, 1.0]])
    negative = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    # row 0 right, row 1 wrong, row 2 right, row 3 a tie (not counted as right)
    assert triplet_accuracy(anchor, positive, negative) == pytest.approx(0.5)
    with pytest.raises(BenchError):
        triplet_accuracy(np.zeros((0, 2)), np.zeros((0, 2)), np.zeros((0, 2)))


@pytest.fixture(scope="module")
def corpora(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    vocab = {"en": ["cat", "hat", "bat", "dog", "door", "floor", "sun", "table"],
             "fr": ["chat", "chien", "porte", "pomme", "pain", "main", "vin", "table"]}
    return {lang: make_espeak_corpus(tmp_path_factory.mktemp(f"wd_{lang}"), language=lang, n_speakers=6,
                                     utterances_per_speaker=4, words_per_utterance=(3, 5),
                                     split_speakers=(2, 2, 2), vocabulary=words, seed=2)
            for lang, words in vocab.items()}


def test_frame_level_upstream_hook_with_mfcc(corpora: dict[str, Any], tmp_path: Path) -> None:
    """Any frame-level upstream works through mean pooling over the word's frames (here the MFCC baseline)."""
    corpus = corpora["en"]
    triplets = triplets_for(corpus, "test", cache_dir=tmp_path)
    assert len(list(tmp_path.glob("en_test_*.json"))) == 1
    assert triplets_for(corpus, "test", cache_dir=tmp_path) == triplets  # read back from the cache
    embed = upstream_embedder(MFCCUpstream(n_mfcc=13, deltas=False, context=0).eval())
    result = evaluate_triplets(triplets, utterances=corpus.split("test"), embed=embed)
    assert result["n_triplets"] == triplets.counts["triplets"] > 0
    assert result["accuracy"] == pytest.approx(100.0 * np.mean(result["correct"]))
    assert result["accuracy"] > 50.0  # chance: a random embedding picks the positive half the time
    constant = evaluate_triplets(triplets, utterances=corpus.split("test"), embed=lambda segs: np.ones((len(segs), 3)))
    assert constant["accuracy"] == 0.0  # every triplet a tie, and a tie is a miss


def test_matched_and_mismatched_evaluation(corpora: dict[str, Any], tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    trained = train_small_model(workspace=ws, model="siamese", language="en", dataset=corpora["en"],
                                spec=SmallModelSpec(max_epochs=1, batch_size=32), progress=False)
    matched = evaluate_word_discrimination(workspace=ws, model="siamese", train_language="en", test_language="en",
                                           dataset=corpora["en"])
    mismatched = evaluate_word_discrimination(workspace=ws, model="siamese", train_language="en",
                                              test_language="fr", dataset=corpora["fr"])
    assert matched["setting"] == "matched" and mismatched["setting"] == "mismatched"
    for r in (matched, mismatched):
        assert r["n_triplets"] > 0 and r["accuracy"] == pytest.approx(100.0 * np.mean(r["correct"]))
        assert r["accuracy"] > 50.0, r  # above chance
        assert set(r["counts"]) >= {"triplets", "no_match_within_cutoff", "anchor_words"}
    assert list((ws.path("models") / "_word_discrimination").glob("fr_test_*.json"))
    by_card = evaluate_card_word_discrimination(workspace=ws, card=f"siamese_en_{trained.recipe}", language="en",
                                                dataset=corpora["en"])
    assert by_card["accuracy"] == matched["accuracy"]  # the generated card is the same model
