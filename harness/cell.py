"""One benchmark cell: (profile, upstream, downstream, language, seed) -> one result JSON.

Data flows one way: corpus -> upstream (once, into the feature cache) -> probe head -> result.
The steps of a cell:

1. plan: resolve the card (the language-specific variant where the paper used one), the
   downstream recipe (profile and word-level overrides), the task and its data source; the
   cell key is a hash of all of it;
2. data: the task's corpus for the language, labelled train / dev / test;
3. features: :func:`harness.extract.ensure_features` (one upstream pass per card and audio set,
   storing the frame layers every downstream of the profile needs);
4. layer: fixed, last, or chosen by the layer sweep (:mod:`harness.analysis.sweep`);
5. train, early-stop on dev micro-F1, test;
6. analysis steps that plug in after training (10% capacity, inference time), each adding a
   section to the result;
7. the result JSON, written atomically.
"""

from __future__ import annotations

import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import ResolvedCard, ResolvedDownstream, Workspace, short_hash
from .data import Dataset, LabelledSet, labelled
from .errors import BenchError, DataError, WeightsMissingError
from .registry import CORPORA, import_string
from .results import SCHEMA_VERSION, environment, read_json, result_path, write_json_atomic
from .schema import Profile, Task, TaskSource
from .upstream import random_init_note

if TYPE_CHECKING:
    from torch import nn

    from .cache import FeatureStore
    from .train import FeatureSet

# Task kinds other than classification, and analysis steps after training: lazy "module:function".
KIND_RUNNERS: dict[str, str] = {
    "emotion_discrimination": "harness.analysis.discrimination:run_emotion_discrimination",
    "word_discrimination": "harness.smallmodels.word_discrimination:run_word_discrimination_cell",
}
POST_STEPS: dict[str, str] = {
    "capacity": "harness.analysis.capacity:capacity_step",
    "inference_time": "harness.analysis.timing:inference_time_step",
}


@dataclass(frozen=True)
class CellSpec:
    profile: str
    upstream: str
    downstream: str
    language: str
    seed: int = 0

    @property
    def label(self) -> str:
        return f"{self.upstream} / {self.downstream} / {self.language} / seed {self.seed}"


class Unavailable(BenchError):
    """The cell cannot run on this machine (weights or corpus missing); the reason is reported."""


@dataclass
class CellPlan:
    spec: CellSpec
    profile: Profile
    card: ResolvedCard  # the card that runs (may be a language-specific variant of spec.upstream)
    listed_card: ResolvedCard  # the card named in the profile
    language_fallback: bool  # True: no variant for this language, the English model is used (paper's "*")
    downstream: ResolvedDownstream
    task_name: str
    task: Task
    source: TaskSource
    granularity: str
    key: str
    result_path: Path


@dataclass
class CellContext:
    """What analysis steps receive: everything the cell computed, nothing they must recompute."""

    workspace: Workspace
    plan: CellPlan
    dataset: Dataset
    store: FeatureStore | None
    layer: int
    splits: dict[str, FeatureSet]
    classes: tuple[str, ...]
    head: nn.Module | None
    metrics: dict[str, Any]
    device: str
    progress: bool
    result: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- planning
def model_languages(card: ResolvedCard) -> list[str]:
    """Languages the weights were trained on; [] = language-agnostic (signal processing, random init)."""
    return [] if card.random_init else list(card.card.meta.languages)


def choose_card(ws: Workspace, name: str, language: str) -> tuple[ResolvedCard, bool]:
    """The card to run for ``language``: ``name`` itself when it covers the language, else a card
    filling the same paper row for that language, else ``name`` marked as an English fallback."""
    listed = ws.card(name)
    langs = model_languages(listed)
    if not langs or language in langs:
        return listed, False
    row = listed.card.meta.paper_row
    if row:
        for other in sorted(ws.card_files()):
            if other == listed.base_name:
                continue
            cand = ws.card(other + ("@random" if listed.random_init else ""))
            if cand.card.meta.paper_row == row and language in cand.card.meta.languages:
                return cand, False
    return listed, True


