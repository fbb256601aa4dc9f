"""Layer sweep (paper Table II, Figures 9-11): pick the layer a probe reads by dev micro-F1.

The probe is trained on a random subset of the training split (``sweep.fraction``, fixed
``sweep.seed``) for each candidate layer: every other transformer layer of base models and every
third of large ones (``stride: paper``: 1, 3, 5, ... for 12 layers; 1, 4, 7, ... for 24), or every
layer (``stride: all``), or every k-th (an integer). Layer indices are those of the cache:
0 = the CNN / embedding output, i = transformer layer i (the paper's 1-based Table II index).

For a model without a variant for the cell's language (the paper's "*" rows), the layer chosen
on the English task of the same group is reused, as the paper did. The sweep reads the feature
cache only: it never runs the upstream. Its curve is saved as JSON and PNG and reused by every
seed of the cell.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import short_hash
from ..results import read_json, write_json_atomic
from ..tempfiles import save_figure

if TYPE_CHECKING:
    from ..cache import FeatureStore
    from ..cell import CellPlan
    from ..config import Workspace
    from ..train import FeatureSet


def candidate_layers(num_layers: int, *, stride: str | int = "paper") -> list[int]:
    """Layers the sweep tries, for an upstream exposing ``num_layers`` hidden states."""
    if num_layers <= 1:
        return [0]
    if stride == "all":
        return list(range(num_layers))
    transformer_layers = num_layers - 1
    step = int(stride) if isinstance(stride, int) else (2 if transformer_layers <= 12 else 3)
    return list(range(1, num_layers, max(step, 1)))


def sweep_path(ws: Workspace, plan: CellPlan, language: str) -> Path:
    s = plan.spec
    return ws.path("results") / s.profile / "sweeps" / s.upstream / s.downstream / f"{language}.json"


def choose_layer(*, ws: Workspace, plan: CellPlan, store: FeatureStore, sets_for: Callable[[int], Any],
                 classes: tuple[str, ...], device: str, progress: bool) -> dict[str, Any]:
    """{"chosen": layer, "rule": ..., "curve": {layer: dev F1}, ...} for the cell."""
    cfg = plan.downstream.config
    n = store.meta.num_layers
    if cfg.layer == "last":
        return {"chosen": n - 1, "rule": "last layer", "num_layers": n}
    if isinstance(cfg.layer, int):
        if not 0 <= cfg.layer < n:
            raise ValueError(f"downstream {plan.spec.downstream!r} asks for layer {cfg.layer}, "
                             f"the upstream has layers 0..{n - 1}")
        return {"chosen": cfg.layer, "rule": "fixed in the downstream", "num_layers": n}
    if n == 1:
        return {"chosen": 0, "rule": "single layer", "num_layers": 1}
    if plan.language_fallback and plan.spec.language != "en":
        english = _english_sweep(ws, plan, device=device, progress=progress)
        if english is not None:
            return {**english, "rule": "layer chosen on the English task (model has no variant for "
                                       f"{plan.spec.language}; paper's rule)", "from_language": "en"}
    return run_sweep(ws=ws, plan=plan, store=store, sets_for=sets_for, classes=classes, language=plan.spec.language,
                     progress=progress)


def run_sweep(*, ws: Workspace, plan: CellPlan, store: FeatureStore, sets_for: Callable[[int], Any],
              classes: tuple[str, ...], language: str, progress: bool) -> dict[str, Any]:
    from ..cell import head_for
    from ..train import train_head

    cfg = plan.downstream.config
    layers = candidate_layers(store.meta.num_layers, stride=cfg.sweep.stride)
    training = plan.downstream.training
    if cfg.sweep.max_epochs:
        training = training.model_copy(update={"max_epochs": cfg.sweep.max_epochs})
    key = short_hash({"card": plan.card.identity, "store": store.path.name, "downstream": plan.downstream.identity,
                      "sweep": cfg.sweep.model_dump(mode="json"), "layers": layers, "classes": list(classes)})
    path = sweep_path(ws, plan, language)
    cached = read_json(path)
    if cached and cached.get("key") == key:
        return cached["result"]
    curve: dict[int, float] = {}
    subset_size = None
    for layer in layers:
        fsets, _ = sets_for(layer)
        train: FeatureSet = fsets["train"]
        k = max(int(math.ceil(cfg.sweep.fraction * len(train))), min(len(train), 2))
        idx = np.sort(np.random.default_rng(cfg.sweep.seed).choice(len(train), size=k, replace=False))
        subset_size = k
        head = head_for(plan, store, input_size=train.dim, num_classes=len(classes))
        res = train_head(head, train=train.subset(idx.tolist()), dev=fsets["dev"], training=training, seed=cfg.sweep.seed,
                         progress=progress, label=f"sweep layer {layer}")
        curve[layer] = res.best_dev_f1
    chosen = max(layers, key=lambda la: (curve[la], -la))  # ties: the lower layer
    result = {"chosen": int(chosen), "rule": f"sweep (stride {cfg.sweep.stride}, {cfg.sweep.fraction:g} of train)",
              "curve": {str(k): v for k, v in curve.items()}, "candidates": layers,
              "num_layers": store.meta.num_layers, "subset_size": subset_size, "metric": "dev micro-F1"}
    png = path.with_suffix(".png")
    try:
        plot_curve(curve, chosen=chosen, title=f"{plan.spec.upstream} / {plan.spec.downstream} / {language}", path=png)
        result["plot"] = str(png)
    except Exception:  # noqa: BLE001 - a plot must never fail a cell
        pass
    write_json_atomic(path, {"key": key, "result": result})
    return result


def _english_sweep(ws: Workspace, plan: CellPlan, *, device: str, progress: bool) -> dict[str, Any] | None:
    """The sweep of the same upstream and downstream on English data, computing it when needed."""
    from dataclasses import replace

    from .. import cell

    spec = cell.CellSpec(plan.spec.profile, plan.spec.upstream, plan.spec.downstream, "en", plan.spec.seed)
    try:
        en_plan = cell.plan_cell(ws, spec)
        dataset = cell.load_task_dataset(ws, en_plan.profile, en_plan.source, "en")
    except cell.Unavailable:
        return None
    splits = cell.task_splits(dataset, task=en_plan.task, source=en_plan.source)
    store = cell.features_for(ws, en_plan, dataset, device=device, progress=progress)
    en_plan = replace(en_plan, language_fallback=False)
    return run_sweep(ws=ws, plan=en_plan, store=store, sets_for=cell.feature_sets_for(store, splits, en_plan),
                     classes=splits["train"].classes, language="en", progress=progress)


def plot_curve(curve: dict[int, float], *, chosen: int, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = sorted(curve)
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(xs, [curve[x] for x in xs], marker="o")
    ax.axvline(chosen, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("layer")
    ax.set_ylabel("dev micro-F1 (%)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)
