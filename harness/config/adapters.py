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
