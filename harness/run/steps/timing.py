"""Inference time (paper Table IX): parameters and wall time at batch size 1 on the test set.

This step is the ONE place in the harness that runs an upstream again after feature
extraction, on purpose: to time it. It builds the card's upstream
(:func:`harness.features.upstream.build_upstream`, which also gives the exact parameter count) and
runs the test split of the cell one utterance at a time: audio loading, the upstream, then the
cell's trained head on the chosen layer. Upstream time and head time are reported separately.

How the paper measured (and how ``paper_style_s`` reproduces it): for the pretrained models a
wall clock around the test loop, i.e. audio loading + upstream + head mixed together; for the
small word-level models only the head on pre-extracted embeddings (MFCC extraction and the
encoder excluded). ``paper_style_s`` is therefore loading + upstream + head for frame (and
utterance) level upstreams and the head alone for word-level ones; the separate columns give
both readings for every model.

Subsets (from the same per-utterance measurements): ``full`` = the whole test split;
``short`` = the ``inference_time_subset`` (15) shortest test utterances under 3 s; ``long`` =
the 15 longest over 15 s; fewer when fewer exist (the counts are reported). The first
``inference_time_warmup`` utterances are run once untimed before the loop. On CUDA every
phase ends with ``torch.cuda.synchronize``. Word-level upstreams run the word segments of an
utterance as one batch (that is how they run); long utterances are cut into the extractor's
chunks (``FeatureRecipe.max_chunk_s``), run one after the other. Precision: float32 (the
extraction pass uses bfloat16 autocast on CUDA; its batched throughput, from the cache entry's
metadata, is reported beside the batch-1 numbers).
"""

from __future__ import annotations

import copy
import math
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ..record import ExtractionThroughput, InferenceTime, TimedSubset, UtteranceTiming

if TYPE_CHECKING:
    import torch
    from torch import nn

    from ...data import Utterance
    from ..context import CellContext

SHORT_MAX_S = 3.0
LONG_MIN_S = 15.0


@dataclass(frozen=True)
class PipelineSpec:
    """What the head reads from the upstream's output."""

    layer: int | None  # None: every layer stacked [..., L, D] (a layer mode: the head mixes them)
    granularity: str  # frame | utterance | word
    features: str  # pooled | frames
    pool_window_s: float | None  # pooled frame-level features: mean over the first N seconds


def _full_model_params(ctx: CellContext) -> int | None:
    """The whole training model's parameters when the upstream is the encoder of a larger model
    (the small models: the paper's Table IX counts the whole model), else None."""
    from ...features.info import card_arch

    try:
        extra = card_arch(ctx.snap, ctx.plan.card, language=ctx.plan.spec.language).get("extra") or {}
    except Exception:  # noqa: BLE001 - a count for a table cell must never fail the timing
        return None
    full = extra.get("params_full_model")
    return int(full) if isinstance(full, int) else None


def inference_time_step(ctx: CellContext) -> InferenceTime:
    """Table IX for the cell's upstream (see module doc); runs the upstream again, on purpose."""
    from ...features.cache import FeatureRecipe
    from ...features.upstream import build_upstream, count_parameters

    t0 = time.perf_counter()
    if ctx.head is None:
        raise ValueError(f"inference time of {ctx.plan.spec.label}: needs the trained head")
    analyses = ctx.plan.profile.analyses
    cfg = ctx.plan.downstream.config
    module = build_upstream(ctx.plan.card, language=ctx.plan.spec.language, workspace=ctx.snap,
                            device=ctx.device)
    head = copy.deepcopy(ctx.head).to(ctx.device).eval()
    spec = PipelineSpec(layer=ctx.layer, granularity=str(getattr(module, "granularity", "frame")),
                        features=cfg.features, pool_window_s=cfg.pool_window_s)
    utts = timed_utterances(ctx)
    records = time_pipeline(module=module, head=head, utterances=utts, spec=spec, device=ctx.device,
                            warmup=analyses.inference_time_warmup, max_chunk_s=FeatureRecipe().max_chunk_s)
    word_level = spec.granularity == "word"
    subsets = {name: summarise(recs, word_level=word_level)
               for name, recs in pick_subsets(records, size=analyses.inference_time_subset).items()}
    subsets["short"] = subsets["short"].model_copy(update={
        "requested": analyses.inference_time_subset, "rule": f"shortest test utterances under {SHORT_MAX_S:g} s"})
    subsets["long"] = subsets["long"].model_copy(update={
        "requested": analyses.inference_time_subset, "rule": f"longest test utterances over {LONG_MIN_S:g} s"})
    out: dict[str, Any] = {
        "upstream": ctx.plan.card.name, "params": count_parameters(module),
        "params_full_model": _full_model_params(ctx),
        "params_published": ctx.plan.card.card.meta.params, "head_params": count_parameters(head),
        "granularity": spec.granularity, "features": spec.features, "layer": spec.layer,
        **device_info(ctx.device, module=module)._asdict(),
        "batch_size": 1, "warmup": min(analyses.inference_time_warmup, len(utts)),
        "subsets": subsets,
        "paper_style": ("head only, on the word embeddings (the paper timed small models on pre-extracted "
                        "embeddings, MFCC extraction excluded)" if word_level
                        else "audio loading + upstream + head (the paper's wall clock around the test loop)"),
        "extraction": extraction_throughput(ctx),
        "per_utterance": records,
    }
    out["seconds"] = time.perf_counter() - t0
    section = InferenceTime.model_validate(out)
    return section.model_copy(update={"summary": _summary(section.model_dump(exclude_unset=True))})


