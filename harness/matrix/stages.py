"""The matrix: every cell a profile declares, run locally or on a Ray cluster, then the leaderboards.

Stages, each idempotent and resumable:

1. small models: the BiLSTM upstreams the profile lists are trained once per language and
   training recipe (``bench train-upstream``; :mod:`harness.config.small_models`), unless the
   recipe's checkpoint exists;
2. features: one upstream pass per (card, audio set) into the feature cache;
3. cells: probe training and analyses, one result JSON each.

A rerun skips finished cells (same key, status ok) and failed ones (``--retry-failed`` reruns
exactly those); unavailable cells are re-checked every time (weights or a corpus may have been
added). A failed cell records its error and traceback; the other cells go on.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..config import Workspace
from ..config.plan import CellPlan, CellSpec, resolve_cell, result_file
from ..errors import BenchError
from ..features.source import PairKey, SourceChoice, planned_sources
from ..outputs import OUTPUT_SETTINGS, prepare_outputs
from ..run.cell import stored_result
from ..run.record import CellResult, LayerChoice
from ..schema import Profile
from .executors import LocalExecutor, ProcessExecutor, make_executor
from .plan import MatrixPlan, job_resources
from .select import CellState, cells_of, check_matrix, survey

Decisions = dict[PairKey, SourceChoice]  # the plan's cache-or-stream decisions (harness.features.source)


def small_model_jobs(ws: Workspace, profile: Profile, cells: Iterable[CellSpec]) -> list[tuple[str, str]]:
    """(model, language) pairs to train: small models the cells run whose checkpoint for the
    profile's training recipe is missing (:func:`harness.smallmodels.recipe.small_model_checkpoint`,
    the path the cells' upstreams read). A profile that cannot train one (no corpus with word
    alignments) leaves it to its cells, which are then unavailable with the reason."""
    from ..config.small_models import card_model
    from ..smallmodels.recipe import small_model_checkpoint

    jobs = set()
    for spec in cells:
        card = ws.card(spec.upstream)
        try:
            path = small_model_checkpoint(ws, profile=spec.profile, card=card, language=spec.language)
        except BenchError:
            continue
        if path is not None and not path.is_file():
            jobs.add((card_model(card), spec.language))
    return sorted(jobs)


def _train_small_model_job(ws: Workspace, profile_name: str, model: str, language: str, *, progress: bool) -> dict[str, Any]:
    from ..smallmodels.train import train_for_profile

    return train_for_profile(ws, profile=profile_name, model=model, language=language, progress=progress)


def extraction_jobs(ws: Workspace, states: list[CellState]) -> list[CellSpec]:
    """One representative cell per (card, language, corpus) whose features may be missing, and
    per (card, language, word-discrimination downstream) whose word vectors may be missing."""
    seen: set[tuple[str, str, str]] = set()
    jobs = []
    for st in states:
        if st.plan is None or st.status == "done":
            continue
        words = st.plan.task.kind == "word_discrimination"
        key = (st.plan.card.name, st.spec.language, f"words:{st.spec.downstream}" if words else st.plan.source.corpus)
        if key not in seen:
            seen.add(key)
            jobs.append(st.spec)
    return jobs


def extract_for_cell(ws: Workspace, spec: CellSpec, *, device: str, progress: bool) -> ExtractionOutcome:
    """Stage 2 for one cell's upstream and corpus (returns a small summary; errors are left to the cell)."""
    from ..features.build import features_for
    from ..run.inputs import dataset_for

    snap = ws.snapshot
    try:
        plan = resolve_cell(snap, spec)
        dataset = dataset_for(snap, plan)
        if plan.task.kind == "word_discrimination":
            from ..run.steps.words import prefetch_word_vectors

            built = prefetch_word_vectors(snap=snap, plan=plan, dataset=dataset, device=device)
            return ExtractionOutcome(True, upstream_built=built)
        store = features_for(snap, plan, dataset, device=device, progress=progress)
    except Exception as e:  # noqa: BLE001 - the cell itself will record the failure with its traceback
        return ExtractionOutcome(False, error=f"{type(e).__name__}: {e}")
    return ExtractionOutcome(True, entry=store.path.name, seconds=store.meta.extract_seconds)


def _small_model_job(job: tuple[str, str], *, ws: Workspace, profile_name: str, progress: bool) -> dict[str, Any]:
    """Train one small model; a failure is returned (the cells of that model then fail with it)."""
    try:
        return _train_small_model_job(ws, profile_name, job[0], job[1], progress=progress)
    except Exception as e:  # noqa: BLE001 - one model's failure must not stop the matrix
        return {"executor_error": e}


