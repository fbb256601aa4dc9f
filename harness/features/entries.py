"""The cache entries an (upstream, corpus) pair needs, as plain data: what the planner counts.

Nothing here reads audio or weights. :func:`entries_for` describes the entries a card's pass over a
corpus writes under a cache scheme, with their bytes; :func:`upstream_flops` counts the upstream's
FLOPs per second of audio from its architecture. The planner (:mod:`harness.matrix.plan`) adds
them up, orders them and checks them against a disk budget; the cache and the streaming heads
write and evict the entries these describe.

Schemes (:data:`SCHEMES`):

- ``all_candidates``: what :func:`harness.features.build.features_for` writes today, one entry
  per (card, corpus) with the pooled vectors of every layer (per pool window) and the frames of
  every layer any frame-level downstream of the profile may read
  (:func:`harness.probe.layers.frame_layers_for_profile`), for every utterance of the corpus;
- ``bounded`` (issue 17): the pooled entry, the frames of the sweep's candidate layers for the
  sweep's training subset (``sweep.fraction`` of train) and dev only (``sweep_frames``), then the
  frames of the chosen layer alone for train, dev and test (``chosen_frames``, one per frame-level
  downstream reading the corpus, computed once and shared by its seeds and analyses). A pair
  whose frames are streamed (``features: stream``) stores only the pooled entry.

Bytes: float16 everywhere (2 bytes a number), plus the entry's ``meta.json`` (ids and frame
counts, about :data:`META_BYTES_PER_UTTERANCE` bytes an utterance).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

EntryKind = Literal["pooled", "all_frames", "sweep_frames", "chosen_frames"]
Scheme = Literal["all_candidates", "bounded"]
SCHEMES: tuple[Scheme, ...] = ("all_candidates", "bounded")

BYTES_PER_NUMBER = 2  # float16
META_BYTES_PER_UTTERANCE = 48  # meta.json: the id in quotes, its frame count, separators
META_BYTES_FIXED = 4096  # meta.json's other fields and the COMPLETE marker
WORDS_PER_SECOND = 2.5  # word-level upstreams: one row per aligned word (conversational speech)
MAX_CHUNK_S = 30.0  # harness.features.cache.FeatureRecipe.max_chunk_s: attention never spans more

# wav2vec 2.0 / HuBERT / WavLM's CNN when a card's ``arch`` does not list it (transformers' defaults)
DEFAULT_CONV = {"conv_dim": [512] * 7, "conv_kernel": [10, 3, 3, 3, 3, 2, 2], "conv_stride": [5, 2, 2, 2, 2, 2, 2]}


@dataclass(frozen=True)
class SplitAudio:
    """One split of a corpus: seconds of audio and utterances."""

    seconds: float
    utterances: int


@dataclass(frozen=True)
class CorpusAudio:
    """A corpus as the planner sees it: per split seconds and utterances, and where they come from
    (``measured``: the corpus on this machine; ``published``: reference/corpus_sizes.yaml)."""

    name: str
    splits: Mapping[str, SplitAudio]
    source: Literal["measured", "published"]
    estimate: bool = False
    basis: str = ""
    longest_s: float | None = None  # the longest utterance (measured corpora; None: unknown)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.splits.values())

    @property
    def longest_chunk_s(self) -> float:
        """The longest audio one forward sees: the longest utterance cut at :data:`MAX_CHUNK_S`
        (the bound itself when the corpus is not on this machine)."""
        return min(self.longest_s, MAX_CHUNK_S) if self.longest_s else MAX_CHUNK_S

    @property
    def utterances(self) -> int:
        return sum(s.utterances for s in self.splits.values())

    @property
    def mean_utterance_s(self) -> float:
        return self.seconds / max(self.utterances, 1)

    def split(self, name: str) -> SplitAudio:
        return self.splits.get(name, SplitAudio(0.0, 0))


@dataclass(frozen=True)
class Arch:
    """What the planner needs of an upstream: layers, width, frame rate and granularity, and its
    FLOPs per second of audio (with the method that counted them)."""

    num_layers: int
    hidden_size: int
    frame_rate_hz: float
    granularity: str
    params: int
    flops_per_audio_s: float
    flops_method: str
    activation_bytes: int = 0  # the forward's activations over the corpus's longest chunk (RAM)
    activation_method: str = ""

    def frames_for(self, seconds: float) -> float:
        """Rows of a frames file for ``seconds`` of audio (words for word-level upstreams)."""
        rate = WORDS_PER_SECOND if self.granularity == "word" else self.frame_rate_hz
        return seconds * rate


@dataclass(frozen=True)
class EntrySpec:
    """One cache entry (or one part of an entry) the plan counts.

    ``layers``: the layers stored (pooled: all of them; ``(-1,)``: the layer the sweep will choose);
    ``audio_s`` / ``utterances``: the audio
    it covers; ``readers``: the jobs that read it (cell labels, ``sweep:<cell>`` for a layer sweep):
    an entry of frames is evicted when every one of them is finished. ``evictable``: False for
    pooled vectors (small, kept for the report and later cells)."""

    kind: EntryKind
    card: str
    corpus: str
    layers: tuple[int, ...]
    audio_s: float
    utterances: int
    bytes: int
    readers: tuple[str, ...] = ()
    evictable: bool = True
    why: str = ""

    def with_readers(self, readers: Sequence[str]) -> EntrySpec:
        from dataclasses import replace

        return replace(self, readers=tuple(readers))


@dataclass(frozen=True)
class FrameUse:
    """A frame-level downstream reading a (card, corpus) pair: its sweep candidates (empty when
    its layer comes from another cell or is fixed), its fixed layers, the sweep's training fraction,
    and the jobs that read it (sweep and cells)."""

    downstream: str
    candidates: tuple[int, ...]
    fixed_layers: tuple[int, ...] = ()
    sweep_fraction: float = 0.3
    sweep_readers: tuple[str, ...] = ()
    cell_readers: tuple[str, ...] = ()


@dataclass(frozen=True)
class PairEntries:
    """The entries of one (card, corpus) pair under a scheme, in the order they are written."""

    card: str
    corpus: str
    scheme: Scheme
    streamed: bool
    entries: tuple[EntrySpec, ...] = field(default_factory=tuple)

    @property
    def frame_bytes(self) -> int:
        return sum(e.bytes for e in self.entries if e.kind != "pooled")

    @property
    def pooled_bytes(self) -> int:
        return sum(e.bytes for e in self.entries if e.kind == "pooled")


# --------------------------------------------------------------------------- bytes
def pooled_bytes(arch: Arch, *, utterances: int, windows: int) -> int:
    """``pooled_<window>.f16`` files ([N, L, D] float16 each) and the entry's meta."""
    return (utterances * arch.num_layers * arch.hidden_size * BYTES_PER_NUMBER * windows
            + utterances * META_BYTES_PER_UTTERANCE + META_BYTES_FIXED)


