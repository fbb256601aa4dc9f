"""The corpus cache (parent process): one folder per language and generator config, made atomically.

espeak-ng's output depends on the calls made before in the same process, so the corpus is
generated in a fresh Python process (``python -m harness.synth``); the result goes to
``root/<language>-<hash of the generator config>/`` (written into a temp folder, marked complete,
renamed atomically); a folder without the marker is removed and generated again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..data import Dataset, Utterance, Word, read_manifest_rows, resolve_inside
from ..errors import BenchError, DataError
from ..faults import maybe_crash
from ..schema import SynthSpec
from ..tempfiles import TMP_TAG, remove_stale, temp_sibling
from .languages import check_language
from .options import generator_config, validate_options
from .write import MANIFEST_NAME, META_NAME

COMPLETE_MARKER = ".complete"
GENERATE_TIMEOUT_S = 1800.0


def load_synth_corpus(*, root: Path, language: str, options: Mapping[str, Any]) -> Dataset:
    """The synthetic corpus of ``language``, generated into ``root`` on first use.

    ``options`` are :class:`harness.schema.SynthSpec` fields. The corpus lives in
    ``root/<language>-<config hash>/``; it is generated in a fresh process only when that folder
    has no completion marker (a half-written folder is removed first), then read from its
    manifest. Raises ConfigError for bad options, BenchError when generation fails.
    """
    spec = validate_options(options)
    check_language(language)
    folder = corpus_folder(root=Path(root), language=language, spec=spec)
    if not (folder / COMPLETE_MARKER).is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        with _exclusive(folder.parent / f".{folder.name}.lock"):  # parallel workers: one generates, the others wait
            if not (folder / COMPLETE_MARKER).is_file():
                _generate_atomically(folder=folder, language=language, spec=spec)
    return read_synth_manifest(folder / MANIFEST_NAME, language=language)


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """An advisory lock (flock) held for the duration of the block; released if the process dies."""
    import fcntl

    with open(lock_path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def synth_corpus_exists(*, root: Path, language: str, options: Mapping[str, Any]) -> bool:
    """Whether :func:`load_synth_corpus` would read ``language``'s corpus for ``options`` without
    generating it (its folder is complete). Generates nothing (``bench matrix --dry-run`` asks)."""
    folder = corpus_folder(root=Path(root), language=language, spec=validate_options(options))
    return (folder / COMPLETE_MARKER).is_file()


def corpus_folder(*, root: Path, language: str, spec: SynthSpec) -> Path:
    config = json.dumps(generator_config(language=language, spec=spec), sort_keys=True)
    return root / f"{language}-{hashlib.sha256(config.encode()).hexdigest()[:12]}"


def _generate_atomically(*, folder: Path, language: str, spec: SynthSpec) -> None:
    """Generate into a temp folder in a fresh process, mark it complete, rename it into place."""
    if folder.exists():
        shutil.rmtree(folder)  # no marker: a half-written folder is never read
    folder.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(folder.parent, prefix=f".{folder.name}{TMP_TAG}")
    tmp = temp_sibling(folder)
    t0 = time.perf_counter()
    try:
        _run_generator(out_dir=tmp, language=language, spec=spec)
        maybe_crash("synth")
        (tmp / COMPLETE_MARKER).write_text(time.strftime("%Y-%m-%dT%H:%M:%S") + "\n", encoding="utf-8")
        try:
            os.rename(tmp, folder)
        except OSError:
            if not (folder / COMPLETE_MARKER).is_file():
                raise  # nobody else finished it: a real failure
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    meta = json.loads((folder / META_NAME).read_text(encoding="utf-8"))
    print(f"synth: generated {language} corpus in {time.perf_counter() - t0:.1f} s: {meta['utterances']} "
          f"utterances, {meta['total_audio_s'] / 60:.1f} min of audio, {meta['bytes_on_disk'] / 1e6:.1f} MB "
          f"in {folder}", file=sys.stderr)


def _run_generator(*, out_dir: Path, language: str, spec: SynthSpec) -> None:
    package_parent = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH", "")) if p)
    cmd = [sys.executable, "-m", "harness.synth", "--language", language, "--out", str(out_dir),
           "--options", json.dumps(spec.model_dump(mode="json"))]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=GENERATE_TIMEOUT_S, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise BenchError(f"generating the synthetic {language} corpus failed (exit {proc.returncode}) with "
                         f"{' '.join(cmd)}:\n{tail}")


def read_synth_manifest(path: Path, *, language: str) -> Dataset:
    """The Dataset of a generated corpus folder's manifest (a bad row is a DataError: delete the folder)."""
    path = Path(path)
    root = path.parent
    utterances = []
    for line, row, error in read_manifest_rows(path):
        if row is None:
            raise DataError(f"{path}:{line}: {error}; delete {root} to generate the corpus again")
        try:
            utterances.append(Utterance(
                id=row["id"], path=str(resolve_inside(root, row["audio"])), split=row["split"],
                language=row["language"], speaker=row["speaker"], labels=dict(row["labels"]), text=row["text"],
                words=tuple(Word(w, float(s), float(e)) for w, s, e in row["words"]),
                duration_s=float(row["duration"])))
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"{path}:{line}: malformed row ({type(e).__name__}: {e}); delete {root} "
                            "to generate the corpus again") from None
    return Dataset(name=f"synth-{language}", language=language, root=root, utterances=tuple(utterances))
