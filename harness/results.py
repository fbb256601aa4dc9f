"""Result files: one JSON per matrix cell, written atomically, keyed by the cell's identity.

Layout: ``<results>/<profile>/<upstream>/<downstream>/<language>/seed<k>.json``. A file whose
``key`` matches the cell's key and whose status is ``ok`` means the cell is finished; a rerun
skips it. A failed cell's file holds its error and traceback (status ``failed``); a cell that
cannot run here (weights or corpus missing) holds the reason (status ``unavailable``).
"""

from __future__ import annotations

import errno
import json
import os
import platform
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from .errors import BenchError
from .faults import maybe_crash
from .tempfiles import TMP_TAG, remove_stale, temp_sibling

SCHEMA_VERSION = 1
PACKAGES = ("torch", "torchaudio", "transformers", "espnet-s3prl", "scikit-learn", "numpy", "captum",
            "espeakng-loader", "speech-embedding-bench", "ray")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` to ``path`` through a temporary sibling (:mod:`harness.tempfiles`) and ``os.replace``.

    A reader sees either the old file or the complete new one, never a partial write. Disk full
    and permission errors become a BenchError naming the file, the cause and the fix; the
    temporary is removed, so nothing is left half-written. Temporaries of this file left by a
    killed process are removed after a successful write.
    """
    path = Path(path)
    tmp = temp_sibling(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for open()
    except OSError as e:
        raise io_error(path, e) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=False, default=_json_default)
            f.flush()
            os.fsync(f.fileno())
        maybe_crash("result_write")
        os.replace(tmp, path)
    except OSError as e:
        _unlink_quietly(tmp)
        raise io_error(path, e) from None
    except BaseException:
        _unlink_quietly(tmp)
        raise
    remove_stale(path.parent, prefix=f".{path.name}{TMP_TAG}")


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


def check_writable(folders: dict[str, Path]) -> None:
    """Create each folder and write and remove a probe file in it; one BenchError naming every
    folder that cannot be written (``folders``: setting name -> path), before any work starts."""
    problems = []
    for setting, folder in folders.items():
        probe = temp_sibling(folder / "write-probe")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
            os.unlink(probe)
        except OSError as e:
            env = ENV_OF_PATH.get(setting, "")
            problems.append(f"  - paths.{setting} = {folder}: {os_error_reason(e)} ({e.strerror or e}"
                            + (f" at {e.filename}" if e.filename else "") + "). Fix its permissions or point "
                            f"paths.{setting}" + (f" (or {env})" if env else "") + " at a writable folder.")
    if problems:
        raise BenchError("these folders cannot be written, so nothing was started:\n" + "\n".join(problems))


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


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON at ``path``, or None when it is absent or unreadable (a torn file is never trusted)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def result_path(results_dir: Path, *, profile: str, upstream: str, downstream: str, language: str, seed: int) -> Path:
    return results_dir / profile / upstream / downstream / language / f"seed{seed}.json"


def iter_results(results_dir: Path, profile: str) -> Iterator[dict[str, Any]]:
    """Every readable result file of ``profile`` (sweeps and other side files excluded)."""
    base = results_dir / profile
    if not base.is_dir():
        return
    for p in sorted(base.rglob("seed*.json")):
        data = read_json(p)
        if data is not None and data.get("schema") == SCHEMA_VERSION:
            data["_path"] = str(p)
            yield data


def environment(device: str = "cpu") -> dict[str, Any]:
    versions = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    env: dict[str, Any] = {"python": sys.version.split()[0], "platform": platform.platform(),
                           "machine": platform.machine(), "cpu_count": os.cpu_count(), "packages": versions,
                           "device": device}
    try:
        import torch

        env["torch_threads"] = torch.get_num_threads()
        if device.startswith("cuda") and torch.cuda.is_available():
            env["device_name"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return env