def frames_bytes(arch: Arch, *, seconds: float, layers: int) -> int:
    """``frames_L<ii>.f16`` files of ``layers`` layers over ``seconds`` of audio ([T, D] float16 each)."""
    return int(arch.frames_for(seconds) * arch.hidden_size * BYTES_PER_NUMBER * layers)


def entries_for(*, card: str, corpus: CorpusAudio, arch: Arch, scheme: Scheme, windows: int,
                profile_frame_layers: Sequence[int], uses: Sequence[FrameUse], streamed: bool) -> PairEntries:
    """The entries a card's pass over ``corpus`` writes under ``scheme``.

    ``profile_frame_layers``: the ``all_candidates`` scheme's frame layers (the profile's, for every
    corpus); ``uses``: the frame-level downstreams reading this corpus (the ``bounded`` scheme
    stores frames for those only); ``streamed``: their heads run the upstream themselves (no frames)."""
    pooled = EntrySpec("pooled", card, corpus.name, tuple(range(arch.num_layers)), corpus.seconds, corpus.utterances,
                       pooled_bytes(arch, utterances=corpus.utterances, windows=windows), evictable=False,
                       why=f"pooled vectors of {arch.num_layers} layers x {windows} windows, every utterance")
    readers = tuple(r for u in uses for r in (*u.sweep_readers, *u.cell_readers))
    if scheme == "all_candidates":
        if not profile_frame_layers or streamed:
            return PairEntries(card, corpus.name, scheme, streamed, (pooled,))
        layers = tuple(profile_frame_layers)
        frames = EntrySpec("all_frames", card, corpus.name, layers, corpus.seconds, corpus.utterances,
                           frames_bytes(arch, seconds=corpus.seconds, layers=len(layers)), readers=readers,
                           why=f"frames of the profile's {len(layers)} frame layers, whole corpus (written "
                               "even when no frame-level downstream reads this corpus)")
        return PairEntries(card, corpus.name, scheme, streamed, (pooled, frames))
    out = [pooled]
    if not streamed:
        for use in uses:
            out += _bounded_frames(card, corpus, arch, use)
    return PairEntries(card, corpus.name, scheme, streamed, tuple(out))


