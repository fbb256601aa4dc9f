"""Build an upstream from its card: bind the card's args to the adapter, then freeze it.

The harness, not the adapter, moves the module to a device, calls ``.eval()`` and freezes it
(``s3prl.nn.S3PRLUpstream.__init__`` leaves its model in train mode).
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from .errors import BenchError
from .registry import ADAPTERS

if TYPE_CHECKING:
    from torch import nn

    from .config import ResolvedCard, Workspace

# Names the harness passes to an adapter when its signature asks for them and the card does not set them.
CONTEXT_ARGS = ("language", "models_dir", "cache_dir")
# Adapter options that change what the embeddings mean and that every result states (with the
# adapter's default filled in when the card leaves them out): Whisper's encoder window mode.
RECORDED_ARGS = ("window",)


def adapter_class(card: ResolvedCard) -> Any:
    return ADAPTERS.load(card.card.adapter)


def bind_args(target: Any, args: dict[str, Any], *, context: dict[str, Any]) -> dict[str, Any]:
    """Card args plus the context args the target's signature accepts; errors name the bad argument."""
    sig = inspect.signature(target)
    params = sig.parameters
    out = dict(args)
    for name in CONTEXT_ARGS:
        if name in params and name not in out and context.get(name) is not None:
            out[name] = context[name]
    try:
        sig.bind(**out)
    except TypeError as e:
        raise BenchError(f"card args {sorted(args)} do not bind to {getattr(target, '__name__', target)}"
                         f"{sig}: {e}") from None
    return out


def recorded_settings(card: ResolvedCard) -> dict[str, Any]:
    """The :data:`RECORDED_ARGS` the card's adapter runs with: the card's value, else the adapter's default."""
    try:
        params = inspect.signature(adapter_class(card)).parameters
    except (BenchError, TypeError, ValueError):
        return {}
    out: dict[str, Any] = {}
    for name in RECORDED_ARGS:
        if name in card.args:
            out[name] = card.args[name]
        elif name in params and params[name].default is not inspect.Parameter.empty:
            out[name] = params[name].default
    return out


def build_upstream(card: ResolvedCard, *, language: str | None = None, workspace: Workspace | None = None,
                   device: str = "cpu", freeze: bool = True) -> nn.Module:
    """Instantiate ``card``'s adapter, move it to ``device``, put it in eval mode and freeze it."""
    cls = adapter_class(card)
    context: dict[str, Any] = {"language": language}
    if workspace is not None:
        context["models_dir"] = str(workspace.path("models"))
        context["cache_dir"] = str(workspace.path("cache"))
    kwargs = bind_args(cls, card.args, context=context)
    module = cls(**kwargs)
    module = module.to(device)
    if freeze:
        module.eval()
        for p in module.parameters():
            p.requires_grad_(False)
    return module


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
