"""Any s3prl hub entry through ``s3prl.nn.S3PRLUpstream`` (``espnet-s3prl``, import name ``s3prl``).

Named entries (``wavlm_large``, ``hubert_base``, ``wav2vec2_large_960`` ...) download a checkpoint
into ``~/.cache/s3prl/download/<sha256 of the URL>.<basename>``. Offline that download hangs or
fails deep inside s3prl, so this adapter reads the entry's URL from s3prl's hub source (static
parse, no import of the 10-second ``s3prl.hub``), checks the cache file itself and raises
:class:`~harness.errors.WeightsMissingError` at once when it is missing. While s3prl builds the
model its downloader is replaced by a check that never reaches the network.

``*_local`` entries take ``path_or_url`` = a local checkpoint (formats in
``harness.testing``). Layers: every hidden state s3prl returns (for wav2vec2-style models the CNN
projection output then each transformer layer, 13 / 25). Lengths are s3prl's:
``ceil(samples / stride)``, one more than the convolutions produce for most lengths (s3prl repeats
the last frame).

Padding: s3prl's wav2vec2/HuBERT/WavLM experts derive the frame padding mask by reshaping the
sample mask rather than from the conv arithmetic, so a partly padded frame stays unmasked and
batched features differ slightly from single-utterance ones; cards declare this, and
``per_utterance=True`` makes them exact.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from harness.errors import BenchError, WeightsMissingError
from harness.safeload import load_weights

from .base import ArchInfo, Upstream, UpstreamOutput, pad_frames, zero_padding
from .s3prl_index import (  # noqa: F401 - re-exported: the static hub index lived here
    HF_EQUIVALENT,
    LOCAL_CARD_ENV,
    cache_path,
    default_download_dir,
    entry_checkpoint,
    hub_index,
    s3prl_package_dir,
)


def weights_missing(name: str, *, url: str | None, path: Path) -> WeightsMissingError:
    family = hub_index().get(name, (None, ""))[1]
    local = f"{family}_local" if f"{family}_local" in hub_index() else "<family>_local"
    hf = HF_EQUIVALENT.get(name)
    if url is None:
        return WeightsMissingError(
            f"s3prl entry {name!r}: checkpoint {str(path)!r} does not exist. Pass an existing file: "
            f"--set upstream.args.path_or_url=/path/to/checkpoint.pt (the {local} format)."
        )
    return WeightsMissingError(
        f"s3prl entry {name!r} needs its checkpoint, which is not available offline.\n"
        f"  s3prl looks for: {path}\n"
        f"  downloaded from: {url}\n"
        f"To fix: on a machine with internet download that URL (e.g. `curl -L -o {path.name} {url}`) and "
        f"copy the file to {path.parent}/ under exactly that name; or pass a local checkpoint of the same "
        f"format: --set upstream.args.name={local} --set upstream.args.path_or_url=/path/to/{Path(url).name}"
        + (f" (or the `{local}` card: {LOCAL_CARD_ENV[local]}=/path/to/{Path(url).name} ... --upstream {local})"
           if local in LOCAL_CARD_ENV else "")
        + (f"; or use the Hugging Face card `{hf}`, which loads the same model from the HF cache" if hf else "")
        + "."
    )


@contextlib.contextmanager
def offline_downloads(download_dir: str | None) -> Iterator[None]:
    """While s3prl builds: downloads read only existing files (and ``download_dir`` replaces s3prl's cache).

    Patches ``s3prl.util.download.get_dir`` / ``_download`` (looked up at call time by
    ``_urls_to_filepaths``); not thread-safe, like s3prl's own global download dir.
    """
    import s3prl.util.download as dl

    saved = dl.get_dir, dl._download

    def _no_network(filepath: Path, url: str, refresh: bool = False, new_enough_secs: float = 2.0) -> None:
        if not Path(filepath).is_file():
            raise WeightsMissingError(f"s3prl asked for {url}, not available offline: put it at {filepath}")

    if download_dir:
        dl.get_dir = lambda: Path(download_dir).expanduser()
    dl._download = _no_network
    try:
        yield
    finally:
        dl.get_dir, dl._download = saved


# --------------------------------------------------------------------------- safe loading
def refuse_unsafe_checkpoint(path: Path) -> None:
    """Raise :class:`~harness.safeload.UnsafeCheckpointError` unless ``path`` loads as plain weights.

    s3prl's experts load checkpoints with torch's loader without ``weights_only`` (wavlm, hubert, wav2vec2)
    or with ``weights_only=False`` (mockingjay, distiller): on torch < 2.6, with
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``, or for those two families, a checkpoint's pickle
    would run its code. The file is therefore loaded here first, with ``weights_only=True`` and
    memory-mapped (the tensors are not read), and refused when it holds anything else.
    """
    load_weights(path, what="s3prl checkpoint", mmap=True,
                 fix="If you trust the file, re-save its contents as plain data (tensors, numbers, strings, "
                     "lists, dicts) with torch.save.")


@contextlib.contextmanager
def weights_only_loads() -> Iterator[None]:
    """While s3prl builds: ``torch.load`` uses ``weights_only=True`` whatever the call site or the
    environment says (``TORCH_FORCE_WEIGHTS_ONLY_LOAD``); restored afterwards. A second line of
    defence behind :func:`refuse_unsafe_checkpoint` (it also covers files s3prl opens itself)."""
    import os

    saved = {k: os.environ.get(k) for k in ("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")}
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# --------------------------------------------------------------------------- adapter
class S3PRLHubUpstream(Upstream):
    """``s3prl.nn.S3PRLUpstream(name, path_or_url)``: every hidden state, s3prl's lengths.

    ``download_dir`` replaces s3prl's cache folder (default ``~/.cache/s3prl/download``).
    ``random_init`` builds the architecture from the checkpoint's config and re-initialises it
    with s3prl's ``randomize``; without the checkpoint the architecture is unknown, and the error
    points at the equivalent ``hf`` card's ``@random``.
    """

    granularity = "frame"
    s3: Any  # s3prl.nn.S3PRLUpstream

    def __init__(self, *, name: str, path_or_url: str | None = None, random_init: bool = False,
                 download_dir: str | None = None, extra_conf: dict[str, Any] | None = None,
                 per_utterance: bool = False, seed: int = 0):
        super().__init__()
        if name.endswith("_local") and not path_or_url:
            raise BenchError(f"s3prl entry {name!r} needs a checkpoint: --set upstream.args.path_or_url=/path/to/ckpt.pt")
        url, path = entry_checkpoint(name, path_or_url=path_or_url, download_dir=download_dir)
        if path is not None and not path.is_file():
            if random_init:
                hf = HF_EQUIVALENT.get(name)
                raise BenchError(
                    f"random init of s3prl entry {name!r} needs its checkpoint to know the architecture ({path} "
                    f"is missing). Use the Hugging Face card's random init instead"
                    + (f": `{hf}@random`" if hf else " (the hf card of the same model, with @random)") + "."
                )
            raise weights_missing(name, url=url, path=path)
        if path is not None:
            refuse_unsafe_checkpoint(path)
        self.name = name
        self.s3 = self._build(name=name, path_or_url=str(path) if path and not url else path_or_url,
                              random_init=random_init, download_dir=download_dir, extra_conf=extra_conf, seed=seed)
        sizes, rates = set(self.s3.hidden_sizes), set(self.s3.downsample_rates)
        if len(sizes) != 1 or len(rates) != 1:
            raise BenchError(f"s3prl entry {name!r} has layers of different widths {sorted(sizes)} or strides "
                             f"{sorted(rates)}; the harness needs one of each")
        self.num_layers = self.s3.num_layers
        self.hidden_size = sizes.pop()
        self.downsample_rate = int(rates.pop())
        self.per_utterance = per_utterance
        self.min_input_samples = 400

    @staticmethod
    def _build(*, name: str, path_or_url: str | None, random_init: bool, download_dir: str | None,
               extra_conf: dict[str, Any] | None, seed: int) -> torch.nn.Module:
        from s3prl.nn import S3PRLUpstream

        with offline_downloads(download_dir), weights_only_loads(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            try:
                return S3PRLUpstream(name, path_or_url=path_or_url, extra_conf=extra_conf, randomize=random_init)
            except (OSError, ConnectionError) as e:
                raise WeightsMissingError(f"s3prl entry {name!r} could not load its weights offline: {e}") from e

    @classmethod
    def describe(cls, *, name: str, path_or_url: str | None = None, random_init: bool = False,
                 download_dir: str | None = None, **_runtime_options: Any) -> ArchInfo:
        """Where the checkpoint is and, when it is here, its exact parameter count (read from the file)."""
        url, path = entry_checkpoint(name, path_or_url=path_or_url, download_dir=download_dir)
        present = None if path is None else path.is_file()
        params = _checkpoint_params(path) if path is not None and present else None
        hf = HF_EQUIVALENT.get(name)
        notes = [] if present or path is None else [
            "checkpoint absent: parameter count unknown offline" + (f"; the `{hf}` card gives it" if hf else "")]
        if params is not None:
            notes.append("params counted from the checkpoint's tensors (includes pretraining-only heads)")
        return ArchInfo(params=params, num_layers=None, hidden_size=None, downsample_rate=None,
                        weights_source=url or str(path or "none"), weights_present=present,
                        weights_location=str(path or ""), notes=tuple(notes))

    def forward(self, wavs_BT: torch.Tensor, lengths_B: torch.Tensor) -> UpstreamOutput:
        lengths_B = lengths_B.long()
        if not self.per_utterance:
            all_hs, all_lens = self.s3(wavs_BT, lengths_B.to(wavs_BT.device))
            lengths = all_lens[0].long().cpu()
            return UpstreamOutput(layers=zero_padding(tuple(all_hs), lengths), lengths=lengths)
        per_layer: list[list[torch.Tensor]] = [[] for _ in range(self.num_layers)]
        for b, n in enumerate(lengths_B.tolist()):
            all_hs, all_lens = self.s3(wavs_BT[b : b + 1, :n], lengths_B[b : b + 1].to(wavs_BT.device))
            for i, h in enumerate(all_hs):
                per_layer[i].append(h[0, : int(all_lens[i][0])])
        layers, lengths = [], None
        for frames in per_layer:
            padded, lengths = pad_frames(frames)
            layers.append(padded)
        return UpstreamOutput(layers=tuple(layers), lengths=lengths)


def _checkpoint_params(path: Path) -> int | None:
    """Number of weights in an s3prl checkpoint (``model`` or ``model_weight`` state dict), memory-mapped."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - an unreadable file only loses the count, `bench info` still reports it
        return None
    if not isinstance(ckpt, dict):
        return None
    state = ckpt.get("model_weight", ckpt.get("model"))
    if not isinstance(state, dict):
        return None
    return sum(t.numel() for t in state.values() if isinstance(t, torch.Tensor))
