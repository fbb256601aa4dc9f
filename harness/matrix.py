"""The matrix: every cell a profile declares, run locally or on a Ray cluster, then the leaderboards.

Stages, each idempotent and resumable:

1. small models: the BiLSTM upstreams the profile lists are trained once per language
   (``bench train-upstream``), unless their checkpoint exists;
2. features: one upstream pass per (card, audio set) into the feature cache;
3. cells: probe training and analyses, one result JSON each.

A rerun skips finished cells (same key, status ok) and failed ones (``--retry-failed`` reruns
exactly those); unavailable cells are re-checked every time (weights or a corpus may have been
added). A failed cell records its error and traceback; the other cells go on.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .cell import CellPlan, CellSpec, Unavailable, cell_status, plan_cell
from .config import RANDOM_SUFFIX, Workspace
from .errors import BenchError, ConfigError, Problem, did_you_mean
from .results import read_json
from .schema import Profile

ONLY_KEYS = ("upstream", "downstream", "language", "seed")
OUTPUT_SETTINGS = ("cache", "results", "models", "user_cards", "leaderboards")  # paths.* a run writes to


def parse_only(text: str) -> dict[str, set[str]]:
    """``"upstream=mfcc,downstream=gender,language=en"`` -> filters (repeat a key for several values;
    ``upstream=mfcc|siamese`` also works)."""
    out: dict[str, set[str]] = defaultdict(set)
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or key not in ONLY_KEYS:
            raise BenchError(f"--only expects key=value with key in {ONLY_KEYS}, got {part!r}")
        out[key].update(v for v in value.split("|") if v)
    return dict(out)


def only_problems(only: dict[str, set[str]], profile_name: str, profile: Profile) -> list[Problem]:
    """``--only`` values that name nothing in the profile (a typo would silently select no cell)."""
    known = {"upstream": set(profile.upstreams) | {u.removesuffix(RANDOM_SUFFIX) for u in profile.upstreams},
             "downstream": set(profile.downstreams), "language": set(profile.languages),
             "seed": {str(s) for s in profile.seeds}}
    problems = []
    for key, values in only.items():
        for value in sorted(values - known[key]):
            problems.append(Problem("--only", key, f"one of the profile {profile_name!r}'s {key}s "
                                    f"({', '.join(sorted(known[key]))})", repr(value), did_you_mean(value, known[key])))
    return problems


def check_matrix(ws: Workspace, profile: str | None, only: dict[str, set[str]] | None) -> tuple[str, Profile]:
    """Validate the workspace, the profile with its ``--set`` overrides, and ``--only``, before any work."""
    ws.check(profile=profile, selection=True)
    profile_name, prof = ws.profile(profile)
    only = only or {}
    problems = only_problems(only, profile_name, prof)
    if not problems:
        ups = [u for u in prof.upstreams if {u, u.removesuffix(RANDOM_SUFFIX)} & only.get("upstream", {u})]
        dss = [d for d in prof.downstreams if d in only.get("downstream", {d})]
        problems = ws.selection_problems(profile=profile_name, upstreams=ups, downstreams=dss)
    if problems:
        raise ConfigError(problems)
    return profile_name, prof


def prepare_outputs(ws: Workspace, *, settings: tuple[str, ...] = OUTPUT_SETTINGS) -> list[Path]:
    """Check that every output folder can be written (one clear error naming each one that cannot,
    before any work) and remove the temporaries that killed runs left in them.

    Also points matplotlib's font cache (``MPLCONFIGDIR``, when unset) into the feature cache's
    folder, so that a run writes nothing under ``$HOME``."""
    import os

    from .results import check_writable
    from .tempfiles import remove_stale

    folders = {s: ws.path(s) for s in settings}
    check_writable(folders)
    os.environ.setdefault("MPLCONFIGDIR", str(ws.path("cache") / "matplotlib"))
    removed: list[Path] = []
    for folder in folders.values():
        removed += remove_stale(folder, recursive=True)
    return removed


def cells_of(ws: Workspace, profile_name: str, profile: Profile, *, only: dict[str, set[str]] | None = None) -> list[CellSpec]:
    """The profile's cells in run order: upstream by upstream (one extraction each), English
    first (layers chosen on English are reused), downstreams in profile order, then seeds.
    (Task, language) pairs the task does not define are not cells."""
    only = only or {}
    languages = sorted(profile.languages, key=lambda lang: (lang != "en", profile.languages.index(lang)))
    downstreams = _dependency_order(ws, profile.downstreams)
    cells = []
    for up in profile.upstreams:
        for lang in languages:
            if up in profile.upstream_languages and lang not in profile.upstream_languages[up]:
                continue
            for ds in downstreams:
                task = ws.task(ws.downstream(ds).task)
                if lang not in task.sources.get(profile.data, {}):
                    continue
                for seed in profile.seeds:
                    spec = CellSpec(profile_name, up, ds, lang, seed)
                    if _selected(spec, only):
                        cells.append(spec)
    return cells


def _dependency_order(ws: Workspace, names: list[str]) -> list[str]:
    """Downstreams after the ones whose layer they reuse (``layer_from``)."""
    ordered: list[str] = []
    for n in names:
        dep = ws.downstream(n).layer_from
        if dep and dep in names and dep not in ordered:
            ordered.append(dep)
        if n not in ordered:
            ordered.append(n)
    return ordered


def _selected(spec: CellSpec, only: dict[str, set[str]]) -> bool:
    values = {"upstream": {spec.upstream, spec.upstream.removesuffix(RANDOM_SUFFIX)}, "downstream": {spec.downstream},
              "language": {spec.language}, "seed": {str(spec.seed)}}
    return all(values[k] & v for k, v in only.items())


@dataclass
class CellState:
    spec: CellSpec
    status: str  # todo, stale, done, failed, unavailable, invalid
    plan: CellPlan | None = None
    reason: str = ""


def survey(ws: Workspace, cells: Iterable[CellSpec]) -> list[CellState]:
    states = []
    for spec in cells:
        try:
            plan = plan_cell(ws, spec)
        except Unavailable as e:
            states.append(CellState(spec, "unavailable", None, str(e)))
            continue
        except BenchError as e:
            states.append(CellState(spec, "invalid", None, str(e)))
            continue
        status = cell_status(plan)
        reason = _stored_reason(plan) if status in ("failed", "unavailable") else ""
        states.append(CellState(spec, {"ok": "done"}.get(status, status), plan, reason))
    return states


def _stored_reason(plan: CellPlan) -> str:
    """Why a stored result failed or could not run (as the leaderboard notes say it)."""
    from .report import failure_reason
    from .run.record import read_result

    record = read_result(plan.result_path)
    return failure_reason(record) if record else ""


# --------------------------------------------------------------------------- stages
def small_model_jobs(ws: Workspace, profile: Profile, cells: Iterable[CellSpec]) -> list[tuple[str, str]]:
    """(model, language) pairs to train: lstm cards used by the cells whose checkpoint is missing."""
    jobs = set()
    for spec in cells:
        card = ws.card(spec.upstream)
        if card.card.adapter != "lstm" or "checkpoint" in card.args:
            continue
        model = str(card.args.get("model", card.base_name))
        if not (ws.path("models") / model / spec.language / "model.pt").is_file():
            jobs.add((model, spec.language))
    return sorted(jobs)


def train_small_model_job(ws: Workspace, profile_name: str, model: str, language: str, *, progress: bool) -> dict[str, Any]:
    from .smallmodels.train import train_for_profile

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


def extract_for_cell(ws: Workspace, spec: CellSpec, *, device: str, progress: bool) -> dict[str, Any]:
    """Stage 2 for one cell's upstream and corpus (returns a small summary; errors are left to the cell)."""
    from .cell import features_for, load_task_dataset

    try:
        plan = plan_cell(ws, spec)
        dataset = load_task_dataset(ws, plan.profile, plan.source, spec.language)
        if plan.task.kind == "word_discrimination":
            from .smallmodels.word_discrimination import prefetch_word_vectors

            return {"ok": True, **prefetch_word_vectors(ws=ws, plan=plan, dataset=dataset, device=device)}
        store = features_for(ws, plan, dataset, device=device, progress=progress)
    except Exception as e:  # noqa: BLE001 - the cell itself will record the failure with its traceback
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}
    return {"ok": True, "entry": store.path.name, "seconds": store.meta.extract_seconds}