def _extract_job(spec: CellSpec, *, ws: Workspace, device: str, progress: bool,
                 sources: Decisions | None = None) -> ExtractionOutcome:
    with planned_sources(sources):
        return extract_for_cell(ws, spec, device=device, progress=progress)


def _layer_job(spec: CellSpec, *, ws: Workspace, device: str, progress: bool,
               sources: Decisions | None = None) -> LayerChoice | str | None:
    """The layer a sweep chose, None when there was no sweep, or the error (the cell itself records
    the failure with its traceback)."""
    from ..run.cell import select_layer

    try:
        with planned_sources(sources):
            return select_layer(ws, spec, device=device, progress=progress)
    except Exception as e:  # noqa: BLE001 - the cell itself will record the failure with its traceback
        return f"{type(e).__name__}: {e}"


def layer_jobs(ws: Workspace, states: list[CellState]) -> tuple[list[CellSpec], list[CellSpec]]:
    """One cell per (upstream, downstream, language) whose layer is chosen by a sweep, English
    first (the other languages may reuse the English layer), the rest second."""
    seen: set[tuple[str, str, str]] = set()
    english: list[CellSpec] = []
    others: list[CellSpec] = []
    for st in states:
        if st.plan is None or st.status == "done" or st.plan.task.kind != "classification":
            continue
        if st.plan.downstream.config.layer != "sweep" or st.plan.granularity != "frame":
            continue
        key = (st.spec.upstream, st.spec.downstream, st.spec.language)
        if key not in seen:
            seen.add(key)
            (english if st.spec.language == "en" else others).append(st.spec)
    return english, others


def frame_group(state: CellState) -> tuple[str, str, str] | None:
    """(card, language, corpus) whose derived frame entries (bounded scheme) the cell reads, or
    None when it reads none (pooled heads, other task kinds, other schemes)."""
    plan = state.plan
    if plan is None or plan.profile.features.sweep_frames != "bounded" or plan.task.kind != "classification":
        return None
    if plan.downstream.config.features != "frames" or plan.profile.features.source == "stream":
        return None
    return plan.card.name, state.spec.language, plan.source.corpus


def chosen_frame_jobs(states: list[CellState]) -> list[list[CellSpec]]:
    """Per (card, language, corpus) of the bounded scheme, the cells to run: one job stores the
    frames of every layer they chose in one pass, before the cells (whose seeds would otherwise
    race to write the same entry)."""
    groups: dict[tuple[str, str, str], list[CellSpec]] = {}
    for st in states:
        group = frame_group(st)
        if group is not None and st.status != "done":
            groups.setdefault(group, []).append(st.spec)
    return list(groups.values())


def store_chosen_frames(ws: Workspace, specs: list[CellSpec], *, device: str, progress: bool) -> str | None:
    """The derived ``frames`` entry of the cells ``specs`` (one card, language and corpus) with the
    layers their rules chose (sweeps are read from their saved curves); None when done, else the
    error (the cells record it themselves)."""
    from ..features.frames import BoundedFrames
    from ..run.inputs import cell_inputs
    from ..run.steps.sweep import choose_layer

    snap = ws.snapshot
    try:
        layers: set[int] = set()
        frames = None
        for spec in specs:
            plan = resolve_cell(snap, spec)
            inputs = cell_inputs(snap, plan, device=device, progress=progress)
            info = choose_layer(snap=snap, plan=plan, store=inputs.store, sets_for=inputs.sets_for,
                                classes=inputs.classes, device=device, progress=progress)
            # a layer mode (weighted_sum, mean) reads every layer's frames
            layers.update(range(inputs.store.meta.num_layers) if info.mode else [int(info.chosen or 0)])
            frames = inputs.frames
        if isinstance(frames, BoundedFrames):
            frames.chosen_entry(sorted(layers))
    except Exception as e:  # noqa: BLE001 - the cells themselves record the failure with its traceback
        return f"{type(e).__name__}: {e}"
    return None


def _chosen_frames_job(specs: list[CellSpec], *, ws: Workspace, device: str, progress: bool,
                       sources: Decisions | None = None) -> str | None:
    with planned_sources(sources):
        return store_chosen_frames(ws, specs, device=device, progress=progress)


