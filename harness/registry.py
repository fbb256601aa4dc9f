"""Lazy registries: built-in ``"module:attr"`` tables plus one entry-point group for third parties.

Nothing is imported until a name is loaded, so listing names never imports torch. A name defined
by two sources (a built-in and an entry point, two entry points) is an error naming both.

Third-party upstream adapters register through the entry-point group ``speech_bench.upstreams``::

    [project.entry-points."speech_bench.upstreams"]
    my_model = "my_package.adapter:MyUpstream"

and are then usable as ``adapter: my_model`` in a card.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from typing import Any

from .errors import BenchError, DuplicateNameError, UnknownNameError

ENTRY_POINT_GROUP = "speech_bench.upstreams"

BUILTIN_ADAPTERS: dict[str, str] = {
    "mfcc": "upstreams.mfcc:MFCCUpstream",
    "s3prl": "upstreams.s3prl_hub:S3PRLHubUpstream",
    "hf": "upstreams.hf:HFUpstream",
    "whisper": "upstreams.hf:WhisperEncoderUpstream",
    "ct2_whisper": "upstreams.ct2_whisper:CT2WhisperUpstream",
    "resemblyzer": "upstreams.resemblyzer_ge2e:GE2EUpstream",
    "hear": "upstreams.hear:HEARUpstream",
    "lstm": "upstreams.lstm:WordLSTMUpstream",
}

BUILTIN_HEADS: dict[str, str] = {
    "linear": "harness.probe.heads:LinearHead",
    "bilstm": "harness.probe.heads:BiLSTMHead",
}

BUILTIN_CORPORA: dict[str, str] = {
    "synth": "harness.synth:load_synth_corpus",
    "librispeech": "harness.corpora.librispeech:load",
    "iemocap": "harness.corpora.iemocap:load",
    "slurp": "harness.corpora.slurp:load",
    "commonvoice": "harness.corpora.commonvoice:load",
    "cafe": "harness.corpora.cafe:load",
    "manifest": "harness.corpora.manifest:load",
}


def import_string(target: str) -> Any:
    """Import ``"package.module:attr"`` (the only form of dynamic import the harness uses)."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise BenchError(f"expected 'module:attribute', got {target!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise BenchError(f"cannot import {module_name!r} for {target!r}: {e}") from e
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise BenchError(f"module {module_name!r} has no attribute {attr!r} (from {target!r})") from None
    return obj


@dataclass(frozen=True)
class Entry:
    name: str
    target: str  # "module:attr"
    source: str  # where it was defined, for error messages


class Registry:
    """A name -> "module:attr" table, loaded lazily."""

    def __init__(self, kind: str, builtins: dict[str, str], *, entry_point_group: str | None = None):
        self.kind = kind
        self._builtins = dict(builtins)
        self._group = entry_point_group
        self._entries: dict[str, Entry] | None = None

    def _collect(self) -> dict[str, Entry]:
        if self._entries is not None:
            return self._entries
        entries: dict[str, Entry] = {}
        for name, target in self._builtins.items():
            entries[name] = Entry(name, target, "built-in table harness.registry")
        if self._group:
            for ep in _entry_points(self._group):
                src = f"entry point {ep.name!r} of distribution {ep.dist or '?'} (group {self._group})"
                if ep.name in entries:
                    raise DuplicateNameError(self.kind, ep.name, entries[ep.name].source, src)
                entries[ep.name] = Entry(ep.name, ep.value, src)
        self._entries = entries
        return entries

    def names(self) -> list[str]:
        return sorted(self._collect())

    def __contains__(self, name: object) -> bool:
        return name in self._collect()

    def entry(self, name: str) -> Entry:
        entries = self._collect()
        if name not in entries:
            raise UnknownNameError(self.kind, name, entries)
        return entries[name]

    def load(self, name: str) -> Any:
        return import_string(self.entry(name).target)


@dataclass(frozen=True)
class _EP:
    name: str
    value: str
    dist: str | None


@cache
def _entry_points_cached(group: str) -> tuple[_EP, ...]:
    found = []
    for ep in metadata.entry_points(group=group):
        dist = getattr(ep, "dist", None)
        found.append(_EP(ep.name, ep.value, getattr(dist, "name", None)))
    return tuple(found)


def _entry_points(group: str) -> tuple[_EP, ...]:
    return _entry_points_cached(group)


ADAPTERS = Registry("adapter", BUILTIN_ADAPTERS, entry_point_group=ENTRY_POINT_GROUP)
HEADS = Registry("head", BUILTIN_HEADS)
CORPORA = Registry("corpus adapter", BUILTIN_CORPORA)

TEST_BUILDER_MODULES = ("harness.testing",)


def trusted_builder_modules() -> list[str]:
    """Modules a card's ``test.build`` may name: :mod:`harness.testing` and the modules of the
    registered adapters (installed code). A card is data: it must not be able to name any
    other function for the test suite to import and call."""
    return sorted({*TEST_BUILDER_MODULES, *(ADAPTERS.entry(n).target.partition(":")[0] for n in ADAPTERS.names())})


def builder_problem(target: str) -> str:
    """Why a card's ``test.build`` target is refused ("" when it is allowed)."""
    module, sep, attr = target.partition(":")
    if not sep or not attr.isidentifier():
        return f"expected 'module:function', got {target!r}"
    if module not in trusted_builder_modules():
        return (f"{target!r} is not in a trusted module ({', '.join(trusted_builder_modules())}); a card may only "
                "name a test builder of harness.testing or of a registered adapter's module")
    return ""
