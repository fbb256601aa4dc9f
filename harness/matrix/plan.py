"""``bench plan``: what a matrix will cost before anything runs, and the disk budget it must fit.

:func:`make_plan` takes the snapshot, the selected cells and a budget and returns a
:class:`MatrixPlan`: per (card, corpus) pair the audio hours, the upstream's FLOPs, the cache
entries (:mod:`harness.features.entries`) with their bytes, cache or stream and why, GPU- and
CPU-hours per stage, the RAM peak, and the schedule (upstream by upstream, frames evicted when
every job reading them is finished) that reaches the cache's peak. :func:`check_budget` is what
``bench matrix --disk-budget`` calls before any work. Nothing here reads audio or weights, and no
corpus needs to be present: missing ones are counted from ``reference/corpus_sizes.yaml``.

What the runtime can do is a :class:`Runtime`: the cache scheme it writes, whether heads can stream
the upstream (``features: stream``, detected from the schema) and whether finished frames are
evicted. ``Runtime.checkout(profile)`` is what this checkout runs for a profile; ``Runtime.bounded()`` is issue 17's design (the
plan of a machine you are sizing for it).

Figures are projections: FLOPs from the architecture, GPU-hours from the declared throughput of
the GPU (``reference/gpus.yaml``) times an assumed utilisation (:data:`GPU_UTILISATION`), CPU-hours
from :data:`CPU_GFLOPS_PER_CORE`; the small-scale check (``benchmarks/plan_check.py``,
BENCHMARKS.md) compares them with measurements.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from ..config.plan import CellPlan, CellSpec, resolve_cell
from ..config.snapshot import Snapshot
from ..errors import BenchError, ConfigError, Problem, did_you_mean
from ..features.entries import (
    Arch,
    CorpusAudio,
    EntrySpec,
    FrameUse,
    PairEntries,
    Scheme,
    SplitAudio,
)
from ..features.pairs import arch_of, corpus_key, frame_uses, measured_audio, pair_entries
from ..features.source import SourceChoice, auto_source, frame_layer_modes, uses_frames

CORPUS_SIZES_FILE = "reference/corpus_sizes.yaml"
GPUS_FILE = "reference/gpus.yaml"

GPU_UTILISATION = 0.3  # share of the declared peak a bf16 encoder forward reaches (padding, small batches)
CPU_GFLOPS_PER_CORE = 50.0  # fp32 on one core for heads (extraction reached 77 per core here: BENCHMARKS.md)
HEAD_TRAIN_FACTOR = 3.0  # a training step: forward + backward ~ 3 forwards
PROCESS_BASE_BYTES = 700_000_000  # python + torch + transformers imported: the floor of every job's RSS
SIGNAL_CPU_S_PER_AUDIO_S = 0.0015  # MFCC: seconds per audio second on 2 cores, decoding included (plan_check, quiet;
# 0.03 at load 3 to 4)
# Forwards' activations an extraction process holds at its peak: the live forward's, and what the
# process keeps of earlier ones. glibc raises its mmap threshold to the largest block freed, so
# large activations then come from the heap and freed heap blocks stay resident: measured with
# plan_check.py (BENCHMARKS.md) on WavLM-Base+, the peak is floor + weights + pooled + 3.4 to 4.7
# forwards over 296 utterances (nine runs), about 2.3 on 50; WavLM-Large 2.1. With the allocator
# setting on (harness/allocator.py: blocks over 4 MiB returned on free), 2.4 to 2.7 (seven runs).
RAM_FORWARDS_HELD = {False: 3, True: 2}  # allocator setting off (the default) / on


def forwards_held() -> int:
    """:data:`RAM_FORWARDS_HELD` for the allocator setting of this environment (``BENCH_MMAP_THRESHOLD``,
    read as the extraction will read it)."""
    from ..allocator import threshold_from_env

    return RAM_FORWARDS_HELD[threshold_from_env() > 0]


SYNTH_UTTERANCE_S = 2.8  # the synthetic corpus's mean utterance, when it is not generated yet

Mode = Literal["cache", "stream"]


# --------------------------------------------------------------------------- reference data
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _SplitSize(_Strict):
    hours: float
    utterances: int


class _CorpusSize(_Strict):
    basis: str
    estimate: bool = False
    splits: dict[Literal["train", "dev", "test"], _SplitSize]


class _CorpusSizes(_Strict):
    corpora: dict[str, _CorpusSize]


class _GpuSpec(_Strict):
    tflops: float
    memory_gib: float
    basis: str


class _Gpus(_Strict):
    gpus: dict[str, _GpuSpec]


def _reference(snap: Snapshot, name: str, model: type[Any]) -> Any:
    from ..yamlio import load

    own = Path(snap.root) / name  # the workspace's own table, else the repository's
    path = own if own.is_file() else Path(__file__).resolve().parents[2] / name
    if not path.is_file():
        raise BenchError(f"{path} is missing: bench plan reads the published corpus sizes and GPU figures from it")
    try:
        return model.model_validate(load(path))
    except ValidationError as e:
        raise ConfigError([Problem(str(path), ".".join(map(str, err["loc"])), "see the file's comments",
                                   str(err.get("input"))[:60], err["msg"]) for err in e.errors()]) from None


@dataclass(frozen=True)
class Gpu:
    """A GPU as the plan counts it: declared dense bf16 TFLOP/s, and the utilisation assumed."""

    name: str
    tflops: float
    utilisation: float = GPU_UTILISATION
    basis: str = ""

    @property
    def flops_per_s(self) -> float:
        return self.tflops * 1e12 * self.utilisation


def gpu(snap: Snapshot, name: str | None = None, *, tflops: float | None = None,
        utilisation: float = GPU_UTILISATION) -> Gpu:
    """The GPU ``name`` of reference/gpus.yaml, or one of ``tflops`` declared TFLOP/s."""
    if tflops is not None:
        return Gpu(name or f"{tflops:g} TFLOP/s", float(tflops), utilisation, "declared on the command line")
    table = _reference(snap, GPUS_FILE, _Gpus).gpus
    key = (name or "h200").lower()
    if key not in table:
        raise BenchError(f"--gpu: unknown GPU {name!r}; expected one of {', '.join(sorted(table))} "
                         f"(or --gpu-tflops N){did_you_mean(key, table)}")
    return Gpu(key, table[key].tflops, utilisation, table[key].basis)


def published_corpus(snap: Snapshot, corpus: str) -> CorpusAudio | None:
    """``corpus`` as reference/corpus_sizes.yaml gives it (None when the table does not list it)."""
    size = _reference(snap, CORPUS_SIZES_FILE, _CorpusSizes).corpora.get(corpus)
    if size is None:
        return None
    splits = {k: SplitAudio(v.hours * 3600.0, v.utterances) for k, v in size.splits.items()}
    return CorpusAudio(corpus, splits, "published", size.estimate, size.basis)


# --------------------------------------------------------------------------- runtime
@dataclass(frozen=True)
class Runtime:
    """What the matrix can do: the cache scheme it writes, whether heads can stream the upstream,
    whether frames are evicted once every job reading them is finished."""

    scheme: Scheme
    streaming: bool
    evicts: bool
    label: str

    forced_stream: bool = False  # every frame-level pair streams (``features.source: stream``)

    @staticmethod
    def checkout(profile: Any = None) -> Runtime:
        """What this checkout runs for ``profile``: its ``features`` settings (``source``,
        ``sweep_frames``, ``evict_frames``) where the profile schema has them (the streaming heads of
        issue 17), else every candidate layer's frames for the whole corpus, no streaming, no eviction."""
        spec = getattr(profile, "features", None)
        if spec is None or not hasattr(spec, "sweep_frames"):
            return Runtime("all_candidates", False, False,
                           "this checkout (every candidate layer's frames for the whole corpus, no streaming, "
                           "no eviction)")
        scheme: Scheme = "bounded" if spec.sweep_frames == "bounded" else "all_candidates"
        source = str(getattr(spec, "source", "cache"))
        evicts = bool(getattr(spec, "evict_frames", False))
        return Runtime(scheme, source in ("stream", "auto"), evicts,
                       f"the profile's features: source {source}, sweep_frames {spec.sweep_frames}, "
                       f"evict_frames {str(evicts).lower()}", forced_stream=source == "stream")

    @staticmethod
    def bounded() -> Runtime:
        return Runtime("bounded", True, True, "issue 17's design (bounded sweep frames, streaming heads, eviction)")


