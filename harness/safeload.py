"""Loading weight files without running code: ``torch.load(weights_only=True)``, always.

A PyTorch checkpoint is a pickle; unpickling an arbitrary pickle can run arbitrary code. Every
checkpoint the harness itself opens goes through :func:`load_weights`, which only accepts
tensors and plain containers (dicts, lists, strings, numbers). A file that needs more is
refused with :class:`UnsafeCheckpointError`, naming the file and the object it asked for; the
code inside is never run. See docs/security.md for what third-party loaders do.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import BenchError


class UnsafeCheckpointError(BenchError):
    """A checkpoint that cannot be loaded as plain weights (unpickling it could run code)."""


def load_weights(path: str | Path, *, what: str = "checkpoint", mmap: bool = False, fix: str = "") -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)`` with errors written for users.

    ``mmap`` memory-maps the tensors (nothing is read until used; a legacy non-zip file falls
    back to a plain load). ``what`` names the file in messages and ``fix`` says how to get a good one.
    """
    import pickle

    import torch

    path = Path(path)
    try:
        if mmap:
            try:
                return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as e:  # a legacy (non-zip) file cannot be memory-mapped
                if "mmap" not in str(e):
                    raise
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise UnsafeCheckpointError(
            f"refused to load {what} {path}: it holds more than tensors and plain containers "
            f"({_detail(e)}), and unpickling it could run code. The harness loads checkpoints with "
            "torch.load(weights_only=True) only (docs/security.md)." + (f" {fix}" if fix else "")) from None
    except Exception as e:  # noqa: BLE001 - torch raises several types for a damaged or foreign file
        raise BenchError(f"{path}: not a loadable {what} ({_first_line(e)})." + (f" {fix}" if fix else "")) from None


def _detail(e: BaseException) -> str:
    """The line of torch's message that says which object the file asked for."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    for ln in lines:
        if "GLOBAL" in ln or "Unsupported" in ln or "WeightsUnpickler" in ln:
            return ln[:300]
    return lines[-1][:300] if lines else type(e).__name__


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else type(e).__name__


@contextmanager
def refusing_pickles(where: str | Path, *, what: str = "weights") -> Iterator[None]:
    """Turn a third-party loader's ``weights_only`` refusal (transformers loads ``.bin`` files with
    ``torch.load(weights_only=True)``) into :class:`UnsafeCheckpointError` naming ``where``:
    torch's own message suggests ``weights_only=False``, which the harness never uses."""
    import pickle

    try:
        yield
    except pickle.UnpicklingError as e:
        raise UnsafeCheckpointError(
            f"refused to load the {what} in {where}: the file holds more than tensors and plain containers "
            f"({_detail(e)}), and unpickling it could run code. Use a .safetensors file, or a .bin "
            "checkpoint of plain weights (docs/security.md).") from None
