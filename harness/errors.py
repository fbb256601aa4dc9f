"""Errors that reach the user: what went wrong, where, what was expected, what was found, how to fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


def did_you_mean(name: str, choices: Iterable[str], *, n: int = 3) -> str:
    """A ' Did you mean ...?' suffix (empty when nothing is close)."""
    close = difflib.get_close_matches(str(name), sorted(set(choices)), n=n, cutoff=0.6)
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(c) for c in close) + "?"


@dataclass(frozen=True)
class Problem:
    """One configuration problem, as ``bench validate`` prints it."""

    where: str  # file (and line when known)
    key: str  # dotted key path inside the file
    expected: str
    found: str
    hint: str = ""

    def render(self) -> str:
        text = f"{self.where}: {self.key}: expected {self.expected}; found {self.found}."
        return text + (f"{self.hint}" if self.hint.startswith(" ") else f" {self.hint}" if self.hint else "")


class BenchError(Exception):
    """An error with a message written for the user (no traceback needed to act on it)."""


class ConfigError(BenchError):
    """One or more configuration problems, all reported at once."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        lines = [f"{len(self.problems)} configuration problem(s):"]
        lines += ["  - " + p.render() for p in self.problems]
        super().__init__("\n".join(lines))


class UnknownNameError(BenchError, KeyError):
    """An unknown registry name, with a did-you-mean."""

    def __init__(self, kind: str, name: str, choices: Iterable[str]):
        choices = sorted(set(choices))
        self.kind, self.name, self.choices = kind, name, choices
        listing = ", ".join(choices[:30]) + (" ..." if len(choices) > 30 else "")
        super().__init__(
            f"unknown {kind} {name!r}.{did_you_mean(name, choices)} Known {kind}s: {listing}. "
            f"`bench ls {kind}s` lists them."
        )

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DuplicateNameError(BenchError):
    """The same registry name defined by two sources."""

    def __init__(self, kind: str, name: str, first: str, second: str):
        super().__init__(
            f"{kind} {name!r} is defined twice: by {first} and by {second}. "
            "Rename one of them (names must be unique across built-ins, card files and entry points)."
        )


class WeightsMissingError(BenchError):
    """Pretrained weights are not available offline: says what is missing, where to put it, which flag to pass."""


class DataError(BenchError):
    """A corpus or manifest problem that stops the whole dataset (not a single bad item)."""


class AudioError(BenchError):
    """One audio item cannot be used (unreadable, empty, NaN ...). The item is skipped and counted."""
