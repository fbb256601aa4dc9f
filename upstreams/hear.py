"""Any module implementing the HEAR 2021 API as an upstream.

The HEAR API (https://hearbenchmark.com): ``load_model(model_file_path="") -> model`` with
``model.sample_rate``, ``model.timestamp_embedding_size``, ``model.scene_embedding_size``;
``get_timestamp_embeddings(audio[n, samples], model) -> (embeddings[n, T, D], timestamps_ms[n, T])``
and ``get_scene_embeddings(audio[n, samples], model) -> [n, D]``.

Frames are the timestamp embeddings (one layer). HEAR takes equal-length audio and no lengths,
so by default each utterance goes through the module alone (its frames are then exactly its
own); ``batched=True`` sends the zero-padded batch at once and counts a frame as valid when its
timestamp (a frame centre) lies within the utterance. ``scene=True`` uses the scene embedding
instead (utterance granularity, ``[B, 1, D]``).

Random init (``NAME@random``): the loaded model's weights are re-drawn by calling
``reset_parameters()`` on every submodule that has one (seeded). A model with no parameters is
left as it is, with a note; a model that is not a torch module, or whose parameters are not all
owned by such submodules (custom ``nn.Parameter``s), is refused: there is no HEAR-API way to ask
a module for random weights, and keeping some trained weights would not be a random-init control.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch
from torch import nn

from harness.errors import BenchError

from .base import Upstream, UpstreamOutput, pad_frames, zero_padding

HEAR_FUNCTIONS = ("load_model", "get_timestamp_embeddings", "get_scene_embeddings")
HEAR_ATTRIBUTES = ("sample_rate", "timestamp_embedding_size", "scene_embedding_size")


def import_hear_module(name: str) -> Any:
    """Import ``name`` and check it has the HEAR functions (all missing ones named at once)."""
    try:
        module = importlib.import_module(name)
    except ImportError as e:
        raise BenchError(f"HEAR module {name!r} cannot be imported: {e}. Install the package that provides it.") from e
    missing = [f for f in HEAR_FUNCTIONS if not callable(getattr(module, f, None))]
    if missing:
        raise BenchError(f"module {name!r} does not implement the HEAR API: missing {', '.join(missing)}")
    return module


def randomize_weights(model: Any, *, seed: int, where: str) -> tuple[str, ...]:
    """Re-draw every weight of ``model`` in place (``reset_parameters`` of its submodules, under
    ``seed``); the notes to record. Raises :class:`BenchError` when that cannot cover every weight."""
    if not isinstance(model, nn.Module):
        raise BenchError(f"@random is not available for HEAR module {where!r}: its model is a "
                         f"{type(model).__name__}, not a torch module, so its weights cannot be re-initialised. "
                         "Run the card without @random.")
    params = dict(model.named_parameters())
    if not params:
        return (f"HEAR module {where!r} has no weights: @random is the same model (a no-op control)",)
    covered: set[int] = set()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for sub in model.modules():
            if callable(getattr(sub, "reset_parameters", None)):
                sub.reset_parameters()
                covered.update(id(p) for p in sub.parameters(recurse=False))
    kept = [name for name, p in params.items() if id(p) not in covered]
    if kept:
        raise BenchError(f"@random is not available for HEAR module {where!r}: parameter(s) {', '.join(kept[:5])}"
                         f"{' ...' if len(kept) > 5 else ''} belong to no submodule with reset_parameters(), so "
                         "they would keep their trained values. Run the card without @random.")
    return (f"random init: {len(params)} parameter tensors of {where!r} re-drawn (seed {seed})",)


class HEARUpstream(Upstream):
    """A HEAR-API module as an upstream: timestamp embeddings as frames (or the scene embedding).

    ``load_kwargs`` are passed to ``load_model`` after ``model_file``, for modules whose loader
    takes options (e.g. ``harness.hear``'s ``card``).
    """

    def __init__(self, *, module: str, model_file: str = "", load_kwargs: dict[str, Any] | None = None,
                 batched: bool = False, scene: bool = False, min_input_samples: int | None = None,
                 random_init: bool = False, seed: int = 0):
        super().__init__()
        self.hear = import_hear_module(module)
        model = self.hear.load_model(model_file, **(load_kwargs or {})) if (model_file or load_kwargs) \
            else self.hear.load_model()
        missing = [a for a in HEAR_ATTRIBUTES if not hasattr(model, a)]
        if missing:
            raise BenchError(f"HEAR model from {module!r} lacks attribute(s) {', '.join(missing)}")
        self.init_notes: tuple[str, ...] = randomize_weights(model, seed=seed, where=module) if random_init else ()
        if isinstance(model, nn.Module):
            self.model = model  # registered, so the harness moves and freezes it
        else:
            self._foreign_model = model
        self.module_name, self.batched, self.scene = module, batched, scene
        self.sample_rate = int(model.sample_rate)
        self.granularity = "utterance" if scene else "frame"
        self.hidden_size = int(model.scene_embedding_size if scene else model.timestamp_embedding_size)
        self.num_layers = 1
        self.downsample_rate = 1 if scene else self._probe_hop_samples()
        self.min_input_samples = int(min_input_samples or max(self.downsample_rate, 400))

    @property
    def hear_model(self) -> Any:
        return self.model if "model" in self._modules else self._foreign_model

    def _probe_hop_samples(self) -> int:
        """Samples between timestamps, measured on 2 s of silence."""
        audio = torch.zeros(1, 2 * self.sample_rate, device=self._device())
        with torch.no_grad():
            _, timestamps = self.hear.get_timestamp_embeddings(audio, self.hear_model)
        if timestamps.shape[-1] < 2:
            raise BenchError(f"HEAR module {self.module_name!r} returns fewer than 2 timestamps for 2 s of audio; "
                             "use scene=True")
        hop_ms = float(torch.diff(timestamps[0].float()).mean())
        return max(1, round(hop_ms * self.sample_rate / 1000))

    def _device(self) -> torch.device:
        params = list(self.parameters())
        return params[0].device if params else torch.device("cpu")

    def forward(self, wavs_BT: torch.Tensor, lengths_B: torch.Tensor) -> UpstreamOutput:
        lengths_B = lengths_B.long()
        if self.scene:
            rows = [self.hear.get_scene_embeddings(wavs_BT[b : b + 1, :n], self.hear_model)[0]
                    for b, n in enumerate(lengths_B.tolist())]
            out = torch.stack([r.float() for r in rows])[:, None, :]
            return UpstreamOutput(layers=(out,), lengths=torch.ones(len(rows), dtype=torch.long))
        if self.batched:
            emb_BTD, ts_BT = self.hear.get_timestamp_embeddings(wavs_BT, self.hear_model)
            duration_ms_B = lengths_B.to(ts_BT.device).float() * 1000.0 / self.sample_rate
            lengths = (ts_BT.float() <= duration_ms_B[:, None]).sum(dim=1).long().cpu()
            return UpstreamOutput(layers=zero_padding((emb_BTD.float(),), lengths), lengths=lengths)
        frames = [self.hear.get_timestamp_embeddings(wavs_BT[b : b + 1, :n], self.hear_model)[0][0].float()
                  for b, n in enumerate(lengths_B.tolist())]
        padded, lengths = pad_frames(frames)
        return UpstreamOutput(layers=(padded,), lengths=lengths)
