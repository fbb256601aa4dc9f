"""The C allocator of an extraction process: large blocks returned to the OS when freed. A leaf.

Why: glibc's malloc raises its mmap threshold to the size of the largest block freed so far (up
to 32 MiB), so after the first forward an upstream's large activations (WavLM-Base+'s front end:
about 100 MB per tensor for a 16 s chunk) come from the heap, and freed heap blocks stay in the
process's RSS. The RSS then ratchets over the first forwards and holds two to three forwards'
activations instead of one (BENCHMARKS.md, "The plan against measurements"). A fixed threshold
(``mallopt(M_MMAP_THRESHOLD, 4 MiB)``) maps every block over it on its own and unmaps it on
free, so the process holds what is live.

The setting: ``BENCH_MMAP_THRESHOLD`` (bytes; ``on``: :data:`DEFAULT_THRESHOLD_BYTES`; unset, ``0``
or ``off``: leave the allocator as it is). Off by default: on this 2-core CPU it cost about 12% of
an extraction's wall time (two clean on/off pairs of WavLM-Base+; every mapped block is zeroed
again on each forward) for 250 to 350 MB less peak RSS, and it stays set for the heads a worker
trains afterwards. `bench plan` counts the RAM either way (:func:`harness.matrix.plan.forwards_held`):
three forwards' activations when off, two when on. Applied once per process, by
:func:`bound_retained_memory`, which :func:`harness.features.upstream.build_upstream` calls before
an upstream is built (every extraction path -- the main entry, derived entries, streamed frames --
builds its upstream there). It stays for the rest of the process (a later head training in the
same process allocates under it too). Not Linux with glibc (macOS, Windows, musl): nothing is
done, and a debug log line says so.
"""

from __future__ import annotations

import logging
import os
import sys

from .errors import BenchError

ENV = "BENCH_MMAP_THRESHOLD"
DEFAULT_THRESHOLD_BYTES = 4 * 1024 * 1024
MAX_THRESHOLD_BYTES = 32 * 1024 * 1024  # glibc's HEAP_MAX_SIZE / 2 on 64-bit: mallopt refuses more
M_MMAP_THRESHOLD = -3  # malloc.h

_log = logging.getLogger(__name__)
_applied: str | None = None  # what the first call did (the process's state; later calls return it)


def threshold_from_env(environ: dict[str, str] | None = None) -> int:
    """The threshold ``BENCH_MMAP_THRESHOLD`` asks for, in bytes (0: off, the default; ``on``:
    :data:`DEFAULT_THRESHOLD_BYTES`). Raises BenchError on a value that is not a whole number of
    bytes in [0, 32 MiB] (or ``on`` / ``off``)."""
    raw = (os.environ if environ is None else environ).get(ENV, "").strip()
    if not raw or raw.lower() in ("off", "0"):
        return 0
    if raw.lower() == "on":
        return DEFAULT_THRESHOLD_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_THRESHOLD_BYTES:
        raise BenchError(f"{ENV}={raw!r}: expected a whole number of bytes from 0 to {MAX_THRESHOLD_BYTES} "
                         f"(glibc's largest mmap threshold), 'on' ({DEFAULT_THRESHOLD_BYTES}: blocks over 4 MiB "
                         f"returned to the OS when freed) or 'off'; got {raw!r}. Unset it, or set {ENV}=0, to "
                         "leave the allocator as it is (the default).")
    return value


def bound_retained_memory() -> str:
    """Set glibc's mmap threshold to :func:`threshold_from_env` once in this process; returns what
    was done (the same text on every later call). Does nothing when the setting is off, or when
    the C library is not glibc on Linux (``mallopt`` is glibc's; elsewhere the allocator differs)."""
    global _applied
    if _applied is not None:
        return _applied
    threshold = threshold_from_env()
    if threshold == 0:
        _applied = f"{ENV} off (the default): the allocator left as it is"
    elif not sys.platform.startswith("linux") or not _glibc_version():
        _applied = f"not Linux with glibc ({sys.platform}): the allocator left as it is"
    else:
        import ctypes

        ok = ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, threshold)
        _applied = (f"mallopt(M_MMAP_THRESHOLD, {threshold}) on glibc {_glibc_version()}" if ok else
                    f"mallopt(M_MMAP_THRESHOLD, {threshold}) refused by glibc {_glibc_version()}")
    _log.debug("allocator: %s", _applied)
    return _applied


def _glibc_version() -> str:
    """glibc's version ('' when the C library is another)."""
    try:
        name = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError, AttributeError):
        return ""
    return name.removeprefix("glibc ") if name.startswith("glibc ") else ""