# --------------------------------------------------------------------------- the plan's values
@dataclass(frozen=True)
class StageCost:
    """One stage of one pair: FLOPs, where they run, and the hours they take."""

    stage: str  # features, layer_sweeps, cells
    flops: float
    device: Literal["gpu", "cpu"]
    gpu_hours: float
    cpu_hours: float
    ram_bytes: int
    note: str = ""


@dataclass(frozen=True)
class PairPlan:
    """One (card, corpus) pair: its audio, upstream, entries, cache-or-stream decision and costs."""

    card: str
    upstream: str  # as the profile lists it
    corpus: str
    audio: CorpusAudio
    arch: Arch
    mode: Mode
    why: str
    entries: PairEntries
    stages: tuple[StageCost, ...]
    cells: tuple[str, ...]
    frames_if_cached: int = 0  # a streamed pair: the frames it would have written

    @property
    def frame_peak_bytes(self) -> int:
        """Frames alive at once while this pair runs (the sweep's frames stay until the chosen
        layer's are written: the chosen layer's frames of the sweep subset are copied, not recomputed)."""
        return sum(e.bytes for e in self.entries.entries if e.kind != "pooled")

    @property
    def ram_peak_bytes(self) -> int:
        return max((s.ram_bytes for s in self.stages), default=0)