class FrameEviction:
    """Deletes the derived frame entries of a (card, language, corpus) once every cell of this run
    that reads them has finished (``features.evict_frames``; pooled vectors stay). A later run that
    needs them again extracts them again."""

    def __init__(self, ws: Workspace, todo: list[CellState]):
        self.ws = ws
        self.left: Counter[tuple[str, str, str]] = Counter(g for g in map(frame_group, todo) if g is not None)
        self.evicted_bytes = 0
        self.plans = {g: st.plan for st in todo if (g := frame_group(st)) is not None}

    def done(self, state: CellState) -> None:
        group = frame_group(state)
        if group is None or group not in self.left:
            return
        self.left[group] -= 1
        if self.left[group] <= 0:
            del self.left[group]
            self.evicted_bytes += evict_frames(self.ws, self.plans[group])


def evict_frames(ws: Workspace, plan: Any) -> int:
    """Remove the derived frame entries (``<key>.frames``, ``<key>.sweep-*``) of ``plan``'s card and
    corpus; returns the bytes freed."""
    import shutil

    from ..run.inputs import dataset_for

    folder = ws.path("cache") / "features" / plan.card.name / dataset_for(ws.snapshot, plan).name
    freed = 0
    for entry in sorted(folder.glob("*.*")) if folder.is_dir() else []:
        suffix = entry.name.split(".", 1)[1]
        if entry.is_dir() and not entry.name.startswith(".") and (suffix == "frames" or suffix.startswith("sweep-")):
            freed += sum(f.stat().st_size for f in entry.iterdir() if f.is_file())
            shutil.rmtree(entry, ignore_errors=True)
    return freed


def _cell_job(state: CellState, *, ws: Workspace, device: str, progress: bool,
              sources: Decisions | None = None) -> dict[str, Any]:
    from ..run.cell import run_cell

    with planned_sources(sources):
        return _run_cell_job(ws, state.spec, device=device, progress=progress, run=run_cell)


@dataclass(frozen=True)
class MatrixRun:
    """What :func:`run_matrix` did: ``counts`` of cell outcomes (``ok``, ``failed``, ``unavailable``)
    and of cells skipped (``skipped_done``, ``skipped_failed``), ``stages`` in seconds, and the
    leaderboard folder when it wrote one."""

    profile: str
    cells: int
    ran: int
    counts: dict[str, int]
    seconds: float
    stages: dict[str, float]
    leaderboards: str | None = None


@dataclass(frozen=True)
class ExtractionOutcome:
    """Stage 2 for one cell: the cache entry (or the word vectors) ready, or why not (the cell
    itself then records the failure with its traceback)."""

    ok: bool
    entry: str | None = None
    seconds: float | None = None
    upstream_built: bool | None = None
    error: str = ""


