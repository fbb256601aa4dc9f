"""Layer selection (paper Table II, Figures 9-11): a cell's :class:`~harness.config.plan.LayerRule` applied.

A sweep trains the probe on a random subset of the training split (``sweep.fraction``, fixed
``sweep.seed``) for each candidate layer (:func:`harness.probe.layers.candidate_layers`) and
keeps the best by dev micro-F1.

For a model without a variant for the cell's language (the paper's "*" rows), the rule is
``from_cell``: the layer chosen on the English task is reused, as the paper did (for topic, fi
and request, fr, which have no English data, the English task of their group: intent); that cell's inputs come through :func:`harness.run.inputs.cell_inputs`. The sweep reads the feature
cache only: it never runs the upstream. Its curve is saved as JSON and PNG and reused by every
seed of the cell.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ...config.plan import CellPlan, CellSpec, LayerRule, Unavailable, resolve_cell
from ...errors import BenchError
from ...identity import short_hash
from ...probe.layers import candidate_layers
from ...probe.sets import SetsFor
from ...probe.train import head_for, predict, set_seed, train_head
from ...results import read_json, write_json_atomic
from ...tempfiles import save_figure
from ..inputs import cell_inputs, dataset_for
from ..record import LayerChoice

if TYPE_CHECKING:
    from ...config.snapshot import Snapshot
    from ...features.cache import FeatureStore
    from ...probe.train import FeatureSet
    from ...protocols import PathSource


# How a sweep's heads are initialised; part of the sweep's cache key, so that curves computed
# before heads were seeded per layer (they depended on the worker's history) are recomputed.
SWEEP_INIT = "seeded per layer"


def sweep_path(paths: PathSource, plan: CellPlan, language: str) -> Path:
    s = plan.spec
    return paths.path("results") / s.profile / "sweeps" / s.upstream / s.downstream / f"{language}.json"


def choose_layer(*, snap: Snapshot, plan: CellPlan, store: FeatureStore, sets_for: SetsFor | None,
                 classes: tuple[str, ...], device: str, progress: bool) -> LayerChoice:
    """{"chosen": layer, "rule": ..., "curve": {layer: dev F1}, ...}: the cell's :class:`LayerRule` applied."""
    return apply_layer_rule(plan.layer, snap=snap, plan=plan, store=store, sets_for=sets_for, classes=classes,
                            device=device, progress=progress)


def apply_layer_rule(rule: LayerRule, *, snap: Snapshot, plan: CellPlan, store: FeatureStore,
                     sets_for: SetsFor | None, classes: tuple[str, ...], device: str,
                     progress: bool) -> LayerChoice:
    """``rule`` applied to the cell: the layer chosen, how, and the sweep curve when one ran."""
    n = store.meta.num_layers
    if rule.kind == "last":
        return LayerChoice(chosen=n - 1, rule="last layer", num_layers=n)
    if rule.kind == "fixed":
        index = int(rule.index or 0)
        if not 0 <= index < n:
            raise ValueError(f"downstream {plan.spec.downstream!r} asks for layer {index}, "
                             f"the upstream has layers 0..{n - 1}")
        return LayerChoice(chosen=index, rule=rule.why or "fixed in the downstream", num_layers=n)
    if rule.kind in ("weighted_sum", "mean"):
        what = "softmax weights learned with the head" if rule.kind == "weighted_sum" else "plain mean"
        return LayerChoice(chosen=None, rule=f"{rule.kind} of all {n} layers ({what}; SUPERB)", mode=rule.kind,
                           num_layers=n)
    if n == 1:
        return LayerChoice(chosen=0, rule="single layer", num_layers=1)
    note = ""
    if rule.kind == "from_cell" and rule.source is not None:
        source = _source_sweep(snap, rule.source, device=device, progress=progress)
        if source is not None:
            update = {"rule": rule.why, "from_language": rule.source.language}
            if rule.source.downstream != plan.spec.downstream:  # topic / request: the English intent layer
                update["layer_from"] = rule.source.downstream
            return source.model_copy(update=update)
        # said in the record: a "*" cell whose layer was not taken from English must not read as if it were
        note = f"; the source cell {rule.source.label} cannot run here, so swept on {plan.spec.language} data"
        rule = rule.fallback or LayerRule("sweep")
    if sets_for is None:
        raise BenchError(f"cell {plan.spec.label}: a layer sweep needs the cell's feature sets")
    choice = run_sweep(snap=snap, plan=plan, store=store, sets_for=sets_for, classes=classes,
                       language=plan.spec.language, progress=progress)
    return choice.model_copy(update={"rule": f"{choice.rule}{note}"}) if note else choice


