"""Fixtures for the matrix tests: the smoke-size synthetic corpus generated once per session,
test profiles and cards written into the temporary workspace, and snapshots of folders.

Test profiles run the real stages on the smoke corpus with the analyses that do not matter for
the matrix's bookkeeping switched off, so that a cell takes a second or two on a busy 2-core CPU.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from harness.config import Workspace

FAST_ANALYSES = {"capacity": False, "inference_time": False, "overlap": False, "umap": False}
TINY_HEAR = "tests.hear_tiny"
REPO = Path(__file__).resolve().parents[1]



class _PlainDumper(yaml.SafeDumper):
    """Writes shared objects out in full: the harness's loader rejects anchors and aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_yaml(data: Any) -> str:
    """``data`` as plain YAML (no anchors, keys in insertion order)."""
    return yaml.dump(data, Dumper=_PlainDumper, sort_keys=False, allow_unicode=True)

def smoke_synth() -> dict[str, Any]:
    """The smoke profile's synthetic-corpus options, as the repository's benchmark.yaml sets them."""
    raw = yaml.safe_load((REPO / "benchmark.yaml").read_text(encoding="utf-8"))
    return dict(raw["profiles"]["smoke"]["synth"])


def seed_corpus(cache_dir: Path, synth_corpora: Path) -> None:
    """Copy the session's synthetic corpus into ``cache_dir`` (where the harness looks for it)."""
    shutil.copytree(synth_corpora, cache_dir / "corpora" / "synth", dirs_exist_ok=True)


def add_profile(root: Path, name: str, **fields: Any) -> None:
    """Add profile ``name`` to ``root/benchmark.yaml``: the smoke corpus, English, seed 0, fast
    analyses, then ``fields``; its downstreams get their smoke-size recipe for it (without one,
    the emotion head would be the paper's 4 x 512 BiLSTM)."""
    path = root / "benchmark.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    profile = {"data": "synth", "synth": smoke_synth(), "languages": ["en"], "seeds": [0],
               "analyses": dict(FAST_ANALYSES)}
    profile.update(fields)
    raw["profiles"][name] = profile
    path.write_text(dump_yaml(raw), encoding="utf-8")
    for downstream in profile.get("downstreams", []):
        ds_path = root / "downstreams" / f"{downstream}.yaml"
        ds = yaml.safe_load(ds_path.read_text(encoding="utf-8"))
        if "smoke" in ds.get("profiles", {}):
            ds["profiles"][name] = ds["profiles"]["smoke"]
            ds_path.write_text(dump_yaml(ds), encoding="utf-8")


def write_card(root: Path, name: str, *, args: dict[str, Any], display: str, adapter: str = "hear",
               revision: str = "1") -> Path:
    """A card ``upstreams/cards/<name>.yaml`` in the workspace at ``root``."""
    card = {"adapter": adapter, "args": args, "revision": revision,
            "meta": {"display": display, "family": "test", "group": "other", "languages": []},
            "test": {"min_input_s": 0.05}}
    path = root / "upstreams" / "cards" / f"{name}.yaml"
    path.write_text(dump_yaml(card), encoding="utf-8")
    return path


def tiny_hear_card(root: Path, name: str, *, display: str, **args: Any) -> Path:
    """A card running :mod:`tests.hear_tiny` through the hear adapter (``args``: model_file, load_kwargs)."""
    return write_card(root, name, args={"module": TINY_HEAR, **args}, display=display)


def edit_yaml(path: Path, **changes: Any) -> None:
    """Set top-level keys of a YAML file (dict values are merged one level deep)."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key, value in changes.items():
        raw[key] = {**raw[key], **value} if isinstance(value, dict) and isinstance(raw.get(key), dict) else value
    path.write_text(dump_yaml(raw), encoding="utf-8")


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder``: relative path -> (size, mtime in ns)."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def file_bytes(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder``: relative path -> its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def workspace(root: Path) -> Workspace:
    """A fresh Workspace object (benchmark.yaml is read again, environment variables included)."""
    return Workspace(root)


LIBRI_SPEAKERS = {  # speaker -> (sex, subset): two of each sex to train on, one of each to tune and test
    "14": ("F", "train-clean-360"), "16": ("F", "train-clean-360"), "60": ("M", "train-clean-360"),
    "61": ("M", "train-clean-360"), "84": ("F", "dev-clean"), "174": ("M", "dev-clean"),
    "121": ("F", "test-clean"), "1089": ("M", "test-clean"),
}
LIBRI_TEXTS = ("the cat sat on the mat", "wake me up at seven")


def write_tiny_librispeech(root: Path) -> Path:
    """A LibriSpeech tree in the OpenSLR layout (FLAC, SPEAKERS.TXT, transcripts): 8 speakers x 2 utterances."""
    from tests.corpora_fixtures import write_speech, write_text

    lines = [";ID  |SEX| SUBSET           |MINUTES| NAME"]
    for spk, (sex, subset) in LIBRI_SPEAKERS.items():
        lines.append(f"{spk} | {sex} | {subset} | 1.00 | Reader {spk}")
        folder = root / subset / spk / "100"
        voice = "en+f2" if sex == "F" else "en+m3"
        for i, text in enumerate(LIBRI_TEXTS):
            write_speech(folder / f"{spk}-100-{i:04d}.flac", text, voice=voice)
        write_text(folder / f"{spk}-100.trans.txt",
                   "".join(f"{spk}-100-{i:04d} {t.upper()}\n" for i, t in enumerate(LIBRI_TEXTS)))
    write_text(root / "SPEAKERS.TXT", "\n".join(lines) + "\n")
    return root
