"""Word discrimination as a matrix cell (paper Table V): a card's upstream scored on the word
triplets of its language (matched) and, when the downstream's ``options.mismatched`` maps the
language to another one, on that language's triplets (mismatched).

The triplets and the scoring are :mod:`harness.smallmodels.word_discrimination`; this step binds
them to a cell: the cell's card and layer, the word-vector cache (``cache/word_discrimination/
vectors``, filled by the matrix's features stage through :func:`prefetch_word_vectors`, so the
upstream runs once whatever the seeds) and the UMAP figure of the most frequent words (Figures 1-3).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from ...config.adapters import upstream_identity
from ...corpora.load import load_task_dataset
from ...errors import BenchError
from ...features.info import card_arch
from ...features.upstream import build_upstream
from ...identity import text_hash
from ...smallmodels.umap_plot import plot_word_umap
from ...smallmodels.word_discrimination import (
    EmbedFn,
    evaluate_triplets,
    triplets_for,
    upstream_embedder,
)
from ..context import KindSections

if TYPE_CHECKING:
    from ...config.plan import CellPlan
    from ...config.snapshot import Snapshot
    from ...data import Dataset


WORD_OPTIONS = {"split": "test", "rule": "difflib", "on_no_match": "replace", "cutoff": 0.6,
                "mismatched": {}, "umap": True, "umap_top_n": 10}


def run_word_discrimination_cell(*, snap: Snapshot, plan: CellPlan, dataset: Dataset, device: str,
                                 progress: bool) -> KindSections:
    """Table V for one cell: the upstream of ``plan`` (trained on the cell's language for the
    small models) on the triplets of its own language (matched) and, when the downstream's
    ``options.mismatched`` maps the language to another one, on that language's triplets
    (mismatched). Word segments are embedded directly (they are a different audio set from the
    utterances of the feature cache); frame-level upstreams are mean-pooled over each word. The
    word vectors are cached (:func:`prefetch_word_vectors` fills the cache in the matrix's
    features stage), so the upstream is built only on a cache miss.
    Also writes the UMAP figure of the most frequent words (paper Figures 1-3), for the
    profile's first seed (the figure does not depend on the seed).
    """
    import time

    t0 = time.perf_counter()
    scorer = _WordScorer(snap, plan, device=device)
    matched = scorer.score(dataset, plan.spec.language)
    section: dict[str, Any] = {"matched": matched}
    other = scorer.mismatched_dataset()
    if other is not None:
        section["mismatched"] = scorer.score(other[1], other[0])
    opts = scorer.opts
    result: dict[str, Any] = {
        "metrics": {"accuracy": matched["accuracy"], "n": matched["n_triplets"]},
        "predictions": matched["predictions"],
        "word_discrimination": section,
        "layer": {"chosen": matched["layer"], "rule": plan.downstream.config.layer},
        "analyses": {},
    }
    first_seed = plan.spec.seed == plan.profile.seeds[0]
    if opts["umap"] and plan.profile.analyses.umap and plan.granularity == "word" and first_seed:  # Figures 1-3
        lang = plan.spec.language
        path = snap.path("results") / plan.spec.profile / "umap" / f"umap_{plan.spec.upstream}_{lang}.png"
        try:
            result["analyses"]["umap"] = plot_word_umap(
                embedders={plan.listed_card.display: scorer.embed}, utterances=dataset.split(opts["split"]),
                path=path, title=f"{plan.listed_card.display}: {opts['umap_top_n']} most frequent words ({dataset.name})",
                top_n=int(opts["umap_top_n"]))
        except Exception as e:  # noqa: BLE001 - a figure never fails the cell
            result["analyses"]["umap"] = {"error": f"{type(e).__name__}: {e}"}
    result["features"] = {"word_vectors": "computed in this cell" if scorer.built else "read from the cache",
                          "cache": str(scorer.cache_dir / "vectors" / plan.card.name)}
    result["timings"] = {"word_discrimination_s": time.perf_counter() - t0}
    return KindSections.model_validate(result)


def prefetch_word_vectors(*, snap: Snapshot, plan: CellPlan, dataset: Dataset, device: str) -> bool:
    """The matrix's features stage for a word-discrimination cell: the word vectors of its
    matched (and mismatched) triplets computed and cached, nothing else written. True when the
    upstream had to be built (a cache miss)."""
    scorer = _WordScorer(snap, plan, device=device)
    scorer.score(dataset, plan.spec.language)
    other = scorer.mismatched_dataset()
    if other is not None:
        scorer.score(other[1], other[0])
    return scorer.built


class _WordScorer:
    """Scores a cell's upstream on triplet sets; the upstream is built on the first cache miss."""

    VECTORS_VERSION = 1

    def __init__(self, snap: Snapshot, plan: CellPlan, *, device: str):
        unknown = set(plan.downstream.config.options) - set(WORD_OPTIONS)
        if unknown:
            raise BenchError(f"downstream {plan.spec.downstream!r}: unknown options {sorted(unknown)}; "
                             f"known: {sorted(WORD_OPTIONS)}")
        self.snap, self.plan, self.device = snap, plan, device
        self.opts = {**WORD_OPTIONS, **plan.downstream.config.options}
        self.identity = upstream_identity(snap, plan.card, language=plan.spec.language)
        self.cache_dir = snap.path("cache") / "word_discrimination"
        self._embed: EmbedFn | None = None
        self._num_layers: int | None = None
        self.built = False

    def embed(self, segments: list[np.ndarray]) -> np.ndarray:
        if self._embed is None:
            module: Any = build_upstream(self.plan.card, language=self.plan.spec.language, workspace=self.snap,
                                    device=self.device)
            self._num_layers = int(module.num_layers)
            self._embed = upstream_embedder(module, layer=_word_layer(self.plan, num_layers=self._num_layers))
            self.built = True
        return self._embed(segments)

    @property
    def language_specific(self) -> bool:
        """True when the upstream is trained for the cell's language (its weights' identity names
        the language, as a small model's checkpoint does); an MFCC front end, a single-language
        model run everywhere or a random-init control is the same model in every language."""
        plan = self.plan
        variant = plan.card.name != plan.listed_card.name  # a card of its own for this language
        return ("language" in self.identity or variant) and not plan.language_fallback and not plan.card.random_init

    def mismatched_dataset(self) -> tuple[str, Dataset] | None:
        """The other language's test corpus, for a language-specific upstream whose downstream maps
        the cell's language to another one (for any other upstream, "mismatched" would only repeat
        the other language's matched score)."""
        plan = self.plan
        other = (self.opts["mismatched"] or {}).get(plan.spec.language)
        if not other or other not in plan.profile.languages or not self.language_specific:
            return None
        source = plan.task.sources.get(plan.profile.data, {}).get(other)
        if source is None:
            return None
        return other, load_task_dataset(self.snap, plan.profile, source, other)

    def score(self, test: Dataset, test_language: str) -> dict[str, Any]:
        opts = self.opts
        triplet_set = triplets_for(test, opts["split"], cache_dir=self.cache_dir, rule=opts["rule"],
                                   on_no_match=opts["on_no_match"], cutoff=float(opts["cutoff"]), seed=0)
        ident = {"upstream": self.identity, "audio": test.fingerprint, "split": opts["split"],
                 "triplets": triplet_set.options, "layer": self.plan.downstream.config.layer,
                 "version": self.VECTORS_VERSION}
        key = text_hash(json.dumps(ident, sort_keys=True, default=str), 20)
        cache = self.cache_dir / "vectors" / self.plan.card.name / f"{test.language}_{key}.npz"
        out = evaluate_triplets(triplet_set, utterances=test.split(opts["split"]), embed=self.embed, cache=cache)
        layer = self._layer_index()
        ids, speakers = out.pop("ids"), out.pop("anchor_speakers")
        predictions: dict[str, Any] = {"ids": ids, "correct": out["correct"]}
        if all(speakers):  # the clusters of the leaderboard's bootstrap: the anchor's speaker per triplet
            predictions["speakers"] = speakers
        train = self.plan.spec.language if self.language_specific else None
        return {**out, "predictions": predictions, "test_language": test_language, "train_language": train,
                "corpus": test.name, "layer": layer}

    def _layer_index(self) -> int:
        """The layer read, as an index (``last`` resolved with the upstream's number of layers)."""
        layer = self.plan.downstream.config.layer
        if isinstance(layer, int) and layer >= 0:
            return layer
        if self._num_layers is None:
            self._num_layers = int(card_arch(self.snap, self.plan.card, language=self.plan.spec.language)["num_layers"]
                                   or 1)
        return _word_layer(self.plan, num_layers=self._num_layers) % self._num_layers


def _word_layer(plan: CellPlan, *, num_layers: int) -> int:
    layer = plan.downstream.config.layer
    if layer == "last" or layer == "sweep":
        return num_layers - 1
    return int(layer)
