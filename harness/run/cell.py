"""One benchmark cell: (profile, upstream, downstream, language, seed) -> one result JSON.

Data flows one way: corpus -> upstream (once, into the feature cache) -> probe head -> result.
The steps of a cell:

1. plan: :func:`harness.config.plan.resolve_cell` (card with language fallback, recipe, task
   source, granularity, layer rule, cell key);
2. data and features: :func:`harness.run.inputs.cell_inputs` (the task's corpus labelled
   train / dev / test; one upstream pass per card and audio set into the feature cache);
3. layer: the plan's :class:`~harness.config.plan.LayerRule` (:mod:`harness.run.steps.sweep`);
4. train, early-stop on dev micro-F1, test;
5. analysis steps that plug in after training (10% capacity, inference time), each receiving a
   :class:`~harness.run.context.CellContext` and returning its section of the result;
6. the result JSON, written atomically.

Task kinds other than classification are steps too (:data:`KIND_RUNNERS`). No step imports this module.
"""

from __future__ import annotations

import time
import traceback
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config.adapters import random_init_note, recorded_settings
from ..config.deviations import Deviation, deviation_table
from ..config.plan import CellPlan, CellSpec, Unavailable, resolve_cell, result_file
from ..config.workspace import snapshot_of
from ..corpora.load import require_dev, task_splits
from ..errors import BenchError, DataError, WeightsMissingError
from ..features.build import FrameSource, features_for, frame_source_for
from ..features.frames import StreamFrames
from ..features.source import SourceChoice
from ..metrics import classification_metrics
from ..probe.heads import LayerMixHead
from ..probe.sets import feature_sets_for
from ..probe.train import head_for, predict, set_seed, train_head
from ..registry import import_string
from ..results import environment
from .context import CellContext
from .inputs import cell_inputs, dataset_for
from .record import CellResult, LayerChoice, ResultFileError, Timings, read_result, write_result
from .steps.sweep import choose_layer, with_mix_weights

if TYPE_CHECKING:
    from ..config.snapshot import Snapshot
    from ..config.workspace import Workspace
    from ..data import Dataset

# Task kinds other than classification, and analysis steps after training: lazy "module:function".
KIND_RUNNERS: dict[str, str] = {
    "emotion_discrimination": "harness.run.steps.discrimination:run_emotion_discrimination",
    "word_discrimination": "harness.run.steps.words:run_word_discrimination_cell",
}
POST_STEPS: dict[str, str] = {
    "capacity": "harness.run.steps.capacity:capacity_step",
    "inference_time": "harness.run.steps.timing:inference_time_step",
}


@dataclass(frozen=True)
class CellOutcome:
    """What :func:`run_cell` returns: the cell's record, where it is, and whether it was read
    (finished earlier, same key) rather than run now."""

    result: CellResult
    path: Path
    skipped: bool = False


def stored_result(path: Path) -> CellResult | None:
    """The record at ``path`` (version 1 or 2); None when absent, torn or not a valid record."""
    try:
        return read_result(path)
    except ResultFileError:
        return None


def cell_status(plan: CellPlan) -> str:
    """'ok' (a result with this key and status ok), 'failed', 'unavailable', 'stale' or 'todo'."""
    record = stored_result(plan.result_path)
    if record is None:
        return "todo"
    if record.key != plan.key:
        return "stale"
    return record.status


def _finished(plan: CellPlan) -> CellResult | None:
    record = stored_result(plan.result_path)
    return record if record is not None and record.key == plan.key and record.status == "ok" else None


# --------------------------------------------------------------------------- running
def run_cell(ws: Workspace | Snapshot, spec: CellSpec, *, device: str = "cpu", progress: bool = True,
             force: bool = False) -> CellOutcome:
    """Run one cell (or return its finished result) and write its result JSON (a :class:`CellResult`).

    Never raises for a failure inside the cell: the result has status ``failed`` (error and
    traceback) or ``unavailable`` (reason), so a matrix goes on with the other cells.
    """
    t0 = time.perf_counter()
    snap = snapshot_of(ws)
    try:
        plan = resolve_cell(snap, spec)
    except Unavailable as e:
        return _write_status(snap, spec, None, "unavailable", reason=str(e), t0=t0)
    except BenchError as e:  # a configuration problem: the cell fails, with the message
        return _write_status(snap, spec, None, "failed", error=e, t0=t0)
    if not force:
        existing = _finished(plan)
        if existing is not None:
            return CellOutcome(existing, plan.result_path, skipped=True)
    try:
        result = execute(snap, plan, device=device, progress=progress)
    except (Unavailable, WeightsMissingError) as e:
        return _write_status(snap, spec, plan, "unavailable", reason=str(e), t0=t0)
    except KeyboardInterrupt:
        raise
    except Exception as e:  # noqa: BLE001 - a cell's failure is recorded, the matrix goes on
        return _write_status(snap, spec, plan, "failed", error=e, t0=t0)
    timings = (result.timings or Timings()).model_copy(update={"total_s": time.perf_counter() - t0})
    result = result.model_copy(update={"timings": timings, "deviations": deviations_of(snap, spec.profile)})
    write_result(plan.result_path, result)
    return CellOutcome(result, plan.result_path)


