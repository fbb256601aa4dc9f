"""10% capacity (paper Section V-D, Table VIII, Figure 4): Integrated Gradients on the trained head.

Contract of :func:`capacity_step` (a post-training step of a classification cell):

1. Integrated Gradients (captum, ``multiply_by_inputs=True``, baseline zeros, ``n_steps`` from
   ``analyses.capacity_ig_steps``, default 50 as in the paper's code) of the trained head over
   the test features of the chosen layer, target = the true label. The paper's heads end in
   log-softmax, so the attributed output is the log-probability of the true class (for the
   single-logit sigmoid gender head this is ``log sigmoid(+-z)``, non-constant for both classes).
2. Sequence heads: attributions [T, D] are averaged over the valid frames of each utterance.
   Layer modes (the head mixes every layer): the attributions of one dimension in every layer are
   summed (IG is additive), so a dimension's importance covers all layers and the retraining
   keeps that dimension of every layer, mixed by a fresh head as in the cell.
   Then the signed mean over test items, L2-normalised, sorted by absolute value; the top
   ``max(1, int(fraction * D))`` dimensions are kept (``analyses.capacity_fraction``).
3. The same head architecture is retrained from scratch on those dimensions (same recipe,
   same seed) and evaluated on test. ``analyses.capacity_repeats`` = R > 1 retrains it R times
   on the same dimensions, seeds ``seed + REPEAT_SEED_STRIDE x r`` (r = 0: the cell's seed), and
   reports their mean: a head trained on a tenth of the dimensions of a small training set is
   chaotic (measured: a float change of the features moved one retraining from 41.1 to 16.1
   micro-F1 with the same dimensions), so one retraining per seed is a noisy draw. Each repeat's
   predictions are kept (``repeats``) for the leaderboard's interval.

Items are attributed in padded batches (the paper used batch size 1): packing and masked
pooling make each item's output independent of its batch neighbours, and zero padding gets zero
attribution (input x gradient), so the result is the same. On CUDA, cuDNN is disabled for the
backward pass through the LSTM (cuDNN's RNN backward needs training mode), as the paper did.

Nothing here runs an upstream: the features come from the cell (the feature cache). The
selected dimensions go to ``<results>/<profile>/capacity/<upstream>/<downstream>/<language>/
seed<k>.json`` with a plot of the sorted absolute attributions (``.png``, Figure 4) beside it;
:mod:`harness.report.overlap` reads these files.
"""

from __future__ import annotations

import contextlib
import copy
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ...results import write_json_atomic
from ...tempfiles import save_figure
from ..record import Capacity

if TYPE_CHECKING:
    from torch import nn

    from ...config.plan import CellPlan
    from ...probe.train import FeatureSet
    from ..context import CellContext

CAPACITY_FORMAT = "capacity/1"  # not a cell result (those carry "schema"), so iter_results skips it
CPU_BATCH_ELEMS = 1 << 22  # head-input floats per IG forward pass on CPU
CUDA_BATCH_ELEMS = 1 << 25
MAX_ITEMS_PER_CALL = 64
REPEAT_SEED_STRIDE = 1000  # repeat r of seed s retrains with seed s + 1000 r: apart from the profile's seeds
SCORES = ("f1_micro", "uar", "accuracy", "f1_macro")


