"""Run an upstream over an audio set once and store the features in the cache.

Utterances run longest first, one per forward on CPU and batched by total padded audio duration
on a GPU (see :func:`batch_seconds`); long utterances are cut into chunks of at most
``max_chunk_s`` (attention cost grows with the square of the length) and their frames
concatenated. Word-level upstreams get one row per aligned word.
Bad audio items are skipped and counted with their reason; they never stop the run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config.adapters import upstream_identity
from ..data import Dataset, Utterance, audio_info, load_audio
from ..errors import AudioError, BenchError
from ..faults import maybe_crash
from ..progress import make_progress
from ..tempfiles import io_error
from .cache import (
    EntryMeta,
    EntryWriter,
    FeatureRecipe,
    FeatureStore,
    FrameMoments,
    clean_stale_temp,
    entry_key,
    window_name,
)

if TYPE_CHECKING:
    import torch

    from ..config.snapshot import ResolvedCard
    from ..protocols import PathSource

FrameLayers = Iterable[int] | str | Callable[[int], Iterable[int]]

# Padded audio seconds per batch on an accelerator when the profile does not say.
GPU_BATCH_S = 64.0

# Process-wide counters: how many upstream passes (cache misses) and forward calls happened.
STATS: dict[str, int] = {"passes": 0, "forward_calls": 0, "cache_hits": 0}


@dataclass(frozen=True)
class _Row:
    utt_index: int
    start: int  # sample offsets inside the utterance's audio
    stop: int


def batch_seconds(batch_s: float | None, device: str) -> float:
    """Padded audio seconds per extraction batch; 0 means one utterance (or chunk) per forward.

    Unset (None), a GPU batches :data:`GPU_BATCH_S` seconds and a CPU runs each utterance alone:
    on CPU the matrices of one utterance already keep every core busy, and a padded batch only
    adds work (padding, batched relative-position bias and attention masks). Measured with
    ``benchmarks/extraction.py --batch-s auto,64``: WavLM-Large over 40 utterances on 2 cores,
    23 s one at a time against 36 s in 64 s batches (WavLM-Base+: 9.1 s against 10.8 s).
    """
    if batch_s is not None:
        return float(batch_s)
    return 0.0 if device.startswith("cpu") else GPU_BATCH_S


def entry_path(workspace: PathSource, card: ResolvedCard, dataset: Dataset, key: str):  # noqa: ANN201
    return workspace.path("cache") / "features" / card.name / dataset.name / key


def lookup(workspace: PathSource, card: ResolvedCard, dataset: Dataset, *, language: str | None,
           recipe: FeatureRecipe | None = None) -> tuple[str, FeatureStore | None]:
    """(entry key, the complete entry or None) without running anything."""
    recipe = recipe or FeatureRecipe()
    key = entry_key(upstream_identity(workspace, card, language=language), dataset.fingerprint, recipe)
    return key, FeatureStore.open(entry_path(workspace, card, dataset, key))


def ensure_features(*, workspace: PathSource, card: ResolvedCard, dataset: Dataset, language: str | None,
                    frame_layers: FrameLayers = "all", recipe: FeatureRecipe | None = None,
                    device: str = "cpu", batch_s: float | None = None, progress: bool = True,
                    upstream: torch.nn.Module | None = None) -> FeatureStore:
    """The cache entry for (card, dataset, recipe), computed now if it is missing or lacks frame layers.

    ``frame_layers``: the layers whose frame sequences must be stored: "all", indices, or a
    function of the upstream's number of layers returning indices. Pooled vectors are always
    stored for every layer. ``batch_s``: see :func:`batch_seconds`.
    """
    recipe = recipe or FeatureRecipe()
    key, store = lookup(workspace, card, dataset, language=language, recipe=recipe)
    path = entry_path(workspace, card, dataset, key)
    if store is not None:
        wanted = _resolve_layers(frame_layers, store.meta.num_layers)
        if all(store.has_frames(layer) for layer in wanted):
            STATS["cache_hits"] += 1
            return store
        frame_layers = sorted(set(store.meta.frame_layers) | set(wanted))
    clean_stale_temp(path.parent)
    from .upstream import build_upstream

    module: Any = upstream if upstream is not None else build_upstream(card, language=language, workspace=workspace,
                                                                     device=device)
    layers = _resolve_layers(frame_layers, int(module.num_layers))
    return extract(module=module, dataset=dataset, path=path, frame_layers=layers, recipe=recipe,
                   card_identity=card.identity, device=device, batch_s=batch_s, progress=progress,
                   label=f"{card.name} / {dataset.name}", bf16=recipe.autocast_bf16(card.card.bf16))


def derived_path(base: FeatureStore, name: str) -> Path:
    """Where the derived entry ``name`` of the main entry ``base`` lives (beside it)."""
    return base.path.with_name(f"{base.path.name}.{name}")


def ensure_derived(*, workspace: PathSource, card: ResolvedCard, dataset: Dataset, language: str | None,
                   base: FeatureStore, name: str, layers: list[int], store_ids: set[str],
                   moment_ids: set[str] | None = None, device: str = "cpu", batch_s: float | None = None,
                   progress: bool = False, upstream: torch.nn.Module | None = None) -> FeatureStore:
    """A frames-only entry derived from the main entry ``base`` (same card and audio set, ``base``'s
    recipe -- chunk length, input window, forward precision -- without pooled vectors): the frames of ``layers`` for ``store_ids``, and with ``moment_ids`` the
    float64 moments of those utterances' frames. Computed now when missing, or when it lacks a
    layer (then the union of its layers and ``layers`` is extracted again, as the main entry does).
    ``name`` keys what the entry holds: the caller names the id sets in it."""
    path = derived_path(base, name)
    store = FeatureStore.open(path)
    if store is not None:
        have_moments = moment_ids is None or all(store.has_moments(layer) for layer in layers)
        if all(store.has_frames(layer) for layer in layers) and have_moments:
            STATS["cache_hits"] += 1
            return store
        layers = sorted(set(store.meta.frame_layers) | set(layers))
    clean_stale_temp(path.parent)
    from .upstream import build_upstream

    wanted = set(store_ids) | set(moment_ids or ())
    subset = dataset.subset(u for u in dataset.utterances if u.id in wanted)
    recipe = derived_recipe(base)
    # under a forked RNG: this extraction happens between a sweep's heads, whose initialisation and
    # dropout must draw the same numbers as when the frames came from the main entry (building a
    # module draws initial weights; some encoders draw a layerdrop number per layer even in eval mode)
    with rng_untouched(device):
        module: Any = upstream if upstream is not None else build_upstream(card, language=language,
                                                                         workspace=workspace, device=device)
        return extract(module=module, dataset=subset, path=path, frame_layers=layers, recipe=recipe,
                       card_identity=card.identity, device=device, batch_s=batch_s, progress=progress,
                       label=f"{card.name} / {dataset.name} / {name}", bf16=recipe.autocast_bf16(card.card.bf16),
                       store_ids=set(store_ids), moment_ids=set(moment_ids) if moment_ids is not None else None)


def derived_recipe(base: FeatureStore) -> FeatureRecipe:
    """The recipe of an entry derived from ``base`` (and of a stream standing in for its frames):
    ``base``'s chunk length, input window and forward precision, without pooled vectors, so that
    its frames are those ``base`` would have stored."""
    recipe = base.meta.recipe
    return FeatureRecipe(pool_windows_s=(), max_chunk_s=float(recipe.get("max_chunk_s", 30.0)),
                         input_window_s=recipe.get("input_window_s"),
                         extract_dtype=str(recipe.get("extract_dtype", "card")))


def rng_untouched(device: str) -> Any:
    """A context in which torch's global generators (CPU, and ``device``'s when it is CUDA) may be
    drawn from without changing what they give afterwards."""
    import torch

    cuda = [torch.device(device).index or 0] if device.startswith("cuda") else []
    return torch.random.fork_rng(devices=cuda)


def _rows_for(utt_index: int, utt: Utterance, num_samples: int, *, granularity: str, sample_rate: int,
              max_chunk_samples: int, min_samples: int) -> list[_Row]:
    if granularity == "word":
        if not utt.words:
            raise AudioError(f"{utt.id}: no word alignments (a word-level upstream needs them)")
        rows = []
        for w in utt.words:
            start = max(int(round((w.start_s - utt.start_s) * sample_rate)), 0)
            stop = min(int(round((w.end_s - utt.start_s) * sample_rate)), num_samples)
            if start >= num_samples:  # an alignment past the end of the audio
                continue
            if stop - start < min_samples:  # too short to give one frame: pad around its centre
                mid = (start + stop) // 2
                start = max(mid - min_samples // 2, 0)
                stop = min(start + min_samples, num_samples)
            rows.append(_Row(utt_index, start, stop))
        if not rows:
            raise AudioError(f"{utt.id}: every word alignment lies past the end of the audio")
        return rows
    if granularity == "utterance" or num_samples <= max_chunk_samples:
        return [_Row(utt_index, 0, num_samples)]
    n_chunks = math.ceil(num_samples / max_chunk_samples)
    bounds = np.linspace(0, num_samples, n_chunks + 1).round().astype(int)
    return [_Row(utt_index, int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def extract(*, module: Any, dataset: Dataset, path: Any, frame_layers: Iterable[int] | str,
            recipe: FeatureRecipe, card_identity: dict[str, Any], device: str = "cpu", batch_s: float | None = None,
            progress: bool = True, label: str = "", bf16: bool = True, store_ids: set[str] | None = None,
            moment_ids: set[str] | None = None) -> FeatureStore:
    """One upstream pass over ``dataset``; writes and returns the cache entry at ``path``.

    On CUDA the forward runs under bf16 autocast when ``bf16`` (the card's ``bf16`` flag, or the
    profile's ``extract_dtype``); features are stored in float16 either way. With
    ``recipe.input_window_s`` each utterance's audio is cut to its first N seconds before the
    forward (the upstream never sees the rest). ``store_ids``: only these utterances are written
    (None: all). ``moment_ids``: the frames of these utterances (as stored, float16) are summed
    per frame layer into the entry's moments (:meth:`FeatureStore.moments`)."""
    import torch

    sr = int(module.sample_rate)
    granularity = getattr(module, "granularity", "frame")
    num_layers, hidden = int(module.num_layers), int(module.hidden_size)
    layers = list(range(num_layers)) if frame_layers == "all" else sorted(set(frame_layers))  # type: ignore[arg-type,type-var]
    if any(not 0 <= layer < num_layers for layer in layers):
        raise BenchError(f"frame layers {layers} out of range for an upstream with {num_layers} layers")
    min_samples = int(getattr(module, "min_input_samples", 400))
    max_chunk = int(recipe.max_chunk_s * sr)
    frames_per_s = sr / max(int(module.downsample_rate), 1)

    utts = sorted(dataset.utterances, key=lambda u: u.id)
    skipped: dict[str, str] = {}
    durations = []
    for u in utts:
        try:
            d = u.duration_s if u.duration_s else _header_duration(u)
        except AudioError as e:
            skipped[u.id] = str(e)
            d = -1.0
        durations.append(d)
    # longest first: the first forward sets the allocator's high-water mark and every later, shorter
    # one fits in the memory it freed (shortest first, glibc's heap kept growing: WavLM-Base+ on the
    # embedded corpus peaked at 3.7 GB resident instead of 1.7 GB, same time)
    order = [i for i in np.argsort(durations, kind="stable") if durations[i] >= 0][::-1]

    try:
        writer = EntryWriter(path, num_layers=num_layers, hidden_size=hidden, frame_layers=layers,
                             pool_windows=recipe.pool_windows_s, expected_rows=len(order))
    except OSError as e:
        raise io_error(Path(path), e, setting="cache") from None
    t0 = time.perf_counter()
    audio_s = 0.0
    forward_calls = 0
    forward_s = 0.0  # inside the upstream's forward (the rest is audio reading, pooling and writing)
    batch_s = batch_seconds(batch_s, device)
    batch_samples = int(batch_s * sr)
    pending: list[tuple[_Row, np.ndarray]] = []
    outputs: dict[int, list[tuple[int, list[np.ndarray]]]] = {}  # utt -> [(row start, per-layer frames)]
    rows_left: dict[int, int] = {}
    prog = make_progress(enabled=progress)
    autocast = device.startswith("cuda") and bf16
    moments = FrameMoments(layers, hidden) if moment_ids is not None else None

    def run_batch(batch: list[tuple[_Row, np.ndarray]]) -> None:
        nonlocal forward_calls, forward_s
        f0 = time.perf_counter()
        per_row = forward_rows(module, [w for _, w in batch], device=device, autocast=autocast,
                               granularity=granularity)
        forward_s += time.perf_counter() - f0
        forward_calls += 1
        for (row, _), frames in zip(batch, per_row, strict=True):
            outputs.setdefault(row.utt_index, []).append((row.start, frames))
            rows_left[row.utt_index] -= 1
            if rows_left[row.utt_index] == 0:
                finish(row.utt_index)

    def finish(ui: int) -> None:
        frames = assemble(outputs.pop(ui))
        utt = utts[ui]
        if moments is not None and utt.id in moment_ids:  # type: ignore[operator]
            moments.add(frames)
        if store_ids is not None and utt.id not in store_ids:
            return  # read for the statistics only
        pooled = {}
        for w in recipe.pool_windows_s:
            n = _frames_in_window(utt, frames[0].shape[0], window_s=w, granularity=granularity,
                                  frames_per_s=frames_per_s)
            pooled[window_name(w)] = np.stack([f[:n].mean(axis=0) for f in frames])
        writer.add(utt.id, frames_by_layer=frames, pooled_by_window=pooled)
        maybe_crash("extract")

    try:
        # weights behind a parametrization (weight norm of the positional convolution in wav2vec2-style
        # models) are computed once for the whole pass instead of once per forward
        with prog, torch.nn.utils.parametrize.cached():
            task = prog.add_task(f"extract {label}", total=len(order), info="")
            for ui in order:
                utt = utts[ui]
                try:
                    wav = load_audio(utt.path, sample_rate=sr, start_s=utt.start_s, end_s=utt.end_s)
                    if recipe.input_window_s is not None:  # the upstream sees only the first N s
                        wav = wav[: int(round(recipe.input_window_s * sr))]
                    if len(wav) < min_samples:
                        raise AudioError(f"{utt.id}: {len(wav) / sr:.3f} s is shorter than the upstream's minimum "
                                         f"input ({min_samples / sr:.3f} s)")
                    rows = _rows_for(ui, utt, len(wav), granularity=granularity, sample_rate=sr,
                                     max_chunk_samples=max_chunk, min_samples=min_samples)
                except AudioError as e:
                    skipped[utt.id] = str(e)
                    prog.advance(task)
                    continue
                audio_s += len(wav) / sr
                rows_left[ui] = len(rows)
                for row in rows:
                    seg = wav[row.start: row.stop]
                    if pending and _batch_full(pending, seg, row, batch_samples=batch_samples,
                                               granularity=granularity):
                        run_batch(pending)
                        pending = []
                    pending.append((row, seg))
                elapsed = time.perf_counter() - t0
                prog.update(task, advance=1, info=f"{audio_s:.0f} s audio, RTF {elapsed / max(audio_s, 1e-9):.3f}")
            if pending:
                run_batch(pending)
    except OSError as e:  # the cache disk is full, read-only ...: nothing half-written stays
        writer.abort()
        raise io_error(Path(path), e, setting="cache") from None
    except BaseException:
        writer.abort()
        raise
    elapsed = time.perf_counter() - t0
    STATS["passes"] += 1
    meta = EntryMeta(ids=[], num_layers=num_layers, hidden_size=hidden, frame_counts=[], frame_layers=layers,
                     pool_windows=[], frame_rate_hz=frames_per_s, granularity=granularity, skipped=skipped,
                     card=card_identity, recipe=recipe.key_dict(), audio_fingerprint=dataset.fingerprint,
                     audio_seconds=audio_s, extract_seconds=elapsed, forward_seconds=forward_s,
                     batch_s=batch_s, upstream_forward_calls=forward_calls)
    if not writer.ids:
        writer.abort()
        reasons = "; ".join(list(skipped.values())[:3])
        raise BenchError(f"no utterance of {dataset.name} could be processed ({len(skipped)} skipped: {reasons})")
    try:
        return writer.commit(meta, moments=moments)
    except OSError as e:
        writer.abort()
        raise io_error(Path(path), e, setting="cache") from None


def forward_rows(module: Any, wavs: list[np.ndarray], *, device: str, autocast: bool,
                 granularity: str) -> list[list[np.ndarray]]:
    """One forward over zero-padded ``wavs``: per row, per layer, the valid frames [T, D] (float32
    on the CPU). The cache's extraction and the streaming heads share it, so both see the same
    frames for the same batch."""
    import torch

    lens = [len(w) for w in wavs]
    padded = np.zeros((len(wavs), max(lens)), np.float32)
    for i, w in enumerate(wavs):
        padded[i, : len(w)] = w
    x = torch.from_numpy(padded).to(device)
    lengths = torch.tensor(lens, dtype=torch.long, device=device)
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
        out = module(x, lengths)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    STATS["forward_calls"] += 1
    out_lens = out.lengths.tolist()
    per_layer = [h.float().cpu().numpy() for h in out.layers]
    rows = []
    for i in range(len(wavs)):
        n = max(int(out_lens[i]), 1) if granularity == "frame" else 1
        rows.append([h[i, :n] for h in per_layer])
    return rows


def assemble(parts: list[tuple[int, list[np.ndarray]]]) -> list[np.ndarray]:
    """An utterance's per-layer frames from its rows ``(start sample, per-layer frames)``, in order."""
    parts = sorted(parts, key=lambda p: p[0])
    return [np.concatenate([p[1][layer] for p in parts], axis=0) for layer in range(len(parts[0][1]))]


def _batch_full(pending: list[tuple[_Row, np.ndarray]], seg: np.ndarray, row: _Row, *, batch_samples: int,
                granularity: str) -> bool:
    """Whether ``seg`` must start a new batch. With ``batch_samples`` 0 (one utterance per forward)
    a word-level upstream still gets all the words of one utterance in one forward (they are
    short: one forward per word would be thousands of tiny calls), and a chunked utterance one
    chunk per forward."""
    if batch_samples <= 0:
        return granularity != "word" or pending[-1][0].utt_index != row.utt_index
    longest = max([len(seg)] + [len(w) for _, w in pending])
    return longest * (len(pending) + 1) > batch_samples


def _resolve_layers(frame_layers: FrameLayers, num_layers: int) -> list[int]:
    if frame_layers == "all":
        return list(range(num_layers))
    if callable(frame_layers):
        return sorted(set(frame_layers(num_layers)))
    return sorted(set(frame_layers))  # type: ignore[arg-type,type-var]


def _header_duration(u: Utterance) -> float:
    frames, sr, _ = audio_info(u.path)
    end = u.end_s if u.end_s is not None else frames / sr
    return max(end - u.start_s, 0.0)


def _frames_in_window(utt: Utterance, n_frames: int, *, window_s: float | None, granularity: str,
                      frames_per_s: float) -> int:
    if window_s is None or granularity == "utterance":
        return n_frames
    if granularity == "word":
        inside = sum(1 for w in utt.words if w.start_s - utt.start_s < window_s)
        return max(min(inside, n_frames), 1)
    return max(min(int(math.ceil(window_s * frames_per_s)), n_frames), 1)