def run_matrix(ws: Workspace, *, profile: str | None = None, only: dict[str, set[str]] | None = None,
               retry_failed: bool = False, executor: str = "local", address: str | None = None,
               device: str = "cpu", progress: bool = True, leaderboard: bool = True,
               workers: int | None = None, disk_budget: int | None = None) -> MatrixRun:
    """Run the profile's matrix; returns counts, timings and the leaderboard folder (:class:`MatrixRun`).

    ``workers``: local processes for the small-model and cell stages (default: the profile's
    ``workers``, else the number of CPU cores; 1 runs them in this process). Each feature
    extraction runs in a fresh process with every core (or as a Ray task).

    ``disk_budget`` (bytes): the cells to run are planned first (:mod:`harness.matrix.plan`) and the
    run is refused, before any stage starts, when the feature cache's projected peak passes it. On
    Ray, the plan's resource requests are used: a GPU for extraction and streaming heads, one CPU
    for heads on cached features (those then run on the CPU). Under ``features.source: auto`` the
    plan's cache-or-stream decisions are handed to every job (:meth:`MatrixPlan.decisions`), so
    the jobs do what the plan counted and requested resources for.
    """
    from functools import partial

    from ..progress import make_progress
    from ..run.cell import record_failure

    profile_name, prof = check_matrix(ws, profile, only)
    n_workers = workers or prof.workers or (os.cpu_count() or 1)
    if executor == "local":
        ex: Any = ProcessExecutor(n_workers, tasks_per_worker=25) if n_workers > 1 and device == "cpu" \
            else LocalExecutor()
    else:  # reach the cluster before anything is written: a wrong address leaves no trace
        ex = make_executor(executor, address=address, ws=ws)
    try:
        prepare_outputs({s: ws.path(s) for s in (OUTPUT_SETTINGS if leaderboard else OUTPUT_SETTINGS[:-1])})
        t0 = time.perf_counter()
        cells = cells_of(ws, profile_name, prof, only=only)
        states = survey(ws, cells)
    except BaseException:
        ex.close()
        raise
    if retry_failed:
        todo = [s for s in states if s.status == "failed"]
    else:
        todo = [s for s in states if s.status in ("todo", "stale", "unavailable", "invalid")]
    try:
        mplan = _plan_before_work(ws, todo, disk_budget=disk_budget, planned=disk_budget is not None or executor == "ray")
    except BaseException:
        ex.close()
        raise
    # features.source auto: every job caches or streams each pair as the plan decided (the plan's resource
    # requests then match what the jobs do); without a plan each job decides as `bench plan` does
    sources = mplan.decisions() if mplan is not None and prof.features.source == "auto" else None
    counts: Counter[str] = Counter()
    counts["skipped_done"] = sum(s.status == "done" for s in states)
    counts["skipped_failed"] = 0 if retry_failed else sum(s.status == "failed" for s in states)
    job_progress = progress and not getattr(ex, "parallel", True)  # workers draw no bars of their own
    gpu = 1 if device.startswith("cuda") else 0
    stages: dict[str, float] = {}
    try:
        with make_progress(enabled=progress, transient=False) as prog:
            ts = time.perf_counter()
            models = small_model_jobs(ws, prof, [s.spec for s in todo])
            failed_models: dict[tuple[str, str], BaseException] = {}
            if models:
                task = prog.add_task("small models", total=len(models), info="")

                def model_done(job: tuple[str, str], res: dict[str, Any]) -> None:
                    if res.get("executor_error") is not None:
                        failed_models[job] = res["executor_error"]
                    prog.advance(task)

                # each training in a fresh worker process: a training's transient memory (autograd buffers
                # of a batch of 256 sequences) stays with the allocator of a long-lived process
                fresh = ProcessExecutor(n_workers, tasks_per_worker=1) if isinstance(ex, ProcessExecutor) else None
                try:
                    (fresh or ex).map(partial(_small_model_job, ws=ws, profile_name=profile_name,
                                              progress=job_progress), models,
                                      on_done=model_done, resources={"num_cpus": 1})
                finally:
                    if fresh is not None:
                        fresh.close()
            if failed_models:  # their cells fail with the training error instead of "not trained"
                todo = _fail_cells_of_failed_models(ws, todo, failed_models, counts, record_failure)
            stages["small_models"], ts = time.perf_counter() - ts, time.perf_counter()
            extract = extraction_jobs(ws, [s for s in todo])
            if extract:
                task = prog.add_task("features", total=len(extract), info="")
                # one process with every core for the whole stage, closed after it (its memory goes back
                # to the system then). Not a fresh process per job: starting one (torch, transformers)
                # costs about 5 s and the stage has dozens of jobs, most of them a few seconds long; one
                # extraction at a time, longest utterance first, keeps the process's peak that of the
                # largest model (see harness.features.extract). Its thread count is torch's default, the
                # one `bench run` and `bench extract` extract with: features depend on the thread count
                # (0.5% of the float16 values of a WavLM differ between 1 and 2 threads), and the cache
                # keeps whichever extraction came first
                fresh = ProcessExecutor(1, threads=None) \
                    if executor == "local" and device == "cpu" else None
                try:
                    (fresh or ex).map(partial(_extract_job, ws=ws, device=device, progress=False, sources=sources),
                                      extract,
                                      on_done=lambda job, res: prog.advance(task),
                                      resources={"num_cpus": 1, "num_gpus": gpu})
                finally:
                    if fresh is not None:
                        fresh.close()
            stages["features"], ts = time.perf_counter() - ts, time.perf_counter()
            english, others = layer_jobs(ws, todo)
            if english or others:
                task = prog.add_task("layer sweeps", total=len(english) + len(others), info="")
                for group in (english, others):
                    for res, jobs in _by_request(group, lambda spec: job_resources(
                            mplan, "layer_sweeps", _resolved(ws, spec), gpu=bool(gpu))):
                        ex.map(partial(_layer_job, ws=ws, device=_job_device(device, res, executor),
                                       progress=job_progress, sources=sources), jobs,
                               on_done=lambda job, res: prog.advance(task), resources=res)
            stages["layer_sweeps"], ts = time.perf_counter() - ts, time.perf_counter()
            chosen = chosen_frame_jobs(todo)
            if mplan is not None:  # a pair the plan streams stores no chosen-layer frames (and asks no GPU)
                chosen = [specs for specs in chosen
                          if (cell := _resolved(ws, specs[0])) is None or mplan.mode_of(cell) != "stream"]
            if chosen:
                task = prog.add_task("chosen-layer frames", total=len(chosen), info="")
                ex.map(partial(_chosen_frames_job, ws=ws, device=device, progress=job_progress, sources=sources),
                       chosen,
                       on_done=lambda job, res: prog.advance(task), resources={"num_cpus": 1, "num_gpus": gpu})
                stages["chosen_frames"], ts = time.perf_counter() - ts, time.perf_counter()
            task = prog.add_task(f"cells ({profile_name})", total=len(todo), info="")
            eviction = FrameEviction(ws, todo) if prof.features.evict_frames else None
            if eviction is not None:  # by upstream: a card's frames are evicted as soon as its cells are done
                todo = sorted(todo, key=lambda st: st.spec.upstream)

            def done(state: CellState, res: dict[str, Any]) -> None:
                if eviction is not None:
                    eviction.done(state)
                if res.get("executor_error") is not None:  # the job died before it could write its result
                    record_failure(ws, state.spec, res["executor_error"])
                counts[res.get("status", "failed")] += 1
                prog.update(task, advance=1, info=f"ok {counts['ok']} failed {counts['failed']} "
                                                  f"unavailable {counts['unavailable']}")

            for res, states_ in _by_request(todo, lambda st: job_resources(mplan, "cells", st.plan, gpu=bool(gpu))):
                ex.map(partial(_cell_job, ws=ws, device=_job_device(device, res, executor), progress=job_progress,
                               sources=sources), states_, on_done=done, resources=res)
            stages["cells"] = time.perf_counter() - ts
    finally:
        ex.close()
    seconds = time.perf_counter() - t0
    folder = None
    if leaderboard:
        from ..report import write_leaderboards

        folder = str(write_leaderboards(ws, profile=profile_name))
    return MatrixRun(profile=profile_name, cells=len(cells), ran=len(todo), counts=dict(counts), seconds=seconds,
                     stages=stages, leaderboards=folder)