def record_failure(ws: Workspace | Snapshot, spec: CellSpec, error: BaseException) -> CellOutcome:
    """Write a failed result for ``spec`` when the cell could not write one itself (the process
    running it died, e.g. a Ray worker killed on every retry). A result the cell finished with
    its current key is kept."""
    t0 = time.perf_counter()
    snap = snapshot_of(ws)
    try:
        plan: CellPlan | None = resolve_cell(snap, spec)
    except BenchError:
        plan = None
    if plan is not None:
        existing = _finished(plan)
        if existing is not None:
            return CellOutcome(existing, plan.result_path, skipped=True)
    return _write_status(snap, spec, plan, "failed", error=error, t0=t0)


def deviations_of(snap: Snapshot, profile: str) -> list[Deviation] | None:
    """The profile's deviations table for the record; None when it cannot be made (the table's
    own file is checked by ``bench validate``: a record never fails for it)."""
    try:
        return list(deviation_table(snap, profile))
    except BenchError:
        return None


def _write(path: Path, result: dict[str, Any]) -> CellResult:
    """The cell's sections as a :class:`CellResult`, written atomically to ``path``."""
    record = CellResult.model_validate(result)
    write_result(path, record)
    return record


def _base_result(plan: CellPlan | None, spec: CellSpec, status: str) -> dict[str, Any]:
    res: dict[str, Any] = {"status": status, "key": plan.key if plan else None,
                           "cell": {"profile": spec.profile, "upstream": spec.upstream,
                                    "downstream": spec.downstream, "language": spec.language, "seed": spec.seed}}
    if plan is not None:
        meta = plan.card.card.meta
        res["cell"]["task"] = plan.task_name
        res["upstream"] = {"name": plan.card.name, "listed": plan.listed_card.name, "display": plan.listed_card.display,
                           "group": meta.group, "family": meta.family, "paper_row": meta.paper_row,
                           "params_published": meta.params, "random_init": plan.card.random_init,
                           "languages": meta.languages, "language_fallback": plan.language_fallback,
                           "granularity": plan.granularity, "revision": plan.card.card.revision,
                           "note": random_init_note(plan.card),
                           "settings": recorded_settings(plan.card)}
        res["task"] = {"name": plan.task_name, "kind": plan.task.kind, "label": plan.source.label or plan.task.label,
                       "group": plan.task.group, "version": plan.task.version, "corpus": plan.source.corpus,
                       "paper_table": plan.task.paper_table}
        res["downstream"] = plan.downstream.identity
    return res


def _write_status(snap: Snapshot, spec: CellSpec, plan: CellPlan | None, status: str, *, reason: str = "",
                  error: BaseException | None = None, t0: float) -> CellOutcome:
    res = _base_result(plan, spec, status)
    if reason:
        res["reason"] = reason
    if error is not None:
        res["error"] = {"type": type(error).__name__, "message": str(error),
                        "traceback": "".join(traceback.format_exception(error))}
    res["timings"] = {"total_s": time.perf_counter() - t0}
    if plan is not None:
        res["deviations"] = deviations_of(snap, spec.profile)
    path = plan.result_path if plan else result_file(snap, spec)
    return CellOutcome(_write(path, res), path)


def execute(snap: Snapshot, plan: CellPlan, *, device: str, progress: bool) -> CellResult:
    """The cell's work as its record (not written, ``timings.total_s`` not set); raises on
    failure (run_cell records it)."""
    set_seed(plan.spec.seed)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    dataset = dataset_for(snap, plan)
    timings["data_s"] = time.perf_counter() - t
    if plan.task.kind != "classification":
        runner = import_string(KIND_RUNNERS[plan.task.kind])
        result = _base_result(plan, plan.spec, "ok")
        sections = runner(snap=snap, plan=plan, dataset=dataset, device=device, progress=progress)
        result.update(sections.model_dump(exclude_unset=True))
        result.setdefault("timings", {}).update(timings)
        result["environment"] = environment(device)
        return CellResult.model_validate(result)
    return CellResult.model_validate(_run_classification(snap, plan, dataset, device=device, progress=progress,
                                                         timings=timings))