def adapter_granularity(card: ResolvedCard) -> str:
    from .upstream import adapter_class

    return str(getattr(adapter_class(card), "granularity", "frame"))


def plan_cell(ws: Workspace, spec: CellSpec) -> CellPlan:
    """Resolve everything a cell needs without touching audio or weights."""
    _, profile = ws.profile(spec.profile)
    listed = ws.card(spec.upstream)
    card, fallback = choose_card(ws, spec.upstream, spec.language)
    granularity = adapter_granularity(card)
    word_level = granularity == "word"
    ds = ws.resolve_downstream(spec.downstream, profile=spec.profile, word_level=word_level)
    task = ws.task(ds.task_name)
    sources = task.sources.get(profile.data, {})
    if spec.language not in sources:
        raise Unavailable(f"task {ds.task_name!r} has no {profile.data} data for language {spec.language!r} "
                          f"(it has: {sorted(sources) or 'none'})")
    source = sources[spec.language]
    ident = _card_identity_for_key(ws, card, spec.language)
    # The key holds what the cell resolves, not whole files: a reworded description, another
    # profile's recipe or another language's source does not make a finished cell stale.
    ds_ident = {**ds.identity, "config": ds.config.model_dump(
        mode="json", exclude={"description", "profiles", "word_level", "head_args", "training"})}
    task_ident = {**task.model_dump(mode="json", exclude={"description", "sources"}),
                  "source": source.model_dump(mode="json")}
    key = short_hash({"card": ident, "downstream": ds_ident, "task": task_ident,
                      "task_version": task.version, "language": spec.language, "seed": spec.seed,
                      "profile": spec.profile, "data": profile.data,
                      "synth": profile.synth.model_dump(mode="json") if profile.data == "synth" else None},
                     n=20)
    path = result_path(ws.path("results"), profile=spec.profile, upstream=spec.upstream,
                       downstream=spec.downstream, language=spec.language, seed=spec.seed)
    return CellPlan(spec=spec, profile=profile, card=card, listed_card=listed, language_fallback=fallback,
                    downstream=ds, task_name=ds.task_name, task=task, source=source, granularity=granularity,
                    key=key, result_path=path)


def _card_identity_for_key(ws: Workspace, card: ResolvedCard, language: str) -> dict[str, Any]:
    from .extract import cache_identity
    from .upstream import adapter_class, bind_args

    cls = adapter_class(card)
    bound = bind_args(cls, card.args, context={"language": language, "models_dir": str(ws.path("models")),
                                              "cache_dir": str(ws.path("cache"))})
    return cache_identity(card, language=language, adapter_cls=cls, bound_args=bound)


def cell_status(plan: CellPlan) -> str:
    """'done' (a result with this key and status ok), 'failed', 'unavailable', 'stale' or 'todo'."""
    data = read_json(plan.result_path)
    if data is None:
        return "todo"
    if data.get("key") != plan.key:
        return "stale"
    return str(data.get("status", "todo")) if data.get("status") in ("ok", "failed", "unavailable") else "todo"


# --------------------------------------------------------------------------- data
@lru_cache(maxsize=32)
def _load_dataset_cached(corpus: str, adapter: str, root: str, language: str, options_json: str) -> Dataset:
    import json

    loader = CORPORA.load(adapter)
    return loader(root=Path(root), language=language, options=json.loads(options_json))


def load_task_dataset(ws: Workspace, profile: Profile, source: TaskSource, language: str) -> Dataset:
    """The corpus behind a task source (the synthetic corpus is generated on first use)."""
    import json

    if source.corpus == "synth":
        root = ws.path("cache") / "corpora" / "synth"
        return _load_dataset_cached("synth", "synth", str(root), language,
                                    json.dumps(profile.synth.model_dump(mode="json"), sort_keys=True))
    corpora = ws.benchmark.corpora
    if source.corpus not in corpora:
        raise Unavailable(f"corpus {source.corpus!r} is not declared in benchmark.yaml `corpora`")
    spec = corpora[source.corpus]
    if not spec.root:
        raise Unavailable(f"corpus {source.corpus!r} has no root folder: set it in benchmark.yaml "
                          f"(corpora.{source.corpus}.root) or its environment variable. {spec.url}".strip())
    root = Path(spec.root).expanduser()
    root = root if root.is_absolute() else ws.root / root
    try:
        return _load_dataset_cached(source.corpus, spec.adapter, str(root), language,
                                    json.dumps(spec.options, sort_keys=True))
    except DataError as e:
        raise Unavailable(str(e)) from e


