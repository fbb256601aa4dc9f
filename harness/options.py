"""Options of a plugin (a corpus adapter's ``OPTIONS``): declared kinds, and every problem with a
configured value. A leaf: the adapters declare their options with it, and ``bench validate``
(:func:`harness.config.validate.option_problems`) checks ``benchmark.yaml`` against them
without reading any corpus."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import Problem, did_you_mean

_KINDS = {
    "bool": "true or false",
    "int": "an integer",
    "float": "a number",
    "float?": "a number or null",
    "str": "a string",
    "str?": "a string or null",
    "strs": "a list of strings",
    "strs?": "a list of strings or null",
    "dict": "a mapping",
}


@dataclass(frozen=True)
class Option:
    """One adapter option: its default, its kind (a key of ``_KINDS``), allowed values, help text."""

    default: Any
    kind: str
    help: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None


# --------------------------------------------------------------------------- options
def check_options(options: Mapping[str, Any] | None, spec: Mapping[str, Option], *,
                  where: str) -> list[Problem]:
    """Every problem with ``options`` against ``spec`` (unknown keys, wrong kinds, bad choices)."""
    problems: list[Problem] = []
    if options is None:
        return problems
    if not isinstance(options, Mapping):
        return [Problem(where, "options", "a mapping of option names to values", repr(options))]
    for key, value in options.items():
        if key not in spec:
            hint = did_you_mean(key, spec) or f" Known options: {', '.join(sorted(spec))}."
            problems.append(Problem(where, f"options.{key}", "a known option", f"unknown option {key!r}", hint))
            continue
        problem = _check_value(key, value, spec[key], where=where)
        if problem:
            problems.append(problem)
    return problems


def _check_value(key: str, value: Any, option: Option, *, where: str) -> Problem | None:
    kind = option.kind
    if kind.endswith("?") and value is None:
        return None
    ok = {
        "bool": lambda v: isinstance(v, bool),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "str": lambda v: isinstance(v, str),
        "strs": lambda v: isinstance(v, str | int) and not isinstance(v, bool)
        or isinstance(v, list | tuple) and all(isinstance(x, str | int) and not isinstance(x, bool) for x in v),
        "dict": lambda v: isinstance(v, Mapping),
    }[kind.rstrip("?")](value)
    if not ok:
        return Problem(where, f"options.{key}", _KINDS[kind], repr(value), f" ({option.help})")
    if option.choices and value not in option.choices:
        return Problem(where, f"options.{key}", "one of " + ", ".join(map(repr, option.choices)), repr(value),
                       did_you_mean(str(value), option.choices))
    if option.minimum is not None and isinstance(value, int | float) and value < option.minimum:
        return Problem(where, f"options.{key}", f"a number >= {option.minimum}", repr(value))
    return None
