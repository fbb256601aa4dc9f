"""A test hook for the fault-injection tests (``tests/test_faults.py``); not a user feature.

``BENCH_FAULT=<point>[:<n>]`` makes the run die by SIGKILL the ``n``-th time (default: the
first) any of its processes reaches ``<point>``, as a power cut or the OOM killer would: no
``finally`` block, no ``atexit`` handler, no flush of open files runs. The tests then rerun the
same command and check that nothing finished was lost or recomputed and that nothing
half-written was read.

A matrix runs in several processes (cell workers, one fresh process per feature extraction), so
the hits are counted across all of them (a small file under ``$BENCH_FAULT_STATE``, set by
:func:`arm` in the command's first process) and the kill takes the whole run down: the process
group, when the command leads its own (the tests start it with ``start_new_session``), else the
process that reached the point.

Points (each sits where a kill is most likely to tear something):

- ``synth``: the synthetic corpus is generated in its temporary folder, not yet marked complete;
- ``small_model``: after a training epoch of a small model (nothing saved yet);
- ``extract``: after an utterance was appended to a temporary feature-cache entry;
- ``train``: after a training epoch of a probe head;
- ``result_write``: a JSON result file is written to its temporary name, not yet renamed.

When ``BENCH_FAULT`` is unset (always, outside those tests) :func:`arm` and :func:`maybe_crash`
read one environment variable and return: no state, no I/O.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

POINTS = ("synth", "small_model", "extract", "train", "result_write")
ENV = "BENCH_FAULT"
STATE_ENV = "BENCH_FAULT_STATE"
GROUP_ENV = "BENCH_FAULT_GROUP"

_hits: Counter[str] = Counter()


def arm() -> None:
    """In the command's first process: a shared hit counter, and the process group to kill."""
    if not os.environ.get(ENV) or os.environ.get(STATE_ENV):
        return
    import tempfile

    fd, path = tempfile.mkstemp(prefix="bench-fault-")
    os.close(fd)
    os.environ[STATE_ENV] = path  # inherited by every worker and extraction process
    if os.getpgid(0) == os.getpid():  # we lead our own group: everything the run started is in it
        os.environ[GROUP_ENV] = str(os.getpid())


def _count(point: str) -> int:
    """This hit's number for ``point`` across the run's processes (in this process alone if unarmed)."""
    path = os.environ.get(STATE_ENV)
    if not path:
        _hits[point] += 1
        return _hits[point]
    import fcntl

    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        n = 1 + sum(line.strip() == point for line in f)
        f.write(point + "\n")
        f.flush()
    _hits[point] = n
    return n


def maybe_crash(point: str) -> None:
    """SIGKILL the run if ``$BENCH_FAULT`` names ``point`` and this is its ``n``-th hit."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    name, _, nth = spec.partition(":")
    if name != point:
        return
    if _count(point) >= int(nth or 1):
        group = os.environ.get(GROUP_ENV)
        if group and os.getpgid(0) == int(group):
            os.killpg(int(group), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)
