"""A test hook for the fault-injection tests (``tests/test_faults.py``); not a user feature.

``BENCH_FAULT=<point>[:<n>]`` makes the process kill itself with SIGKILL the ``n``-th time
(default: the first) it reaches ``<point>``, as a power cut or the OOM killer would: no
``finally`` block, no ``atexit`` handler, no flush of open files runs. The tests then rerun the
same command and check that nothing finished was lost or recomputed and that nothing
half-written was read.

Points (each sits where a kill is most likely to tear something):

- ``synth``: the synthetic corpus is generated in its temporary folder, not yet marked complete;
- ``small_model``: after a training epoch of a small model (nothing saved yet);
- ``extract``: after an utterance was appended to a temporary feature-cache entry;
- ``train``: after a training epoch of a probe head;
- ``result_write``: a JSON result file is written to its temporary name, not yet renamed.

When ``BENCH_FAULT`` is unset (always, outside those tests) :func:`maybe_crash` reads one
environment variable and returns: no state, no I/O.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

POINTS = ("synth", "small_model", "extract", "train", "result_write")
ENV = "BENCH_FAULT"

_hits: Counter[str] = Counter()


def maybe_crash(point: str) -> None:
    """SIGKILL this process if ``$BENCH_FAULT`` names ``point`` and this is its ``n``-th hit."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    name, _, nth = spec.partition(":")
    if name != point:
        return
    _hits[point] += 1
    if _hits[point] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
