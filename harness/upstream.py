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
    """Card args plus the context args the target's signature accepts; errors name the bad argument.

    ``random_init`` (``NAME@random``) reaches only targets that take it; it is dropped for targets
    declaring ``has_weights = False`` (a no-op: :func:`random_init_note`) and refused, with the
    reason, for the others (:func:`random_init_refusal`)."""
    sig = inspect.signature(target)
    params = sig.parameters
    out = dict(args)
    if out.get("random_init") and "random_init" not in params:
        refusal = random_init_refusal(target)
        if refusal:
            raise BenchError(refusal)
        del out["random_init"]  # nothing to initialise: the same module (see random_init_note)
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


def random_init_refusal(target: Any) -> str:
    """Why adapter ``target`` cannot run ``NAME@random``, or "" when it can: it takes a
    ``random_init`` argument, or declares ``has_weights = False`` (then @random is a no-op)."""
    if "random_init" in inspect.signature(target).parameters or not getattr(target, "has_weights", True):
        return ""
    name = getattr(target, "__name__", str(target))
    return (f"@random (random init) is not available for {name}: its constructor has no random_init argument, "
            "so the harness cannot ask it for random weights. Run the card without @random, or give the adapter "
            "a random_init option.")


def random_init_note(card: ResolvedCard) -> str:
    """Why ``NAME@random`` computes the same features as ``NAME`` (an adapter without weights, such as
    MFCC, declares ``has_weights = False``), or "" when random init changes the model."""
    if not card.random_init or getattr(adapter_class(card), "has_weights", True):
        return ""
    return (f"{card.base_name} has no weights (adapter {card.card.adapter!r}): {card.name} is the same "
            f"module as {card.base_name}, kept as a no-op control")


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
