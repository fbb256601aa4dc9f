"""The folders a run writes to: checked writable before any work, cleared of dead temporaries.

Library functions take the folders as paths (``{"results": Path, ...}``, setting name -> path);
the CLI decides which settings a command writes. Nothing here changes the process environment:
:func:`matplotlib_env` says what a ``bench`` process should set, and the CLI sets it.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import BenchError
from .tempfiles import ENV_OF_PATH, os_error_reason, remove_stale, temp_sibling

OUTPUT_SETTINGS = ("cache", "results", "models", "user_cards", "leaderboards")  # paths.* a run writes to


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


def prepare_outputs(folders: dict[str, Path]) -> list[Path]:
    """Check that every output folder can be written (one clear error naming each one that cannot,
    before any work) and remove the temporaries that killed runs left in them; return those."""
    check_writable(folders)
    removed: list[Path] = []
    for folder in folders.values():
        removed += remove_stale(folder, recursive=True)
    return removed


def matplotlib_env(cache_dir: Path) -> dict[str, str]:
    """``{"MPLCONFIGDIR": <cache>/matplotlib}`` unless the environment sets it already: a ``bench``
    process points matplotlib's font cache there so that a run writes nothing under ``$HOME``."""
    if os.environ.get("MPLCONFIGDIR"):
        return {}
    return {"MPLCONFIGDIR": str(cache_dir / "matplotlib")}
