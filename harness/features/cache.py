"""The feature cache: one upstream pass per (card + revision, audio set, feature recipe).

An entry stores what every later step needs, in float16:

- ``pooled_<window>.f16``: per utterance and per layer, the mean over time of the features
  (``full`` = whole utterance, ``w5`` = first 5 s ...), shape [N, L, D];
- ``frames_L<ii>.f16``: the frame sequences of the layers that sequence heads use, all
  utterances concatenated, shape [sum T_i, D], with ``offsets`` [N + 1] in ``meta.json``;
- optionally ``moments_L<ii>.f64`` [2, D] and ``moments.json``: the float64 sum and sum of
  squares of some utterances' frames (:class:`FrameMoments`).

Derived entries (``<key>.<name>`` beside the main entry, :mod:`harness.features.frames`) have
the same format without pooled vectors.

Writing: the entry is written into a temporary folder, then renamed; a ``COMPLETE`` marker (the
last file written) records every file's size and BLAKE2 checksum. A folder without the marker is
never read. Reading verifies sizes and checksums once per process; a truncated or corrupted entry
is reported with a warning, removed and recomputed.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..identity import file_checksum, short_hash
from ..tempfiles import HOST, owner_of, pid_alive, temp_sibling

MARKER = "COMPLETE"
FORMAT_VERSION = 1


class CacheCorruptWarning(UserWarning):
    pass


@dataclass(frozen=True)
class FeatureRecipe:
    """How features are pooled and chunked (the sample rate and granularity follow from the card).

    ``frame_layers`` is not part of the recipe: an entry may be extended with more layers (see
    :func:`harness.features.extract.ensure_features`)."""

    pool_windows_s: tuple[float | None, ...] = (None, 5.0)
    max_chunk_s: float = 30.0
    # the upstream sees only the first N s of each utterance (a downstream's input_window_s)
    input_window_s: float | None = None
    # the forward's precision on CUDA (a profile's extract_dtype): card, float32 or bf16
    extract_dtype: str = "card"

    def key_dict(self) -> dict[str, Any]:
        """What keys an entry; a field added after entries were first keyed
        (:data:`ADDED_RECIPE_FIELDS`) appears only when set away from its default, so older entries
        stay valid."""
        fields = {k: v for k, v in asdict(self).items() if ADDED_RECIPE_FIELDS.get(k, _NO_DEFAULT) != v}
        return {"v": FORMAT_VERSION, **fields}

    def autocast_bf16(self, card_bf16: bool) -> bool:
        """Whether a CUDA forward runs under bf16 autocast."""
        return card_bf16 if self.extract_dtype == "card" else self.extract_dtype == "bf16"


_NO_DEFAULT = object()
ADDED_RECIPE_FIELDS: dict[str, Any] = {"input_window_s": None, "extract_dtype": "card"}


def window_name(window_s: float | None) -> str:
    return "full" if window_s is None else f"w{window_s:g}"


def entry_key(card_identity: dict[str, Any], audio_fingerprint: str, recipe: FeatureRecipe) -> str:
    return short_hash({"card": card_identity, "audio": audio_fingerprint, "recipe": recipe.key_dict()}, n=20)


@dataclass
class EntryMeta:
    ids: list[str]
    num_layers: int
    hidden_size: int
    frame_counts: list[int]  # frames per utterance (rows of frames_L*)
    frame_layers: list[int]
    pool_windows: list[str]
    frame_rate_hz: float
    granularity: str
    skipped: dict[str, str] = field(default_factory=dict)  # id -> reason (not in ids)
    card: dict[str, Any] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=dict)
    audio_fingerprint: str = ""
    audio_seconds: float = 0.0
    extract_seconds: float = 0.0
    forward_seconds: float = 0.0  # of extract_seconds, inside the upstream's forward
    batch_s: float | None = None  # padded audio seconds per forward (0: one utterance at a time)
    upstream_forward_calls: int = 0
    created: float = 0.0

    @property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.frame_counts, dtype=np.int64)])


class FrameMoments:
    """Per frame layer, the sum and sum of squares (float64) of the stored (float16) frames of some
    utterances, and their frame count: the statistics a head standardises with
    (:meth:`harness.probe.train.FeatureSet.stats`), without keeping those frames."""

    def __init__(self, layers: Sequence[int], hidden_size: int):
        self.sums = {layer: np.zeros((2, hidden_size), np.float64) for layer in layers}
        self.frames = 0
        self.items = 0

    def add(self, frames_by_layer: Sequence[np.ndarray]) -> None:
        for layer, acc in self.sums.items():
            x = np.asarray(frames_by_layer[layer], dtype=np.float16).astype(np.float64)
            acc[0] += x.sum(0)
            acc[1] += (x**2).sum(0)
        self.frames += int(frames_by_layer[0].shape[0])
        self.items += 1

    def write(self, folder: Path) -> None:
        for layer, acc in self.sums.items():
            acc.tofile(folder / f"moments_L{layer:02d}.f64")
        (folder / "moments.json").write_text(json.dumps({"frames": self.frames, "items": self.items,
                                                         "layers": sorted(self.sums)}))


def stats_from_moments(total: np.ndarray, total_sq: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) float32 per dimension from float64 sums over ``count`` rows; a dimension with
    std below 1e-5 gets std 1 (the formula of :meth:`harness.probe.train.FeatureSet.stats`)."""
    n = max(count, 1)
    mean = total / n
    std = np.sqrt(np.maximum(total_sq / n - mean**2, 0.0))
    return mean.astype(np.float32), np.where(std < 1e-5, 1.0, std).astype(np.float32)


