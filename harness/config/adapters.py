"""An upstream card bound to its adapter, without building it: the adapter class, the arguments
it will receive, and the identity that keys the feature cache and the cell results.

Nothing here imports torch or loads weights (the adapter *class* is imported through the
registry; an adapter module imports torch lazily or cheaply). Building the module is
:func:`harness.features.upstream.build_upstream`.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from ..errors import BenchError
from ..registry import ADAPTERS

if TYPE_CHECKING:
    from ..protocols import PathSource
    from .snapshot import ResolvedCard

# Names the harness passes to an adapter when its signature asks for them and the card does not set them.
CONTEXT_ARGS = ("language", "models_dir", "cache_dir")
# Adapter options that change what the embeddings mean and that every result states (with the
# adapter's default filled in when the card leaves them out): Whisper's encoder window mode.
RECORDED_ARGS = ("window",)


def adapter_class(card: ResolvedCard) -> Any:
    return ADAPTERS.load(card.card.adapter)


def adapter_context(paths: PathSource | None, language: str | None) -> dict[str, Any]:
    """The context arguments an adapter may ask for: the run's language and the model/cache folders."""
    context: dict[str, Any] = {"language": language}
    if paths is not None:
        context["models_dir"] = str(paths.path("models"))
        context["cache_dir"] = str(paths.path("cache"))
    return context


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


def cache_identity(card: ResolvedCard, *, language: str | None, adapter_cls: Any,
                   bound_args: dict[str, Any]) -> dict[str, Any]:
    """What identifies the upstream's weights: the card, plus the language and the adapter's own
    fingerprint (e.g. a trained checkpoint's size and mtime) when the adapter depends on them."""
    ident: dict[str, Any] = dict(card.identity)
    if "language" in bound_args:
        ident["language"] = language
    hook = getattr(adapter_cls, "cache_identity", None)
    if callable(hook):
        ident["adapter"] = hook(**bound_args)
    return ident


def upstream_identity(paths: PathSource, card: ResolvedCard, *, language: str | None) -> dict[str, Any]:
    """:func:`cache_identity` of ``card`` as the harness would build it for ``language`` (nothing is loaded)."""
    cls = adapter_class(card)
    bound = bind_args(cls, card.args, context=adapter_context(paths, language))
    return cache_identity(card, language=language, adapter_cls=cls, bound_args=bound)