# --------------------------------------------------------------------------- executors
class LocalExecutor:
    """Runs jobs one after the other in this process."""

    parallel = False

    def map(self, fn: Callable[..., Any], jobs: list[Any], *, on_done: Callable[[Any, Any], None],
            resources: dict[str, float] | None = None) -> None:
        for job in jobs:
            on_done(job, fn(job))

    def recycle(self) -> None:
        return None

    def close(self) -> None:
        return None


class WorkerDiedError(RuntimeError):
    """A job's worker process died under it (no Python exception to report)."""


class ProcessExecutor:
    """Runs jobs in ``workers`` local processes (spawned, one torch thread each).

    Probe heads and the small models train with one thread (their kernels are too small to gain
    from more), so on an N-core machine N jobs side by side finish about N times sooner than one
    after the other. Jobs that want every core (feature extraction) get a pool of one worker with
    ``threads`` = the number of cores.

    A worker that dies (the OOM killer, a segfault in a native library, a kill) breaks the pool:
    the pool is started again and the jobs it was running are run again, each alone, so that the
    job that kills its worker is told apart from the ones that shared the pool with it; a job
    that kills a worker while running alone is reported failed, the others go on.
    """

    parallel = True

    def __init__(self, workers: int, *, threads: int = 1, tasks_per_worker: int | None = None):
        self.workers = workers
        self._threads = threads
        self._tasks_per_worker = tasks_per_worker
        self._pool = self._new_pool()

    def _new_pool(self) -> Any:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        return ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_worker_init, initargs=(self._threads,),
                                   max_tasks_per_child=self._tasks_per_worker)

    def map(self, fn: Callable[..., Any], jobs: list[Any], *, on_done: Callable[[Any, Any], None],
            resources: dict[str, float] | None = None) -> None:
        from collections import deque
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        queue: deque[int] = deque(range(len(jobs)))
        suspects: deque[int] = deque()  # were running when a worker died: rerun one at a time
        running: dict[Any, int] = {}
        alone: set[int] = set()
        while queue or suspects or running:
            broken = False  # a worker died: the pool refuses new jobs and fails its running ones
            if suspects:
                if not running:
                    i = suspects.popleft()
                    fut = self._submit(fn, jobs[i])
                    if fut is None:
                        suspects.appendleft(i)
                        broken = True
                    else:
                        alone.add(i)
                        running[fut] = i
            else:
                while queue and len(running) < self.workers:
                    i = queue.popleft()
                    fut = self._submit(fn, jobs[i])
                    if fut is None:  # the pool broke since the last job finished: this one never ran
                        queue.appendleft(i)
                        broken = True
                        break
                    running[fut] = i
            done = wait(running, return_when=FIRST_COMPLETED).done if running else set()
            for fut in done:
                i = running.pop(fut)
                try:
                    result = fut.result()
                except BrokenProcessPool as e:
                    broken = True
                    if i not in alone:
                        suspects.append(i)
                        continue
                    died = WorkerDiedError("its worker process died while running it alone (killed by a signal, out "
                                           "of memory or a crash in native code); rerun it with --workers 1 to see "
                                           "the error in the foreground")
                    died.__cause__ = e
                    result = {"status": "failed", "error": str(died), "executor_error": died}
                except Exception as e:  # noqa: BLE001 - a job that raised: reported, the rest go on
                    result = {"status": "failed", "error": f"worker process: {type(e).__name__}: {e}",
                              "executor_error": e}
                on_done(jobs[i], result)
            if broken:  # every job of a broken pool fails with it: collect them, then start a new pool
                for fut in wait(running).done:
                    i = running.pop(fut)
                    err = fut.exception()
                    if isinstance(err, BrokenProcessPool):
                        suspects.append(i)
                    elif err is not None:
                        on_done(jobs[i], {"status": "failed", "error": f"worker process: {type(err).__name__}: {err}",
                                          "executor_error": err})
                    else:
                        on_done(jobs[i], fut.result())
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._new_pool()

    def _submit(self, fn: Callable[..., Any], job: Any) -> Any:
        """The job's future, or None when the pool is broken (a worker died since the last submit)."""
        from concurrent.futures.process import BrokenProcessPool

        try:
            return self._pool.submit(fn, job)
        except BrokenProcessPool:
            return None

    def recycle(self) -> None:
        """Let the worker processes go (their memory goes back to the system); new ones start on the next job."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = self._new_pool()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _worker_init(threads: int = 1) -> None:
    import torch

    torch.set_num_threads(max(threads, 1))


def _small_model_job(job: tuple[str, str], *, ws: Workspace, profile_name: str, progress: bool) -> dict[str, Any]:
    """Train one small model; a failure is returned (the cells of that model then fail with it)."""
    try:
        return train_small_model_job(ws, profile_name, job[0], job[1], progress=progress)
    except Exception as e:  # noqa: BLE001 - one model's failure must not stop the matrix
        return {"executor_error": e}


def _extract_job(spec: CellSpec, *, ws: Workspace, device: str, progress: bool) -> dict[str, Any]:
    return extract_for_cell(ws, spec, device=device, progress=progress)


def _layer_job(spec: CellSpec, *, ws: Workspace, device: str, progress: bool) -> dict[str, Any]:
    from .cell import select_layer

    try:
        return select_layer(ws, spec, device=device, progress=progress)
    except Exception as e:  # noqa: BLE001 - the cell itself will record the failure with its traceback
        return {"error": f"{type(e).__name__}: {e}"}


def layer_jobs(ws: Workspace, states: list[CellState]) -> tuple[list[CellSpec], list[CellSpec]]:
    """One cell per (upstream, downstream, language) whose layer is chosen by a sweep, English
    first (the other languages may reuse the English layer), the rest second."""
    seen: set[tuple[str, str, str]] = set()
    english, others = [], []
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


def _cell_job(state: CellState, *, ws: Workspace, device: str, progress: bool) -> dict[str, Any]:
    from .cell import run_cell

    return _run_cell_job(ws, state.spec, device=device, progress=progress, run=run_cell)


def run_matrix(ws: Workspace, *, profile: str | None = None, only: dict[str, set[str]] | None = None,
               retry_failed: bool = False, executor: str = "local", address: str | None = None,
               device: str = "cpu", progress: bool = True, leaderboard: bool = True,
               workers: int | None = None) -> dict[str, Any]:
    """Run the profile's matrix; returns counts, timings and the leaderboard folder.

    ``workers``: local processes for the small-model and cell stages (default: the profile's
    ``workers``, else the number of CPU cores; 1 runs them in this process). Each feature
    extraction runs in a fresh process with every core (or as a Ray task).
    """
    from functools import partial

    from .cell import record_failure
    from .progress import make_progress

    profile_name, prof = check_matrix(ws, profile, only)
    n_workers = workers or prof.workers or (os.cpu_count() or 1)
    if executor == "local":
        ex: Any = ProcessExecutor(n_workers, tasks_per_worker=25) if n_workers > 1 and device == "cpu" \
            else LocalExecutor()
    else:  # reach the cluster before anything is written: a wrong address leaves no trace
        ex = _executor(executor, address=address, ws=ws)
    try:
        prepare_outputs(ws, settings=OUTPUT_SETTINGS if leaderboard else OUTPUT_SETTINGS[:-1])
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
                # largest model (see harness.extract)
                fresh = ProcessExecutor(1, threads=os.cpu_count() or 1) \
                    if executor == "local" and device == "cpu" else None
                try:
                    (fresh or ex).map(partial(_extract_job, ws=ws, device=device, progress=False), extract,
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
                    ex.map(partial(_layer_job, ws=ws, device=device, progress=job_progress), group,
                           on_done=lambda job, res: prog.advance(task), resources={"num_cpus": 1, "num_gpus": gpu})
            stages["layer_sweeps"], ts = time.perf_counter() - ts, time.perf_counter()
            task = prog.add_task(f"cells ({profile_name})", total=len(todo), info="")

            def done(state: CellState, res: dict[str, Any]) -> None:
                if res.get("executor_error") is not None:  # the job died before it could write its result
                    record_failure(ws, state.spec, res["executor_error"])
                counts[res.get("status", "failed")] += 1
                prog.update(task, advance=1, info=f"ok {counts['ok']} failed {counts['failed']} "
                                                  f"unavailable {counts['unavailable']}")

            ex.map(partial(_cell_job, ws=ws, device=device, progress=job_progress), todo, on_done=done,
                   resources={"num_cpus": 1, "num_gpus": gpu})
            stages["cells"] = time.perf_counter() - ts
    finally:
        ex.close()
    out: dict[str, Any] = {"profile": profile_name, "cells": len(cells), "ran": len(todo), "counts": dict(counts),
                           "seconds": time.perf_counter() - t0, "stages": stages}
    if leaderboard:
        from .report import write_leaderboards

        out["leaderboards"] = str(write_leaderboards(ws, profile=profile_name))
    return out


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
    res = run(ws, spec, device=device, progress=progress, force=True)
    return {"status": res.get("status"), "reason": res.get("reason", ""),
            "error": (res.get("error") or {}).get("message", "")}


def _executor(kind: str, *, address: str | None, ws: Workspace) -> Any:
    if kind == "local":
        return LocalExecutor()
    if kind == "ray":
        from .ray_executor import RayExecutor

        return RayExecutor(address=address, workspace=ws)
    raise BenchError(f"unknown executor {kind!r}; use local or ray")


# --------------------------------------------------------------------------- dry run
def dry_run(ws: Workspace, *, profile: str | None = None, only: dict[str, set[str]] | None = None) -> str:
    """The cells, which are done / failed / unavailable / to do, which have cached features, and an estimate."""
    from .cell import load_task_dataset
    from .extract import lookup

    profile_name, prof = check_matrix(ws, profile, only)
    states = survey(ws, cells_of(ws, profile_name, prof, only=only))
    cached: dict[tuple[str, str, str], bool] = {}
    lines = [f"profile {profile_name}: {len(states)} cells"]
    for st in states:
        feat = ""
        if st.plan is not None and st.plan.task.kind != "word_discrimination":
            k = (st.plan.card.name, st.spec.language, st.plan.source.corpus)
            if k not in cached:
                try:
                    ds = load_task_dataset(ws, st.plan.profile, st.plan.source, st.spec.language) \
                        if st.plan.source.corpus != "synth" or _synth_exists(ws, st.plan.profile, st.spec.language) \
                        else None
                    cached[k] = bool(ds is not None and lookup(ws, st.plan.card, ds, language=st.spec.language)[1])
                except Exception:  # noqa: BLE001 - dry run only reports
                    cached[k] = False
            feat = "features cached" if cached[k] else "features to extract"
        reason = f"  ({st.reason[:100]})" if st.reason else ""
        lines.append(f"  {st.status:<11} {st.spec.label:<55} {feat}{reason}")
    c = Counter(s.status for s in states)
    lines.append("summary: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
    missing = sum(1 for v in cached.values() if not v)
    lines.append(f"upstream passes needed: {missing} (of {len(cached)} card x corpus pairs)")
    est = _estimate(ws, profile_name, [s for s in states if s.status in ("todo", "stale")])
    lines.append(f"estimated cell time: {est}")
    return "\n".join(lines)


def _synth_exists(ws: Workspace, profile: Profile, language: str) -> bool:
    """The profile's synthetic corpus of ``language`` is complete (a dry run never generates one)."""
    from .synth import synth_corpus_exists

    return synth_corpus_exists(root=ws.path("cache") / "corpora" / "synth", language=language,
                               options=profile.synth.model_dump(mode="json"))