@dataclass(frozen=True)
class Step:
    """One step of the schedule: an entry written or evicted, and the cache's bytes after it."""

    card: str
    corpus: str
    action: Literal["write", "evict"]
    kind: str
    bytes: int
    alive_bytes: int


@dataclass(frozen=True)
class MatrixPlan:
    """The whole projection (see the module docstring); ``fits``: the peak is within the budget."""

    profile: str
    runtime: Runtime
    gpu: Gpu
    budget_bytes: int | None
    pairs: tuple[PairPlan, ...]
    schedule: tuple[Step, ...]
    peak_bytes: int
    peak_step: int
    unplanned: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def pooled_bytes(self) -> int:
        return sum(p.entries.pooled_bytes for p in self.pairs)

    @property
    def fits(self) -> bool:
        return self.budget_bytes is None or self.peak_bytes <= self.budget_bytes

    def stage_totals(self) -> dict[str, tuple[float, float, float]]:
        """stage -> (FLOPs, GPU-hours, CPU-hours)."""
        out: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
        for p in self.pairs:
            for s in p.stages:
                t = out[s.stage]
                t[0] += s.flops
                t[1] += s.gpu_hours
                t[2] += s.cpu_hours
        return {k: (v[0], v[1], v[2]) for k, v in out.items()}

    def pair(self, card: str, corpus: str) -> PairPlan | None:
        return next((p for p in self.pairs if p.card == card and p.corpus == corpus), None)

    def mode_of(self, plan: CellPlan) -> Mode:
        """``stream`` when the cell's (card, corpus) pair streams its frames, else ``cache``."""
        p = self.pair(plan.card.name, corpus_key(plan))
        return p.mode if p is not None else "cache"

    def decisions(self) -> dict[tuple[str, str], SourceChoice]:
        """(card, corpus key) -> the pair's cache-or-stream decision and why: what ``bench matrix``
        hands every job under ``features.source: auto`` (:func:`harness.features.source.planned_sources`),
        so that the run caches or streams exactly the pairs this plan says."""
        return {(p.card, p.corpus): SourceChoice(p.mode, p.why) for p in self.pairs}

    def with_gpu(self, g: Gpu) -> MatrixPlan:
        scale = self.gpu.flops_per_s / g.flops_per_s
        pairs = tuple(replace(p, stages=tuple(replace(s, gpu_hours=s.gpu_hours * scale) for s in p.stages))
                      for p in self.pairs)
        return replace(self, gpu=g, pairs=pairs)


