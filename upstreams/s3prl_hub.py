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

import ast
import contextlib
import importlib.util
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import torch

from harness.errors import BenchError, UnknownNameError, WeightsMissingError
from harness.identity import text_hash
from harness.safeload import load_weights

from .base import ArchInfo, Upstream, UpstreamOutput, pad_frames, zero_padding

# The Hugging Face card that builds the same architecture offline (for `@random` without a checkpoint).
HF_EQUIVALENT = {
    "wavlm_large": "wavlm_large", "wavlm_base_plus": "wavlm_base_plus", "hubert_base": "hubert_base",
    "hubert_large_ll60k": "hubert_large", "wav2vec2_base_960": "wav2vec2_base",
    "wav2vec2_large_960": "wav2vec2_large",
}

# The `*_local` cards of upstreams/cards and the environment variable each reads its checkpoint path from.
LOCAL_CARD_ENV = {"wavlm_local": "WAVLM_CKPT", "hubert_local": "HUBERT_CKPT", "wav2vec2_local": "WAV2VEC2_CKPT"}


# --------------------------------------------------------------------------- s3prl's hub, read statically
def s3prl_package_dir() -> Path:
    spec = importlib.util.find_spec("s3prl")
    if spec is None or not spec.submodule_search_locations:
        raise BenchError("the s3prl adapter needs `espnet-s3prl` (import name s3prl): pip install espnet-s3prl")
    return Path(next(iter(spec.submodule_search_locations)))


def default_download_dir() -> Path:
    """Where s3prl caches downloads (``s3prl.util.download._download_dir``)."""
    return Path.home() / ".cache" / "s3prl" / "download"


@cache
def hub_index() -> dict[str, tuple[str | None, str]]:
    """Hub entry name -> (default checkpoint URL or None, family folder), from ``s3prl/upstream/*/hubconf.py``."""
    index: dict[str, tuple[str | None, str]] = {}
    for hubconf in sorted((s3prl_package_dir() / "upstream").glob("*/hubconf.py")):
        tree = ast.parse(hubconf.read_text(encoding="utf-8"))
        funcs = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef) and not f.name.startswith("_")}
        for name in funcs:
            index[name] = (_default_url(name, funcs, depth=0), hubconf.parent.name)
    return index


def _default_url(name: str, funcs: dict[str, ast.FunctionDef], *, depth: int) -> str | None:
    """The last ``...["ckpt"] = "http..."`` in the entry (the non-legacy default), following ``return other(...)``."""
    func = funcs[name]
    urls = [node.value.value for node in ast.walk(func)
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str) and node.value.value.startswith("http")
            and any(isinstance(t, ast.Subscript) and isinstance(t.slice, ast.Constant) and t.slice.value == "ckpt"
                    for t in node.targets)]
    if urls:
        return max(urls, key=lambda u: _line_of(func, u))
    if depth < 3:
        for node in ast.walk(func):
            if (isinstance(node, ast.Return) and isinstance(node.value, ast.Call)
                    and isinstance(node.value.func, ast.Name) and node.value.func.id in funcs
                    and node.value.func.id != name):
                return _default_url(node.value.func.id, funcs, depth=depth + 1)
    return None


def _line_of(func: ast.FunctionDef, url: str) -> int:
    return max(n.lineno for n in ast.walk(func) if isinstance(n, ast.Constant) and n.value == url)


def cache_path(url: str, *, download_dir: str | Path | None = None) -> Path:
    """The file s3prl reads for ``url``: ``<download_dir>/<sha256(url)>.<basename>``."""
    folder = Path(download_dir).expanduser() if download_dir else default_download_dir()
    return folder / f"{text_hash(url, None)}.{Path(url).name}"


def entry_checkpoint(name: str, *, path_or_url: str | None, download_dir: str | None) -> tuple[str | None, Path | None]:
    """(URL, local file) the entry will read; local file None when the entry needs none."""
    index = hub_index()
    if name not in index:
        raise UnknownNameError("s3prl hub entry", name, index)
    if path_or_url and not path_or_url.startswith("http"):
        if index[name][0] is not None:
            family = index[name][1]
            raise BenchError(f"s3prl entry {name!r} always reads its own URL and would ignore path_or_url="
                             f"{path_or_url!r}; for a local checkpoint use name={family}_local")
        return None, Path(path_or_url).expanduser()
    url = path_or_url or index[name][0]
    if url is None:
        return None, None
    return url, cache_path(url, download_dir=download_dir)


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
