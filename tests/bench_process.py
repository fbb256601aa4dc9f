"""`bench` in a fresh process on an isolated workspace: what the fault, bad-input and security suites drive.

A :class:`BenchSandbox` is a copy of the repository's YAML workspace plus separate folders for
every path the harness writes (cache, results, models, user cards, leaderboards, given through
the ``BENCH_*`` variables benchmark.yaml reads), a private ``HOME`` and an empty working
directory. Commands run as ``python -m harness.cli --root <workspace> ...`` with the repository
on ``PYTHONPATH``, offline.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import REPO, copy_workspace

OUTPUTS = {"cache": "BENCH_CACHE", "results": "BENCH_RESULTS", "models": "BENCH_MODELS",
           "cards": "BENCH_CARDS", "leaderboards": "BENCH_LEADERBOARDS"}


@dataclass
class BenchSandbox:
    base: Path
    root: Path
    home: Path
    cwd: Path
    paths: dict[str, Path]

    @classmethod
    def create(cls, base: Path, *, workspace: bool = True) -> BenchSandbox:
        """Folders under ``base``; output folders are *not* created (the harness must create them)."""
        base.mkdir(parents=True, exist_ok=True)
        root = copy_workspace(base / "ws") if workspace else base / "ws"
        home, cwd = base / "home", base / "cwd"
        home.mkdir(exist_ok=True)
        cwd.mkdir(exist_ok=True)
        return cls(base=base, root=root, home=home, cwd=cwd,
                   paths={k: base / "out" / k for k in OUTPUTS})

    @property
    def results(self) -> Path:
        return self.paths["results"]

    @property
    def cache(self) -> Path:
        return self.paths["cache"]

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_") and k != "MPLCONFIGDIR"}
        env.update({var: str(self.paths[name]) for name, var in OUTPUTS.items()})
        env.update(HOME=str(self.home), PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                   PYTHONDONTWRITEBYTECODE="1", XDG_CACHE_HOME=str(self.home / ".cache"))
        env.update(extra)
        return env

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "harness.cli", "--root", str(self.root), *args]

    def run(self, *args: str, timeout: float = 600, fault: str | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``bench ARGS``; with ``fault`` the process gets ``BENCH_FAULT=fault`` (see harness.faults)."""
        extra = dict(env or {})
        if fault:
            extra["BENCH_FAULT"] = fault
        return subprocess.run(self.command(*args), cwd=self.cwd, env=self.env(**extra), capture_output=True,
                              text=True, timeout=timeout, check=False,
                              start_new_session=True)  # a fault kills the run's process group, never pytest

    def copy_outputs_from(self, other: BenchSandbox, *names: str) -> None:
        """Copy some of ``other``'s output folders (mtimes kept, so fingerprints still match)."""
        for name in names:
            shutil.copytree(other.paths[name], self.paths[name], copy_function=shutil.copy2, symlinks=True)


def killed(proc: subprocess.CompletedProcess[str]) -> bool:
    return proc.returncode == -signal.SIGKILL


def describe(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"


# --------------------------------------------------------------------------- results
def result_files(results: Path) -> dict[str, Path]:
    """Cell result files (``seed*.json`` with a schema version, 1 or 2) by their path relative to ``results``."""
    out = {}
    for p in sorted(results.rglob("seed*.json")):
        try:
            data = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and ("schema" in data or "schema_version" in data):
            out[p.relative_to(results).as_posix()] = p
    return out


def outcome(data: dict[str, Any]) -> dict[str, Any]:
    """What must not depend on how a run went (kills, reruns, a fresh process): status, metrics,
    predictions, the chosen layer, the training curve and the 10%-capacity dimensions and scores."""
    capacity = (data.get("analyses") or {}).get("capacity") or {}
    training = data.get("training") or {}
    return {
        "status": data.get("status"),
        "metrics": data.get("metrics"),
        "dev_metrics": data.get("dev_metrics"),
        "predictions": data.get("predictions"),
        "classes": data.get("classes"),
        "layer": (data.get("layer") or {}).get("chosen"),
        "history": [{k: v for k, v in h.items()} for h in training.get("history", [])] if isinstance(training, dict) else None,
        "capacity": {k: capacity.get(k) for k in ("dims", "metrics")} if capacity else None,
        "items": (data.get("data") or {}).get("items"),
    }


def outcomes(results: Path) -> dict[str, dict[str, Any]]:
    return {rel: outcome(json.loads(p.read_text())) for rel, p in result_files(results).items()}


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` (hidden ones too): relative path -> (size, mtime in ns)."""
    out = {}
    for p in folder.rglob("*"):
        if p.is_file() or p.is_symlink():
            st = p.lstat()
            out[p.relative_to(folder).as_posix()] = (st.st_size, st.st_mtime_ns)
    return out


def temporaries(folder: Path) -> list[str]:
    """Leftover temporaries of atomic writes (``.<name>.tmp-...`` files or folders) under ``folder``."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if ".tmp-" in p.name)