# --------------------------------------------------------------------------- making the plan
def make_plan(snap: Snapshot, cells: Sequence[CellSpec], *, budget_bytes: int | None, gpu_: Gpu | None = None,
              runtime: Runtime | None = None, measure_corpora: bool = True,
              published_fallback: bool = True) -> MatrixPlan:
    """The projection of ``cells`` (see :class:`MatrixPlan`); cells that cannot resolve are listed
    in ``unplanned`` with the reason. ``measure_corpora``: count a corpus that is on this machine
    from its files (else every corpus comes from the published table); ``published_fallback``:
    count an absent corpus from the published table (False: leave its cells out, as a run that
    finds them unavailable writes nothing for them)."""
    profile_name = cells[0].profile if cells else snap.profile(None)[0]
    runtime = runtime or Runtime.checkout(snap.profile(profile_name)[1])
    g = gpu_ or gpu(snap)
    groups: dict[tuple[str, str], list[CellPlan]] = defaultdict(list)
    upstream_of: dict[tuple[str, str], str] = {}
    unplanned: list[str] = []
    for spec in cells:
        try:
            plan = resolve_cell(snap, spec)
        except BenchError as e:
            unplanned.append(f"{spec.label}: {e}")
            continue
        if plan.task.kind == "word_discrimination":
            continue  # word vectors: a few per word, not the feature cache
        key = (plan.card.name, corpus_key(plan))
        groups[key].append(plan)
        upstream_of.setdefault(key, spec.upstream)
    corpora: dict[str, CorpusAudio] = {}
    pairs: list[PairPlan] = []
    notes: list[str] = []
    for (card_name, corpus), plans in groups.items():
        if corpus not in corpora:
            audio = _corpus_audio(snap, plans[0], measure=measure_corpora)
            if audio is None or (audio.source == "published" and not published_fallback
                                 and plans[0].source.corpus != "synth"):
                unplanned += [f"{p.spec.label}: corpus {corpus!r} is not on this machine" for p in plans]
                continue
            corpora[corpus] = audio
        try:
            arch = arch_of(snap, plans[0], corpora[corpus])
        except Exception as e:  # noqa: BLE001 - an adapter that cannot describe itself offline: reported
            unplanned += [f"{p.spec.label}: architecture unknown offline ({type(e).__name__}: {e})" for p in plans]
            continue
        pairs.append(_pair(snap, plans, upstream_of[(card_name, corpus)], corpora[corpus], arch, runtime, g,
                           streamed=False))
    pairs = _decide(snap, pairs, groups, runtime, g, budget_bytes)
    features = snap.profile(profile_name)[1].features
    if budget_bytes is not None and features.source == "auto" and features.planner and runtime.streaming:
        notes.append(f"features.planner {features.planner} decides cache or stream; --disk-budget only checks "
                     "that its choices fit")
    schedule, peak, peak_step = _schedule(pairs, runtime)
    if any(c.estimate for c in corpora.values()):
        notes.append("corpora marked * are estimates from " + CORPUS_SIZES_FILE + " (see its `basis`)")
    return MatrixPlan(profile_name, runtime, g, budget_bytes, tuple(pairs), tuple(schedule), peak, peak_step,
                      tuple(unplanned), tuple(notes))


def _corpus_audio(snap: Snapshot, plan: CellPlan, *, measure: bool) -> CorpusAudio | None:
    """The corpus measured on this machine (``measure``, when it is there: the count the run makes
    too), else the published sizes (a synthetic corpus not generated yet: its options)."""
    audio = measured_audio(snap, plan) if measure else None
    if audio is not None:
        return audio
    if plan.source.corpus == "synth":
        return _synth_audio(plan)
    return published_corpus(snap, plan.source.corpus)


def _synth_audio(plan: CellPlan) -> CorpusAudio:
    s = plan.profile.synth
    per_speaker = s.utterances_per_speaker
    extra = 2 * (s.long_per_test_split + s.short_per_test_split)
    n = {split: k * per_speaker for split, k in zip(("train", "dev", "test"), s.split_speakers, strict=False)}
    n["test"] = n.get("test", 0) + extra
    splits = {k: SplitAudio(v * SYNTH_UTTERANCE_S, v) for k, v in n.items()}
    return CorpusAudio(f"synth/{plan.spec.language}", splits, "published", True,
                       f"not generated yet: {SYNTH_UTTERANCE_S} s per utterance assumed")


def _pair(snap: Snapshot, plans: list[CellPlan], upstream: str, audio: CorpusAudio, arch: Arch, runtime: Runtime,
          g: Gpu, *, streamed: bool, why: str = "") -> PairPlan:
    uses = frame_uses(plans, arch)
    entries = pair_entries(snap, plans, audio=audio, arch=arch, scheme=runtime.scheme, streamed=streamed)
    if not why:
        why = "frames fit the budget" if entries.frame_bytes else "pooled features only"
    stages = _stage_costs(plans, audio, arch, uses, entries, g, streamed=streamed)
    return PairPlan(plans[0].card.name, upstream, audio.name, audio, arch, "stream" if streamed else "cache", why,
                    entries, stages, tuple(p.spec.label for p in plans))