class FeatureStore:
    """A complete cache entry, opened read-only (arrays are memory-mapped)."""

    _verified: set[tuple[str, float]] = set()

    def __init__(self, path: Path, meta: EntryMeta, marker: dict[str, Any]):
        self.path = path
        self.meta = meta
        self.marker = marker
        self._index = {u: i for i, u in enumerate(meta.ids)}
        self._offsets = meta.offsets

    # ---------------------------------------------------------------- reading
    @property
    def ids(self) -> list[str]:
        return self.meta.ids

    def index_of(self, ids: Iterable[str]) -> np.ndarray:
        return np.array([self._index[u] for u in ids], dtype=np.int64)

    def __contains__(self, utt_id: object) -> bool:
        return utt_id in self._index

    def pooled(self, *, layer: int | Sequence[int], window_s: float | None = None) -> np.ndarray:
        """[N, D] float16 mean-pooled features of ``layer`` (rows in ``ids`` order); a sequence
        of layers gives them stacked, [N, L, D] (the layer modes)."""
        name = window_name(window_s)
        arr = np.memmap(self.path / f"pooled_{name}.f16", dtype=np.float16, mode="r",
                        shape=(len(self.meta.ids), self.meta.num_layers, self.meta.hidden_size))
        return np.asarray(arr[:, layer if isinstance(layer, int) else list(layer), :])

    def has_frames(self, layer: int) -> bool:
        return layer in self.meta.frame_layers

    def frames(self, *, layer: int) -> tuple[np.ndarray, np.ndarray]:
        """(frames [sum T, D] float16 memmap, offsets [N + 1]) of ``layer``."""
        if layer not in self.meta.frame_layers:
            raise KeyError(f"layer {layer} frames are not in cache entry {self.path.name} "
                           f"(stored: {self.meta.frame_layers})")
        total = int(self._offsets[-1])
        arr = np.memmap(self.path / f"frames_L{layer:02d}.f16", dtype=np.float16, mode="r",
                        shape=(total, self.meta.hidden_size))
        return arr, self._offsets

    def sequences(self, ids: Sequence[str], *, layer: int) -> list[np.ndarray]:
        """Frame sequences [T_i, D] (float16 copies) of ``ids``."""
        arr, off = self.frames(layer=layer)
        return [np.array(arr[off[i]: off[i + 1]]) for i in self.index_of(ids)]

    def gather(self, ids: Sequence[str], *, layer: int | Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """The frames of ``ids`` concatenated (one float16 copy, [sum T, D]) and their offsets
        [len(ids) + 1]; a sequence of layers gives them stacked, [sum T, L, D] (the layer modes)."""
        if not isinstance(layer, int):
            return self._gather_layers(ids, list(layer))
        arr, off = self.frames(layer=layer)
        rows = self.index_of(ids)
        lengths = (off[rows + 1] - off[rows]) if len(rows) else np.zeros(0, np.int64)
        out_off = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
        out = np.empty((int(out_off[-1]), self.meta.hidden_size), np.float16)
        for j, i in enumerate(rows):
            out[out_off[j]: out_off[j + 1]] = arr[off[i]: off[i + 1]]
        return out, out_off

    def _gather_layers(self, ids: Sequence[str], layers: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """[sum T, L, D]: filled layer by layer, so the peak is the result plus one layer's rows."""
        rows = self.index_of(ids)
        off = self._offsets
        lengths = (off[rows + 1] - off[rows]) if len(rows) else np.zeros(0, np.int64)
        out_off = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
        out = np.empty((int(out_off[-1]), len(layers), self.meta.hidden_size), np.float16)
        for k, layer in enumerate(layers):
            arr, _ = self.frames(layer=layer)
            for j, i in enumerate(rows):
                out[out_off[j]: out_off[j + 1], k] = arr[off[i]: off[i + 1]]
        return out, out_off

    def has_moments(self, layer: int) -> bool:
        info_path = self.path / "moments.json"
        return info_path.is_file() and layer in json.loads(info_path.read_text())["layers"]

    def moments(self, *, layer: int) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) [D] float32 of ``layer``'s frames over the utterances the entry was asked to
        summarise (``moment_ids`` of :func:`harness.features.extract.extract`)."""
        info_path = self.path / "moments.json"
        info = json.loads(info_path.read_text()) if info_path.is_file() else {"layers": []}
        if layer not in info["layers"]:
            raise KeyError(f"cache entry {self.path.name} holds no frame moments of layer {layer} "
                           f"(it has: {info['layers']})")
        acc = np.fromfile(self.path / f"moments_L{layer:02d}.f64", dtype=np.float64).reshape(2, -1)
        return stats_from_moments(acc[0], acc[1], int(info["frames"]))

    @property
    def bytes_on_disk(self) -> int:
        return sum(int(v["bytes"]) for v in self.marker["files"].values())

    # ---------------------------------------------------------------- opening
    @classmethod
    def open(cls, path: Path, *, verify: bool = True) -> FeatureStore | None:
        """The entry at ``path``, or None when it is absent, incomplete or corrupt (corrupt: warned, removed)."""
        marker_path = path / MARKER
        if not marker_path.is_file():
            return None
        try:
            marker = json.loads(marker_path.read_text())
            meta = EntryMeta(**json.loads((path / "meta.json").read_text()))
        except (OSError, ValueError, TypeError) as e:
            _discard(path, f"unreadable marker or meta ({e})")
            return None
        stamp = (str(path), marker_path.stat().st_mtime)
        if verify and stamp not in cls._verified:
            problem = _verify(path, marker)
            if problem:
                _discard(path, problem)
                return None
            cls._verified.add(stamp)
        return cls(path, meta, marker)


def _verify(path: Path, marker: dict[str, Any]) -> str:
    for name, info in marker.get("files", {}).items():
        p = path / name
        if not p.is_file():
            return f"{name} is missing"
        size = p.stat().st_size
        if size != info["bytes"]:
            return f"{name} has {size} bytes, the completion marker says {info['bytes']} (truncated?)"
        if file_checksum(p) != info["blake2"]:
            return f"{name} does not match its checksum (corrupted)"
    return ""


def _discard(path: Path, reason: str) -> None:
    warnings.warn(f"feature cache entry {path} is invalid: {reason}; it will be recomputed",
                  CacheCorruptWarning, stacklevel=3)
    trash = path.with_name(f".{path.name}.trash-{uuid.uuid4().hex[:8]}")
    try:
        os.replace(path, trash)
        shutil.rmtree(trash, ignore_errors=True)
    except OSError:
        shutil.rmtree(path, ignore_errors=True)


class EntryWriter:
    """Streams one entry into a temporary folder; :meth:`commit` makes it visible atomically."""

    def __init__(self, final_path: Path, *, num_layers: int, hidden_size: int, frame_layers: Sequence[int],
                 pool_windows: Sequence[float | None], expected_rows: int):
        self.final_path = final_path
        final_path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = temp_sibling(final_path)
        self.tmp.mkdir()
        self.num_layers, self.hidden_size = num_layers, hidden_size
        self.frame_layers = sorted(set(frame_layers))
        self.windows = [window_name(w) for w in pool_windows]
        self._frame_files = {layer: open(self.tmp / f"frames_L{layer:02d}.f16", "wb") for layer in self.frame_layers}
        self._pooled = {w: np.zeros((expected_rows, num_layers, hidden_size), np.float32) for w in self.windows}
        self.ids: list[str] = []
        self.frame_counts: list[int] = []

    def add(self, utt_id: str, *, frames_by_layer: Sequence[np.ndarray], pooled_by_window: dict[str, np.ndarray]) -> None:
        """Append one utterance: ``frames_by_layer[l]`` is [T, D]; ``pooled_by_window[w]`` is [L, D]."""
        row = len(self.ids)
        self.ids.append(utt_id)
        self.frame_counts.append(int(frames_by_layer[0].shape[0]))
        for layer, f in self._frame_files.items():
            f.write(np.ascontiguousarray(frames_by_layer[layer], dtype=np.float16).tobytes())
        for w in self.windows:
            self._pooled[w][row] = pooled_by_window[w]

    def commit(self, meta: EntryMeta, *, moments: FrameMoments | None = None) -> FeatureStore:
        for f in self._frame_files.values():
            f.close()
        if moments is not None:
            moments.write(self.tmp)
        n = len(self.ids)
        for w, arr in self._pooled.items():
            arr[:n].astype(np.float16).tofile(self.tmp / f"pooled_{w}.f16")
        meta.ids, meta.frame_counts = list(self.ids), list(self.frame_counts)
        meta.frame_layers, meta.pool_windows = self.frame_layers, self.windows
        meta.created = time.time()
        (self.tmp / "meta.json").write_text(json.dumps(asdict(meta)))
        files = {}
        for p in sorted(self.tmp.iterdir()):
            files[p.name] = {"bytes": p.stat().st_size, "blake2": file_checksum(p)}
            with open(p, "rb+") as fh:
                os.fsync(fh.fileno())
        marker_tmp = self.tmp / (MARKER + ".tmp")
        marker_tmp.write_text(json.dumps({"files": files, "format": FORMAT_VERSION}))
        os.replace(marker_tmp, self.tmp / MARKER)
        _replace_dir(self.tmp, self.final_path)
        store = FeatureStore.open(self.final_path, verify=False)
        if store is None:  # pragma: no cover - we just wrote it
            raise RuntimeError(f"cache entry {self.final_path} vanished after commit")
        return store

    def abort(self) -> None:
        """Remove the temporary folder (also when closing fails: a full disk cannot flush)."""
        for f in self._frame_files.values():
            try:
                f.close()
            except OSError:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)


def _replace_dir(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst``; an existing ``dst`` is moved aside first and then deleted."""
    if dst.exists():
        trash = dst.with_name(f".{dst.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(dst, trash)
        os.replace(src, dst)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(src, dst)


def clean_stale_temp(folder: Path, *, older_than_s: float = 3600) -> int:
    """Remove temporary entry folders left by killed runs (older than ``older_than_s``)."""
    removed = 0
    if not folder.is_dir():
        return 0
    now = time.time()
    for p in folder.iterdir():
        if p.name.startswith(".") and (".tmp-" in p.name or ".old-" in p.name or ".trash-" in p.name):
            host, pid = owner_of(p.name)
            dead_here = host == HOST and pid is not None and not pid_alive(pid)
            if dead_here or now - p.stat().st_mtime > older_than_s:
                shutil.rmtree(p, ignore_errors=True)
                removed += 1
    return removed