def _estimate(ws: Workspace, profile_name: str, todo: list[CellState]) -> str:
    """From finished cells' wall times (same upstream and downstream, else same downstream)."""
    from .results import iter_results

    by_pair: dict[tuple[str, str], list[float]] = defaultdict(list)
    by_ds: dict[str, list[float]] = defaultdict(list)
    for r in iter_results(ws.path("results"), profile_name):
        if r.get("status") == "ok":
            t = float(r.get("timings", {}).get("total_s", 0))
            by_pair[(r["cell"]["upstream"], r["cell"]["downstream"])].append(t)
            by_ds[r["cell"]["downstream"]].append(t)
    total, unknown = 0.0, 0
    for st in todo:
        xs = by_pair.get((st.spec.upstream, st.spec.downstream)) or by_ds.get(st.spec.downstream)
        if xs:
            total += statistics.median(xs)
        else:
            unknown += 1
    return f"about {total / 60:.1f} min for {len(todo) - unknown} cells" + (
        f"; {unknown} cells without a timing to go by" if unknown else "")


def run_matrix_cli(ws: Workspace, args: argparse.Namespace) -> int:
    from .device import resolve_device

    only = parse_only(args.only)
    if args.dry_run:
        print(dry_run(ws, profile=args.profile, only=only))
        return 0
    _, prof = ws.profile(args.profile)
    device = resolve_device(args.device or prof.device)
    out = run_matrix(ws, profile=args.profile, only=only, retry_failed=args.retry_failed, executor=args.executor,
                     address=args.address, device=device, progress=not args.no_progress,
                     leaderboard=not args.no_leaderboard, workers=args.workers)
    c = out["counts"]
    print(f"matrix {out['profile']}: {out['cells']} cells; ran {out['ran']} in {out['seconds']:.0f} s: "
          f"ok {c.get('ok', 0)}, failed {c.get('failed', 0)}, unavailable {c.get('unavailable', 0)}; "
          f"skipped {c.get('skipped_done', 0)} finished" +
          (f" and {c['skipped_failed']} failed (rerun them with --retry-failed)" if c.get("skipped_failed") else "") +
          ("; stages: " + ", ".join(f"{k.replace('_', ' ')} {v:.0f} s" for k, v in out["stages"].items())
           if out.get("stages") else ""))
    if "leaderboards" in out:
        print(f"leaderboards: {out['leaderboards']}")
    return 1 if c.get("failed") else 0


def state_summary(states: list[CellState]) -> dict[str, Any]:
    return {"counts": dict(Counter(s.status for s in states)),
            "cells": [{**asdict(s.spec), "status": s.status, "reason": s.reason} for s in states]}


def result_of(ws: Workspace, spec: CellSpec) -> dict[str, Any] | None:
    from .results import result_path

    return read_json(result_path(ws.path("results"), profile=spec.profile, upstream=spec.upstream,
                                 downstream=spec.downstream, language=spec.language, seed=spec.seed))