def _head_flops_per_frame(plan: CellPlan, width: int) -> float:
    """Forward FLOPs of the cell's head per input frame (bilstm: its LSTM stack; else a linear layer)."""
    ds = plan.downstream
    if ds.head == "bilstm":
        h, n = int(ds.head_args.get("hidden_size", 512)), int(ds.head_args.get("num_layers", 4))
        params, d = 0, width
        for _ in range(n):
            params += 2 * 4 * h * (d + h + 2)
            d = 2 * h
        return 2.0 * params
    return 2.0 * width * 8  # a linear layer to a few classes


def _stage_costs(plans: list[CellPlan], audio: CorpusAudio, arch: Arch, uses: list[FrameUse], entries: PairEntries,
                 g: Gpu, *, streamed: bool) -> tuple[StageCost, ...]:
    """Features (one upstream pass: GPU, or CPU for signal processing), the layer sweeps and the
    cells' heads (cached: on a CPU core; streamed: on the GPU, the upstream run again every epoch)."""
    pass_flops = arch.flops_per_audio_s * audio.seconds
    ram_pooled = audio.utterances * arch.num_layers * arch.hidden_size * 4 * 2  # float32 accumulators, 2 windows
    weights = 4 * arch.params
    held = forwards_held()
    forwards = held * arch.activation_bytes
    note = ("one upstream pass; pooled vectors accumulate in float32 in RAM until the entry is written; "
            f"float32 weights and {held} forwards' activations over the longest chunk (one live, the rest "
            "freed blocks the C allocator keeps" + ("; BENCH_MMAP_THRESHOLD on)" if held == 2 else ")"))
    if pass_flops:
        features = StageCost("features", pass_flops, "gpu", pass_flops / g.flops_per_s / 3600, 0.0,
                             PROCESS_BASE_BYTES + weights + ram_pooled + forwards, note)
    else:
        features = StageCost("features", 0.0, "cpu", 0.0, audio.seconds * SIGNAL_CPU_S_PER_AUDIO_S / 3600,
                             PROCESS_BASE_BYTES + ram_pooled, note)
    train, dev, test = audio.split("train"), audio.split("dev"), audio.split("test")
    head = {"layer_sweeps": 0.0, "cells": 0.0}
    upstream = {"layer_sweeps": 0.0, "cells": 0.0}
    ram_head = 0
    for use in uses:
        ps = [p for p in plans if p.spec.downstream == use.downstream]
        per_frame = _head_flops_per_frame(ps[0], arch.hidden_size)
        epochs = ps[0].downstream.training.max_epochs
        sweep_epochs = ps[0].downstream.config.sweep.max_epochs or epochs
        sub_s = use.sweep_fraction * train.seconds
        if use.candidates:
            n = len(use.candidates) * sweep_epochs
            head["layer_sweeps"] += n * arch.frames_for(sub_s) * per_frame * HEAD_TRAIN_FACTOR
            upstream["layer_sweeps"] += n * (sub_s + dev.seconds) * arch.flops_per_audio_s
        head["cells"] += len(ps) * epochs * arch.frames_for(train.seconds) * per_frame * HEAD_TRAIN_FACTOR
        upstream["cells"] += len(ps) * (epochs * (train.seconds + dev.seconds) + test.seconds) * arch.flops_per_audio_s
        if not streamed:  # the splits' frames of the layer are gathered into RAM (float16) for training
            ram_head = max(ram_head, int(arch.frames_for(audio.seconds) * arch.hidden_size * 2))
    stages = [features]
    for name in ("layer_sweeps", "cells"):
        if streamed:
            total = head[name] + upstream[name]
            stages.append(StageCost(name, total, "gpu", total / g.flops_per_s / 3600, 0.0,
                                    PROCESS_BASE_BYTES + weights + forwards,
                                    "heads on the GPU, the upstream run every epoch"))
        else:
            stages.append(StageCost(name, head[name], "cpu", 0.0, head[name] / (CPU_GFLOPS_PER_CORE * 1e9) / 3600,
                                    PROCESS_BASE_BYTES + ram_head, "heads on cached features, one CPU core each"))
    return tuple(stages)