def timed_utterances(ctx: CellContext) -> list[Utterance]:
    """The cell's test utterances (those the head was evaluated on), in test-set order."""
    by_id = {u.id: u for u in ctx.dataset.utterances}
    seen: dict[str, None] = {}
    for item in ctx.splits["test"].ids:
        seen.setdefault(item.split("#", 1)[0], None)  # word items are "<utterance>#<k>"
    return [by_id[i] for i in seen if i in by_id]


# --------------------------------------------------------------------------- measuring
def time_pipeline(*, module: Any, head: nn.Module, utterances: list[Utterance], spec: PipelineSpec,
                  device: str, warmup: int, max_chunk_s: float) -> list[UtteranceTiming]:
    """Per-utterance times (audio, loading, upstream, head seconds) at batch size 1, after
    ``warmup`` untimed utterances."""

    sync = _synchronizer(device)
    for utt in utterances[:warmup]:
        _one(module, head, utt, spec=spec, device=device, max_chunk_s=max_chunk_s, sync=sync)
    return [_one(module, head, utt, spec=spec, device=device, max_chunk_s=max_chunk_s, sync=sync)
            for utt in utterances]


def _one(module: Any, head: nn.Module, utt: Utterance, *, spec: PipelineSpec, device: str,
         max_chunk_s: float, sync: Callable[[], None]) -> UtteranceTiming:
    import torch

    from ...data import load_audio

    sr = int(module.sample_rate)
    with torch.inference_mode():
        t0 = time.perf_counter()
        wav = load_audio(utt.path, sample_rate=sr, start_s=utt.start_s, end_s=utt.end_s)
        batches = _input_batches(module, utt, wav, granularity=spec.granularity, max_chunk_s=max_chunk_s,
                                 device=device)
        sync()
        t1 = time.perf_counter()
        outs = [module(wavs, lengths) for wavs, lengths in batches]
        sync()
        t2 = time.perf_counter()
        x, lengths = head_input(outs, spec=spec, frames_per_s=sr / max(int(module.downsample_rate), 1))
        head(x, lengths)
        sync()
        t3 = time.perf_counter()
    return UtteranceTiming(id=utt.id, audio_s=len(wav) / sr, load_s=t1 - t0, upstream_s=t2 - t1, head_s=t3 - t2)


