"""``bench info --upstream NAME``: what a card is, without loading its weights.

:func:`upstream_info` asks the adapter's ``describe(**card_args)`` classmethod (architecture on
the meta device, weight location checks) and falls back to building the module when the adapter
has none (cheap adapters such as MFCC). Nothing is downloaded and no checkpoint is read into memory.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import ResolvedCard, Workspace
    from ..protocols import PathSource


def upstream_info(workspace: Workspace, name: str) -> dict[str, Any]:
    """Everything ``bench info`` prints about card ``name`` (``@random`` allowed), as plain data.

    Keys: name, display, adapter, args, family, group, paper_row, languages, params_published,
    params (exact, computed from the architecture), num_layers, hidden_size, sample_rate,
    downsample_rate, frame_rate_hz, granularity, weights (source, present, location), extra, notes.
    """
    card = workspace.card(name)
    arch = card_arch(workspace, card)
    meta = card.card.meta
    rate = arch["downsample_rate"]
    return {
        "name": card.name, "display": card.display, "adapter": card.card.adapter, "args": card.args,
        "family": meta.family, "group": meta.group, "paper_row": meta.paper_row, "languages": list(meta.languages),
        "params_published": meta.params, "params": arch["params"], "num_layers": arch["num_layers"],
        "hidden_size": arch["hidden_size"], "sample_rate": arch["sample_rate"], "downsample_rate": rate,
        "frame_rate_hz": (arch["sample_rate"] / rate) if rate and arch["granularity"] == "frame" else None,
        "granularity": arch["granularity"],
        "weights": {"source": arch["weights_source"] or meta.weights, "present": arch["weights_present"],
                    "location": arch["weights_location"], "card": meta.weights},
        "extra": dict(arch["extra"]), "notes": list(arch["notes"]),
    }


def card_arch(workspace: PathSource, card: ResolvedCard, *, language: str | None = None) -> dict[str, Any]:
    """The adapter's :class:`ArchInfo` for ``card`` as a dict: from its ``describe`` without
    weights, else (adapters without one) from an instance of the module."""
    from ..config.adapters import CONTEXT_ARGS, adapter_class, bind_args, random_init_note
    from .upstream import count_parameters

    cls = adapter_class(card)
    context = {"models_dir": str(workspace.path("models")), "cache_dir": str(workspace.path("cache")),
               "language": language}
    kwargs = bind_args(cls, card.args, context={k: context.get(k) for k in CONTEXT_ARGS})
    describe = getattr(cls, "describe", None)
    if describe is not None:
        return asdict(describe(**kwargs))
    module = cls(**kwargs)
    return {"params": count_parameters(module), "num_layers": module.num_layers,
            "hidden_size": module.hidden_size, "downsample_rate": module.downsample_rate,
            "sample_rate": module.sample_rate, "granularity": module.granularity,
            "weights_source": card.card.meta.weights or "none", "weights_present": None,
            "weights_location": "", "extra": {},
            "notes": tuple(n for n in (random_init_note(card), *getattr(module, "init_notes", ())) if n)}


def render_info(info: dict[str, Any]) -> str:
    """A short human-readable block for ``bench info``."""
    def millions(n: Any) -> str:
        return "?" if n is None else f"{int(n):,} ({n / 1e6:.1f}M)" if n else "0"

    w = info["weights"]
    present = {True: "present", False: "MISSING", None: "n/a"}[w["present"]]
    lines = [
        f"{info['name']}: {info['display']}  [adapter {info['adapter']}, group {info['group']}, "
        f"paper row {info['paper_row'] or '-'}]",
        f"  params      {millions(info['params'])}  (published: {millions(info['params_published'])})",
        f"  layers      {info['num_layers'] or '?'} x {info['hidden_size'] or '?'}  granularity {info['granularity']}",
        f"  frames      {info['frame_rate_hz'] or '-'} Hz (hop {info['downsample_rate'] or '?'} samples at {info['sample_rate']} Hz)",
        f"  languages   {', '.join(info['languages']) or '-'}",
        f"  weights     {w['source']}  [{present}] {w['location']}",
    ]
    lines += [f"  {k:<11} {millions(v) if k.startswith('params') else v}" for k, v in info["extra"].items()]
    lines += [f"  note        {n}" for n in info["notes"]]
    return "\n".join(lines)