def task_splits(dataset: Dataset, *, task: Task, source: TaskSource) -> dict[str, LabelledSet]:
    label = source.label or task.label
    classes = source.classes or sorted({u.labels[label] for u in dataset.utterances if u.labels.get(label)})
    return {s: labelled(dataset.split(s), label=label, classes=classes) for s in ("train", "dev", "test")}


# --------------------------------------------------------------------------- features and layers
def frame_layers_for_profile(ws: Workspace, *, profile_name: str, profile: Profile, num_layers: int) -> list[int]:
    """Every layer whose frames some downstream of the profile may read (sweep candidates or fixed layers)."""
    from .analysis.sweep import candidate_layers

    needed: set[int] = set()
    for name in profile.downstreams:
        try:
            ds = ws.downstream(name)
        except BenchError:
            continue
        if ds.features != "frames":
            continue
        needed.update(_layers_of(ds.layer, ds.sweep.stride, num_layers, candidate_layers))
    return sorted(needed)


def _layers_of(layer: Any, stride: Any, num_layers: int, candidates: Any) -> list[int]:
    if layer == "sweep":
        return list(candidates(num_layers, stride=stride))
    if layer == "last":
        return [num_layers - 1]
    return [int(layer)]


def build_feature_sets(store: FeatureStore, splits: dict[str, LabelledSet], *, layer: int, features: str,
                       pool_window_s: float | None, word_items: bool,
                       standardize: bool = False) -> tuple[dict[str, FeatureSet], list[str]]:
    """Feature sets per split from the cache; items the extraction skipped are dropped and named.

    With ``standardize`` every split is z-scored with the training split's statistics."""
    from .train import FeatureSet

    out: dict[str, FeatureSet] = {}
    dropped: list[str] = []
    for name, ls in splits.items():
        keep = [(u, y) for u, y in zip(ls.utterances, ls.labels, strict=True) if u.id in store]
        dropped += [f"{u.id}: {store.meta.skipped.get(u.id, 'not in the feature cache')}"
                    for u in ls.utterances if u.id not in store]
        ids = [u.id for u, _ in keep]
        y = np.array([y for _, y in keep], dtype=np.int64)
        if word_items:  # word-level upstream with an utterance-level head: one item per word
            x, off = store.gather(ids, layer=layer)
            counts = np.diff(off)
            item_ids = [f"{uid}#{k}" for uid, n in zip(ids, counts, strict=True) for k in range(int(n))]
            out[name] = FeatureSet("pooled", x, np.repeat(y, counts).astype(np.int64), item_ids)
        elif features == "pooled":
            x = store.pooled(layer=layer, window_s=pool_window_s)[store.index_of(ids)] if ids else \
                np.zeros((0, store.meta.hidden_size), np.float16)
            out[name] = FeatureSet("pooled", np.asarray(x), y, ids)
        else:
            x, off = store.gather(ids, layer=layer)
            out[name] = FeatureSet("frames", x, y, ids, offsets=off)
    if standardize and len(out.get("train", [])):
        mean, std = out["train"].stats()
        out = {name: fs.with_stats(mean, std) for name, fs in out.items()}
    return out, dropped


def feature_sets_for(store: FeatureStore, splits: dict[str, LabelledSet],
                     plan: CellPlan) -> Callable[[int], tuple[dict[str, FeatureSet], list[str]]]:
    """``layer -> (feature sets per split, dropped items)`` as the cell's head reads them (used by
    the cell, the layer sweep and the analyses, so that all of them see the same items)."""
    cfg = plan.downstream.config
    word_items = plan.granularity == "word" and cfg.features == "pooled"
    pool_window = cfg.pool_window_s if plan.granularity == "frame" else None

    def sets_for(layer: int) -> tuple[dict[str, FeatureSet], list[str]]:
        return build_feature_sets(store, splits, layer=layer, features=cfg.features, pool_window_s=pool_window,
                                  word_items=word_items, standardize=cfg.standardize)

    return sets_for