def run_sweep(*, snap: PathSource, plan: CellPlan, store: FeatureStore, sets_for: SetsFor,
              classes: tuple[str, ...], language: str, progress: bool) -> LayerChoice:
    """Train the cell's head on a subset of the training split for every candidate layer; the best
    dev micro-F1 wins (ties: the lower layer). Cached per (profile, upstream, downstream, language)."""

    cfg = plan.downstream.config
    layers = candidate_layers(store.meta.num_layers, stride=cfg.sweep.stride)
    training = plan.downstream.training
    if cfg.sweep.max_epochs:
        training = training.model_copy(update={"max_epochs": cfg.sweep.max_epochs})
    key = short_hash({"card": plan.card.identity, "store": store.path.name, "downstream": plan.downstream.identity,
                      "sweep": cfg.sweep.model_dump(mode="json"), "layers": layers, "classes": list(classes),
                      "init": SWEEP_INIT, "record": SWEEP_RECORD_VERSION})
    path = sweep_path(snap, plan, language)
    cached = read_json(path)
    if cached and cached.get("key") == key:
        return LayerChoice.model_validate(cached["result"])
    curve: dict[int, float] = {}
    dev_pred: dict[int, list[int]] = {}
    dev_ids: list[str] = []
    dev_y: list[int] = []
    dev_speakers: list[str] | None = None
    subset_size = None

    def subset(n: int) -> np.ndarray:
        return sweep_subset(n, fraction=cfg.sweep.fraction, seed=cfg.sweep.seed)

    bounded = getattr(sets_for, "sweep_sets", None)  # the bounded scheme: subset and dev frames only
    for layer in layers:
        pair = bounded(layer, layers=layers, subset=subset) if bounded is not None else None
        if pair is None:
            fsets, _ = sets_for(layer)
            train: FeatureSet = fsets["train"]
            sub, dev = train.subset(subset(len(train)).tolist()), fsets["dev"]
        else:
            sub, dev = pair
        subset_size = len(sub)
        # every layer's head starts from the same draw of the sweep's seed: without it the draw
        # came from whatever this process ran before (a matrix worker runs many jobs, in an order
        # that depends on timing), and run-to-run the random-init WavLM chose other layers
        set_seed(cfg.sweep.seed)
        head = head_for(plan, store, input_size=sub.dim, num_classes=len(classes))
        res = train_head(head, train=sub, dev=dev, training=training, seed=cfg.sweep.seed,
                         progress=progress, label=f"sweep layer {layer}")
        curve[layer] = res.best_dev_f1
        if len(dev) and (not dev_pred or (list(dev.ids), dev.y.tolist()) == (dev_ids, dev_y)):
            dev_pred[layer] = [int(p) for p in predict(head, dev, batch_size=training.batch_size)[0].tolist()]
            dev_ids, dev_y, dev_speakers = list(dev.ids), [int(y) for y in dev.y.tolist()], dev.speakers
    if len(dev_pred) != len(layers):  # the dev items differ between layers: no common record to keep
        dev_pred = {}
    chosen = pick_layer(curve)
    result = {"chosen": int(chosen), "rule": f"sweep (stride {cfg.sweep.stride}, {cfg.sweep.fraction:g} of train)",
              "curve": {str(k): v for k, v in curve.items()}, "candidates": layers,
              "num_layers": store.meta.num_layers, "subset_size": subset_size, "metric": "dev micro-F1",
              "tie_rule": TIE_RULE, **_dev_record(dev_ids, dev_y, dev_speakers, dev_pred)}
    png = path.with_suffix(".png")
    try:
        plot_curve(curve, chosen=chosen, title=f"{plan.spec.upstream} / {plan.spec.downstream} / {language}", path=png)
        result["plot"] = str(png)
    except Exception:  # noqa: BLE001 - a plot must never fail a cell
        pass
    write_json_atomic(path, {"key": key, "result": result})
    return LayerChoice.model_validate(result)


SWEEP_RECORD_VERSION = 2  # 2: the dev items, predictions and the curve's interval are recorded
TIE_RULE = ("highest dev micro-F1 of the sweep head; exact ties: the lower layer. Near-ties are not broken by "
            "any other rule: layers whose dev scores lie inside the best layer's interval (curve_low / curve_high, "
            "speaker-clustered) cannot be told apart on this dev set, so the choice among them is noise "
            "(benchmarks/layer_choice.py measures how often it changes with the sweep's seed).")


def pick_layer(curve: dict[int, float]) -> int:
    """The layer of the highest dev score; exact ties go to the lower layer (see :data:`TIE_RULE`)."""
    return max(curve, key=lambda la: (curve[la], -la))