def _plan_before_work(ws: Workspace, todo: list[CellState], *, disk_budget: int | None,
                      planned: bool) -> MatrixPlan | None:
    """The plan of the cells to run (None when neither a budget nor Ray asks for one); a budget
    the cache's projected peak would pass is refused here, before any stage writes anything."""
    if not planned:
        return None
    from .plan import check_budget, make_plan

    mplan = make_plan(ws.snapshot, [s.spec for s in todo if s.plan is not None], budget_bytes=disk_budget,
                      published_fallback=False)
    check_budget(mplan)
    return mplan


def _by_request(jobs: list[Any], request: Callable[[Any], dict[str, float]]) -> list[tuple[dict[str, float], list[Any]]]:
    """Jobs grouped by their resource request, in first-seen order (one executor map per request)."""
    groups: dict[tuple[tuple[str, float], ...], tuple[dict[str, float], list[Any]]] = {}
    for job in jobs:
        res = request(job)
        groups.setdefault(tuple(sorted(res.items())), (res, []))[1].append(job)
    return list(groups.values())


def _job_device(device: str, resources: dict[str, float], executor: str) -> str:
    """A Ray task without a GPU sees none (Ray hides them): it runs on the CPU."""
    return "cpu" if executor == "ray" and not resources.get("num_gpus") else device


def _resolved(ws: Workspace, spec: CellSpec) -> CellPlan | None:
    try:
        return resolve_cell(ws.snapshot, spec)
    except BenchError:
        return None


def _fail_cells_of_failed_models(ws: Workspace, todo: list[CellState], failed: dict[tuple[str, str], BaseException],
                                 counts: Counter[str], record: Callable[..., Any]) -> list[CellState]:
    keep = []
    for st in todo:
        card = ws.card(st.spec.upstream)
        job = (str(card.args.get("model", card.base_name)), st.spec.language)
        if card.card.adapter == "lstm" and job in failed:
            record(ws, st.spec, BenchError(f"training the small model {job[0]!r} for {job[1]!r} failed: "
                                           f"{type(failed[job]).__name__}: {failed[job]}"))
            counts["failed"] += 1
        else:
            keep.append(st)
    return keep


def _run_cell_job(ws: Workspace, spec: CellSpec, *, device: str, progress: bool, run: Callable[..., Any]) -> dict[str, Any]:
    res = run(ws, spec, device=device, progress=progress, force=True).result
    return {"status": res.status, "reason": res.reason or "", "error": (res.error.message if res.error else "") or ""}


def result_of(ws: Workspace, spec: CellSpec) -> CellResult | None:
    """The stored record of ``spec`` (None when there is none, or it is torn or invalid)."""
    return stored_result(result_file(ws, spec))
