"""Word segments cut from alignments, their mfcc13 frames, and the segment bank used for training.

Word times (:class:`~harness.data.Word` ``start_s`` / ``end_s``) are seconds in the audio FILE,
like the utterance's own ``start_s``: in the utterance's samples (sample 0 = ``utterance.start_s``)
a word starts at ``(word.start_s - utterance.start_s) * 16000`` (the same arithmetic as the
harness's extraction step). A word shorter than one 25 ms window is widened around its centre to
one window, as extraction does, so that training and extraction see the same segments.

The small models see 13 MFCCs per 10 ms frame (25 ms window, :class:`upstreams.mfcc.MFCCUpstream`
with ``n_mfcc=13, deltas=False, context=0``), computed on the word's own audio and cut to the first
80 frames. Frames are computed in batches: with ``center=False`` and ``log_mels=True`` a frame only
sees the samples under its window, so zero padding a batch never changes a row's valid frames
(tested), and a word's features are the same whether it is alone or in a batch.

A :class:`SegmentBank` holds the frames of every usable word of one split (flat float32 array plus
offsets), the normalised word, and where the word came from (utterance id, position), so that
training can find a word's neighbours (Speech2vec) or other occurrences (Siamese). It is cached in
memory and on disk, keyed by the dataset fingerprint, a hash of the split's alignments and the
feature recipe.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..data import Utterance, load_audio
from ..errors import AudioError
from ..identity import text_hash
from ..tempfiles import atomic_file

if TYPE_CHECKING:
    import torch

    from ..data import Dataset

SAMPLE_RATE = 16000
N_MFCC = 13
MAX_FRAMES = 80
WIN_SAMPLES = 400  # 25 ms at 16 kHz
HOP_SAMPLES = 160  # 10 ms at 16 kHz
MIN_SEGMENT_SAMPLES = WIN_SAMPLES  # one MFCC frame
FEATURE_RECIPE = {"n_mfcc": N_MFCC, "win_samples": WIN_SAMPLES, "hop_samples": HOP_SAMPLES,
                  "n_mels": 40, "log_mels": True, "center": False, "max_frames": MAX_FRAMES, "version": 1}

_EDGE_PUNCTUATION = re.compile(r"^[\W_]+|[\W_]+$", re.UNICODE)


def normalise_word(text: str) -> str:
    """The word's identity for vocabularies: lower case, punctuation stripped at both ends."""
    return _EDGE_PUNCTUATION.sub("", text.strip().lower())


def samples_for_frames(n_frames: int) -> int:
    """Samples needed for ``n_frames`` MFCC frames (25 ms window, 10 ms hop, no centring)."""
    return WIN_SAMPLES + (n_frames - 1) * HOP_SAMPLES


def frames_for_samples(num_samples: int) -> int:
    return 0 if num_samples < WIN_SAMPLES else 1 + (num_samples - WIN_SAMPLES) // HOP_SAMPLES


