"""Build an upstream from its card: bind the card's args to the adapter, then freeze it.

The harness, not the adapter, moves the module to a device, calls ``.eval()`` and freezes it
(``s3prl.nn.S3PRLUpstream.__init__`` leaves its model in train mode). Binding without building
is :mod:`harness.config.adapters`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..allocator import bound_retained_memory
from ..config.adapters import adapter_class, adapter_context, bind_args

if TYPE_CHECKING:
    from torch import nn

    from ..config.snapshot import ResolvedCard
    from ..protocols import PathSource


def build_upstream(card: ResolvedCard, *, language: str | None = None, workspace: PathSource | None = None,
                   device: str = "cpu", freeze: bool = True) -> nn.Module:
    """Instantiate ``card``'s adapter, move it to ``device``, put it in eval mode and freeze it.

    ``workspace``: where the model and cache folders are (anything with ``path(setting)``). First
    applies the allocator setting (:mod:`harness.allocator`: with ``BENCH_MMAP_THRESHOLD=on`` freed
    large tensors go back to the OS; off by default), once per process, before the weights are
    allocated: every extraction builds its upstream here."""
    bound_retained_memory()
    cls = adapter_class(card)
    kwargs = bind_args(cls, card.args, context=adapter_context(workspace, language))
    module = cls(**kwargs)
    module = module.to(device)
    if freeze:
        module.eval()
        for p in module.parameters():
            p.requires_grad_(False)
    return module


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