def _bounded_frames(card: str, corpus: CorpusAudio, arch: Arch, use: FrameUse) -> list[EntrySpec]:
    out = []
    train, dev = corpus.split("train"), corpus.split("dev")
    if use.candidates:
        sweep_s = use.sweep_fraction * train.seconds + dev.seconds
        n = int(round(use.sweep_fraction * train.utterances)) + dev.utterances
        out.append(EntrySpec("sweep_frames", card, corpus.name, use.candidates, sweep_s, n,
                             frames_bytes(arch, seconds=sweep_s, layers=len(use.candidates)),
                             readers=use.sweep_readers,
                             why=f"{use.downstream}: {len(use.candidates)} candidate layers on "
                                 f"{use.sweep_fraction:g} of train + dev"))
    chosen = max(len(use.fixed_layers), 1)
    out.append(EntrySpec("chosen_frames", card, corpus.name, use.fixed_layers or (-1,), corpus.seconds,
                         corpus.utterances, frames_bytes(arch, seconds=corpus.seconds, layers=chosen),
                         readers=use.cell_readers,
                         why=f"{use.downstream}: the chosen layer on train, dev and test"))
    return out


# --------------------------------------------------------------------------- FLOPs
def upstream_flops(*, adapter: str, args: Mapping[str, Any], num_layers: int, hidden_size: int,
                   frame_rate_hz: float, params: int, granularity: str,
                   mean_utterance_s: float) -> tuple[float, str]:
    """(FLOPs per second of audio, how they were counted) for one forward pass, from the architecture.

    Counted: multiply-adds x 2 of every matrix product and convolution, attention's two products
    (context: the utterance, cut at :data:`MAX_CHUNK_S`). Not counted: norms, activations, softmax
    (a few percent). Whisper's ``padded30`` window encodes 30 s for every chunk, whatever its length.
    Checked against torch's FlopCounterMode on tiny real-format models (tests/test_plan.py)."""
    arch = dict(args.get("arch") or {})
    if adapter == "mfcc" or params == 0:
        return 0.0, "signal processing: no learned FLOPs (CPU time per audio second, see BENCHMARKS.md)"
    if adapter in ("hf", "s3prl") and ("conv_dim" in arch or arch.get("config_class", "").startswith(
            ("Wav2Vec2", "Hubert", "WavLM"))):
        return _ssl_flops(arch, num_layers=num_layers, hidden_size=hidden_size, frame_rate_hz=frame_rate_hz,
                          params=params, mean_utterance_s=mean_utterance_s)
    if adapter in ("whisper", "ct2_whisper") or arch.get("config_class") == "WhisperConfig":
        return _whisper_flops(arch, num_layers=num_layers, hidden_size=hidden_size, params=params,
                              mean_utterance_s=mean_utterance_s, window=str(args.get("window", "padded30")))
    rate = WORDS_PER_SECOND if granularity == "word" else frame_rate_hz
    return 2.0 * params * rate, "2 x parameters x output rate (dense approximation)"


def _ssl_flops(arch: Mapping[str, Any], *, num_layers: int, hidden_size: int, frame_rate_hz: float, params: int,
               mean_utterance_s: float) -> tuple[float, str]:
    dims = list(arch.get("conv_dim", DEFAULT_CONV["conv_dim"]))
    kernels = list(arch.get("conv_kernel", DEFAULT_CONV["conv_kernel"]))
    strides = list(arch.get("conv_stride", DEFAULT_CONV["conv_stride"]))
    rate, c_in, conv_flops, conv_params = 16000.0, 1, 0.0, 0
    for c_out, k, s in zip(dims, kernels, strides, strict=True):
        rate /= s
        conv_flops += 2.0 * c_in * c_out * k * rate
        conv_params += c_in * c_out * k
        c_in = c_out
    dense = 2.0 * max(params - conv_params, 0) * frame_rate_hz
    context = min(mean_utterance_s, MAX_CHUNK_S) * frame_rate_hz
    attention = 4.0 * hidden_size * context * frame_rate_hz * max(num_layers - 1, 0)
    return conv_flops + dense + attention, "architecture: CNN front end + 2 x other parameters x frame rate + attention"