def head_for(plan: CellPlan, store: FeatureStore, *, input_size: int, num_classes: int) -> nn.Module:
    """A fresh head of the cell's downstream (the cell, the sweep and the 10% retraining all use this)."""
    from .train import make_head

    ds = plan.downstream
    if ds.head is None:
        raise BenchError(f"downstream {plan.spec.downstream!r} declares no head")
    rate = getattr(store.meta, "frame_rate_hz", None) if plan.granularity == "frame" else None
    return make_head(ds.head, head_args=ds.head_args, input_size=input_size, num_classes=num_classes,
                     input_frame_rate_hz=rate)


# --------------------------------------------------------------------------- running
def run_cell(ws: Workspace, spec: CellSpec, *, device: str = "cpu", progress: bool = True,
             force: bool = False) -> dict[str, Any]:
    """Run one cell (or return its finished result) and write its result JSON.

    Never raises for a failure inside the cell: the result has status ``failed`` (error and
    traceback) or ``unavailable`` (reason), so a matrix goes on with the other cells.
    """
    t0 = time.perf_counter()
    try:
        plan = plan_cell(ws, spec)
    except Unavailable as e:
        return _write_status(ws, spec, None, "unavailable", reason=str(e), t0=t0)
    except BenchError as e:  # a configuration problem: the cell fails, with the message
        return _write_status(ws, spec, None, "failed", error=e, t0=t0)
    if not force:
        existing = read_json(plan.result_path)
        if existing and existing.get("key") == plan.key and existing.get("status") == "ok":
            existing["_skipped"] = True
            existing["_path"] = str(plan.result_path)
            return existing
    try:
        result = execute(ws, plan, device=device, progress=progress)
    except (Unavailable, WeightsMissingError) as e:
        return _write_status(ws, spec, plan, "unavailable", reason=str(e), t0=t0)
    except KeyboardInterrupt:
        raise
    except Exception as e:  # noqa: BLE001 - a cell's failure is recorded, the matrix goes on
        return _write_status(ws, spec, plan, "failed", error=e, t0=t0)
    result["timings"]["total_s"] = time.perf_counter() - t0
    write_json_atomic(plan.result_path, result)
    result["_path"] = str(plan.result_path)
    return result


def record_failure(ws: Workspace, spec: CellSpec, error: BaseException) -> dict[str, Any]:
    """Write a failed result for ``spec`` when the cell could not write one itself (the process
    running it died, e.g. a Ray worker killed on every retry). A result the cell finished with
    its current key is kept."""
    t0 = time.perf_counter()
    try:
        plan: CellPlan | None = plan_cell(ws, spec)
    except BenchError:
        plan = None
    if plan is not None:
        existing = read_json(plan.result_path)
        if existing and existing.get("key") == plan.key and existing.get("status") == "ok":
            return existing
    return _write_status(ws, spec, plan, "failed", error=error, t0=t0)


