"""Identity hashes: the one home of every hash that keys a cache entry, a result or a file.

Each function is a contract: its output for the same input never changes between versions of
the harness (a change would silently orphan every cache entry and result keyed by it). Callers
that need a new kind of key add a new function here rather than hashing in place.

- :func:`canonical_json` / :func:`short_hash`: a JSON-able object -> sorted, compact JSON ->
  sha256 prefix (cell keys, feature-cache keys, card keys, sweep keys).
- :func:`text_hash`: sha256 prefix of a text the caller has already made canonical.
- :func:`file_digest` (sha256 of the content) and :func:`file_checksum` (blake2b-128, the
  feature cache's integrity marker).
- :func:`audio_set_fingerprint`: ids, file sizes and mtimes, segment bounds of a set of utterances.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def canonical_json(obj: Any) -> str:
    """Sorted keys, no spaces, ``str()`` for anything JSON does not know (paths, numpy scalars)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def short_hash(obj: Any, n: int = 16) -> str:
    """The first ``n`` hex digits of sha256(:func:`canonical_json` of ``obj``)."""
    return text_hash(canonical_json(obj), n)


def text_hash(text: str, n: int | None = 16) -> str:
    """The first ``n`` hex digits (all 64 with ``n=None``) of sha256(``text`` as UTF-8)."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    return digest if n is None else digest[:n]


def file_digest(path: str | Path, n: int = 12) -> str:
    """The first ``n`` hex digits of sha256 of the file's content (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:n]


def file_checksum(path: str | Path, *, chunk: int = 1 << 22) -> str:
    """blake2b-128 of the file's content (fast; the feature cache's marker records it)."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def audio_set_fingerprint(utterances: Iterable[Any]) -> str:
    """Identity of an audio set (items with ``id``, ``path``, ``start_s``, ``end_s``): ids, file names, sizes and mtimes (whole seconds), segment bounds.

    Stats every file: callers that need it more than once keep the value."""
    h = hashlib.sha256()
    for u in sorted(utterances, key=lambda u: u.id):
        try:
            st = os.stat(u.path)
            stamp = f"{st.st_size}:{int(st.st_mtime)}"
        except OSError:
            stamp = "missing"
        h.update(f"{u.id}|{os.path.basename(u.path)}|{stamp}|{u.start_s}|{u.end_s}\n".encode())
    return h.hexdigest()[:16]
