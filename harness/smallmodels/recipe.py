"""Where a profile's small model is: the checkpoint path of its training recipe.

The recipe and its key are :mod:`harness.config.small_models` (configuration only); this module
turns them into the one path ``bench matrix`` (stage 1), ``bench train-upstream``, training and
the cells' upstreams agree on (:func:`~.checkpoint.checkpoint_path`). Checkpoints from before
recipes (``<models>/<model>/<language>/model.pt``) are never read: their recipe is not known to
match, so the model is retrained.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config.small_models import (
    PROFILE_SEED,
    card_model,
    profile_recipe,
    recipe_key,
    trains_in_harness,
)
from .checkpoint import checkpoint_path

if TYPE_CHECKING:
    from ..config.snapshot import ResolvedCard


def profile_checkpoint(ws: Any, *, profile: str | None, model: str, language: str,
                       seed: int = PROFILE_SEED) -> Path:
    """Where ``profile``'s ``model`` for ``language`` is (or will be) stored: the one path
    ``bench matrix``, ``bench train-upstream`` and the cells' upstreams agree on."""
    key = recipe_key(profile_recipe(ws, profile=profile, model=model, language=language, seed=seed))
    return checkpoint_path(ws.path("models"), model, language, key)


def small_model_checkpoint(ws: Any, *, profile: str, card: ResolvedCard, language: str) -> Path | None:
    """The checkpoint a cell of ``profile`` running ``card`` in ``language`` reads, or None when
    ``card`` is not a harness-trained small model (:func:`trains_in_harness`)."""
    if not trains_in_harness(card):
        return None
    return profile_checkpoint(ws, profile=profile, model=card_model(card), language=language)


