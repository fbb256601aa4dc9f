"""Word discrimination (paper Section VI-C, Table V): triplets of word segments, cosine accuracy.

Triplets of one corpus split: for every word with at least two occurrences, the anchor is its
first occurrence and the positive its second (occurrences ordered by utterance id, then position
in the utterance); the negative is an occurrence (drawn with the seed) of the most similar OTHER
word of the split's vocabulary.

Negative rule ``"difflib"`` (the paper's code): ``difflib.get_close_matches(anchor, vocabulary, 2,
cutoff=0.6)[-1]``: Ratcliff/Obershelp similarity, the anchor itself being the best match. When no
other word passes the cutoff that expression returns the ANCHOR word (a defect of the code: anchor,
positive and negative are then all the same word). Such triplets are counted
(``no_match_within_cutoff``) and, by default (``on_no_match="replace"``), get the closest other
word by difflib ratio ignoring the cutoff; ``on_no_match="skip"`` drops them and
``on_no_match="keep"`` keeps the code's behaviour. Rule ``"levenshtein"`` (the paper's text says
"edit distance"): the other word at the smallest edit distance (ties: higher difflib ratio, then
alphabetical).

Accuracy = share of triplets with cos(anchor, positive) > cos(anchor, negative). Embeddings come
from any callable ``embed(list of 16 kHz word segments) -> [N, D]``: a small model's encoder
(:func:`evaluate_word_discrimination`), or any upstream through :func:`upstream_embedder`
(word-level ones return one vector per segment; frame-level ones are mean-pooled over the word's
frames, an extension of the paper). Word segments are cut from the audio directly (they are
another audio set than the utterances of the feature cache). Triplets are built once per (corpus
split, options) and cached as JSON next to the models. The matrix cell that scores a card on
them is :mod:`harness.run.steps.words`.
"""

from __future__ import annotations

import difflib
import json
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import AudioError, BenchError
from ..identity import text_hash
from ..tempfiles import atomic_file, write_text_atomic
from .segments import (
    MIN_SEGMENT_SAMPLES,
    alignment_hash,
    normalise_word,
    utterance_audio,
    word_segments,
)

if TYPE_CHECKING:
    import torch

    from ..config import Workspace
    from ..data import Dataset, Utterance

EmbedFn = Callable[[list[np.ndarray]], np.ndarray]
RULES = ("difflib", "levenshtein")
ON_NO_MATCH = ("replace", "skip", "keep")
TRIPLETS_VERSION = 1


@dataclass(frozen=True)
class Occurrence:
    """One spoken word: its utterance, its index in ``utterance.words``, the normalised word."""

    utterance_id: str
    position: int
    word: str

    @property
    def key(self) -> tuple[str, int]:
        return (self.utterance_id, self.position)


@dataclass(frozen=True)
class Triplet:
    anchor: Occurrence
    positive: Occurrence
    negative: Occurrence


@dataclass(frozen=True)
class TripletSet:
    """Triplets of one split, the options that built them and what was counted on the way."""

    triplets: tuple[Triplet, ...]
    counts: dict[str, int]
    options: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        rows = [[[o.utterance_id, o.position, o.word] for o in (t.anchor, t.positive, t.negative)] for t in self.triplets]
        return {"version": TRIPLETS_VERSION, "options": self.options, "counts": self.counts, "triplets": rows}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TripletSet:
        triplets = tuple(Triplet(*(Occurrence(str(u), int(p), str(w)) for u, p, w in row)) for row in data["triplets"])
        return cls(triplets=triplets, counts={k: int(v) for k, v in data["counts"].items()}, options=dict(data["options"]))


# --------------------------------------------------------------------------- negative word rules
def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions, each costing 1)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def difflib_ratio(a: str, b: str) -> float:
    matcher = difflib.SequenceMatcher()
    matcher.set_seqs(b, a)  # the argument order get_close_matches uses
    return matcher.ratio()


def paper_negative_word(anchor: str, vocabulary: Sequence[str], *, cutoff: float = 0.6) -> str:
    """The paper code's negative: ``get_close_matches(anchor, vocabulary, 2, cutoff)[-1]`` (may be the anchor)."""
    return difflib.get_close_matches(anchor, vocabulary, 2, cutoff=cutoff)[-1]


def closest_other_by_ratio(anchor: str, vocabulary: Iterable[str]) -> str:
    """The other word with the highest difflib ratio, ties broken as get_close_matches does (larger word)."""
    return max((w for w in vocabulary if w != anchor), key=lambda w: (difflib_ratio(anchor, w), w))


