"""Where Hugging Face weights live on this machine, without importing torch or transformers
(``bench ls upstreams`` asks this for every card; :mod:`upstreams.hf` loads from what it finds)."""

from __future__ import annotations

from pathlib import Path

# Any of these next to config.json means the weights are there (sharded checkpoints have an index).
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


def hf_hub_cache() -> Path:
    """The local Hugging Face hub cache folder (``$HF_HUB_CACHE``, default ``~/.cache/huggingface/hub``)."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def hf_cache_folder(model_id: str) -> Path:
    """The folder the HF cache keeps ``model_id`` in (``models--org--name``)."""
    return hf_hub_cache() / ("models--" + model_id.replace("/", "--"))


def _looks_like_path(model_id: str) -> bool:
    return model_id.startswith(("/", ".", "~")) or Path(model_id).expanduser().exists()


def locate_weights(model_id: str, *, revision: str | None = None, models_dir: str | None = None) -> Path | None:
    """The local folder holding ``config.json`` and the weights of ``model_id``, or None.

    Looks, in order, at ``model_id`` as a directory, ``models_dir/model_id``, and the HF cache
    snapshot of ``revision`` (default ``main``). Never touches the network.
    """
    if _looks_like_path(model_id):
        folder = Path(model_id).expanduser()
        return folder if _has_weights(folder) else None
    if models_dir:
        folder = Path(models_dir).expanduser() / model_id
        if _has_weights(folder):
            return folder
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(model_id, "config.json", revision=revision)
    if not isinstance(config, str):
        return None
    snapshot = Path(config).parent
    return snapshot if _has_weights(snapshot) else None


def _has_weights(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any((folder / f).is_file() for f in WEIGHT_FILES)