def _run_classification(snap: Snapshot, plan: CellPlan, dataset: Dataset, *, device: str, progress: bool,
                       timings: dict[str, float]) -> dict[str, Any]:
    """Layer, head training, test metrics and the post-training steps of a classification cell."""
    splits = task_splits(dataset, task=plan.task, source=plan.source)
    classes = splits["train"].classes
    for s in ("train", "test"):
        if not splits[s].utterances:
            raise DataError(f"the {s} split of {dataset.name} has no utterance labelled with "
                            f"{plan.task.label} in {list(classes)}")
    require_dev(splits, dataset=dataset, source=plan.source, task=plan.task_name)
    t = time.perf_counter()
    store = features_for(snap, plan, dataset, device=device, progress=progress)
    frames, source = frame_source_for(snap, plan, dataset, store, device=device, progress=progress)
    timings["features_s"] = time.perf_counter() - t
    ds = plan.downstream
    cfg = ds.config
    word_items = plan.granularity == "word" and cfg.features == "pooled"
    sets_for = feature_sets_for(store, splits, plan, frames=frames)
    t = time.perf_counter()
    layer_info = choose_layer(snap=snap, plan=plan, store=store, sets_for=sets_for, classes=classes,
                              device=device, progress=progress)
    timings["layer_selection_s"] = time.perf_counter() - t
    # a layer mode (weighted_sum, mean) reads every layer, stacked; the head mixes them
    layer: int | None = None if layer_info.mode else int(layer_info.chosen or 0)
    every_layer = tuple(range(store.meta.num_layers))
    fsets, dropped = sets_for(every_layer if layer is None else layer)
    t = time.perf_counter()
    set_seed(plan.spec.seed)  # the head's initialisation must not depend on whether the sweep was cached
    head = head_for(plan, store, input_size=fsets["train"].dim, num_classes=len(classes),
                    num_layers=fsets["train"].layers)
    tr = train_head(head, train=fsets["train"], dev=fsets["dev"], training=ds.training, seed=plan.spec.seed,
                    progress=progress, label=f"train {plan.spec.upstream}/{plan.spec.downstream}/{plan.spec.language}")
    timings["train_s"] = time.perf_counter() - t
    if isinstance(head, LayerMixHead):
        layer_info = with_mix_weights(layer_info, weights=head.mix.weights().detach().tolist(), paths=snap, plan=plan)
    pred, logits = predict(head, fsets["test"], batch_size=ds.training.batch_size)
    metrics = classification_metrics(fsets["test"].y, pred, num_classes=len(classes))
    dev_pred, _ = predict(head, fsets["dev"], batch_size=ds.training.batch_size) if len(fsets["dev"]) else (np.zeros(0), None)
    result = _base_result(plan, plan.spec, "ok")
    result.update({
        "metrics": metrics,
        "dev_metrics": classification_metrics(fsets["dev"].y, dev_pred, num_classes=len(classes)) if len(fsets["dev"]) else {},
        "classes": list(classes),
        "layer": layer_info,
        "predictions": {"ids": fsets["test"].ids, "y_true": fsets["test"].y.tolist(), "y_pred": pred.tolist(),
                        **({"speakers": fsets["test"].speakers} if fsets["test"].speakers is not None else {})},
        "training": {"best_epoch": tr.best_epoch, "epochs_run": tr.epochs_run, "best_dev_f1": tr.best_dev_f1,
                     "stopped_early": tr.stopped_early, "history": tr.history, "seconds": tr.seconds,
                     "head_params": sum(p.numel() for p in head.parameters())},
        "data": {
            "corpus": dataset.name, "fingerprint": dataset.fingerprint,
            "items": {s: len(f) for s, f in fsets.items()},
            "utterances": {s: len(ls.utterances) for s, ls in splits.items()},
            "label_counts": {s: dict(Counter(classes[i] for i in ls.labels)) for s, ls in splits.items()},
            **_skipped_summary(corpus=list(dataset.skipped), labels=[x for ls in splits.values() for x in ls.skipped],
                              features=dropped),
            "item_level": "word" if word_items else "utterance",
            **({"split_rules": list(dataset.split_rules)} if dataset.split_rules else {}),
        },
        "features": {"cache_entry": store.path.name, "bytes_on_disk": store.bytes_on_disk,
                     "extract_seconds": store.meta.extract_seconds, "audio_seconds": store.meta.audio_seconds,
                     "upstream_forward_calls": store.meta.upstream_forward_calls,
                     "num_layers": store.meta.num_layers, "hidden_size": store.meta.hidden_size,
                     "frame_rate_hz": store.meta.frame_rate_hz,
                     **_frame_source_record(frames, source, frames_used=cfg.features == "frames" and not word_items)},
        "timings": timings,
        "environment": environment(device),
        "analyses": {},
    })
    if word_items:
        result["utterance_metrics"] = _utterance_vote(fsets["test"].ids, fsets["test"].y, logits, len(classes))
    ctx = CellContext(snap=snap, plan=plan, dataset=dataset, store=store, layer=layer, splits=fsets,
                      classes=classes, head=head, metrics=metrics, device=device, progress=progress)
    for name in _post_steps(plan):
        t = time.perf_counter()
        step = import_string(POST_STEPS[name])
        out = step(ctx)
        if out is not None:
            result["analyses"][name] = out
        timings[f"{name}_s"] = time.perf_counter() - t
    return result


