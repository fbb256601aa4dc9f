"""Result files: one JSON per matrix cell, written atomically, keyed by the cell's identity.

Layout: ``<results>/<profile>/<upstream>/<downstream>/<language>/seed<k>.json``. A file whose
``key`` matches the cell's key and whose status is ``ok`` means the cell is finished; a rerun
skips it. A failed cell's file holds its error and traceback (status ``failed``); a cell that
cannot run here (weights or corpus missing) holds the reason (status ``unavailable``).

Files are written with :func:`harness.tempfiles.write_json_atomic`; this module locates and reads them.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from .tempfiles import (
    write_json_atomic as write_json_atomic,  # the one atomic JSON writer, re-exported
)

SCHEMA_VERSION = 1
PACKAGES = ("torch", "torchaudio", "transformers", "espnet-s3prl", "scikit-learn", "numpy", "captum",
            "espeakng-loader", "speech-embedding-bench", "ray")


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
    """Every readable result file of ``profile`` as written (version 1, ``"schema": 1``, or version 2,
    ``"schema_version": 2``; sweeps and other side files excluded). Typed reading is
    :func:`harness.run.record.read_result`."""
    base = results_dir / profile
    if not base.is_dir():
        return
    for p in sorted(base.rglob("seed*.json")):
        data = read_json(p)
        if data is not None and (data.get("schema") == SCHEMA_VERSION or data.get("schema_version") == 2):
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
