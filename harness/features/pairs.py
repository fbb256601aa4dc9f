"""One (card, corpus) pair's audio, architecture and cache entries, counted one way for ``bench plan``
and for the run.

``features.source: auto`` decides cache or stream per pair from the bytes of the pair's frame
entries. Two callers must count the same bytes: the plan (:mod:`harness.matrix.plan`, which adds
the pairs up against a disk budget) and the run (:mod:`harness.features.source`, which decides
when no plan handed it a decision). Both call the functions here:

- :func:`corpus_key`: the audio set as the plan names it (``synth/<language>`` or the corpus);
- :func:`measured_audio`: seconds and utterances per split of the corpus on this machine (the
  whole corpus, as the main cache entry of the pair covers it, not a task's subset);
- :func:`arch_of`: the upstream's layers, width, frame rate and FLOPs, without loading weights;
- :func:`pair_cells`: every cell of the profile that reads the pair (whatever ``--only`` or a
  resumed run selects), so a pair's count does not depend on which of its cells are left to run;
- :func:`pair_entries`: the entries :func:`harness.features.entries.entries_for` describes for
  those cells under a cache scheme.

Nothing here reads weights; :func:`measured_audio` reads the corpus's durations (audio headers
where a row has none).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..errors import BenchError
from .entries import (
    Arch,
    CorpusAudio,
    FrameUse,
    PairEntries,
    Scheme,
    SplitAudio,
    entries_for,
    upstream_activation_bytes,
    upstream_flops,
)

if TYPE_CHECKING:
    from ..config.plan import CellPlan
    from ..config.snapshot import Snapshot


def corpus_key(plan: CellPlan) -> str:
    """The audio set of a cell as the plan names it: the corpus, or ``synth/<language>``."""
    return f"synth/{plan.spec.language}" if plan.source.corpus == "synth" else plan.source.corpus


def scheme_of(plan: CellPlan) -> Scheme:
    """The cache scheme the profile's ``features.sweep_frames`` writes."""
    return "bounded" if plan.profile.features.sweep_frames == "bounded" else "all_candidates"


def measured_audio(snap: Snapshot, plan: CellPlan) -> CorpusAudio | None:
    """The corpus of ``plan`` as it is on this machine (None when it is not: a synthetic corpus
    not generated yet, a real corpus missing)."""
    from ..config.plan import Unavailable
    from ..corpora.load import load_task_dataset

    if plan.source.corpus == "synth":
        from ..synth import synth_corpus_exists

        root = snap.path("cache") / "corpora" / "synth"
        if not synth_corpus_exists(root=root, language=plan.spec.language,
                                   options=plan.profile.synth.model_dump(mode="json")):
            return None
    try:
        dataset = load_task_dataset(snap, plan.profile, plan.source, plan.spec.language)
    except Unavailable:
        return None
    return audio_of(corpus_key(plan), dataset)


def audio_of(name: str, dataset: Any) -> CorpusAudio:
    """Seconds and utterances per split of ``dataset`` (header reads where a row has no duration)."""
    from ..data import audio_info

    splits: dict[str, SplitAudio] = {}
    longest = 0.0
    for split in ("train", "dev", "test"):
        utts = dataset.split(split)
        seconds = 0.0
        for u in utts:
            if u.duration_s is not None:
                duration = float(u.duration_s)
            else:
                frames, rate, _ = audio_info(u.path)
                duration = frames / rate
            seconds += duration
            longest = max(longest, duration)
        splits[split] = SplitAudio(seconds, len(utts))
    return CorpusAudio(name, splits, "measured", basis="the corpus on this machine", longest_s=longest or None)