def _decide(snap: Snapshot, pairs: list[PairPlan], groups: dict[tuple[str, str], list[CellPlan]], runtime: Runtime,
            g: Gpu, budget: int | None) -> list[PairPlan]:
    """Cache or stream per pair, as the run will (``bench matrix`` hands these decisions to its jobs:
    :meth:`MatrixPlan.decisions`):

    - ``features.source: stream``: every pair with frames streams;
    - ``auto`` with a ``features.planner``, or without a budget: the planner's, or the
      ``stream_above_gb`` threshold's, choice on the pair's estimate (:func:`auto_source`: the
      function the run calls when no plan decided); a budget then only checks that they fit;
    - a budget otherwise (``auto``, or a runtime being sized): with eviction the peak is the pooled
      vectors plus the largest pair's frames, so a pair streams when its frames pass the budget less
      every pooled entry; without eviction the frames add up, so the largest pairs stream until the
      sum fits, and every pair with as many frame bytes as the smallest of them streams too (ties
      stream together: the decision is a threshold on a pair's frame bytes).

    Without streaming nothing changes (the budget check then refuses)."""
    out = list(pairs)
    if not out:
        return out

    def restream(i: int, why: str) -> None:
        p = out[i]
        modes = frame_layer_modes(groups[(p.card, p.corpus)])
        if modes and not runtime.forced_stream:  # the stream computes one layer per batch: keep it cached
            out[i] = replace(p, why=f"{why}; but it cannot stream: its {'/'.join(modes)} cells read every layer's "
                                    "frames (the stream computes one layer), so it stays cached")
            return
        out[i] = replace(_pair(snap, groups[(p.card, p.corpus)], p.upstream, p.audio, p.arch, runtime, g,
                               streamed=True, why=why), frames_if_cached=p.frame_peak_bytes)

    if runtime.forced_stream:
        for i, p in enumerate(out):
            if p.frame_peak_bytes:
                restream(i, "the profile streams every frame-level head (features.source: stream)")
        return out
    if not runtime.streaming:
        return out
    features = groups[(out[0].card, out[0].corpus)][0].profile.features
    if features.source == "auto" and (budget is None or features.planner):
        for i, p in enumerate(out):
            choice = auto_source(snap, groups[(p.card, p.corpus)][0], audio=p.audio, arch=p.arch,
                                 scheme=runtime.scheme)
            if choice.source == "stream":
                restream(i, choice.reason)
            elif p.frame_peak_bytes:
                out[i] = replace(p, why=choice.reason)
        return out
    if budget is None:
        return out
    frames = [p.frame_peak_bytes for p in out]
    pooled = sum(p.entries.pooled_bytes for p in out)
    cut = _stream_cut(frames, pooled=pooled, budget=budget, evicts=runtime.evicts)
    rule = (f"with eviction, one pair's frames + every pooled entry ({_gb(pooled)}) must fit" if runtime.evicts
            else f"without eviction, every cached pair's frames + every pooled entry ({_gb(pooled)}) must fit")
    for i, p in enumerate(out):
        if not frames[i]:
            continue
        split = f"pairs with {_gb(cut)} of frames or more stream" if cut is not None else "every pair is cached"
        why = f"the plan's decision for --disk-budget {_gb(budget)}: {_gb(frames[i])} of frames; {split} ({rule})"
        if cut is not None and frames[i] >= cut:
            restream(i, why)
        else:
            out[i] = replace(p, why=why)
    return out


def _stream_cut(frames: Sequence[int], *, pooled: int, budget: int, evicts: bool) -> int | None:
    """The smallest frame bytes of a pair that streams under ``budget`` (None: every pair is cached).
    With eviction: anything past ``budget - pooled``; without: the largest pairs until the rest fits."""
    if evicts:
        over = [f for f in frames if f and pooled + f > budget]
        return min(over) if over else None
    total, cut = pooled + sum(frames), None
    for f in sorted(frames, reverse=True):
        if total <= budget or not f:
            break
        total, cut = total - f, f
    return cut


def _schedule(pairs: list[PairPlan], runtime: Runtime) -> tuple[list[Step], int, int]:
    """Upstream by upstream, corpus by corpus: write the pair's entries, evict its frames when every
    job reading them is done (when the runtime evicts). Returns (steps, peak bytes, peak step index)."""
    steps: list[Step] = []
    alive = peak = peak_step = 0
    for p in pairs:
        frames: list[EntrySpec] = []
        for e in p.entries.entries:
            alive += e.bytes
            steps.append(Step(p.card, p.corpus, "write", e.kind, e.bytes, alive))
            if alive > peak:
                peak, peak_step = alive, len(steps) - 1
            if e.kind != "pooled":
                frames.append(e)
        if runtime.evicts:
            for e in frames:
                alive -= e.bytes
                steps.append(Step(p.card, p.corpus, "evict", e.kind, e.bytes, alive))
    return steps, peak, peak_step