def word_segments(utterance: Utterance, wav_16k: np.ndarray, *,
                  min_samples: int = MIN_SEGMENT_SAMPLES) -> list[np.ndarray]:
    """One array of 16 kHz samples per word of ``utterance.words`` (same order and count).

    ``wav_16k`` is the utterance's audio (sample 0 = ``utterance.start_s`` in the file). Word
    bounds are clipped to the audio; a word shorter than ``min_samples`` is widened around its
    centre (within the audio); a word that starts past the end of the audio gives an empty array.
    """
    n = len(wav_16k)
    out = []
    for w in utterance.words:
        start = max(int(round((w.start_s - utterance.start_s) * SAMPLE_RATE)), 0)
        stop = min(int(round((w.end_s - utterance.start_s) * SAMPLE_RATE)), n)
        if start >= n:
            out.append(wav_16k[:0])
            continue
        if stop - start < min_samples:
            mid = (start + stop) // 2
            start = max(min(mid - min_samples // 2, n - min_samples), 0)
            stop = min(start + min_samples, n)
        out.append(wav_16k[start:stop])
    return out


@cache
def _mfcc13_transform() -> Any:
    from upstreams.mfcc import MFCCUpstream

    return MFCCUpstream(n_mfcc=N_MFCC, deltas=False, context=0).mfcc.eval()


def mfcc13_frames(wavs: Sequence[np.ndarray | torch.Tensor], *, max_frames: int = MAX_FRAMES,
                  batch_size: int = 256) -> list[torch.Tensor]:
    """[T_i] samples -> [min(T'_i, max_frames), 13] float32 frames, one per input, in input order.

    Inputs shorter than one window give a [0, 13] tensor. Rows are computed in batches of similar
    lengths; the result does not depend on the batching (see the module docstring).
    """
    import torch

    transform = _mfcc13_transform()
    cap = samples_for_frames(max_frames)
    rows = [torch.as_tensor(np.asarray(w, dtype=np.float32) if not isinstance(w, torch.Tensor) else w)
            .float().reshape(-1)[:cap] for w in wavs]
    out: list[torch.Tensor] = [torch.zeros(0, N_MFCC) for _ in rows]
    order = sorted((i for i, r in enumerate(rows) if r.numel() >= WIN_SAMPLES), key=lambda i: rows[i].numel())
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            longest = rows[idx[-1]].numel()
            batch_BT = torch.zeros(len(idx), longest)
            for b, i in enumerate(idx):
                batch_BT[b, : rows[i].numel()] = rows[i]
            feats_BFT = transform(batch_BT)  # [B, 13, T']
            for b, i in enumerate(idx):
                n = frames_for_samples(rows[i].numel())
                out[i] = feats_BFT[b, :, :n].transpose(0, 1).contiguous()
    return out


def pad_to_frames(frames: Sequence[torch.Tensor], *, max_frames: int = MAX_FRAMES) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut or zero-pad [T_i, F] frames to a fixed [B, max_frames, F] batch; lengths [B] (>= 1).

    A row with no frames becomes one zero frame (length 1) so that packing never sees length 0;
    callers filter such rows out beforehand when it matters.
    """
    import torch

    n_feats = frames[0].shape[1] if frames else N_MFCC
    x_BTF = torch.zeros(len(frames), max_frames, n_feats)
    lengths_B = torch.ones(len(frames), dtype=torch.long)
    for i, f in enumerate(frames):
        n = min(int(f.shape[0]), max_frames)
        if n:
            x_BTF[i, :n] = f[:n]
            lengths_B[i] = n
    return x_BTF, lengths_B


# --------------------------------------------------------------------------- segment bank
@dataclass(frozen=True)
class SegmentBank:
    """The mfcc13 frames of every usable word segment of one split, plus where each came from.

    ``frames_flat`` [sum(lengths), 13] float32, ``offsets`` [N] int64 and ``lengths`` [N] int64
    (each <= max_frames). ``utterance_ids`` / ``positions``: the word's utterance and its index in
    ``utterance.words``. ``skipped``: counts of what was left out and why.
    """

    words: tuple[str, ...]
    utterance_ids: tuple[str, ...]
    positions: np.ndarray
    lengths: np.ndarray
    offsets: np.ndarray
    frames_flat: np.ndarray
    skipped: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.words)

    def frames(self, i: int) -> np.ndarray:
        start = int(self.offsets[i])
        return self.frames_flat[start : start + int(self.lengths[i])]

    def batch(self, indices: Sequence[int], *, max_frames: int = MAX_FRAMES) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames of ``indices`` as a zero-padded [B, max_frames, 13] batch and lengths [B]."""
        import torch

        return pad_to_frames([torch.from_numpy(self.frames(int(i))) for i in indices], max_frames=max_frames)

    def occurrences(self) -> dict[str, list[int]]:
        """Word -> indices of its segments, in bank order."""
        out: dict[str, list[int]] = {}
        for i, w in enumerate(self.words):
            out.setdefault(w, []).append(i)
        return out

    def neighbours(self) -> tuple[np.ndarray, np.ndarray]:
        """(previous, next) segment index of each segment in the same utterance; -1 when absent.

        Neighbours are the adjacent words of the utterance (positions p - 1 and p + 1); a neighbour
        that was skipped (too short, unreadable) counts as absent.
        """
        where = {(u, int(p)): i for i, (u, p) in enumerate(zip(self.utterance_ids, self.positions, strict=True))}
        prev = np.array([where.get((u, int(p) - 1), -1) for u, p in zip(self.utterance_ids, self.positions, strict=True)],
                        dtype=np.int64)
        nxt = np.array([where.get((u, int(p) + 1), -1) for u, p in zip(self.utterance_ids, self.positions, strict=True)],
                       dtype=np.int64)
        return prev, nxt

    def vocabulary_stats(self) -> dict[str, int]:
        counts = [len(v) for v in self.occurrences().values()]
        return {"segments": len(self), "unique_words": len(counts), "frequency_1": sum(c == 1 for c in counts),
                "frequency_ge_2": sum(c >= 2 for c in counts), "frames": int(self.lengths.sum())}

    def save(self, path: str | Path) -> None:
        """Write atomically as an ``.npz`` without pickles."""
        path = Path(path)
        with atomic_file(path, "wb", wrap_errors=False) as f:
            np.savez(f, words=np.array(self.words, dtype=str), utterance_ids=np.array(self.utterance_ids, dtype=str),
                     positions=self.positions, lengths=self.lengths, offsets=self.offsets,
                     frames_flat=self.frames_flat, skipped_keys=np.array(list(self.skipped), dtype=str),
                     skipped_values=np.array(list(self.skipped.values()), dtype=np.int64))

    @classmethod
    def load(cls, path: str | Path) -> SegmentBank:
        with np.load(path, allow_pickle=False) as z:
            return cls(words=tuple(str(w) for w in z["words"]), utterance_ids=tuple(str(u) for u in z["utterance_ids"]),
                       positions=z["positions"], lengths=z["lengths"], offsets=z["offsets"],
                       frames_flat=z["frames_flat"],
                       skipped=dict(zip((str(k) for k in z["skipped_keys"]), (int(v) for v in z["skipped_values"]),
                                        strict=True)))

    def subset(self, indices: Sequence[int]) -> SegmentBank:
        """The bank restricted to ``indices`` (frames copied; neighbours recomputed from positions)."""
        idx = [int(i) for i in indices]
        lengths = self.lengths[idx]
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if idx else np.zeros(0, np.int64)
        flat = (np.concatenate([self.frames(i) for i in idx]) if idx
                else np.zeros((0, self.frames_flat.shape[1]), np.float32))
        return SegmentBank(words=tuple(self.words[i] for i in idx), utterance_ids=tuple(self.utterance_ids[i] for i in idx),
                           positions=self.positions[idx], lengths=lengths, offsets=offsets, frames_flat=flat,
                           skipped=dict(self.skipped))


def utterance_audio(u: Utterance) -> np.ndarray:
    """The utterance's 16 kHz samples (its segment of the file when ``start_s`` / ``end_s`` are set)."""
    return load_audio(u.path, sample_rate=SAMPLE_RATE, start_s=u.start_s, end_s=u.end_s)


def build_segment_bank(utterances: Iterable[Utterance], *, max_frames: int = MAX_FRAMES,
                       progress: bool = False, description: str = "word segments") -> SegmentBank:
    """Cut every word of ``utterances`` and compute its mfcc13 frames.

    Words outside the audio (or shorter than one 25 ms window even after widening: the whole
    utterance is shorter), words that normalise to an empty string and utterances whose audio
    cannot be read are skipped and counted in ``skipped``.
    """
    utterances = sorted(utterances, key=lambda u: u.id)
    skipped = {"unreadable_utterances": 0, "words_too_short": 0, "words_empty": 0, "utterances_without_words": 0}
    wavs: list[np.ndarray] = []
    words: list[str] = []
    utt_ids: list[str] = []
    positions: list[int] = []
    for u in _track(utterances, progress=progress, description=f"cutting {description}"):
        if not u.words:
            skipped["utterances_without_words"] += 1
            continue
        try:
            audio = utterance_audio(u)
        except AudioError:
            skipped["unreadable_utterances"] += 1
            continue
        for pos, (w, seg) in enumerate(zip(u.words, word_segments(u, audio), strict=True)):
            word = normalise_word(w.word)
            if not word:
                skipped["words_empty"] += 1
            elif len(seg) < MIN_SEGMENT_SAMPLES:
                skipped["words_too_short"] += 1
            else:
                wavs.append(seg)
                words.append(word)
                utt_ids.append(u.id)
                positions.append(pos)
    frames = mfcc13_frames(wavs, max_frames=max_frames)
    lengths = np.array([f.shape[0] for f in frames], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if len(frames) else np.zeros(0, np.int64)
    flat = (np.concatenate([f.numpy() for f in frames]).astype(np.float32) if frames
            else np.zeros((0, N_MFCC), np.float32))
    return SegmentBank(words=tuple(words), utterance_ids=tuple(utt_ids), positions=np.array(positions, dtype=np.int64),
                       lengths=lengths, offsets=offsets, frames_flat=flat, skipped=skipped)


def alignment_hash(utterances: Iterable[Utterance]) -> str:
    """Identity of the word alignments of ``utterances`` (the dataset fingerprint covers the audio only)."""
    h = hashlib.sha256()
    for u in sorted(utterances, key=lambda u: u.id):
        h.update(u.id.encode())
        for w in u.words:
            h.update(f"|{w.word}:{w.start_s:.4f}:{w.end_s:.4f}".encode())
        h.update(b"\n")
    return h.hexdigest()[:16]


def bank_key(dataset: Dataset, split: str, *, max_frames: int = MAX_FRAMES) -> str:
    recipe = dict(FEATURE_RECIPE, max_frames=max_frames)
    text = f"{dataset.fingerprint}|{alignment_hash(dataset.split(split))}|{split}|{sorted(recipe.items())}"
    return text_hash(text, 16)


_MEMORY: dict[tuple[str, str], SegmentBank] = {}


def segment_bank(dataset: Dataset, split: str, *, cache_dir: str | Path | None = None,
                 max_frames: int = MAX_FRAMES, progress: bool = False) -> SegmentBank:
    """The :class:`SegmentBank` of ``dataset``'s ``split``, from memory, disk, or computed.

    On disk: ``<cache_dir>/<key>.npz`` where the key hashes the dataset fingerprint, the split's
    alignments and the feature recipe; written atomically (a half-written file is never read).
    """
    key = bank_key(dataset, split, max_frames=max_frames)
    mem_key = (key, str(cache_dir))
    if mem_key in _MEMORY:
        return _MEMORY[mem_key]
    path = Path(cache_dir) / f"{dataset.language}_{split}_{key}.npz" if cache_dir is not None else None
    if path is not None and path.is_file():
        bank = SegmentBank.load(path)
    else:
        bank = build_segment_bank(dataset.split(split), max_frames=max_frames, progress=progress,
                                  description=f"{dataset.language} {split} words")
        if path is not None:
            bank.save(path)
    _MEMORY[mem_key] = bank
    return bank


def _track(items: Sequence[Any], *, progress: bool, description: str) -> Iterable[Any]:
    if not progress:
        return items
    from rich.progress import track

    return track(items, description=description, transient=True)