def capacity_step(ctx: CellContext) -> Capacity:
    """Top-``fraction`` dimensions by Integrated Gradients and the head retrained on them (see module doc)."""
    t0 = time.perf_counter()
    analyses = ctx.plan.profile.analyses
    test = ctx.splits["test"]
    if ctx.head is None or not len(test):
        raise ValueError(f"capacity analysis of {ctx.plan.spec.label}: needs a trained head and test items")
    n_steps = analyses.capacity_ig_steps
    attr_ND = integrated_gradients(ctx.head, test, n_steps=n_steps, device=ctx.device)
    ranking = rank_dimensions(attr_ND.mean(axis=0), fraction=analyses.capacity_fraction)
    t_ig = time.perf_counter() - t0
    seeds = repeat_seeds(ctx.plan.spec.seed, analyses.capacity_repeats)
    repeats: list[dict[str, Any]] = []
    for seed in seeds:
        metrics, training, pred = retrain_on_dims(ctx.plan, ctx.splits, dims=ranking["dims"],
                                                  num_classes=len(ctx.classes), store=ctx.store,
                                                  progress=ctx.progress, seed=seed)
        repeats.append({"seed": seed, "metrics": metrics, "training": training,
                        "predictions": _predictions(test, pred)})
    metrics = mean_metrics([r["metrics"] for r in repeats])
    training = repeats[0]["training"]
    full = {m: ctx.metrics[m] for m in ("f1_micro", "uar", "accuracy")}
    out: dict[str, Any] = {
        "fraction": analyses.capacity_fraction, "k": len(ranking["dims"]), "D": test.dim, "layer": ctx.layer,
        "dims": ranking["dims"], "attributions_sorted_abs": ranking["sorted_abs"],
        "metrics": metrics, "full_metrics": full,
        "relative_change_pct": {m: relative_change_pct(metrics[m], full[m]) for m in ("f1_micro", "uar")},
        "ig": {"n_steps": n_steps, "baseline": "zeros", "target": "true label (log-probability)",
               "multiply_by_inputs": True, "items": len(test), "item_level": _item_level(test),
               "seconds": t_ig},
        "training": training,
        "predictions": repeats[0]["predictions"],
        "seeds": seeds,
    }
    if len(repeats) > 1:
        out["repeats"] = repeats
    json_path = capacity_path(ctx.snap.path("results"), ctx.plan)
    out["dims_file"] = str(json_path)
    out["plot"] = _try_plot(ranking["sorted_abs"], k=out["k"], title=_title(ctx.plan), path=json_path.with_suffix(".png"))
    out["seconds"] = time.perf_counter() - t0
    out["summary"] = _summary(out)
    write_json_atomic(json_path, {"format": CAPACITY_FORMAT, "key": ctx.plan.key, "cell": _cell_identity(ctx.plan),
                                  "attributions": ranking["normalised"], **out})
    return Capacity.model_validate(out)


def repeat_seeds(seed: int, repeats: int) -> list[int]:
    """The seeds of the ``repeats`` retrainings of a cell with seed ``seed`` (the first is ``seed``)."""
    return [seed + REPEAT_SEED_STRIDE * r for r in range(repeats)]