def _whisper_flops(arch: Mapping[str, Any], *, num_layers: int, hidden_size: int, params: int,
                   mean_utterance_s: float, window: str) -> tuple[float, str]:
    mels = int(arch.get("num_mel_bins", 80))
    conv_params = mels * hidden_size * 3 + hidden_size * hidden_size * 3
    per_window_s = 2.0 * (mels * hidden_size * 3 * 100 + hidden_size * hidden_size * 3 * 50)
    per_window_s += 2.0 * max(params - conv_params - 1500 * hidden_size, 0) * 50
    if window == "padded30":
        context, encoded_s = 1500.0, math.ceil(max(mean_utterance_s, 1e-3) / 30.0) * 30.0
    else:
        context, encoded_s = min(mean_utterance_s, 30.0) * 50, mean_utterance_s
    attention = 4.0 * hidden_size * context * 50 * max(num_layers - 1, 0)
    scale = encoded_s / max(mean_utterance_s, 1e-3)
    how = "architecture: mel convolutions + 2 x encoder parameters x 50 Hz + attention"
    return (per_window_s + attention) * scale, how + (f", x{scale:.1f} for the padded 30 s window"
                                                       if scale > 1.01 else "")


def upstream_activation_bytes(*, adapter: str, args: Mapping[str, Any], num_layers: int, hidden_size: int,
                              frame_rate_hz: float, granularity: str, chunk_s: float) -> tuple[int, str]:
    """(bytes, how they were counted): the activations alive at the peak of one inference forward
    over ``chunk_s`` seconds of audio, float32, from the architecture.

    The peak is the larger of two moments of the pass (under inference mode each intermediate is
    freed once read, so they do not add up; torch's profiler on WavLM-Base+ shows this order):

    - a CNN front end (wav2vec 2.0 / HuBERT / WavLM): its first convolution's output twice (an
      input and an output alive at once), at 3,200 Hz x 512 channels the largest tensor of the
      front end; Whisper's first convolution at the mel rate likewise;
    - the encoder: every layer's hidden states (the harness asks for all of them) with one
      attention layer's scores, their scaled or masked copy and the softmax (3 x heads x
      frames^2; WavLM keeps its relative position bias and a gated copy beside them: 5 x).

    Not counted: what the process keeps beside the live tensors (freed blocks under the
    allocator's mmap threshold, :mod:`harness.allocator`; what building the module leaves): the
    plan's ``RAM_FORWARDS_HELD``. Checked against the peak RSS of real forwards
    (tests/test_plan.py); what is kept is measured by ``benchmarks/plan_check.py`` (BENCHMARKS.md)."""
    arch = dict(args.get("arch") or {})
    if adapter == "mfcc" or not hidden_size:
        return 0, "signal processing: frames only"
    heads = int(arch.get("num_attention_heads") or max(hidden_size // 64, 1))
    attention_tensors = 3
    if adapter in ("whisper", "ct2_whisper") or arch.get("config_class") == "WhisperConfig":
        window_s = 30.0 if str(args.get("window", "padded30")) == "padded30" else min(chunk_s, 30.0)
        frames = 50.0 * window_s
        front = 2 * hidden_size * 100.0 * window_s * 4  # the first convolution runs at the mel rate
        how = f"Whisper, {window_s:g} s window"
    elif granularity == "frame" and adapter in ("hf", "s3prl") and (
            "conv_dim" in arch or str(arch.get("config_class", "")).startswith(("Wav2Vec2", "Hubert", "WavLM"))):
        dims = list(arch.get("conv_dim", DEFAULT_CONV["conv_dim"]))
        strides = list(arch.get("conv_stride", DEFAULT_CONV["conv_stride"]))
        frames = frame_rate_hz * chunk_s
        front = 2 * dims[0] * (16000.0 / strides[0]) * chunk_s * 4
        if "wavlm" in " ".join(str(v) for v in (arch.get("config_class"), args.get("model_id"), args.get("name"))).lower():
            attention_tensors = 5
        how = f"CNN front end or encoder, {chunk_s:.1f} s chunk"
    else:
        rate = WORDS_PER_SECOND if granularity == "word" else frame_rate_hz
        return int(num_layers * rate * chunk_s * hidden_size * 4), f"hidden states of {chunk_s:.1f} s"
    encoder = num_layers * frames * hidden_size * 4 + attention_tensors * heads * frames**2 * 4
    parts = {"front end": front, "encoder": encoder}
    largest = max(parts, key=lambda k: parts[k])
    return int(parts[largest]), f"{how}; the peak is the {largest}'s"
