"""Any upstream card as a HEAR 2021 module (https://hearbenchmark.com), so HEAR tools can run it.

    import harness.hear as hear
    model = hear.load_model(card="mfcc")                     # or load_model("path/to/card.yaml")
    emb_NTD, timestamps_ms_NT = hear.get_timestamp_embeddings(audio_NS, model)
    scene_ND = hear.get_scene_embeddings(audio_NS, model)

``hear-validator harness.hear`` validates the default card (``mfcc``);
``hear-validator harness.hear -m upstreams/cards/wavlm_large.yaml`` (or ``-m wavlm_large``) any other.

Timestamp embeddings are one layer of the upstream (``layer``, default the last), at frame
centres ``(i + 0.5) * downsample_rate / sample_rate`` in milliseconds; an utterance-level
upstream gives one embedding at the middle of the clip. Scene embeddings are the mean of the
timestamp embeddings. HEAR passes equal-length clips, so every row is fully valid.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from .config import ResolvedCard


def resolve_card(name_or_path: str) -> ResolvedCard:
    """A card from a YAML path, else by name from the workspace (or the packaged cards outside one).

    A ``@random`` suffix on a name selects random init, as everywhere else.
    """
    from . import yamlio
    from .config import RANDOM_SUFFIX, ResolvedCard, Workspace, find_root
    from .errors import BenchError, UnknownNameError
    from .schema import Card

    path = Path(name_or_path).expanduser()
    if path.suffix in (".yaml", ".yml") and path.is_file():
        card = Card.model_validate(yamlio.load(path))
        return ResolvedCard(name=path.stem, base_name=path.stem, path=path, card=card)
    try:
        root = find_root()
    except BenchError:
        root = None
    if root is not None:
        return Workspace(root).card(name_or_path)
    import upstreams

    base = name_or_path.removesuffix(RANDOM_SUFFIX)
    cards = Path(upstreams.__file__).parent / "cards"
    file = cards / f"{base}.yaml"
    if not file.is_file():
        raise UnknownNameError("upstream", name_or_path, [p.stem for p in cards.glob("*.yaml")])
    card = Card.model_validate(yamlio.load(file))
    return ResolvedCard(name=name_or_path, base_name=base, path=file, card=card,
                        random_init=name_or_path.endswith(RANDOM_SUFFIX))


def _model_class() -> type:
    from torch import nn

    class HEARModel(nn.Module):
        """An upstream wrapped with the attributes the HEAR API asks of a model."""

        def __init__(self, upstream: Any, *, layer: int, card_name: str):
            super().__init__()
            self.upstream = upstream
            self.card_name = card_name
            num_layers = int(upstream.num_layers)
            if not -num_layers <= layer < num_layers:
                from .errors import BenchError

                raise BenchError(f"layer {layer} out of range for {card_name!r} ({num_layers} layers)")
            self.layer = layer % num_layers
            self.sample_rate = int(upstream.sample_rate)
            self.timestamp_embedding_size = int(upstream.hidden_size)
            self.scene_embedding_size = int(upstream.hidden_size)

    return HEARModel


def load_model(model_file_path: str = "", *, card: str = "mfcc", layer: int = -1) -> Any:
    """HEAR ``load_model``: ``model_file_path`` is a card YAML path or card name; empty = ``card``."""
    from .features.upstream import build_upstream

    resolved = resolve_card(model_file_path or card)
    upstream = build_upstream(resolved)
    return _model_class()(upstream, layer=layer, card_name=resolved.name)


def _frames(audio_NS: torch.Tensor, model: Any) -> tuple[torch.Tensor, int]:
    """[n, T, D] frames of the chosen layer (valid part only) and the upstream's hop in samples."""
    import torch

    upstream = model.upstream
    params = list(upstream.parameters())
    device = params[0].device if params else audio_NS.device
    audio_NS = audio_NS.to(device=device, dtype=torch.float32)
    lengths_N = torch.full((audio_NS.shape[0],), audio_NS.shape[1], dtype=torch.long, device=device)
    with torch.no_grad():
        out = upstream(audio_NS, lengths_N)
    valid = int(out.lengths.min())
    return out.layers[model.layer][:, :valid].float(), int(upstream.downsample_rate)


def get_timestamp_embeddings(audio: torch.Tensor, model: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """HEAR ``get_timestamp_embeddings``: ``audio[n, samples]`` -> (``[n, T, D]`` float32, ``[n, T]`` ms)."""
    import torch

    emb_NTD, hop_samples = _frames(audio, model)
    n, frames = emb_NTD.shape[:2]
    if getattr(model.upstream, "granularity", "frame") == "frame":
        centres = (torch.arange(frames, dtype=torch.float32) + 0.5) * hop_samples
    else:
        centres = torch.full((frames,), audio.shape[1] / 2, dtype=torch.float32)
    timestamps_ms = (centres * 1000.0 / model.sample_rate).to(emb_NTD.device)
    return emb_NTD, timestamps_ms[None, :].expand(n, frames).contiguous()


def get_scene_embeddings(audio: torch.Tensor, model: Any) -> torch.Tensor:
    """HEAR ``get_scene_embeddings``: ``audio[n, samples]`` -> ``[n, D]`` float32, the mean of the frames."""
    emb_NTD, _ = _frames(audio, model)
    return emb_NTD.mean(dim=1)
