"""Safe YAML: plain data only, duplicate keys rejected, ``${VAR}`` / ``${VAR:-default}`` expanded.

Plain data is JSON's data model: mappings, sequences, strings, numbers, booleans and null.
Refused, with the line: any tag beyond those (``!!python/...``, ``!!binary``, ``!!set``,
``!!omap``, ``!!timestamp``, custom ``!tags``), anchors and aliases (``&name`` / ``*name``, and
so ``<<`` merge keys: aliases are how "billion laughs" expansion bombs are built, and no config
here needs them) and nesting deeper than the parser can follow. A date such as ``2024-05-01``
stays the string it looks like. Duplicate mapping keys are an error naming the line of both
occurrences. Environment variables are expanded in string scalars only; an unset variable
without a default is an error.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from .errors import BenchError

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class YamlError(BenchError):
    pass


PLAIN_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in ("map", "seq", "str", "int", "float", "bool", "null"))


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that accepts plain data only (see the module docstring) and rejects duplicate keys."""

    yaml_implicit_resolvers = {  # no implicit timestamps: dates stay strings
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            what = f"alias *{event.anchor}" if isinstance(event, yaml.AliasEvent) else f"anchor &{event.anchor}"
            raise YamlError(f"{event.start_mark.name}:{event.start_mark.line + 1}: {what}: anchors and aliases are "
                            "not allowed (only plain YAML data); write the value out where it is used.")
        node = super().compose_node(parent, index)
        if node.tag not in PLAIN_TAGS:
            raise YamlError(f"{node.start_mark.name}:{node.start_mark.line + 1}: tag {node.tag!r} is not allowed: "
                            "only plain YAML data (mappings, lists, strings, numbers, booleans, null); remove the tag.")
        return node


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise YamlError(
                f"{key_node.start_mark.name}:{line}: duplicate key {key!r} (first defined on line "
                f"{seen[key]}). Keep one of them."
            )
        seen[key] = line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def expand_env(value: Any, *, where: str = "<yaml>", environ: Mapping[str, str] | None = None) -> Any:
    """Expand ``${VAR}`` and ``${VAR:-default}`` in every string inside ``value``."""
    env = os.environ if environ is None else environ
    if isinstance(value, dict):
        return {k: expand_env(v, where=where, environ=env) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, where=where, environ=env) for v in value]
    if not isinstance(value, str) or "${" not in value:
        return value

    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in env and env[name] != "":
            return env[name]
        if default is not None:
            return default
        raise YamlError(
            f"{where}: environment variable {name} is not set and has no default. "
            f"Set it (export {name}=...) or write ${{{name}:-default}}."
        )

    return _ENV.sub(sub, value)


def loads(text: str, *, where: str = "<string>", expand: bool = True) -> Any:
    """Parse YAML text strictly; ``where`` names the source in error messages."""
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - _StrictLoader is a SafeLoader
    except YamlError as e:
        raise YamlError(str(e).replace("<unicode string>", where)) from None
    except RecursionError:
        raise YamlError(f"{where}: nested too deeply to be a configuration file") from None
    except yaml.constructor.ConstructorError as e:
        raise YamlError(
            f"{where}: only plain YAML data is allowed (no tags such as !!python/...): {e.problem} "
            f"at line {e.problem_mark.line + 1 if e.problem_mark else '?'}"
        ) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise YamlError(f"{where}{line}: invalid YAML: {getattr(e, 'problem', e)}") from None
    return expand_env(data, where=where) if expand else data


def load(path: str | Path, *, expand: bool = True) -> Any:
    """Read a YAML file strictly (see :func:`loads`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise YamlError(f"{path}: file not found") from None
    except UnicodeDecodeError as e:
        raise YamlError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    return loads(text, where=str(path), expand=expand)