# --------------------------------------------------------------------------- budget and resources
def check_budget(plan: MatrixPlan) -> None:
    """Raise a :class:`BenchError` saying what to change when the cache's peak passes the budget."""
    if plan.fits or plan.budget_bytes is None:
        return
    step = plan.schedule[plan.peak_step]
    largest = sorted(plan.pairs, key=lambda p: -p.frame_peak_bytes)[:3]
    names = ", ".join(f"{p.upstream} on {p.corpus} ({_gb(p.frame_peak_bytes)})" for p in largest)
    stage = "features" if step.kind in ("pooled", "all_frames", "sweep_frames") else "cells"
    hints = [f"raise --disk-budget to at least {_gb(plan.peak_bytes)}",
             f"leave out the largest pairs with --only (largest frames: {names})"]
    if not plan.runtime.streaming:
        hints.append("stream the frame-level heads instead of caching frames (features: stream, issue 17; not in "
                     "this checkout)")
    raise BenchError(
        f"the {stage} stage would fill the feature cache to {_gb(plan.peak_bytes)} at its peak (writing "
        f"{step.kind} of {step.card} on {step.corpus}), over --disk-budget {_gb(plan.budget_bytes)}. "
        f"Nothing was run. To fix: " + "; or ".join(hints) + ". `bench plan` shows the whole projection.")


def job_resources(plan: MatrixPlan | None, stage: str, cell: CellPlan | None, *, gpu: bool) -> dict[str, float]:
    """The Ray resource request of one job: a GPU for extraction and for streaming heads (the frame-level
    heads of a streamed pair), one CPU for heads on cached features, pooled vectors included (without a
    plan: a GPU for every job when the device is one)."""
    if not gpu:
        return {"num_cpus": 1, "num_gpus": 0}
    if stage == "features" or plan is None:
        return {"num_cpus": 1, "num_gpus": 1}
    streamed = cell is not None and uses_frames(cell) and plan.mode_of(cell) == "stream"
    return {"num_cpus": 1, "num_gpus": 1 if streamed else 0}


# --------------------------------------------------------------------------- sizes and rendering
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kmgtp]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
          "p": 1e15, "pb": 1e15, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "ki": 2**10, "mi": 2**20,
          "gi": 2**30, "ti": 2**40}


def parse_size(text: str) -> int:
    """``"500GB"`` -> 500e9 bytes (decimal units; ``GiB`` binary; a bare number is bytes)."""
    m = _SIZE.match(str(text))
    unit = (m.group(2) or "").lower() if m else None
    if m is None or unit not in _UNITS:
        raise BenchError(f"--disk-budget: expected a size such as 500GB, 1.5TB or 800GiB, got {text!r}")
    return int(float(m.group(1)) * _UNITS[unit])