def closest_other_by_edit_distance(anchor: str, vocabulary: Iterable[str]) -> str:
    """The other word at the smallest edit distance; ties: higher difflib ratio, then alphabetical."""
    return min((w for w in vocabulary if w != anchor),
               key=lambda w: (levenshtein(anchor, w), -difflib_ratio(anchor, w), w))


# --------------------------------------------------------------------------- triplets
def occurrences_of(utterances: Iterable[Utterance]) -> list[Occurrence]:
    """Every aligned word with a non-empty normalised form, ordered by utterance id then position."""
    out = []
    for u in sorted(utterances, key=lambda u: u.id):
        for pos, w in enumerate(u.words):
            word = normalise_word(w.word)
            if word:
                out.append(Occurrence(u.id, pos, word))
    return out


def build_triplets(occurrences: Sequence[Occurrence], *, rule: str = "difflib", on_no_match: str = "replace",
                   cutoff: float = 0.6, seed: int = 0) -> TripletSet:
    """One triplet per word with >= 2 occurrences (see the module docstring for the rules)."""
    if rule not in RULES:
        raise BenchError(f"word discrimination: rule must be one of {list(RULES)}, got {rule!r}")
    if on_no_match not in ON_NO_MATCH:
        raise BenchError(f"word discrimination: on_no_match must be one of {list(ON_NO_MATCH)}, got {on_no_match!r}")
    by_word: dict[str, list[Occurrence]] = {}
    for occ in occurrences:
        by_word.setdefault(occ.word, []).append(occ)
    vocabulary = sorted(by_word)
    rng = np.random.default_rng(seed)
    counts = {"occurrences": len(occurrences), "vocabulary": len(vocabulary),
              "anchor_words": sum(len(v) >= 2 for v in by_word.values()), "no_match_within_cutoff": 0,
              "replaced": 0, "skipped": 0, "same_word_negatives": 0}
    triplets = []
    for word in vocabulary:
        occs = by_word[word]
        if len(occs) < 2 or len(vocabulary) < 2:
            continue
        if rule == "levenshtein":
            negative_word = closest_other_by_edit_distance(word, vocabulary)
        else:
            negative_word = paper_negative_word(word, vocabulary, cutoff=cutoff)
            if negative_word == word:
                counts["no_match_within_cutoff"] += 1
                if on_no_match == "skip":
                    counts["skipped"] += 1
                    continue
                if on_no_match == "replace":
                    negative_word = closest_other_by_ratio(word, vocabulary)
                    counts["replaced"] += 1
                else:
                    counts["same_word_negatives"] += 1
        candidates = [o for o in by_word[negative_word] if o.key not in (occs[0].key, occs[1].key)]
        if not candidates:  # "keep" with a word that occurs only twice: no third occurrence to use
            counts["skipped"] += 1
            continue
        negative = candidates[int(rng.integers(len(candidates)))]
        triplets.append(Triplet(occs[0], occs[1], negative))
    counts["triplets"] = len(triplets)
    options = {"rule": rule, "on_no_match": on_no_match, "cutoff": cutoff, "seed": seed}
    return TripletSet(triplets=tuple(triplets), counts=counts, options=options)


def triplets_for(dataset: Dataset, split: str, *, cache_dir: str | Path | None, rule: str = "difflib",
                 on_no_match: str = "replace", cutoff: float = 0.6, seed: int = 0) -> TripletSet:
    """:func:`build_triplets` for ``dataset``'s ``split``, cached as JSON in ``cache_dir``."""
    utterances = dataset.split(split)
    options = {"rule": rule, "on_no_match": on_no_match, "cutoff": cutoff, "seed": seed}
    key_text = f"{dataset.fingerprint}|{alignment_hash(utterances)}|{split}|{json.dumps(options, sort_keys=True)}"
    key = text_hash(key_text, 16)
    path = Path(cache_dir) / f"{dataset.language}_{split}_{key}.json" if cache_dir is not None else None
    if path is not None and path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") == TRIPLETS_VERSION:
            return TripletSet.from_json(data)
    triplet_set = build_triplets(occurrences_of(utterances), rule=rule, on_no_match=on_no_match, cutoff=cutoff,
                                 seed=seed)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = dict(triplet_set.to_json(), dataset=dataset.name, fingerprint=dataset.fingerprint, split=split)
        write_text_atomic(path, json.dumps(payload, ensure_ascii=False), wrap_errors=False)
    return triplet_set