def mean_metrics(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The mean of the repeats' scores (the confusion matrices summed, ``n`` kept): one repeat's
    metrics are returned as they are."""
    if len(runs) == 1:
        return runs[0]
    out: dict[str, Any] = {m: float(np.mean([r[m] for r in runs])) for m in SCORES if all(m in r for r in runs)}
    if all("confusion_matrix" in r for r in runs):
        out["confusion_matrix"] = np.sum([r["confusion_matrix"] for r in runs], axis=0).tolist()
    if "n" in runs[0]:
        out["n"] = runs[0]["n"]
    return out


def _predictions(test: FeatureSet, pred: list[int]) -> dict[str, Any]:
    """The retrained head's per-item predictions, with the items' speakers when every one is named
    (the leaderboard's clustered interval of the 10% score and of its change)."""
    out: dict[str, Any] = {"ids": list(test.ids), "y_true": test.y.tolist(), "y_pred": list(pred)}
    if test.speakers is not None:
        out["speakers"] = list(test.speakers)
    return out


# --------------------------------------------------------------------------- attribution
def integrated_gradients(head: nn.Module, data: FeatureSet, *, n_steps: int = 50, device: str = "cpu",
                         max_batch_elems: int | None = None) -> np.ndarray:
    """Attributions [N, D] of each item's true-class log-probability (frames: mean over valid frames).

    ``head`` is copied (it is neither moved nor modified). ``max_batch_elems`` bounds the
    head-input floats of one forward pass (items x IG steps x frames x D).
    """
    import torch
    from captum.attr import IntegratedGradients

    model = copy.deepcopy(head).to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)

    def log_prob(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(model(x, lengths).float(), dim=-1)

    from ...probe.train import head_threads

    ig = IntegratedGradients(log_prob, multiply_by_inputs=True)
    budget = max_batch_elems or (CUDA_BATCH_ELEMS if device.startswith("cuda") else CPU_BATCH_ELEMS)
    lengths_N = _item_lengths(data)
    out = np.zeros((len(data), data.dim), np.float64)
    frame_elems = data.dim * (data.layers or 1)
    for idx in item_chunks(lengths_N, dim=frame_elems, budget_elems=budget, max_items=MAX_ITEMS_PER_CALL):
        x, lengths = data.batch(idx.tolist())
        x, lengths = x.to(device), lengths.to(device)
        target = torch.from_numpy(data.y[idx]).to(device)
        steps_per_pass = max(1, min(n_steps, budget // max(x[0].numel() * len(idx), 1)))
        with _no_cudnn(device), head_threads():
            attr = ig.attribute(x, baselines=torch.zeros_like(x), target=target, n_steps=n_steps,
                                additional_forward_args=(lengths,), internal_batch_size=len(idx) * steps_per_pass)
        attr = attr.detach().double().cpu()
        if data.layers is not None:  # [..., L, D]: a dimension's attribution summed over the layers
            attr = attr.sum(dim=-2)
        out[idx] = _per_item(attr, lengths.cpu(), kind=data.kind).numpy()
    return out


def item_chunks(lengths_N: np.ndarray, *, dim: int, budget_elems: int, max_items: int) -> list[np.ndarray]:
    """Indices grouped by similar length so that one padded step of a chunk (items x max length x
    ``dim``) stays within ``budget_elems`` (a longer item gets a chunk of its own)."""
    order = np.argsort(lengths_N, kind="stable")
    chunks: list[np.ndarray] = []
    current: list[int] = []
    for i in order:
        longest = int(lengths_N[i])  # ascending order: the newest item is the longest of its chunk
        if current and (len(current) >= max_items or (len(current) + 1) * longest * dim > budget_elems):
            chunks.append(np.array(current, dtype=np.int64))
            current = []
        current.append(int(i))
    if current:
        chunks.append(np.array(current, dtype=np.int64))
    return chunks


def _item_lengths(data: FeatureSet) -> np.ndarray:
    if data.kind == "pooled" or data.offsets is None:
        return np.ones(len(data), dtype=np.int64)
    return np.diff(data.offsets).astype(np.int64)


def _per_item(attr: Any, lengths_B: Any, *, kind: str) -> Any:
    """[B, D] attributions: pooled as they are; frames [B, T, D] averaged over each item's valid frames."""
    if kind == "pooled":
        return attr
    import torch

    mask = (torch.arange(attr.shape[1])[None, :] < lengths_B[:, None]).to(attr.dtype)
    return (attr * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)


def _no_cudnn(device: str) -> contextlib.AbstractContextManager[Any]:
    if not device.startswith("cuda"):
        return contextlib.nullcontext()
    import torch

    return torch.backends.cudnn.flags(enabled=False)


def rank_dimensions(attr_D: np.ndarray, *, fraction: float) -> dict[str, list[Any]]:
    """{"dims": top ``max(1, int(fraction * D))`` dimensions, most important first, "normalised":
    the L2-normalised signed attributions [D], "sorted_abs": their absolute values, descending}."""
    attr_D = np.asarray(attr_D, dtype=np.float64)
    norm = float(np.linalg.norm(attr_D))
    normalised = attr_D / norm if norm > 0 else attr_D
    order = np.argsort(-np.abs(normalised), kind="stable")
    k = top_k(len(attr_D), fraction)
    return {"dims": [int(d) for d in order[:k]], "normalised": normalised.tolist(),
            "sorted_abs": np.abs(normalised)[order].tolist()}


def top_k(num_dims: int, fraction: float) -> int:
    """``int(fraction * D)`` as the paper computes it (76 of 768), at least 1; the epsilon keeps
    products such as 0.3 * 10 = 2.9999999999999996 from losing a dimension."""
    return max(1, int(fraction * num_dims + 1e-9))


# --------------------------------------------------------------------------- retraining
def retrain_on_dims(plan: CellPlan, splits: dict[str, FeatureSet], *, dims: list[int], num_classes: int,
                    store: Any = None, progress: bool = False,
                    seed: int | None = None) -> tuple[dict[str, Any], dict[str, Any], list[int]]:
    """Test metrics, training record and test predictions of the cell's head architecture trained
    from scratch on ``dims`` only (same head arguments and training recipe as the cell; its seed
    unless ``seed`` is given)."""
    from ...metrics import classification_metrics
    from ...probe.train import make_head, predict, set_seed, train_head

    seed = plan.spec.seed if seed is None else seed
    ds = plan.downstream
    sub = {name: fs.with_dims(np.asarray(dims, dtype=np.int64)) for name, fs in splits.items()}
    set_seed(seed)
    if store is not None:
        from ...probe.train import head_for

        head = head_for(plan, store, input_size=len(dims), num_classes=num_classes, num_layers=sub["train"].layers)
    else:
        head = make_head(ds.head or "", head_args=ds.head_args, input_size=len(dims), num_classes=num_classes)
    dev = sub.get("dev")
    tr = train_head(head, train=sub["train"], dev=dev if dev is not None and len(dev) else None,
                    training=ds.training, seed=seed, progress=progress,
                    label=f"capacity {plan.spec.upstream}/{plan.spec.downstream}/{plan.spec.language}")
    pred, _ = predict(head, sub["test"], batch_size=ds.training.batch_size)
    metrics = classification_metrics(sub["test"].y.tolist(), pred.tolist(), num_classes=num_classes)
    training = {"best_epoch": tr.best_epoch, "epochs_run": tr.epochs_run, "best_dev_f1": tr.best_dev_f1,
                "stopped_early": tr.stopped_early, "seconds": tr.seconds,
                "head_params": sum(p.numel() for p in head.parameters())}
    return metrics, training, [int(p) for p in pred.tolist()]


def relative_change_pct(new: float, full: float) -> float | None:
    """(new - full) / full x 100 (Table VIII's "change"); None when the full score is 0."""
    return None if full == 0 else (new - full) / full * 100.0


# --------------------------------------------------------------------------- files
def capacity_path(results_dir: Path, plan: CellPlan) -> Path:
    s = plan.spec
    return Path(results_dir) / s.profile / "capacity" / s.upstream / s.downstream / s.language / f"seed{s.seed}.json"


def _cell_identity(plan: CellPlan) -> dict[str, Any]:
    s = plan.spec
    return {"profile": s.profile, "upstream": s.upstream, "card": plan.card.name, "downstream": s.downstream,
            "task": plan.task_name, "group": plan.task.group, "language": s.language, "seed": s.seed,
            "language_fallback": plan.language_fallback}


def _item_level(data: FeatureSet) -> str:
    return "word" if data.ids and "#" in data.ids[0] else "utterance"


def _title(plan: CellPlan) -> str:
    s = plan.spec
    return f"{s.upstream} / {s.downstream} / {s.language} / seed {s.seed}"


def _summary(out: dict[str, Any]) -> str:
    m, f, ch = out["metrics"], out["full_metrics"], out["relative_change_pct"]

    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{v:+.1f}%"

    return (f"top {out['k']} of {out['D']} dimensions ({out['fraction']:g}) by Integrated Gradients "
            f"({out['ig']['n_steps']} steps, {out['ig']['items']} test items): micro-F1 {m['f1_micro']:.1f} vs "
            f"{f['f1_micro']:.1f} with all ({pct(ch['f1_micro'])}), UAR {m['uar']:.1f} vs {f['uar']:.1f} "
            f"({pct(ch['uar'])})" + (f"; mean of {len(out['seeds'])} retrainings" if len(out["seeds"]) > 1 else ""))


def _try_plot(sorted_abs: list[float], *, k: int, title: str, path: Path) -> str | None:
    try:
        plot_attributions(sorted_abs, k=k, title=title, path=path)
    except Exception:  # noqa: BLE001 - a plot must never fail a cell
        return None
    return str(path)


def plot_attributions(sorted_abs: list[float], *, k: int, title: str, path: Path) -> None:
    """Figure 4: absolute normalised attributions, sorted, with the cut after the top ``k``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(np.arange(len(sorted_abs)), sorted_abs, linewidth=1)
    ax.axvline(k - 0.5, color="grey", linestyle="--", linewidth=1, label=f"top {k}")
    ax.set_xlabel("dimension (sorted by |attribution|)")
    ax.set_ylabel("|attribution| (L2-normalised)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)