def arch_of(snap: Snapshot, plan: CellPlan, audio: CorpusAudio) -> Arch:
    """The upstream of ``plan`` as the planner counts it (``describe``, no weights loaded); the
    corpus's mean utterance sets the attention context of the FLOP count, its longest the
    activations held in RAM."""
    from .info import card_arch

    info = card_arch(snap, plan.card, language=plan.spec.language)
    rate = info["sample_rate"] / info["downsample_rate"] if info["downsample_rate"] else 0.0
    params = int(info["params"] or plan.card.card.meta.params or 0)
    flops, how = upstream_flops(adapter=plan.card.card.adapter, args=plan.card.args,
                                num_layers=int(info["num_layers"] or 1), hidden_size=int(info["hidden_size"] or 0),
                                frame_rate_hz=rate, params=params, granularity=info["granularity"],
                                mean_utterance_s=audio.mean_utterance_s)
    act, act_how = upstream_activation_bytes(adapter=plan.card.card.adapter, args=plan.card.args,
                                             num_layers=int(info["num_layers"] or 1),
                                             hidden_size=int(info["hidden_size"] or 0), frame_rate_hz=rate,
                                             granularity=info["granularity"], chunk_s=audio.longest_chunk_s)
    return Arch(int(info["num_layers"] or 1), int(info["hidden_size"] or 0), rate, info["granularity"], params,
                flops, how, act, act_how)


def frame_uses(plans: Sequence[CellPlan], arch: Arch) -> list[FrameUse]:
    """The frame-level downstreams among ``plans`` (one pair's cells), with their layers and readers."""
    from ..probe.layers import candidate_layers, layers_of

    by_ds: dict[str, list[CellPlan]] = defaultdict(list)
    for p in plans:
        if p.downstream.config.features == "frames" and p.task.kind == "classification":
            by_ds[p.spec.downstream].append(p)
    uses = []
    for ds, ps in by_ds.items():
        rule = ps[0].layer
        cfg = ps[0].downstream.config
        candidates: tuple[int, ...] = ()
        fixed: tuple[int, ...] = ()
        if rule.kind == "sweep":
            candidates = tuple(candidate_layers(arch.num_layers, stride=rule.stride))
        elif rule.kind in ("fixed", "last", "weighted_sum", "mean"):
            fixed = tuple(layers_of(cfg.layer, stride=cfg.sweep.stride, num_layers=arch.num_layers))
        sweep_readers = (f"sweep:{ps[0].spec.upstream}/{ds}/{ps[0].spec.language}",) if candidates else ()
        uses.append(FrameUse(ds, candidates, fixed, cfg.sweep.fraction, sweep_readers,
                             tuple(p.spec.label for p in ps)))
    return uses


def pair_entries(snap: Snapshot, plans: Sequence[CellPlan], *, audio: CorpusAudio, arch: Arch, scheme: Scheme,
                 streamed: bool) -> PairEntries:
    """The entries the pass of ``plans[0]``'s card over ``audio`` writes for the cells ``plans``
    (one pair's) under ``scheme``; ``streamed``: their frame-level heads run the upstream themselves."""
    from ..probe.layers import frame_layers_for_profile
    from .cache import FeatureRecipe

    profile_layers = frame_layers_for_profile(snap, profile=plans[0].profile, num_layers=arch.num_layers,  # as features_for
                                              granularity=plans[0].granularity)
    return entries_for(card=plans[0].card.name, corpus=audio, arch=arch, scheme=scheme,
                       windows=len(FeatureRecipe().pool_windows_s), profile_frame_layers=profile_layers,
                       uses=frame_uses(plans, arch), streamed=streamed)


def pair_cells(snap: Snapshot, plan: CellPlan) -> list[CellPlan]:
    """Every downstream of ``plan``'s profile that ``plan``'s upstream runs in ``plan``'s language
    on the same (card, corpus) pair, as a cell of ``plan``'s seed (a pair's frame entries are per
    downstream; seeds share them). Downstreams that do not resolve for it are left out, as the
    matrix leaves them out."""
    from ..config.plan import resolve_cell

    profile, spec = plan.profile, plan.spec
    allowed = profile.upstream_downstreams.get(spec.upstream)
    key = (plan.card.name, corpus_key(plan))
    out: list[CellPlan] = []
    for ds in profile.downstreams:
        if allowed is not None and ds not in allowed:
            continue
        try:
            other = plan if ds == spec.downstream else resolve_cell(snap, replace(spec, downstream=ds))
        except BenchError:
            continue
        if other.task.kind != "word_discrimination" and (other.card.name, corpus_key(other)) == key:
            out.append(other)
    return out or [plan]
