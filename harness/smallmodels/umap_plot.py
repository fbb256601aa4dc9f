"""UMAP scatter plots of word embeddings (the paper's Figures 1-3), saved as PNG.

For one language: the ``top_n`` most frequent words of a split, up to ``max_per_word`` occurrences
each, embedded by each trained small model and projected to 2-D with UMAP (``random_state`` fixed:
deterministic, single-threaded). One panel per model, one colour per word.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import BenchError
from ..tempfiles import save_figure
from .word_discrimination import (
    EmbedFn,
    Occurrence,
    occurrences_of,
    segments_for,
)

if TYPE_CHECKING:
    from ..data import Utterance


def frequent_word_occurrences(utterances: Sequence[Utterance], *, top_n: int = 10,
                              max_per_word: int = 40) -> list[Occurrence]:
    """Occurrences of the ``top_n`` most frequent words (ties: alphabetical), at most ``max_per_word`` each."""
    occurrences = occurrences_of(utterances)
    counts = Counter(o.word for o in occurrences)
    top = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top_n]]
    taken: Counter[str] = Counter()
    out = []
    for o in occurrences:
        if o.word in top and taken[o.word] < max_per_word:
            out.append(o)
            taken[o.word] += 1
    return out


def embed_occurrences(occurrences: Sequence[Occurrence], *, utterances: Sequence[Utterance],
                      embed: EmbedFn) -> tuple[np.ndarray, list[str]]:
    """[N, D] embeddings and the word label of each occurrence whose segment could be cut."""
    segments = segments_for(utterances, [o.key for o in occurrences])
    kept = [o for o in occurrences if o.key in segments]
    if not kept:
        raise BenchError("UMAP: none of the selected word segments could be cut from the audio")
    return np.asarray(embed([segments[o.key] for o in kept])), [o.word for o in kept]


def import_umap() -> Any:
    """``import umap`` without TensorFlow.

    umap-learn's ``__init__`` imports TensorFlow for ParametricUMAP whenever it is installed (about
    8 s here, and we never use it); while importing, ``tensorflow`` is marked unimportable, which
    umap-learn handles as "not installed". Nothing changes if TensorFlow was already imported.
    """
    import sys

    if "umap" in sys.modules:
        return sys.modules["umap"]
    block = "tensorflow" not in sys.modules
    if block:
        sys.modules["tensorflow"] = None  # type: ignore[assignment]
    try:
        import umap
    finally:
        if block:
            del sys.modules["tensorflow"]
    return umap


def umap_2d(embeddings_ND: np.ndarray, *, random_state: int = 0, n_neighbors: int = 15,
            min_dist: float = 0.1) -> np.ndarray:
    """[N, 2] UMAP projection with cosine distance; deterministic for a ``random_state``."""
    umap = import_umap()
    n_neighbors = max(2, min(n_neighbors, len(embeddings_ND) - 1))
    reducer = umap.UMAP(n_components=2, n_neighbors=n_neighbors, min_dist=min_dist, metric="cosine",
                        random_state=random_state, n_jobs=1)
    return np.asarray(reducer.fit_transform(np.asarray(embeddings_ND, dtype=np.float32)))


def plot_panels(panels: Sequence[tuple[str, np.ndarray, Sequence[str]]], *, path: str | Path, title: str = "",
                columns: int = 2) -> Path:
    """Scatter each (panel title, [N, 2] points, labels) in a grid; one colour per word; saves a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    words = sorted({w for _, _, labels in panels for w in labels})
    cmap = plt.get_cmap("tab20", max(len(words), 1))
    colour = {w: cmap(i) for i, w in enumerate(words)}
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.5 * columns, 4.8 * rows), squeeze=False)
    for ax, (name, points_N2, labels) in zip(axes.flat, panels, strict=False):
        labels_arr = np.asarray(labels)
        for w in words:
            sel = labels_arr == w
            if sel.any():
                ax.scatter(points_N2[sel, 0], points_N2[sel, 1], s=10, color=colour[w], label=w)
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="center right", fontsize=8, markerscale=2)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 0.86, 1))
    path = Path(path)
    save_figure(fig, path, dpi=120)
    plt.close(fig)
    return path


def plot_word_umap(*, embedders: dict[str, EmbedFn], utterances: Sequence[Utterance], path: str | Path,
                   title: str = "", top_n: int = 10, max_per_word: int = 40, random_state: int = 0) -> dict[str, Any]:
    """One UMAP panel per embedder on the same occurrences; returns the path and what was plotted."""
    occurrences = frequent_word_occurrences(utterances, top_n=top_n, max_per_word=max_per_word)
    panels = []
    for name, embed in embedders.items():
        vectors, labels = embed_occurrences(occurrences, utterances=utterances, embed=embed)
        panels.append((name, umap_2d(vectors, random_state=random_state), labels))
    out = plot_panels(panels, path=path, title=title)
    return {"path": str(out), "points": len(panels[0][2]) if panels else 0,
            "words": sorted(set(panels[0][2])) if panels else [], "panels": [p[0] for p in panels]}