def _frame_source_record(frames: FrameSource, source: SourceChoice, *, frames_used: bool) -> dict[str, Any]:
    """The ``features`` fields saying where the head's frames came from (pooled heads: nothing)."""
    if not frames_used:
        return {}
    out: dict[str, Any] = {"source": frames.kind, "source_reason": source.reason, "frame_scheme": frames.scheme}
    derived = frames.entries()
    if derived:
        out["frame_entries"] = {e.path.name: e.bytes_on_disk for e in derived}
    if isinstance(frames, StreamFrames):
        out["stream_forward_calls"], out["stream_seconds"] = frames.forwards, frames.forward_s
    return out


MAX_SKIPPED_EXAMPLES = 100


def _skipped_summary(**by_stage: list[str]) -> dict[str, Any]:
    """What a cell left out and why: ``skipped`` (total), ``skipped_by_stage`` (corpus rows the
    adapter refused, items without a usable label, audio the extraction could not use) and the
    first ``MAX_SKIPPED_EXAMPLES`` messages, each naming the item and the reason."""
    everything = [item for items in by_stage.values() for item in items]
    return {"skipped": len(everything), "skipped_by_stage": {k: len(v) for k, v in by_stage.items()},
            "skipped_examples": everything[:MAX_SKIPPED_EXAMPLES]}


def _post_steps(plan: CellPlan) -> list[str]:
    a = plan.profile.analyses
    steps = []
    first_seed = plan.spec.seed == plan.profile.seeds[0]
    if a.capacity and plan.task_name in a.capacity_tasks:  # every seed: Table VIII's change and interval
        steps.append("capacity")
    if (a.inference_time and plan.task_name == a.inference_time_task and plan.spec.language == a.inference_time_language
            and first_seed):
        steps.append("inference_time")
    return steps


def _utterance_vote(item_ids: list[str], y: np.ndarray, logits: np.ndarray, num_classes: int) -> dict[str, Any]:
    """Utterance-level scores of a word-level probe: mean of the words' log-probabilities."""
    groups: dict[str, list[int]] = {}
    for i, iid in enumerate(item_ids):
        groups.setdefault(iid.split("#", 1)[0], []).append(i)
    logp = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    yt = [int(y[idx[0]]) for idx in groups.values()]
    yp = [int(logp[idx].mean(0).argmax()) for idx in groups.values()]
    return classification_metrics(yt, yp, num_classes=num_classes)


def select_layer(ws: Workspace | Snapshot, spec: CellSpec, *, device: str = "cpu",
                 progress: bool = False) -> LayerChoice | None:
    """Run (or read) the layer selection of a cell without training its final head.

    The matrix calls this once per (upstream, downstream, language) before the cells, so the
    seeds of a cell, and downstreams that reuse its layer (``layer_from``), share one sweep
    instead of racing to compute it. Returns the layer record, or None when the cell has no
    sweep (another task kind, a fixed layer) or cannot be planned (the cell reports why).
    """
    snap = snapshot_of(ws)
    try:
        plan = resolve_cell(snap, spec)
    except BenchError:
        return None
    if plan.task.kind != "classification" or plan.downstream.config.layer != "sweep":
        return None
    inputs = cell_inputs(snap, plan, device=device, progress=progress)
    if inputs.store.meta.num_layers == 1:
        return LayerChoice(chosen=0, rule="single layer")
    return choose_layer(snap=snap, plan=plan, store=inputs.store, sets_for=inputs.sets_for, classes=inputs.classes,
                        device=device, progress=progress)
