"""Temporary names for atomic writes, and the removal of the ones a killed process left behind.

Every file or folder the harness writes atomically is first written under a sibling name
``.<final name>.tmp-<host>-<pid>-<random>`` and then renamed into place, so a reader sees the
old version or the complete new one, never a torn one. A process killed in between leaves its
temporary behind; it is never read (no reader looks at dot-names) and is removed later by
:func:`remove_stale`: when its host is this machine and its process is gone, or when it is older
than ``older_than_s`` (another machine's, or a reused pid).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import time
import uuid
from pathlib import Path
from typing import Any

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


def save_figure(fig: Any, path: Path, **savefig_kwargs: Any) -> None:
    """``fig.savefig`` into a temporary sibling, then rename: a plot is complete or absent (the
    leaderboards copy plots; a full disk must not leave a torn image in place of a good one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(path)
    try:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", **savefig_kwargs)
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
