"""Validation problems: pydantic's errors as :class:`~harness.errors.Problem` values with a
did-you-mean, and the check that arguments bind to a registered class's signature."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import BenchError, ConfigError, Problem, did_you_mean


def problems_from_validation(err: ValidationError, *, where: str, model: type[BaseModel]) -> list[Problem]:
    """Turn pydantic's errors into Problems with a did-you-mean for unknown keys."""
    problems = []
    for e in err.errors():
        loc = [str(x) for x in e["loc"]]
        key = ".".join(loc) or "<root>"
        etype = e["type"]
        if etype == "extra_forbidden":
            allowed = _allowed_keys(model, loc[:-1])
            hint = did_you_mean(loc[-1], allowed) if allowed else ""
            problems.append(Problem(where, key, "one of the known keys (" + ", ".join(sorted(allowed)) + ")",
                                    f"unknown key {loc[-1]!r}", hint))
        elif etype == "missing":
            problems.append(Problem(where, key, "a value (required key)", "nothing"))
        else:
            found = repr(e.get("input"))
            if len(found) > 80:
                found = found[:77] + "..."
            problems.append(Problem(where, key, e["msg"].replace("Input should be", "").strip() or e["msg"], found))
    return problems


def _allowed_keys(model: type[BaseModel], loc: list[str]) -> list[str]:
    """Field names of the (nested) model at ``loc``; dict keys (profile names, languages) are skipped."""
    current: Any = model
    i = 0
    while i < len(loc):
        if not _is_model(current):
            return []
        f = current.model_fields.get(loc[i])
        if f is None:
            return []
        inner, depth = _model_in(f.annotation)
        if inner is None:
            return []
        current, i = inner, i + 1 + depth
    return list(current.model_fields) if _is_model(current) else []


def _is_model(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, BaseModel)


def _model_in(annotation: Any, depth: int = 0) -> tuple[Any, int]:
    """The model inside ``annotation`` and how many dict or list levels wrap it (``dict[str, dict[str, M]]`` -> M, 2)."""
    if _is_model(annotation):
        return annotation, depth
    origin = getattr(annotation, "__origin__", None)
    args: tuple[Any, ...] = tuple(getattr(annotation, "__args__", ()))
    if origin is dict and len(args) == 2:
        return _model_in(args[1], depth + 1)
    if origin is list and len(args) == 1:  # a list index is one level too (``row_groups.1.label``)
        return _model_in(args[0], depth + 1)
    for a in args:  # Optional / Union
        m, d = _model_in(a, depth)
        if m is not None:
            return m, d
    return None, depth


def bind_problems(registry: Any, name: str, args: dict[str, Any], *, where: str, key: str,
                   skip: tuple[str, ...] = ()) -> list[Problem]:
    """Check that ``args`` bind to the signature of the registered class/function ``name``."""
    try:
        target = registry.load(name)
    except BenchError as e:
        return [Problem(where, key, f"importable {registry.kind} {name!r}", str(e))]
    sig = inspect.signature(target)
    params = {n: p for n, p in sig.parameters.items() if n not in ("self",)}
    accepts_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    problems = []
    for arg in args:
        if arg not in params and not accepts_kwargs:
            allowed = [n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL]
            problems.append(Problem(where, f"{key}.{arg}", f"an argument of {registry.kind} {name!r} ("
                                    + ", ".join(allowed) + ")", f"unknown argument {arg!r}",
                                    did_you_mean(arg, allowed)))
    for n, p in params.items():
        if (p.default is inspect.Parameter.empty and p.kind in (inspect.Parameter.KEYWORD_ONLY,
                                                                 inspect.Parameter.POSITIONAL_OR_KEYWORD)
                and n not in args and n not in skip):
            problems.append(Problem(where, f"{key}.{n}", f"required argument {n!r} of {registry.kind} {name!r}",
                                    "nothing"))
    return problems


def load_problems(path: Path, load: Callable[[Path], Any]) -> list[Problem]:
    """Every problem of loading the file ``path`` with ``load`` (empty list: all good): the
    problems a ConfigError carries, or one "valid YAML" problem for any other BenchError."""
    try:
        load(path)
    except ConfigError as e:
        return e.problems
    except BenchError as e:
        return [Problem(str(path), "<file>", "valid YAML", str(e))]
    return []
