"""The small models' files, as a leaf: checkpoint paths, save / load, the generated card, and the
encoder an upstream adapter builds from them.

:mod:`upstreams.lstm` imports this module and nothing else of :mod:`harness.smallmodels`
(``tests/test_architecture.py`` holds it to that): it needs to find, read and run a trained
encoder, not the training code. Training (:mod:`.train`) writes through the same functions.

Checkpoint: ``<models>/<model>/<language>/<recipe>/model.pt`` (``<recipe>``: the key of the
recipe that trained it, :mod:`harness.config.small_models`), a plain dict (format :data:`CHECKPOINT_FORMAT` version
:data:`CHECKPOINT_VERSION`) loadable with ``torch.load(weights_only=True)``. Card:
``<user_cards>/<model>_<language>_<recipe>.yaml`` (adapter ``lstm``, the checkpoint pinned), whose
``revision`` is the checkpoint's content digest. A checkpoint from before recipes
(``<models>/<model>/<language>/model.pt``, :func:`legacy_checkpoint_path`) is never read.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BenchError
from ..identity import file_digest
from ..tempfiles import atomic_path, write_text_atomic
from . import DISPLAY_NAMES, MODELS
from .segments import MIN_SEGMENT_SAMPLES, mfcc13_frames, pad_to_frames

if TYPE_CHECKING:
    import numpy as np
    import torch

    from .models import SmallModelConfig, WordEncoder

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "MIN_SEGMENT_SAMPLES", "MODELS", "card_path",
           "checkpoint_path", "encoder_from_checkpoint", "encoder_inputs", "encoder_parameter_counts",
           "legacy_checkpoint_path", "load_checkpoint", "random_encoder", "save_checkpoint", "trained_languages",
           "trained_recipes", "write_card"]

CHECKPOINT_FORMAT = "speech-bench/small-model"
CHECKPOINT_VERSION = 1


# --------------------------------------------------------------------------- paths
def checkpoint_path(models_dir: str | Path, model: str, language: str, recipe: str) -> Path:
    """The checkpoint of ``model`` for ``language`` trained with the recipe whose key is ``recipe``
    (:func:`harness.config.small_models.recipe_key`): the one path training writes and every lookup reads."""
    if not recipe or "/" in recipe or recipe.startswith("."):
        raise BenchError(f"small-model recipe key {recipe!r} is not a key (expected hex digits, e.g. from "
                         "harness.config.small_models.recipe_key)")
    return Path(models_dir) / model / language / recipe / "model.pt"


def legacy_checkpoint_path(models_dir: str | Path, model: str, language: str) -> Path:
    """Where checkpoints were stored before recipes: never read (its recipe is not known to match)."""
    return Path(models_dir) / model / language / "model.pt"


def trained_recipes(models_dir: str | Path, model: str, language: str) -> list[str]:
    """The recipe keys ``model`` has a checkpoint for in ``language``, sorted."""
    folder = Path(models_dir) / model / language
    return sorted(p.parent.name for p in folder.glob("*/model.pt")) if folder.is_dir() else []


def trained_languages(models_dir: str | Path, model: str) -> dict[str, list[str]]:
    """{language: recipe keys} of ``model``'s checkpoints (languages without one left out)."""
    folder = Path(models_dir) / model
    langs = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    return {lang: keys for lang in langs if (keys := trained_recipes(models_dir, model, lang))}


def card_path(user_cards_dir: str | Path, model: str, language: str, recipe: str) -> Path:
    return Path(user_cards_dir) / f"{model}_{language}_{recipe}.yaml"


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """``torch.save`` to a temporary file in the same folder, then rename (never half-written)."""
    import torch

    path = Path(path)
    with atomic_path(path, wrap_errors=False) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a small-model checkpoint with ``weights_only=True``; errors say what is wrong and how to fix."""
    from ..safeload import load_weights

    path = Path(path)
    if not path.is_file():
        raise BenchError(f"small-model checkpoint {path} does not exist")
    ckpt = load_weights(path, what="small-model checkpoint",
                        fix="Train the model with `bench train-upstream` instead of using this file.")
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise BenchError(f"{path}: not a small-model checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    if ckpt.get("format_version") != CHECKPOINT_VERSION:
        raise BenchError(f"{path}: checkpoint format version {ckpt.get('format_version')} is not "
                         f"{CHECKPOINT_VERSION}; retrain with `bench train-upstream`")
    return ckpt


def write_card(path: str | Path, *, model: str, language: str, checkpoint: str | Path, encoder_params: int,
               dataset_name: str, recipe: str) -> Path:
    """Write the generated upstream card of a trained model (adapter ``lstm``), atomically.

    The card's ``revision`` is a digest of the checkpoint file, so a retrained model is a new
    identity for caches and results.
    """
    import yaml

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    card = {
        "adapter": "lstm",
        "args": {"model": model, "checkpoint": str(Path(checkpoint).resolve())},
        "revision": file_digest(checkpoint),
        "meta": {"display": f"{DISPLAY_NAMES[model]} ({language}, trained, recipe {recipe})", "family": "small", "group": "small",
                 "params": encoder_params, "languages": [language],
                 "reference": "Porjazovski et al. 2024, Section V-A; trained by harness.smallmodels.train",
                 "weights": f"trained on {dataset_name} ({language}) by the harness, recipe {recipe}"},
        "test": {"min_input_s": 0.05, "padding_invariant": True},
    }
    header = (f"# Generated by harness.smallmodels.train ({datetime.now(UTC).isoformat(timespec='seconds')}):\n"
              f"# {DISPLAY_NAMES[model]} trained on {dataset_name} ({language}), recipe {recipe} "
              "(harness.config.small_models). Retraining that recipe rewrites this file.\n")
    write_text_atomic(Path(path), header + yaml.safe_dump(card, sort_keys=False, allow_unicode=True),
                      wrap_errors=False)
    return path


def encoder_from_checkpoint(ckpt: dict[str, Any]) -> tuple[Any, Any]:
    """(:class:`~.models.WordEncoder` in eval mode, :class:`~.models.SmallModelConfig`) of a loaded checkpoint."""
    from .models import SmallModelConfig, WordEncoder

    config = SmallModelConfig.from_dict(dict(ckpt["config"]))
    encoder = WordEncoder(n_mfcc=config.n_mfcc, hidden_size=config.hidden_size)
    encoder.load_state_dict(ckpt["encoder_state_dict"])
    return encoder.eval(), config



def random_encoder(model: str, *, seed: int) -> tuple[WordEncoder, SmallModelConfig]:
    """A seeded, randomly initialised encoder of ``model`` in eval mode (the ``@random`` cards)."""
    import torch

    from .models import SmallModelConfig, WordEncoder

    torch.manual_seed(seed)
    config = SmallModelConfig(model=model)
    return WordEncoder(n_mfcc=config.n_mfcc, hidden_size=config.hidden_size).eval(), config


def encoder_parameter_counts(model: str) -> dict[str, int]:
    """{"encoder": ..., "full": ...} parameters of ``model``'s architecture (built on the meta device)."""
    import torch

    from .models import SmallModelConfig, build_model, parameter_counts

    with torch.device("meta"):
        return parameter_counts(build_model(SmallModelConfig(model=model)))


def encoder_inputs(wavs: Sequence[np.ndarray | torch.Tensor], *, max_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Word segments (16 kHz) -> (mfcc13 frames [B, max_frames, 13] zero-padded, valid frames [B])."""
    return pad_to_frames(mfcc13_frames(wavs, max_frames=max_frames), max_frames=max_frames)
