"""Device selection (imports torch only when asked to probe)."""

from __future__ import annotations

from .errors import BenchError


def resolve_device(name: str | None) -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'; an explicit CUDA device must exist."""
    name = (name or "auto").strip()
    if name == "cpu":
        return "cpu"
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise BenchError(f"device {name!r} asked for, but no CUDA device is visible; use --device cpu")
        return name
    raise BenchError(f"unknown device {name!r}; use cpu, cuda, cuda:N or auto")
