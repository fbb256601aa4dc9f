"""CLI overrides: ``--set key.path=value`` parsed into typed values per scope, and the deep merge
that applies them (and profile / word-level recipes) to a file's data. Never ``eval``."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from typing import Any

from ..errors import BenchError


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``over`` into a copy of ``base`` (dicts merge, everything else replaces)."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def parse_value(text: str) -> Any:
    """Typed value of a ``--set`` override: int, float, bool, null, a JSON list/object, else a string.

    Never ``eval``: the text is parsed as JSON or by explicit rules.
    """
    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("null", "none", "~"):
        return None
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    if text.strip()[:1] in "[{":
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise BenchError(f"--set value {text!r} looks like a list/object but is not valid JSON: {e}") from None
    return text


OVERRIDE_SCOPES = ("downstream", "task", "profile", "upstream")


def parse_overrides(items: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``["training.lr=1e-4", "profile.seeds=[0,1]"]`` -> ``{scope: nested dict}``.

    The first path component may name the scope (downstream, task, profile, upstream); without
    one the override applies to the downstream, so ``training.lr=1e-4`` sets the head's learning rate.
    """
    out: dict[str, dict[str, Any]] = {s: {} for s in OVERRIDE_SCOPES}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise BenchError(f"--set expects key.path=value, got {item!r}")
        parts = key.split(".")
        scope = parts[0] if parts[0] in OVERRIDE_SCOPES and len(parts) > 1 else "downstream"
        if parts[0] == scope:
            parts = parts[1:]
        node = out[scope]
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise BenchError(f"--set {item!r}: {p!r} is set both as a value and as a section")
        node[parts[-1]] = parse_value(raw)
    return out
