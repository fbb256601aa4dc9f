"""The recipe of a small model: what its checkpoint was trained with, and the short key that names it.

Configuration only (nothing is read but the workspace's YAML): the paths built from the key are
:mod:`harness.smallmodels.recipe`'s.

A trained small model belongs to the recipe that trained it, not to (model, language) alone:
the checkpoint lives at ``<models>/<model>/<language>/<recipe key>/model.pt``
(:func:`harness.smallmodels.checkpoint.checkpoint_path`), so two profiles sharing a workspace keep their own
models (a smoke run never lends its 3-epoch models to the embedded profile, the embedded
profile's synth-trained models never stand in for the paper's), and nothing retrains back and
forth between them.

A recipe (:func:`recipe_of`) is:

- ``spec``: the profile's ``small_models`` fields the model's training reads (every field for
  LEE; the three LEE-only fields ``teacher``, ``lee_loss`` and ``lee_full_epochs`` are left out
  of the other three models' recipes, so that changing LEE's loss does not retrain Siamese);
- ``dataset``: the training corpus's identity. Through a profile (:func:`profile_recipe`) it is
  what declares the corpus, known without reading it: the corpus name, the language, and the
  synthetic corpus's options or the declared corpus's adapter and options (its root folder is
  left out: a moved corpus is the same data). The set's file fingerprint is stored in the
  checkpoint (``dataset.fingerprint``) but not keyed: a cell's key is resolved without reading
  audio, and the synthetic corpus regenerated from the same options has new file times and the
  same words. A direct :func:`harness.smallmodels.train.train_small_model` call on a dataset of its own keys the
  dataset's name, language and fingerprint;
- ``seed``: the training seed (``bench train-upstream --seed``; the matrix trains with 0);
- ``overrides``: :class:`harness.smallmodels.models.SmallModelConfig` overrides of a library call (none through a
  profile; LEE's ``lee_loss`` and the teacher's width ``text_dim`` follow from ``spec``).

The harness injects the key into the card of every cell that runs a small model
(:func:`small_model_card`, called by :func:`harness.config.plan.resolve_cell`): it is then part
of the card's identity, so a cell's key, and the feature cache's, change with the recipe, and a
result made with another recipe's model is stale. ``bench matrix`` trains what
:func:`harness.smallmodels.recipe.small_model_checkpoint` does not find, and ``bench
train-upstream`` writes there.

Checkpoints from before recipes (``<models>/<model>/<language>/model.pt``) are never read: their
recipe is not known to match, so the model is retrained (the old file is named in the error that
a missing checkpoint raises, and can be deleted).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..errors import BenchError
from ..identity import short_hash

if TYPE_CHECKING:
    from ..schema import Profile, SmallModelSpec, TaskSource
    from .snapshot import ResolvedCard

RECIPE_KEY_CHARS = 10
LEE_ONLY_FIELDS = ("teacher", "lee_loss", "lee_full_epochs")  # read by LEE's training alone
TRAINING_TASKS = ("word_discrimination", "gender")  # tasks whose corpus the small models train on, in order
PROFILE_SEED = 0  # the seed the matrix trains with


def spec_fields(model: str, spec: SmallModelSpec) -> dict[str, Any]:
    """The ``small_models`` fields ``model``'s training reads (see the module docstring)."""
    fields = spec.model_dump(mode="json")
    if model != "lee":
        fields = {k: v for k, v in fields.items() if k not in LEE_ONLY_FIELDS}
    return fields


def recipe_of(*, model: str, spec: SmallModelSpec, dataset: dict[str, Any], seed: int,
              overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The recipe of ``model`` trained with ``spec`` on ``dataset`` (an identity dict) with ``seed``."""
    return {"model": model, "spec": spec_fields(model, spec), "dataset": dict(dataset), "seed": int(seed),
            "overrides": dict(sorted((overrides or {}).items()))}


def recipe_key(recipe: dict[str, Any]) -> str:
    """The short key naming ``recipe`` (:data:`RECIPE_KEY_CHARS` hex digits): the folder of its
    checkpoint (:func:`harness.smallmodels.checkpoint.checkpoint_path`)."""
    return short_hash(recipe, n=RECIPE_KEY_CHARS)


# --------------------------------------------------------------------------- through a profile
def training_source(ws: Any, profile: Profile, language: str) -> TaskSource:
    """The task source whose corpus the small models of ``language`` train on in ``profile``:
    the word-discrimination task's (else gender's) corpus of the profile's data kind."""
    task_files = ws.task_files()
    for task_name in TRAINING_TASKS:
        if task_name not in task_files:
            continue
        source = ws.task(task_name).sources.get(profile.data, {}).get(language)
        if source is not None:
            return source  # type: ignore[no-any-return]
    raise BenchError(f"the small models cannot be trained for {language!r}: no {profile.data} corpus with word "
                     f"alignments for it (tasks {list(TRAINING_TASKS)} have no {profile.data} source for "
                     f"{language!r}); add one to tasks/word_discrimination.yaml or drop the language")


def dataset_identity(ws: Any, profile: Profile, source: TaskSource, language: str) -> dict[str, Any]:
    """What declares the training corpus of ``source`` (no file is read; see the module docstring)."""
    if source.corpus == "synth":
        return {"corpus": "synth", "language": language, "synth": profile.synth.model_dump(mode="json")}
    spec = ws.benchmark.corpora.get(source.corpus)
    return {"corpus": source.corpus, "language": language, "adapter": spec.adapter if spec else None,
            "options": dict(spec.options) if spec else None}


def profile_recipe(ws: Any, *, profile: str | None, model: str, language: str,
                   seed: int = PROFILE_SEED) -> dict[str, Any]:
    """The recipe ``profile`` trains ``model`` for ``language`` with (``ws``: a Workspace or Snapshot)."""
    _, prof = ws.profile(profile)
    source = training_source(ws, prof, language)
    return recipe_of(model=model, spec=prof.small_models, dataset=dataset_identity(ws, prof, source, language),
                     seed=seed)


def trains_in_harness(card: ResolvedCard) -> bool:
    """True for a card whose weights the harness trains and finds by recipe: adapter ``lstm``,
    no pinned ``checkpoint``, not a ``@random`` control."""
    return card.card.adapter == "lstm" and "checkpoint" not in card.card.args and not card.random_init


def card_model(card: ResolvedCard) -> str:
    return str(card.card.args.get("model", card.base_name))


def small_model_card(ws: Any, card: ResolvedCard, *, profile: str, language: str) -> ResolvedCard:
    """``card`` with the recipe key of ``profile``'s model for ``language`` in its args (adapter
    arg ``recipe``), so that its identity, hence the cell and feature keys, name the recipe; any
    other card unchanged."""
    if not trains_in_harness(card):
        return card
    key = recipe_key(profile_recipe(ws, profile=profile, model=card_model(card), language=language))
    return replace(card, card=card.card.model_copy(update={"args": {**card.card.args, "recipe": key}}))