def _dev_record(ids: list[str], y: list[int], speakers: list[str] | None,
                pred: dict[int, list[int]]) -> dict[str, object]:
    """The sweep's dev items, their speakers, each layer's dev predictions and the curve's 95%
    interval (speaker-clustered when every dev item names its speaker, else the item bootstrap)."""
    if not pred:
        return {}
    from ...stats import clustered_ci, sample

    units = [i.split("#", 1)[0] for i in ids]
    low, high = {}, {}
    for layer, p in pred.items():
        iv = clustered_ci([sample(y, p, clusters=speakers, units=units)], metric="f1_micro", n_boot=1000)
        low[str(layer)], high[str(layer)] = iv.low, iv.high
    out: dict[str, object] = {"curve_low": low, "curve_high": high, "dev_ids": ids, "dev_y_true": y,
                              "dev_predictions": {str(k): v for k, v in pred.items()}}
    if speakers is not None:
        out["dev_speakers"] = list(speakers)
    return out


def sweep_subset(n: int, *, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of the training items a sweep trains on: ``ceil(fraction * n)`` (at least
    2 when there are) drawn without replacement with ``seed``. The bounded-frames scheme extracts
    the frames of exactly these items, so it must not be computed any other way."""
    k = max(int(math.ceil(fraction * n)), min(n, 2))
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def _source_sweep(snap: Snapshot, spec: CellSpec, *, device: str, progress: bool) -> LayerChoice | None:
    """The sweep of another cell (the same upstream on the English task that gives the layer, see
    :func:`harness.config.plan.english_downstream`), computing it when needed; None when that cell
    cannot run here."""
    try:
        plan = resolve_cell(snap, spec)
        dataset = dataset_for(snap, plan)
    except Unavailable:
        return None
    inputs = cell_inputs(snap, plan, device=device, progress=progress, dataset=dataset)
    plan = replace(plan, language_fallback=False)
    return run_sweep(snap=snap, plan=plan, store=inputs.store, sets_for=inputs.sets_for, classes=inputs.classes,
                     language=spec.language, progress=progress)


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


# --------------------------------------------------------------------------- layer modes
def with_mix_weights(choice: LayerChoice, *, weights: list[float], paths: PathSource, plan: CellPlan) -> LayerChoice:
    """``choice`` (a layer mode's) with the weight of each layer and their figure, drawn beside
    the sweep curve of the profile's ``baseline_profile`` (same upstream, downstream and language,
    else its English sweep, which "*" cells reuse) when that sweep has run."""
    curve, curve_from = baseline_curve(paths, plan)
    s = plan.spec
    png = (paths.path("results") / s.profile / "sweeps" / s.upstream / s.downstream
           / f"{s.language}.{choice.mode}.seed{s.seed}.png")
    update: dict[str, object] = {"weights": [float(w) for w in weights], "curve_from": curve_from}
    try:
        plot_weights(weights, curve=curve, mode=str(choice.mode), path=png,
                     title=f"{s.upstream} / {s.downstream} / {s.language} / seed {s.seed}")
        update["weights_plot"] = str(png)
    except Exception:  # noqa: BLE001 - a plot must never fail a cell
        pass
    return choice.model_copy(update=update)


def baseline_curve(paths: PathSource, plan: CellPlan) -> tuple[dict[int, float] | None, str | None]:
    """(the sweep curve {layer: dev micro-F1}, its file) of the baseline profile's sweep for this
    cell, or (None, None) when the profile names no baseline or that sweep has not run."""
    base = plan.profile.baseline_profile
    if base is None:
        return None, None
    for language in dict.fromkeys([plan.spec.language, "en"]):
        path = sweep_path(paths, replace(plan, spec=replace(plan.spec, profile=base)), language)
        cached = read_json(path)
        curve = (cached or {}).get("result", {}).get("curve") if isinstance(cached, dict) else None
        if isinstance(curve, dict) and curve:
            return {int(k): float(v) for k, v in curve.items()}, str(path)
    return None, None


def plot_weights(weights: list[float], *, curve: dict[int, float] | None, mode: str, title: str, path: Path) -> None:
    """The weight of each layer (bars) and, on a second axis, the single-layer sweep curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(range(len(weights)), weights, color="tab:orange", alpha=0.7, label=f"{mode} weight")
    ax.set_xlabel("layer")
    ax.set_ylabel("layer weight")
    handles, labels = ax.get_legend_handles_labels()
    if curve:
        ax2 = ax.twinx()
        xs = sorted(curve)
        ax2.plot(xs, [curve[x] for x in xs], marker="o", color="tab:blue", label="single-layer sweep (dev micro-F1)")
        ax2.set_ylabel("dev micro-F1 (%)")
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, fontsize=7, loc="upper left")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)