def _gb(n: float | None) -> str:
    if n is None:
        return "-"
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def render_plan(plan: MatrixPlan, *, other_gpus: Sequence[Gpu] = ()) -> str:
    """The projection as ``bench plan`` prints it."""
    lines = [f"plan for profile {plan.profile}: {len(plan.pairs)} (upstream, corpus) pairs, "
             f"{sum(len(p.cells) for p in plan.pairs)} cells",
             f"runtime: {plan.runtime.label}",
             f"GPU: {plan.gpu.name}, {plan.gpu.tflops:g} TFLOP/s declared x {plan.gpu.utilisation:.0%} assumed "
             f"utilisation; CPU: {CPU_GFLOPS_PER_CORE:g} GFLOP/s per core", ""]
    lines.append(f"{'card':<24} {'corpus':<18} {'hours':>8} {'GFLOP/s':>8} {'pass PFLOP':>10} "
                 f"{'GPU-h':>7} {'CPU-h':>8} {'pooled':>9} {'frames':>9} {'RAM peak':>9}  mode")
    for p in plan.pairs:
        star = "*" if p.audio.estimate else ""
        gpu_h = sum(s.gpu_hours for s in p.stages)
        cpu_h = sum(s.cpu_hours for s in p.stages)
        lines.append(f"{p.card:<24} {(p.corpus + star):<18} {p.audio.seconds / 3600:>8.1f} "
                     f"{p.arch.flops_per_audio_s / 1e9:>8.1f} {p.stages[0].flops / 1e15:>10.2f} {gpu_h:>7.2f} "
                     f"{cpu_h:>8.1f} {_gb(p.entries.pooled_bytes):>9} {_gb(p.frame_peak_bytes):>9} "
                     f"{_gb(p.ram_peak_bytes):>9}  {p.mode}: {p.why}")
    lines += ["", "per stage:"]
    for stage, (flops, gpu_h, cpu_h) in plan.stage_totals().items():
        lines.append(f"  {stage:<13} {flops / 1e15:>10.1f} PFLOP  {gpu_h:>8.1f} GPU-h ({plan.gpu.name})  "
                     f"{cpu_h:>9.1f} CPU-h")
    totals = plan.stage_totals()
    total_gpu = sum(v[1] for v in totals.values())
    for other in other_gpus:
        t = sum(v[1] for v in plan.with_gpu(other).stage_totals().values())
        lines.append(f"  total on {other.name}: {t:.1f} GPU-h ({other.tflops:g} TFLOP/s declared x "
                     f"{other.utilisation:.0%})")
    lines.append(f"  total on {plan.gpu.name}: {total_gpu:.1f} GPU-h")
    lines += ["", "cache:",
              f"  pooled vectors (kept): {_gb(plan.pooled_bytes)}",
              f"  frames written in all: {_gb(sum(p.frame_peak_bytes for p in plan.pairs))}",
              f"  peak: {_gb(plan.peak_bytes)}" + (f" reached writing {plan.schedule[plan.peak_step].kind} of "
                                                  f"{plan.schedule[plan.peak_step].card} on "
                                                  f"{plan.schedule[plan.peak_step].corpus}" if plan.schedule else ""),
              f"  budget: {_gb(plan.budget_bytes)} -> " + ("fits" if plan.fits else "DOES NOT FIT"),
              f"  RAM peak of one job: {_gb(max((p.ram_peak_bytes for p in plan.pairs), default=0))}"]
    lines += _decision_lines(plan)
    lines += ["", "schedule (upstream by upstream; frames evicted when every job reading them is done):"
              if plan.runtime.evicts else "schedule (no eviction in this runtime: entries add up):"]
    for i, s in enumerate(plan.schedule):
        mark = "  <- peak" if i == plan.peak_step else ""
        lines.append(f"  {s.action:<5} {s.kind:<13} {s.card:<24} {s.corpus:<18} {_gb(s.bytes):>9}  "
                     f"cache {_gb(s.alive_bytes)}{mark}")
    if plan.unplanned:
        lines += ["", f"not planned ({len(plan.unplanned)} cells):"] + [f"  {u}" for u in plan.unplanned[:20]]
    lines += [f"note: {n}" for n in plan.notes]
    lines.append("FLOPs: " + "; ".join(sorted({p.arch.flops_method for p in plan.pairs})))
    return "\n".join(lines)


def _decision_lines(plan: MatrixPlan) -> list[str]:
    """How the run follows the plan's cache-or-stream decisions (the ``mode`` column)."""
    streamed = [p.frames_if_cached for p in plan.pairs if p.mode == "stream"]
    if not streamed and not any(p.frame_peak_bytes for p in plan.pairs):
        return []
    if plan.budget_bytes is not None:
        cut = f"pairs with {_gb(min(streamed))} of frames or more stream" if streamed else "no pair streams"
        return [f"  cache or stream: {cut}; `bench matrix --disk-budget {_gb(plan.budget_bytes)}` hands these "
                "decisions to every job of a features.source auto profile (the record's source_reason quotes them)"]
    return ["  cache or stream: the run decides each pair as the mode column says (features.source, planner or "
            "stream_above_gb on the same frame bytes)"]


def fmt_hours(h: float) -> str:
    return f"{h:.1f} h" if math.isfinite(h) else "?"


def plan_for_profile(ws: Any, *, profile: str | None = None, only: dict[str, set[str]] | None = None,
                     budget_bytes: int | None = None, gpu_: Gpu | None = None, runtime: Runtime | None = None,
                     measure_corpora: bool = True) -> MatrixPlan:
    """:func:`make_plan` for every cell of a profile (``--only`` applied), finished or not: the cost of
    the whole matrix (``bench plan``)."""
    from .select import cells_of, check_matrix

    profile_name, prof = check_matrix(ws, profile, only)
    cells = cells_of(ws, profile_name, prof, only=only)
    return make_plan(ws.snapshot, cells, budget_bytes=budget_bytes, gpu_=gpu_, runtime=runtime,
                     measure_corpora=measure_corpora)
