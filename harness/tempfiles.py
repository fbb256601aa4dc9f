"""Temporary names for atomic writes, and the removal of the ones a killed process left behind.

Every file or folder the harness writes atomically is first written under a sibling name
``.<final name>.tmp-<host>-<pid>-<random>`` and then renamed into place, so a reader sees the
old version or the complete new one, never a torn one. A process killed in between leaves its
temporary behind; it is never read (no reader looks at dot-names) and is removed later by
:func:`remove_stale`: when its host is this machine and its process is gone, or when it is older
than ``older_than_s`` (another machine's, or a reused pid).

The writers here are the only ones the harness uses: :func:`atomic_path` (a temporary name to
write by any means, renamed on success, removed on failure), :func:`atomic_file` (the same with
an open file), and :func:`write_text_atomic` / :func:`write_json_atomic` on top of them. An
``OSError`` while writing becomes a BenchError naming the file, the cause and the fix
(:func:`io_error`).
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from .errors import BenchError
from .faults import maybe_crash

HOST = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname()).replace("-", "_") or "host"
TMP_TAG = ".tmp-"
STALE_AFTER_S = 3600.0


def temp_sibling(final: Path) -> Path:
    """A fresh temporary name beside ``final`` that names this host and process."""
    return final.with_name(f".{final.name}{TMP_TAG}{HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def owner_of(name: str) -> tuple[str | None, int | None]:
    """(host, pid) encoded in a temporary name, or (None, None) when it is not one."""
    if TMP_TAG not in name:
        return None, None
    parts = name.rsplit(TMP_TAG, 1)[1].split("-")
    try:
        return parts[0], int(parts[1])
    except (IndexError, ValueError):
        return None, None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_stale(path: Path, *, older_than_s: float = STALE_AFTER_S) -> bool:
    """True for a temporary left by a dead process of this host, or one older than ``older_than_s``."""
    host, pid = owner_of(path.name)
    if host is None:
        return False
    if host == HOST and pid is not None and not pid_alive(pid):
        return True
    return time.time() - _last_change(path) > older_than_s


def _last_change(path: Path) -> float:
    """The newest mtime of ``path`` and, for a folder, of the files in it (a file being appended
    to, e.g. by a long extraction on another host, does not change its folder's mtime)."""
    try:
        newest = path.lstat().st_mtime
        if path.is_dir() and not path.is_symlink():
            for child in path.iterdir():
                newest = max(newest, child.lstat().st_mtime)
    except OSError:
        return time.time()  # vanished or unreadable while looking: not stale
    return newest


def remove_stale(folder: Path, *, prefix: str = ".", recursive: bool = False,
                 older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove stale temporaries (files or folders) named ``<prefix>...`` in ``folder``; return them.

    ``recursive`` also looks into subfolders (not into the temporaries themselves). Errors are
    ignored: a temporary that cannot be removed now is removed by a later run.
    """
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for p in entries:
        if p.name.startswith(prefix) and TMP_TAG in p.name and is_stale(p, older_than_s=older_than_s):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                try:
                    p.unlink()
                except OSError:
                    continue
            removed.append(p)
        elif recursive and p.is_dir() and not p.is_symlink() and not p.name.startswith("."):
            removed += remove_stale(p, prefix=prefix, recursive=True, older_than_s=older_than_s)
    return removed


@contextmanager
def atomic_path(path: Path, *, fsync: bool = False, wrap_errors: bool = True) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write; rename it onto ``path`` when the block ends.

    A reader sees the old file or the complete new one, never a partial write. When the block
    raises, the temporary is removed and the error goes on (an ``OSError`` as :func:`io_error`
    unless ``wrap_errors`` is false).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        if not wrap_errors:
            raise
        raise io_error(path, e) from None
    tmp = temp_sibling(path)
    try:
        yield tmp
        if fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except OSError as e:
        _unlink_quietly(tmp)
        if not wrap_errors:
            raise
        raise io_error(path, e) from None
    except BaseException:
        _unlink_quietly(tmp)
        raise


@contextmanager
def atomic_file(path: Path, mode: str = "w", *, fsync: bool = False, wrap_errors: bool = True) -> Iterator[IO[Any]]:
    """:func:`atomic_path` with the temporary opened in ``mode`` ("w" text UTF-8, "wb" binary)."""
    with atomic_path(path, fsync=fsync, wrap_errors=wrap_errors) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for open()
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as f:
            yield f


def write_text_atomic(path: Path, text: str, *, wrap_errors: bool = True) -> None:
    """``text`` (UTF-8) to ``path`` through a temporary sibling."""
    with atomic_file(path, "w", wrap_errors=wrap_errors) as f:
        f.write(text)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON (indent 1, keys in the given order) to ``path``, atomically and fsynced.

    Disk full and permission errors become a BenchError naming the file, the cause and the fix;
    the temporary is removed, so nothing is left half-written. Temporaries of this file left by
    a killed process are removed after a successful write.
    """
    path = Path(path)
    with atomic_file(path, "w", fsync=True) as f:
        json.dump(data, f, indent=1, sort_keys=False, default=_json_default)
        f.flush()
        maybe_crash("result_write")
    remove_stale(path.parent, prefix=f".{path.name}{TMP_TAG}")


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


ENV_OF_PATH = {"cache": "BENCH_CACHE", "results": "BENCH_RESULTS", "models": "BENCH_MODELS",
               "user_cards": "BENCH_CARDS", "leaderboards": "BENCH_LEADERBOARDS"}


def os_error_reason(e: OSError) -> str:
    """What an OSError means for a folder the harness writes to, in words."""
    if e.errno == errno.ENOSPC or e.errno == errno.EDQUOT:
        return "the disk is full (or the quota is exhausted)"
    if e.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if e.errno == errno.EROFS:
        return "the file system is read-only"
    if e.errno == errno.ENOTDIR:
        return "a part of the path is a file, not a folder"
    if e.errno == errno.EISDIR:
        return "a folder is in the way"
    return e.strerror or str(e)


def io_error(path: Path, e: OSError, *, setting: str = "results") -> BenchError:
    """The BenchError for a failed write of ``path`` (what, where, why, how to fix)."""
    env = ENV_OF_PATH.get(setting, "")
    return BenchError(f"cannot write {path}: {os_error_reason(e)}. Free space or fix the permissions of "
                      f"{path.parent} (or point paths.{setting} in benchmark.yaml"
                      + (f" / {env}" if env else "") + " elsewhere). Nothing was left half-written; "
                      "rerun the same command to resume.")


def save_figure(fig: Any, path: Path, **savefig_kwargs: Any) -> None:
    """``fig.savefig`` into a temporary sibling, then rename: a plot is complete or absent (the
    leaderboards copy plots; a full disk must not leave a torn image in place of a good one)."""
    with atomic_path(path, wrap_errors=False) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", **savefig_kwargs)
