"""s3prl's hub read statically (its ``hubconf.py`` files parsed, nothing imported) and where each
entry's checkpoint lives: torch-free, so ``bench ls upstreams`` can say whether weights are here."""

from __future__ import annotations

import ast
import importlib.util
from functools import cache
from pathlib import Path

from harness.errors import BenchError, UnknownNameError
from harness.identity import text_hash

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
