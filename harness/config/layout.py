"""The leaderboards' layout of the paper's tables (``reference/paper_layout.yaml``): model order,
row groups, task abbreviations, table titles. Data, validated like every other file."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from .. import yamlio
from ..errors import ConfigError, Problem
from ..schema import PAPER_LAYOUT_FILE, PaperLayout, paper_layout_problems
from .problems import load_problems, problems_from_validation


def paper_layout_path(root: Path | None) -> Path:
    """``reference/paper_layout.yaml`` of the workspace ``root`` when it has one, else the repository's."""
    own = root / PAPER_LAYOUT_FILE if root is not None else None
    return own if own is not None and own.is_file() else Path(__file__).resolve().parents[2] / PAPER_LAYOUT_FILE


def load_paper_layout(path: Path) -> PaperLayout:
    """The leaderboards' layout of the paper's tables, validated: ConfigError listing every problem
    (file, key, expected, found, did-you-mean), YamlError for a file that is not plain YAML."""
    try:
        layout = PaperLayout.model_validate(yamlio.load(path, expand=False))
    except ValidationError as e:
        raise ConfigError(problems_from_validation(e, where=str(path), model=PaperLayout)) from None
    problems = paper_layout_problems(layout, where=str(path))
    if problems:
        raise ConfigError(problems)
    return layout


def layout_problems(root: Path) -> list[Problem]:
    """Every problem of the workspace's paper layout file (empty list: all good)."""
    return load_problems(paper_layout_path(root), load_paper_layout)