def _base_result(plan: CellPlan | None, spec: CellSpec, status: str) -> dict[str, Any]:
    from .upstream import recorded_settings

    res: dict[str, Any] = {"schema": SCHEMA_VERSION, "status": status, "key": plan.key if plan else None,
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


def _write_status(ws: Workspace, spec: CellSpec, plan: CellPlan | None, status: str, *, reason: str = "",
                  error: BaseException | None = None, t0: float) -> dict[str, Any]:
    res = _base_result(plan, spec, status)
    if reason:
        res["reason"] = reason
    if error is not None:
        res["error"] = {"type": type(error).__name__, "message": str(error),
                        "traceback": "".join(traceback.format_exception(error))}
    res["timings"] = {"total_s": time.perf_counter() - t0}
    path = plan.result_path if plan else result_path(ws.path("results"), profile=spec.profile, upstream=spec.upstream,
                                                     downstream=spec.downstream, language=spec.language, seed=spec.seed)
    write_json_atomic(path, res)
    return res


def execute(ws: Workspace, plan: CellPlan, *, device: str, progress: bool) -> dict[str, Any]:
    """The cell's work; raises on failure (run_cell records it)."""
    from .train import set_seed

    set_seed(plan.spec.seed)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    dataset = load_task_dataset(ws, plan.profile, plan.source, plan.spec.language)
    timings["data_s"] = time.perf_counter() - t
    if plan.task.kind != "classification":
        runner = import_string(KIND_RUNNERS[plan.task.kind])
        result = _base_result(plan, plan.spec, "ok")
        result.update(runner(ws=ws, plan=plan, dataset=dataset, device=device, progress=progress))
        result.setdefault("timings", {}).update(timings)
        result["environment"] = environment(device)
        return result
    return run_classification(ws, plan, dataset, device=device, progress=progress, timings=timings)


def features_for(ws: Workspace, plan: CellPlan, dataset: Dataset, *, device: str, progress: bool) -> FeatureStore:
    """The cell's feature cache entry (one upstream pass per card and audio set, shared by all cells)."""
    from .extract import ensure_features

    def frame_layers(num_layers: int) -> list[int]:
        return frame_layers_for_profile(ws, profile_name=plan.spec.profile, profile=plan.profile,
                                        num_layers=num_layers)

    return ensure_features(workspace=ws, card=plan.card, dataset=dataset, language=plan.spec.language,
                           frame_layers=frame_layers, device=device, batch_s=plan.profile.extract_batch_s,
                           progress=progress)


def run_classification(ws: Workspace, plan: CellPlan, dataset: Dataset, *, device: str, progress: bool,
                       timings: dict[str, float]) -> dict[str, Any]:
    from .analysis.sweep import choose_layer
    from .metrics import classification_metrics
    from .train import predict, set_seed, train_head

    splits = task_splits(dataset, task=plan.task, source=plan.source)
    classes = splits["train"].classes
    for s in ("train", "test"):
        if not splits[s].utterances:
            raise DataError(f"the {s} split of {dataset.name} has no utterance labelled with "
                            f"{plan.task.label} in {list(classes)}")
    t = time.perf_counter()
    store = features_for(ws, plan, dataset, device=device, progress=progress)
    timings["features_s"] = time.perf_counter() - t
    ds = plan.downstream
    cfg = ds.config
    word_items = plan.granularity == "word" and cfg.features == "pooled"
    sets_for = feature_sets_for(store, splits, plan)
    t = time.perf_counter()
    layer_info = choose_layer(ws=ws, plan=plan, store=store, sets_for=sets_for, classes=classes,
                              device=device, progress=progress)
    timings["layer_selection_s"] = time.perf_counter() - t
    layer = int(layer_info["chosen"])
    fsets, dropped = sets_for(layer)
    t = time.perf_counter()
    set_seed(plan.spec.seed)  # the head's initialisation must not depend on whether the sweep was cached
    head = head_for(plan, store, input_size=fsets["train"].dim, num_classes=len(classes))
    tr = train_head(head, train=fsets["train"], dev=fsets["dev"], training=ds.training, seed=plan.spec.seed,
                    progress=progress, label=f"train {plan.spec.upstream}/{plan.spec.downstream}/{plan.spec.language}")
    timings["train_s"] = time.perf_counter() - t
    pred, logits = predict(head, fsets["test"], batch_size=ds.training.batch_size)
    metrics = classification_metrics(fsets["test"].y, pred, num_classes=len(classes))
    dev_pred, _ = predict(head, fsets["dev"], batch_size=ds.training.batch_size) if len(fsets["dev"]) else (np.zeros(0), None)
    result = _base_result(plan, plan.spec, "ok")
    result.update({
        "metrics": metrics,
        "dev_metrics": classification_metrics(fsets["dev"].y, dev_pred, num_classes=len(classes)) if len(fsets["dev"]) else {},
        "classes": list(classes),
        "layer": layer_info,
        "predictions": {"ids": fsets["test"].ids, "y_true": fsets["test"].y.tolist(), "y_pred": pred.tolist()},
        "training": {"best_epoch": tr.best_epoch, "epochs_run": tr.epochs_run, "best_dev_f1": tr.best_dev_f1,
                     "stopped_early": tr.stopped_early, "history": tr.history, "seconds": tr.seconds,
                     "head_params": sum(p.numel() for p in head.parameters())},
        "data": {
            "corpus": dataset.name, "fingerprint": dataset.fingerprint,
            "items": {s: len(f) for s, f in fsets.items()},
            "utterances": {s: len(ls.utterances) for s, ls in splits.items()},
            "label_counts": {s: dict(Counter(classes[i] for i in ls.labels)) for s, ls in splits.items()},
            **skipped_summary(corpus=list(dataset.skipped), labels=[x for ls in splits.values() for x in ls.skipped],
                              features=dropped),
            "item_level": "word" if word_items else "utterance",
        },
        "features": {"cache_entry": store.path.name, "bytes_on_disk": store.bytes_on_disk,
                     "extract_seconds": store.meta.extract_seconds, "audio_seconds": store.meta.audio_seconds,
                     "upstream_forward_calls": store.meta.upstream_forward_calls,
                     "num_layers": store.meta.num_layers, "hidden_size": store.meta.hidden_size,
                     "frame_rate_hz": store.meta.frame_rate_hz},
        "timings": timings,
        "environment": environment(device),
        "analyses": {},
    })
    if word_items:
        result["utterance_metrics"] = _utterance_vote(fsets["test"].ids, fsets["test"].y, logits, len(classes))
    ctx = CellContext(workspace=ws, plan=plan, dataset=dataset, store=store, layer=layer, splits=fsets,
                      classes=classes, head=head, metrics=metrics, device=device, progress=progress, result=result)
    for name in _post_steps(plan):
        t = time.perf_counter()
        step = import_string(POST_STEPS[name])
        out = step(ctx)
        if out is not None:
            result["analyses"][name] = out
        timings[f"{name}_s"] = time.perf_counter() - t
    return result


MAX_SKIPPED_EXAMPLES = 100


def skipped_summary(**by_stage: list[str]) -> dict[str, Any]:
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
    if a.capacity and plan.task_name in a.capacity_tasks and first_seed:
        steps.append("capacity")
    if (a.inference_time and plan.task_name == a.inference_time_task and plan.spec.language == a.inference_time_language
            and first_seed):
        steps.append("inference_time")
    return steps


def _utterance_vote(item_ids: list[str], y: np.ndarray, logits: np.ndarray, num_classes: int) -> dict[str, Any]:
    """Utterance-level scores of a word-level probe: mean of the words' log-probabilities."""
    from .metrics import classification_metrics

    groups: dict[str, list[int]] = {}
    for i, iid in enumerate(item_ids):
        groups.setdefault(iid.split("#", 1)[0], []).append(i)
    logp = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    yt = [int(y[idx[0]]) for idx in groups.values()]
    yp = [int(logp[idx].mean(0).argmax()) for idx in groups.values()]
    return classification_metrics(yt, yp, num_classes=num_classes)


def select_layer(ws: Workspace, spec: CellSpec, *, device: str = "cpu", progress: bool = False) -> dict[str, Any]:
    """Run (or read) the layer selection of a cell without training its final head.

    The matrix calls this once per (upstream, downstream, language) before the cells, so the
    seeds of a cell, and downstreams that reuse its layer (``layer_from``), share one sweep
    instead of racing to compute it. Returns the layer record, or {"skipped": reason}.
    """
    from .analysis.sweep import choose_layer

    try:
        plan = plan_cell(ws, spec)
    except BenchError as e:
        return {"skipped": str(e)}
    if plan.task.kind != "classification" or plan.downstream.config.layer != "sweep":
        return {"skipped": "no sweep"}
    dataset = load_task_dataset(ws, plan.profile, plan.source, spec.language)
    splits = task_splits(dataset, task=plan.task, source=plan.source)
    store = features_for(ws, plan, dataset, device=device, progress=progress)
    if store.meta.num_layers == 1:
        return {"chosen": 0, "rule": "single layer"}
    return choose_layer(ws=ws, plan=plan, store=store, sets_for=feature_sets_for(store, splits, plan),
                        classes=splits["train"].classes, device=device, progress=progress)
