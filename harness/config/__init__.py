"""Configuration (layer L1): the YAML files read once into a :class:`Snapshot`, validated, and
resolved into cell plans.

- :mod:`.snapshot`: :class:`Snapshot` (every file read and validated once per process,
  overrides applied once), :class:`ResolvedCard`, :class:`ResolvedDownstream`, :func:`find_root`;
- :mod:`.plan`: :class:`CellSpec`, :class:`CellPlan`, :class:`LayerRule` and
  :func:`resolve_cell`, the only resolver;
- :mod:`.workspace`: :class:`Workspace`, the facade commands and tests hold;
- :mod:`.validate`: every problem in every file (``bench validate``);
- :mod:`.overrides` (``--set``), :mod:`.problems` (pydantic errors as Problems),
  :mod:`.options` (corpus adapter options), :mod:`.adapters` (card -> adapter class,
  arguments, upstream identity).

Importing this package does not import torch.
"""

from __future__ import annotations

from .layout import load_paper_layout, paper_layout_path
from .overrides import deep_merge, parse_overrides, parse_value
from .plan import CellPlan, CellSpec, LayerRule, Unavailable, plan_cell, resolve_cell
from .problems import problems_from_validation
from .snapshot import RANDOM_SUFFIX, ResolvedCard, ResolvedDownstream, Snapshot, find_root
from .workspace import Workspace

__all__ = ["RANDOM_SUFFIX", "CellPlan", "CellSpec", "LayerRule", "ResolvedCard", "ResolvedDownstream", "Snapshot",
           "Unavailable", "Workspace", "deep_merge", "find_root", "load_paper_layout", "paper_layout_path", "parse_overrides", "parse_value", "plan_cell",
           "problems_from_validation", "resolve_cell"]
