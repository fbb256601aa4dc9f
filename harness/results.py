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
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from .errors import BenchError

SCHEMA_VERSION = 1
PACKAGES = ("torch", "torchaudio", "transformers", "espnet-s3prl", "scikit-learn", "numpy", "captum",
            "espeakng-loader", "speech-embedding-bench", "ray")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    A reader sees either the old file or the complete new one, never a partial write. Disk full
    and permission errors become a BenchError naming the folder; nothing is left half-written.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise _io_error(path, e) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=False, default=_json_default)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise _io_error(path, e) from None
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _io_error(path: Path, e: OSError) -> BenchError:
    if e.errno == errno.ENOSPC:
        why = "the disk is full"
    elif e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        why = "permission denied (or read-only file system)"
    else:
        why = e.strerror or str(e)
    return BenchError(f"cannot write {path}: {why}. Free space or fix permissions of {path.parent} "
                      "(or point paths.results / BENCH_RESULTS elsewhere); no result was corrupted.")


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