def _input_batches(module: Any, utt: Utterance, wav: np.ndarray, *, granularity: str, max_chunk_s: float,
                   device: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(wavs [B, T], lengths [B]) as the extractor cuts them: word segments as one batch,
    frame-level audio as chunks of at most ``max_chunk_s``, one per batch."""
    import torch

    from ...features.extract import _rows_for

    sr = int(module.sample_rate)
    rows = _rows_for(0, utt, len(wav), granularity=granularity, sample_rate=sr,
                     max_chunk_samples=int(max_chunk_s * sr),
                     min_samples=int(getattr(module, "min_input_samples", 400)))
    segments = [wav[r.start: r.stop] for r in rows]
    groups = [segments] if granularity == "word" else [[s] for s in segments]
    out = []
    for group in groups:
        lens = [len(s) for s in group]
        padded = np.zeros((len(group), max(lens)), np.float32)
        for i, s in enumerate(group):
            padded[i, : len(s)] = s
        out.append((torch.from_numpy(padded).to(device), torch.tensor(lens, dtype=torch.long, device=device)))
    return out


def head_input(outs: list[Any], *, spec: PipelineSpec, frames_per_s: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The head's input built from the upstream outputs of one utterance, as the cache stores it:
    word-level -> one row per word ([W, D] for a pooled word probe, [1, W, D] for a sequence head);
    otherwise the chunks' frames concatenated ([1, T, D]) or their mean over the pooling window ([1, D])."""
    import torch

    if spec.granularity == "word":
        words = torch.cat([_layer_of(o, spec.layer)[:, 0] for o in outs], dim=0).float()
        if spec.features == "pooled":
            return words, torch.ones(len(words), dtype=torch.long, device=words.device)
        return words[None], torch.tensor([len(words)], dtype=torch.long, device=words.device)
    n_per = [max(int(o.lengths[0]), 1) if spec.granularity == "frame" else 1 for o in outs]
    seq = torch.cat([_layer_of(o, spec.layer)[0, :n] for o, n in zip(outs, n_per, strict=True)], dim=0).float()
    if spec.features == "pooled":
        n = len(seq) if spec.pool_window_s is None or spec.granularity != "frame" else \
            max(min(math.ceil(spec.pool_window_s * frames_per_s), len(seq)), 1)
        return seq[:n].mean(0, keepdim=True), torch.ones(1, dtype=torch.long, device=seq.device)
    return seq[None], torch.tensor([len(seq)], dtype=torch.long, device=seq.device)


def _layer_of(out: Any, layer: int | None) -> torch.Tensor:
    """One layer of an upstream output [B, T, D], or every layer stacked [B, T, L, D] (None)."""
    import torch

    return out.layers[layer] if layer is not None else torch.stack(list(out.layers), dim=2)


def _synchronizer(device: str) -> Callable[[], None]:
    if not device.startswith("cuda"):
        return lambda: None
    import torch

    return lambda: torch.cuda.synchronize(device)


# --------------------------------------------------------------------------- reporting
def pick_subsets(records: Sequence[UtteranceTiming], *, size: int, short_max_s: float = SHORT_MAX_S,
                 long_min_s: float = LONG_MIN_S) -> dict[str, list[UtteranceTiming]]:
    """{"full": all, "short": the ``size`` shortest under ``short_max_s``, "long": the ``size``
    longest over ``long_min_s``} (ties broken by utterance id)."""
    short = sorted((r for r in records if _s(r.audio_s) < short_max_s), key=lambda r: (_s(r.audio_s), r.id))
    long = sorted((r for r in records if _s(r.audio_s) > long_min_s), key=lambda r: (-_s(r.audio_s), r.id))
    return {"full": list(records), "short": short[:size], "long": long[:size]}


def _s(seconds: float | None) -> float:
    return float(seconds or 0.0)


def summarise(records: Sequence[UtteranceTiming], *, word_level: bool) -> TimedSubset:
    """Sums over ``records``: counts, audio seconds, loading / upstream / head seconds, their total
    and the paper-style time (head only for word-level upstreams)."""
    s = {k: float(sum(_s(getattr(r, k)) for r in records)) for k in ("audio_s", "load_s", "upstream_s", "head_s")}
    total = s["load_s"] + s["upstream_s"] + s["head_s"]
    return TimedSubset(count=len(records), **s, total_s=total, paper_style_s=s["head_s"] if word_level else total,
                       real_time_factor=total / s["audio_s"] if s["audio_s"] else None)


class DeviceInfo(NamedTuple):
    """Where the timing ran: the fields of :class:`InferenceTime` of that name."""

    device: str
    device_name: str
    dtype: str
    torch_threads: int


def device_info(device: str, *, module: nn.Module) -> DeviceInfo:
    import torch

    if device.startswith("cuda"):
        name = torch.cuda.get_device_name(torch.device(device))
    else:
        name = _cpu_name()
    params = list(module.parameters())
    dtype = params[0].dtype if params else torch.get_default_dtype()
    return DeviceInfo(device=device, device_name=name, dtype=str(dtype).replace("torch.", ""),
                      torch_threads=torch.get_num_threads())


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def extraction_throughput(ctx: CellContext) -> ExtractionThroughput:
    """Audio seconds per second the batched extraction pass achieved (from the cache entry)."""
    if ctx.store is None:
        return ExtractionThroughput()
    meta = ctx.store.meta
    rate = meta.audio_seconds / meta.extract_seconds if meta.extract_seconds else None
    batch_s = meta.batch_s
    how = f"padded batches of {batch_s:g} s" if batch_s else "one utterance per forward" if batch_s == 0 else "batches"
    return ExtractionThroughput(audio_s=meta.audio_seconds, extract_s=meta.extract_seconds,
                                forward_s=meta.forward_seconds, audio_s_per_s=rate, batch_s=batch_s,
                                forward_calls=meta.upstream_forward_calls,
                                note=f"one pass over the whole audio set ({how}; bfloat16 autocast on CUDA when "
                                     "the card allows)")


def _summary(out: dict[str, Any]) -> str:
    sub = out["subsets"]
    full = sub["full"]
    parts = [f"{out['upstream']}: {out['params']:,} parameters; {full['count']} test utterances "
             f"({full['audio_s']:.1f} s of audio) at batch size 1 on {out['device_name']} ({out['dtype']}, "
             f"{out['torch_threads']} threads): loading {full['load_s']:.2f} s, upstream {full['upstream_s']:.2f} s, "
             f"head {full['head_s']:.2f} s; paper-style {full['paper_style_s']:.2f} s"]
    for name in ("short", "long"):
        s = sub[name]
        parts.append(f"{name} ({s['count']} of {s['requested']}) {s['paper_style_s']:.2f} s" if s["count"]
                     else f"{name}: no test utterance {'under' if name == 'short' else 'over'} the limit")
    ex = out["extraction"]
    if ex.get("audio_s_per_s"):
        parts.append(f"batched extraction {ex['audio_s_per_s']:.0f} audio s/s")
    return "; ".join(parts)
