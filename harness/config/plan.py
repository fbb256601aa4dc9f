"""One cell resolved: :func:`resolve_cell` turns a :class:`CellSpec` into a :class:`CellPlan`.

A cell is (profile, upstream, downstream, language, seed). Its plan holds everything the run
needs and nothing it must look up again: the card that runs (the language-specific variant where
the paper used one, else the listed card marked as an English fallback, the paper's "*"), the
downstream recipe (profile and word-level overrides applied), the task and its data source, the
adapter's granularity, the :class:`LayerRule`, the upstream identity and the cell key (a hash of
all of it), and where the result goes. :func:`resolve_cell` is the only resolver: steps that need
another cell (the English layer, ``layer_from``) resolve it through the same function.
Nothing here touches audio or weights.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from ..errors import BenchError
from ..identity import short_hash
from ..results import result_path
from ..schema import KEYED_PROFILE_SETTINGS, Profile, Task, TaskSource
from .adapters import adapter_class, upstream_identity
from .snapshot import RANDOM_SUFFIX, ResolvedCard, ResolvedDownstream, Snapshot


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


LayerKind = Literal["fixed", "last", "sweep", "from_cell", "weighted_sum", "mean"]


@dataclass(frozen=True)
class LayerRule:
    """How a cell picks the layer its probe reads.

    - ``fixed``: layer ``index`` (0 = the CNN / embedding output, i = transformer layer i);
    - ``last``: the upstream's last layer;
    - ``sweep``: the best dev micro-F1 over the candidate layers (``stride``), see
      :mod:`harness.probe.layers`;
    - ``from_cell``: the layer chosen by the cell ``source`` (the English task of a model without
      a variant for this language, the paper's rule; or the ``layer_from`` downstream), else
      ``fallback`` when that cell cannot run here;
    - ``weighted_sum`` / ``mean``: every layer, mixed by softmax weights learned with the head
      (SUPERB) or by their plain mean (:class:`~harness.probe.heads.LayerMix`); set by the
      downstream or, for every downstream that sweeps, by the profile's ``layer``.
    """

    kind: LayerKind
    index: int | None = None
    stride: str | int = "paper"
    source: CellSpec | None = None
    fallback: LayerRule | None = None
    why: str = ""


@dataclass(frozen=True)
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
    layer: LayerRule
    upstream_identity: dict[str, Any]


# --------------------------------------------------------------------------- resolution
def model_languages(card: ResolvedCard) -> list[str]:
    """Languages the weights were trained on; [] = language-agnostic (signal processing, random init)."""
    return [] if card.random_init else list(card.card.meta.languages)


def choose_card(snap: Snapshot, name: str, language: str) -> tuple[ResolvedCard, bool]:
    """The card to run for ``language``: ``name`` itself when it covers the language, else a card
    filling the same paper row for that language, else ``name`` marked as an English fallback."""
    listed = snap.card(name)
    langs = model_languages(listed)
    if not langs or language in langs:
        return listed, False
    row = listed.card.meta.paper_row
    if row:
        for other in sorted(snap.card_files()):
            if other == listed.base_name:
                continue
            cand = snap.card(other + (RANDOM_SUFFIX if listed.random_init else ""))
            if cand.card.meta.paper_row == row and language in cand.card.meta.languages:
                return cand, False
    return listed, True


def adapter_granularity(card: ResolvedCard) -> str:
    return str(getattr(adapter_class(card), "granularity", "frame"))


def english_downstream(snap: Snapshot, *, profile: Profile, downstream: ResolvedDownstream, task: Task) -> str | None:
    """The downstream whose English cell chooses the layer of a model without a variant for the
    cell's language (the paper: "we selected the most optimal layer based on the outcomes of the
    English task"): the downstream itself when its task has English data; else the English task
    of the same group, the paper's reading for the semantic group (topic, fi and request, fr take
    the layer of intent, en). Candidates: the profile's downstreams in order, then every other
    downstream by name. None when no English task of the group exists."""
    if "en" in task.sources.get(profile.data, {}):
        return downstream.name
    names = list(profile.downstreams) + sorted(set(snap.downstream_files()) - set(profile.downstreams))
    for name in names:
        if name == downstream.name:
            continue
        try:
            other = snap.task(snap.downstream(name).task)
        except BenchError:
            continue
        if other.group == task.group and other.kind == task.kind and "en" in other.sources.get(profile.data, {}):
            return name
    return None


def layer_rule(spec: CellSpec, *, downstream: ResolvedDownstream, task: Task, language_fallback: bool,
               english_source: str | None = None) -> LayerRule:
    """The :class:`LayerRule` of a cell, from its downstream's ``layer`` / ``layer_from`` and task kind.

    ``english_source``: the downstream whose English cell gives the layer when the model has no
    variant for the cell's language (:func:`english_downstream`; default: the cell's own)."""
    cfg = downstream.config
    discrimination = task.kind == "emotion_discrimination"  # trains nothing: reuses another cell's layer
    if discrimination and cfg.layer_from is not None:
        return LayerRule("from_cell", source=replace(spec, downstream=cfg.layer_from),
                         why=f"layer chosen by downstream {cfg.layer_from!r}")
    if isinstance(cfg.layer, int):
        return LayerRule("fixed", index=cfg.layer, why="fixed in the downstream")
    if cfg.layer in ("last", "weighted_sum", "mean"):
        return LayerRule(cfg.layer)
    sweep = LayerRule("sweep", stride=cfg.sweep.stride)
    if language_fallback and spec.language != "en" and not discrimination:
        source = english_source or spec.downstream
        task_words = "the English task" if source == spec.downstream else f"the English task {source!r}"
        return LayerRule("from_cell", source=replace(spec, downstream=source, language="en"), fallback=sweep,
                         why=f"layer chosen on {task_words} (model has no variant for "
                             f"{spec.language}; paper's rule)")
    return sweep


def resolve_cell(snap: Snapshot, spec: CellSpec) -> CellPlan:
    """Resolve everything a cell needs without touching audio or weights.

    Raises :class:`Unavailable` when the task has no data for the language in the profile's data
    kind, and :class:`~harness.errors.BenchError` (or ConfigError) for configuration problems."""
    _, profile = snap.profile(spec.profile)
    listed = snap.card(spec.upstream)
    card, fallback = choose_card(snap, spec.upstream, spec.language)
    card = _with_small_model_recipe(snap, card, spec)
    granularity = adapter_granularity(card)
    ds = snap.resolve_downstream(spec.downstream, profile=spec.profile, word_level=granularity == "word")
    task = snap.task(ds.task_name)
    sources = task.sources.get(profile.data, {})
    if spec.language not in sources:
        raise Unavailable(f"task {ds.task_name!r} has no {profile.data} data for language {spec.language!r} "
                          f"(it has: {sorted(sources) or 'none'})")
    source = sources[spec.language]
    ident = upstream_identity(snap, card, language=spec.language)
    key = cell_key(spec, profile=profile, card_identity=ident, downstream=ds, task=task, source=source)
    path = result_path(snap.path("results"), profile=spec.profile, upstream=spec.upstream,
                       downstream=spec.downstream, language=spec.language, seed=spec.seed)
    return CellPlan(spec=spec, profile=profile, card=card, listed_card=listed, language_fallback=fallback,
                    downstream=ds, task_name=ds.task_name, task=task, source=source, granularity=granularity,
                    key=key, result_path=path,
                    layer=layer_rule(spec, downstream=ds, task=task, language_fallback=fallback,
                                     english_source=english_downstream(snap, profile=profile, downstream=ds,
                                                                       task=task) if fallback else None),
                    upstream_identity=ident)


def _with_small_model_recipe(snap: Snapshot, card: ResolvedCard, spec: CellSpec) -> ResolvedCard:
    """A small model the harness trains runs the checkpoint of the profile's training recipe: its
    key goes into the card's args (hence the card identity and the cell key); see
    :mod:`harness.config.small_models`. A profile that cannot train it for the language leaves the
    cell unavailable."""
    from .small_models import small_model_card

    try:
        return small_model_card(snap, card, profile=spec.profile, language=spec.language)
    except BenchError as e:  # no corpus to train it on for this language
        raise Unavailable(str(e)) from None


def cell_key(spec: CellSpec, *, profile: Profile, card_identity: dict[str, Any], downstream: ResolvedDownstream,
             task: Task, source: TaskSource) -> str:
    """The key of a cell's result: what the cell resolves, not whole files (a reworded
    description, another profile's recipe or another language's source does not make a finished
    cell stale)."""
    config = {k: v for k, v in downstream.config.key_dump().items()
              if k not in ("description", "profiles", "word_level", "head_args", "training")}
    ds_ident = {**downstream.identity, "config": config}
    settings = {k: getattr(profile, k) for k in KEYED_PROFILE_SETTINGS
                if getattr(profile, k) != Profile.model_fields[k].default}
    settings.update(capacity_settings(profile, task_name=downstream.task_name))
    task_ident = {**task.model_dump(mode="json", exclude={"description", "sources"}),
                  "source": source.model_dump(mode="json")}
    return short_hash({"card": card_identity, "downstream": ds_ident, "task": task_ident,
                       "task_version": task.version, "language": spec.language, "seed": spec.seed,
                       "profile": spec.profile, "data": profile.data,
                       "synth": profile.synth.model_dump(mode="json") if profile.data == "synth" else None,
                       **({"settings": settings} if settings else {})},
                      n=20)


def capacity_settings(profile: Profile, *, task_name: str) -> dict[str, Any]:
    """The capacity analysis's settings that differ from their defaults, for a cell that runs it:
    part of its key, so that another fraction, IG step count or number of retrainings reruns the
    cell (the analysis needs the cell's trained head, which is not stored)."""
    a = profile.analyses
    if not (a.capacity and task_name in a.capacity_tasks):
        return {}
    fields = type(a).model_fields
    return {f"analyses.{k}": getattr(a, k) for k in ("capacity_fraction", "capacity_ig_steps", "capacity_repeats")
            if getattr(a, k) != fields[k].default}


def plan_cell(ws: Any, spec: CellSpec) -> CellPlan:
    """:func:`resolve_cell` for a :class:`~harness.config.workspace.Workspace` (its snapshot)."""
    return resolve_cell(ws.snapshot, spec)


def result_file(paths: Any, spec: CellSpec) -> Path:
    """Where the result of ``spec`` goes, without resolving it (``paths``: a PathSource)."""
    return result_path(paths.path("results"), profile=spec.profile, upstream=spec.upstream,
                       downstream=spec.downstream, language=spec.language, seed=spec.seed)