# --------------------------------------------------------------------------- scoring
def cosine_rows(a_ND: np.ndarray, b_ND: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity [N]; a zero vector has similarity 0 with anything."""
    a = np.asarray(a_ND, dtype=np.float64)
    b = np.asarray(b_ND, dtype=np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.where(norms > 0, (a * b).sum(1) / np.where(norms > 0, norms, 1.0), 0.0)


def triplet_accuracy(anchor_ND: np.ndarray, positive_ND: np.ndarray, negative_ND: np.ndarray) -> float:
    """Share of rows with cos(anchor, positive) > cos(anchor, negative) (strictly), in [0, 1]."""
    if len(anchor_ND) == 0:
        raise BenchError("word discrimination: no triplets to score")
    return float(np.mean(cosine_rows(anchor_ND, positive_ND) > cosine_rows(anchor_ND, negative_ND)))


def segments_for(utterances: Iterable[Utterance], keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], np.ndarray]:
    """16 kHz samples of each (utterance id, word position) in ``keys``; unreadable or empty ones left out."""
    wanted: dict[str, set[int]] = {}
    for uid, pos in keys:
        wanted.setdefault(uid, set()).add(pos)
    out = {}
    for u in utterances:
        if u.id not in wanted:
            continue
        try:
            audio = utterance_audio(u)
        except AudioError:
            continue
        segments = word_segments(u, audio)
        for pos in wanted[u.id]:
            if pos < len(segments) and len(segments[pos]) >= MIN_SEGMENT_SAMPLES:
                out[(u.id, pos)] = segments[pos]
    return out


def evaluate_triplets(triplet_set: TripletSet, *, utterances: Iterable[Utterance], embed: EmbedFn,
                      cache: Path | None = None) -> dict[str, Any]:
    """Accuracy of ``embed`` on the triplets; triplets with a segment that cannot be cut are counted and left out.

    ``cache``: a ``.npz`` file holding the word vectors (read when its keys are this set's, else
    computed and written atomically)."""
    utterances = list(utterances)
    keys = sorted({o.key for t in triplet_set.triplets for o in (t.anchor, t.positive, t.negative)})
    segments = segments_for(utterances, keys)
    usable = [t for t in triplet_set.triplets if all(o.key in segments for o in (t.anchor, t.positive, t.negative))]
    order = sorted(segments)
    vectors = cached_vectors(cache, order, lambda: np.asarray(embed([segments[k] for k in order])))
    row = {k: i for i, k in enumerate(order)}

    def stack(role: str) -> np.ndarray:
        return vectors[[row[getattr(t, role).key] for t in usable]]

    anchor, positive, negative = stack("anchor"), stack("positive"), stack("negative")
    accuracy = triplet_accuracy(anchor, positive, negative)
    correct = cosine_rows(anchor, positive) > cosine_rows(anchor, negative)
    speaker = {u.id: u.speaker for u in utterances}
    return {"accuracy": 100.0 * accuracy, "n_triplets": len(usable), "correct": correct.astype(int).tolist(),
            "triplets_without_audio": len(triplet_set.triplets) - len(usable), "counts": dict(triplet_set.counts),
            "options": dict(triplet_set.options),
            "ids": ["|".join(f"{o.utterance_id}:{o.position}" for o in (t.anchor, t.positive, t.negative))
                    for t in usable],
            "anchor_speakers": [speaker.get(t.anchor.utterance_id, "") for t in usable]}


def cached_vectors(path: Path | None, keys: list[tuple[str, int]], compute: Callable[[], np.ndarray]) -> np.ndarray:
    """The vectors of ``keys`` from ``path`` when it holds exactly those keys, else ``compute()``
    (then saved to ``path``: temporary file, then rename; an unreadable file is recomputed)."""
    names = np.array([f"{uid}\t{pos}" for uid, pos in keys], dtype=str)
    if path is not None and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                if np.array_equal(data["keys"], names):
                    return np.asarray(data["vectors"])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            import warnings

            from ..features.cache import CacheCorruptWarning

            warnings.warn(f"word vectors {path} are unreadable ({type(e).__name__}: {e}); recomputed",
                          CacheCorruptWarning, stacklevel=2)
    vectors = compute()
    if path is not None:
        with atomic_file(path, "wb", wrap_errors=False) as f:
            np.savez(f, keys=names, vectors=vectors)
    return vectors


def upstream_embedder(upstream: torch.nn.Module, *, layer: int = -1, batch_size: int = 64) -> EmbedFn:
    """``embed(segments) -> [N, D]`` for any upstream: T' = 1 outputs as they are, frames mean-pooled.

    The upstream is used as given (the caller builds it with ``build_upstream``, in eval mode).
    Segments are batched in length order, longest first (padding stays small, and the allocator's
    high-water mark is set by the first batch); the result is in input order.
    """
    import torch

    def embed(segments: list[np.ndarray]) -> np.ndarray:
        order = sorted(range(len(segments)), key=lambda i: len(segments[i]), reverse=True)
        out: list[np.ndarray | None] = [None] * len(segments)
        device = next(iter(upstream.parameters()), torch.zeros(0)).device
        with torch.no_grad():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                lengths_B = torch.tensor([len(segments[i]) for i in idx], dtype=torch.long)
                wavs_BT = torch.zeros(len(idx), int(lengths_B.max()))
                for b, i in enumerate(idx):
                    wavs_BT[b, : len(segments[i])] = torch.as_tensor(segments[i])
                result = upstream(wavs_BT.to(device), lengths_B.to(device))
                hidden_BTD = result.layers[layer].float()
                valid_BT1 = (torch.arange(hidden_BTD.shape[1], device=hidden_BTD.device).unsqueeze(0)
                             < result.lengths.to(hidden_BTD.device).unsqueeze(1)).unsqueeze(2).float()
                pooled_BD = (hidden_BTD * valid_BT1).sum(1) / valid_BT1.sum(1).clamp(min=1.0)
                for b, i in enumerate(idx):
                    out[i] = pooled_BD[b].cpu().numpy()
        return np.stack([v for v in out if v is not None]) if segments else np.zeros((0, 0), np.float32)

    return embed


def evaluate_word_discrimination(*, workspace: Workspace, model: str, train_language: str, test_language: str,
                                 dataset: Dataset | None = None, split: str = "test", rule: str = "difflib",
                                 on_no_match: str = "replace", cutoff: float = 0.6, seed: int = 0,
                                 checkpoint: str | None = None, recipe: str | None = None,
                                 batch_size: int = 64) -> dict[str, Any]:
    """Table V for one cell: ``model`` trained on ``train_language``, tested on ``test_language``'s triplets.

    Matched when the two languages are equal, mismatched otherwise. ``dataset`` is the TEST corpus
    (default: the synthetic corpus of ``test_language``). Triplets are cached under
    ``<models>/_word_discrimination``. The model: ``checkpoint``, else the checkpoint of the
    training recipe whose key is ``recipe`` (:mod:`harness.config.small_models`), else its only one for ``train_language``.
    """
    from upstreams.lstm import WordLSTMUpstream

    if dataset is None:
        from .train import load_training_dataset

        dataset = load_training_dataset(workspace, test_language)
    upstream = WordLSTMUpstream(model=model, checkpoint=checkpoint, language=train_language, recipe=recipe,
                                models_dir=str(workspace.path("models"))).eval()
    triplet_set = triplets_for(dataset, split, cache_dir=workspace.path("models") / "_word_discrimination",
                               rule=rule, on_no_match=on_no_match, cutoff=cutoff, seed=seed)
    result = evaluate_triplets(triplet_set, utterances=dataset.split(split),
                               embed=upstream_embedder(upstream, batch_size=batch_size))
    setting = "matched" if train_language == test_language else "mismatched"
    return {"model": model, "train_language": train_language, "test_language": test_language, "setting": setting,
            "dataset": dataset.name, "split": split, "checkpoint": str(upstream.checkpoint_path), **result}


def evaluate_card_word_discrimination(*, workspace: Workspace, card: str, language: str,
                                      dataset: Dataset | None = None, split: str = "test", layer: int = -1,
                                      rule: str = "difflib", on_no_match: str = "replace", cutoff: float = 0.6,
                                      seed: int = 0, batch_size: int = 16) -> dict[str, Any]:
    """Word discrimination for any registered upstream card (frame-level ones mean-pooled over the word).

    The paper scores only the small models on words; for pretrained frame-level models this is an
    extension. ``layer`` indexes the upstream's layers (default: the last).
    """
    from ..features.upstream import build_upstream

    if dataset is None:
        from .train import load_training_dataset

        dataset = load_training_dataset(workspace, language)
    module = build_upstream(workspace.card(card), language=language, workspace=workspace)
    triplet_set = triplets_for(dataset, split, cache_dir=workspace.path("models") / "_word_discrimination",
                               rule=rule, on_no_match=on_no_match, cutoff=cutoff, seed=seed)
    result = evaluate_triplets(triplet_set, utterances=dataset.split(split),
                               embed=upstream_embedder(module, layer=layer, batch_size=batch_size))
    return {"card": card, "language": language, "layer": layer, "dataset": dataset.name, "split": split, **result}
