"""The upstream contract, executable: ``check_upstream(module) -> ContractReport``.

What it checks (each check passes, fails or is skipped, with a message):

- ``attributes``: ``sample_rate``, ``num_layers``, ``hidden_size``, ``downsample_rate``,
  ``min_input_samples`` are positive ints, ``granularity`` is frame / utterance / word.
- ``output``: ``forward(wavs[B, T], lengths[B])`` returns ``layers`` (``num_layers`` float tensors
  ``[B, T', hidden_size]``, finite on valid frames) and ``lengths`` (int64 ``[B]``, 1..T').
- ``frame_lengths``: frame granularity: ``lengths[b]`` within 2 frames of
  ``samples[b] // downsample_rate`` (window edges and padding conventions differ by a frame or
  two) and ``T' == max(lengths)``; utterance / word: ``T' == 1``.
- ``determinism``: the same batch twice gives the same output.
- ``batch_invariance``: an utterance alone and zero-padded inside a batch with a longer one get
  the same frame count and, unless the card declares ``padding_invariant: false`` with a
  ``padding_note``, the same valid frames within ``atol``. The test clips contain silence and
  differ in level, which exposes the two known traps: torchaudio's default MFCC (its dB floor is
  taken over the whole batch) and group-norm front ends (statistics over the padded length).
- ``min_input``: an input of ``min_input_samples`` (and of the card's ``min_input_s``) runs and
  gives at least one frame.

``check_upstream_by_name`` builds a card (or a ``module:Class`` target) the way the harness
does and checks it; ``bench check-upstream NAME`` prints its ``render()``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import torch
    from torch import nn

    from ..config import Workspace
    from ..schema import CardTest

Status = Literal["pass", "fail", "skip"]
CHECKS = ("attributes", "output", "frame_lengths", "determinism", "batch_invariance", "min_input")
GRANULARITIES = ("frame", "utterance", "word")
FRAME_SLACK = 2  # frames of disagreement allowed between lengths and samples / downsample_rate
# test clip durations: not multiples of common hops, short one padded by half the batch length
SHORT_S, LONG_S = 0.61, 1.23


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    message: str = ""


@dataclass(frozen=True)
class ContractReport:
    """The outcome of every contract check for one upstream."""

    subject: str
    checks: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        return all(c.status != "fail" for c in self.checks)

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.status == "fail")

    def status(self, name: str) -> Status:
        for c in self.checks:
            if c.name == name:
                return c.status
        raise KeyError(name)

    def message(self, name: str) -> str:
        return next(c.message for c in self.checks if c.name == name)

    def render(self) -> str:
        marks = {"pass": "PASS", "fail": "FAIL", "skip": "skip"}
        width = max(len(c.name) for c in self.checks) if self.checks else 0
        lines = [f"upstream contract: {self.subject}"]
        lines += [f"  {marks[c.status]}  {c.name:<{width}}  {c.message}" for c in self.checks]
        failed = len(self.failures)
        lines.append(f"  => {'OK' if self.ok else f'{failed} check(s) failed'}")
        return "\n".join(lines)


class _Abort(Exception):
    """A check failed in a way that makes the following checks meaningless."""


# --------------------------------------------------------------------------- test audio
def contract_clips(sample_rate: int, *, seed: int = 0) -> list[torch.Tensor]:
    """Two speech-like clips (voiced harmonics, noise, a silent gap): a quiet short one, a loud long one.

    The silence and the 20 dB level difference make batch-wide normalisations visible.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    clips = []
    for duration_s, level, f0_hz in ((SHORT_S, 0.05, 140.0), (LONG_S, 0.5, 210.0)):
        n = int(duration_s * sample_rate) + 7
        t = torch.arange(n, dtype=torch.float64) / sample_rate
        voiced = sum(torch.sin(2 * math.pi * f0_hz * k * t + k) / k for k in range(1, 6))
        envelope = 0.6 + 0.4 * torch.sin(2 * math.pi * 3.0 * t)
        noise = torch.randn(n, generator=gen, dtype=torch.float64) * 0.1
        wav = level * (envelope * voiced + noise) / 2.0
        gap = slice(n // 3, n // 3 + sample_rate // 10)  # 100 ms of digital silence
        wav[gap] = 0.0
        clips.append(wav.float())
    return clips


def pad_batch(clips: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    lengths_B = torch.tensor([c.shape[0] for c in clips], dtype=torch.long)
    wavs_BT = torch.zeros(len(clips), int(lengths_B.max()))
    for b, c in enumerate(clips):
        wavs_BT[b, : c.shape[0]] = c
    return wavs_BT, lengths_B


# --------------------------------------------------------------------------- checks
def _check_attributes(module: Any, *, sample_rate: int | None) -> CheckResult:
    problems = []
    for attr in ("sample_rate", "num_layers", "hidden_size", "downsample_rate", "min_input_samples"):
        value = getattr(module, attr, None)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            problems.append(f"{attr} must be a positive int, found {value!r}")
    granularity = getattr(module, "granularity", None)
    if granularity not in GRANULARITIES:
        problems.append(f"granularity must be one of {GRANULARITIES}, found {granularity!r}")
    if sample_rate is not None and getattr(module, "sample_rate", None) != sample_rate:
        problems.append(f"sample_rate {getattr(module, 'sample_rate', None)} != expected {sample_rate}")
    if problems:
        return CheckResult("attributes", "fail", "; ".join(problems))
    return CheckResult("attributes", "pass", f"sr={module.sample_rate} layers={module.num_layers} "
                       f"D={module.hidden_size} hop={module.downsample_rate} {granularity} "
                       f"min={module.min_input_samples} samples")


def _run(module: nn.Module, wavs_BT: torch.Tensor, lengths_B: torch.Tensor) -> Any:
    import torch

    params = list(module.parameters())
    device = params[0].device if params else torch.device("cpu")
    with torch.no_grad():
        return module(wavs_BT.to(device), lengths_B.to(device))


def _output_problems(out: Any, *, module: nn.Module, batch: int) -> list[str]:
    import torch

    layers, lengths = getattr(out, "layers", None), getattr(out, "lengths", None)
    if not isinstance(layers, tuple | list) or not isinstance(lengths, torch.Tensor):
        return [f"forward must return UpstreamOutput(layers=tuple, lengths=tensor); got {type(out).__name__}"]
    problems = []
    if len(layers) != module.num_layers:
        problems.append(f"{len(layers)} layers returned, num_layers says {module.num_layers}")
    if lengths.dtype != torch.int64 or tuple(lengths.shape) != (batch,):
        problems.append(f"lengths must be int64 [{batch}], got {lengths.dtype} {tuple(lengths.shape)}")
    for i, h in enumerate(layers):
        if not isinstance(h, torch.Tensor) or h.dim() != 3:
            problems.append(f"layers[{i}] must be a [B, T', D] tensor, got {getattr(h, 'shape', type(h))}")
            continue
        if not h.is_floating_point():
            problems.append(f"layers[{i}] dtype {h.dtype} is not floating point")
        if h.shape[0] != batch or h.shape[2] != module.hidden_size:
            problems.append(f"layers[{i}] shape {tuple(h.shape)}, expected [{batch}, T', {module.hidden_size}]")
        if h.shape[1] != layers[0].shape[1]:
            problems.append(f"layers[{i}] has {h.shape[1]} frames, layers[0] {layers[0].shape[1]}")
    if problems:
        return problems
    t_frames = layers[0].shape[1]
    if bool((lengths < 1).any()) or bool((lengths > t_frames).any()):
        problems.append(f"lengths {lengths.tolist()} must lie in 1..T'={t_frames}")
    for i, h in enumerate(layers):
        for b, n in enumerate(lengths.tolist()):
            if not bool(torch.isfinite(h[b, :n]).all()):
                problems.append(f"layers[{i}] row {b} has NaN/inf on valid frames")
                break
    return problems


def _check_output(module: Any, wavs_BT: torch.Tensor, lengths_B: torch.Tensor) -> tuple[CheckResult, Any]:
    try:
        out = _run(module, wavs_BT, lengths_B)
    except Exception as e:  # noqa: BLE001 - the report shows any failure of a third-party forward
        raise _Abort(f"forward raised {type(e).__name__}: {e}") from e
    problems = _output_problems(out, module=module, batch=wavs_BT.shape[0])
    if problems:
        raise _Abort("; ".join(problems))
    shape = tuple(out.layers[0].shape)
    return CheckResult("output", "pass", f"{len(out.layers)} x {shape}, lengths {out.lengths.tolist()}"), out


def _check_frame_lengths(module: Any, out: Any, lengths_B: torch.Tensor) -> CheckResult:
    got = out.lengths.cpu().tolist()
    t_frames = out.layers[0].shape[1]
    if module.granularity != "frame":
        if t_frames != 1 or any(n != 1 for n in got):
            return CheckResult("frame_lengths", "fail", f"{module.granularity} granularity needs T'=1 and lengths 1; "
                               f"got T'={t_frames}, lengths {got}")
        return CheckResult("frame_lengths", "pass", "T'=1")
    expected = [n // module.downsample_rate for n in lengths_B.tolist()]
    off = [abs(g - e) for g, e in zip(got, expected, strict=True)]
    if max(off) > FRAME_SLACK:
        return CheckResult("frame_lengths", "fail", f"lengths {got} vs samples // downsample_rate "
                           f"{expected} (more than {FRAME_SLACK} frames apart)")
    if t_frames != max(got):
        return CheckResult("frame_lengths", "fail", f"T'={t_frames} but the longest row has {max(got)} frames")
    return CheckResult("frame_lengths", "pass", f"lengths {got} ~ samples // {module.downsample_rate} = {expected}")


def _max_diff(a: Any, b: Any, *, rows_a: list[int], rows_b: list[int]) -> tuple[float, float]:
    """(max |a - b|, max |b|) over valid frames of the given rows, all layers."""
    worst, scale = 0.0, 0.0
    for ha, hb in zip(a.layers, b.layers, strict=True):
        for ra, rb in zip(rows_a, rows_b, strict=True):
            n = int(b.lengths[rb])
            x, y = ha[ra, :n].float().cpu(), hb[rb, :n].float().cpu()
            if x.shape != y.shape:
                return math.inf, 0.0
            if n:
                worst = max(worst, float((x - y).abs().max()))
                scale = max(scale, float(y.abs().max()))
    return worst, scale


def _check_determinism(module: Any, out: Any, wavs_BT: torch.Tensor, lengths_B: torch.Tensor) -> CheckResult:
    again = _run(module, wavs_BT, lengths_B)
    if again.lengths.cpu().tolist() != out.lengths.cpu().tolist():
        return CheckResult("determinism", "fail", f"lengths changed: {out.lengths.tolist()} then {again.lengths.tolist()}")
    rows = list(range(wavs_BT.shape[0]))
    diff, scale = _max_diff(again, out, rows_a=rows, rows_b=rows)
    if diff > 1e-5 * max(1.0, scale):
        return CheckResult("determinism", "fail", f"same input twice differs by {diff:.3g} (is dropout on? "
                           "the harness puts the module in eval mode; a random op in forward?)")
    return CheckResult("determinism", "pass", f"max diff {diff:.2g}")


def _check_batch_invariance(module: Any, out: Any, clips: list[torch.Tensor],
                            card_test: CardTest | None) -> CheckResult:
    atol = card_test.atol if card_test else 1e-3
    problems, worst = [], 0.0
    for b, clip in enumerate(clips):
        alone = _run(module, *pad_batch([clip]))
        if int(alone.lengths[0]) != int(out.lengths[b]):
            problems.append(f"row {b}: {int(alone.lengths[0])} frames alone, {int(out.lengths[b])} in the batch")
            continue
        diff, scale = _max_diff(out, alone, rows_a=[b], rows_b=[0])
        worst = max(worst, diff / max(1.0, scale))
    if problems:
        return CheckResult("batch_invariance", "fail", "frame counts depend on the batch: " + "; ".join(problems))
    measured = f"max relative diff {worst:.3g} (atol {atol:g})"
    if card_test is not None and not card_test.padding_invariant:
        if not card_test.padding_note.strip():
            return CheckResult("batch_invariance", "fail", "card declares padding_invariant: false without a "
                               f"padding_note saying why; {measured}")
        return CheckResult("batch_invariance", "skip", f"declared not padding invariant: {card_test.padding_note} "
                           f"[{measured}]")
    if worst > atol:
        return CheckResult("batch_invariance", "fail", f"an utterance padded inside a batch differs from it alone: "
                           f"{measured}. Compute features per utterance on its valid samples (batch-wide "
                           "normalisation such as torchaudio MFCC's dB floor or a group-norm front end "
                           "breaks this), or declare `test: {padding_invariant: false, padding_note: ...}`")
    return CheckResult("batch_invariance", "pass", measured)


def _check_min_input(module: Any, clips: list[torch.Tensor], card_test: CardTest | None) -> CheckResult:
    sizes = {"min_input_samples": int(module.min_input_samples)}
    if card_test is not None:
        card_samples = int(round(card_test.min_input_s * module.sample_rate))
        if card_samples < module.min_input_samples:
            return CheckResult("min_input", "fail", f"card test.min_input_s={card_test.min_input_s} "
                               f"({card_samples} samples) is below the module's min_input_samples "
                               f"{module.min_input_samples}")
        sizes["card min_input_s"] = card_samples
    long_clip = clips[-1]
    results = []
    for label, n in sizes.items():
        clip = long_clip[:n] if n <= long_clip.shape[0] else long_clip.repeat(n // long_clip.shape[0] + 1)[:n]
        try:
            out = _run(module, *pad_batch([clip]))
        except Exception as e:  # noqa: BLE001 - reported, not raised
            return CheckResult("min_input", "fail", f"{label}={n} samples: forward raised {type(e).__name__}: {e}")
        problems = _output_problems(out, module=module, batch=1)
        if problems:
            return CheckResult("min_input", "fail", f"{label}={n} samples: " + "; ".join(problems))
        results.append(f"{n} samples -> {int(out.lengths[0])} frame(s)")
    return CheckResult("min_input", "pass", ", ".join(results))


# --------------------------------------------------------------------------- entry points
def check_upstream(module: nn.Module, *, card_test: CardTest | None = None, sample_rate: int | None = None,
                   subject: str = "") -> ContractReport:
    """Run every contract check on ``module`` (put in eval mode first, as the harness would).

    ``card_test`` carries the card's hints (declared padding exception, ``atol``, ``min_input_s``);
    ``sample_rate`` is the rate the caller will feed, when it must match.
    """
    module.eval()
    subject = subject or type(module).__name__
    results = [_check_attributes(module, sample_rate=sample_rate)]
    up: Any = module  # adapter attributes are plain ints; nn.Module's __getattr__ typing hides that
    if results[0].status == "fail":
        return ContractReport(subject, tuple(results + [CheckResult(n, "skip", "attributes failed") for n in CHECKS[1:]]))
    clips = contract_clips(up.sample_rate)
    wavs_BT, lengths_B = pad_batch(clips)
    try:
        output, out = _check_output(module, wavs_BT, lengths_B)
    except _Abort as e:
        results.append(CheckResult("output", "fail", str(e)))
        return ContractReport(subject, tuple(results + [CheckResult(n, "skip", "output failed") for n in CHECKS[2:]]))
    results += [output, _check_frame_lengths(module, out, lengths_B),
                _check_determinism(module, out, wavs_BT, lengths_B),
                _check_batch_invariance(module, out, clips, card_test),
                _check_min_input(module, clips, card_test)]
    return ContractReport(subject, tuple(results))


def check_upstream_by_name(name_or_target: str, *, workspace: Workspace, language: str | None = None,
                           device: str = "cpu") -> ContractReport:
    """Build a card (``wavlm_large``, ``wavlm_large@random``) or a ``module:Class`` target and check it.

    A card is built by :func:`harness.features.upstream.build_upstream` and checked with its ``test``
    hints; a target is instantiated with no arguments (plus the context arguments its signature
    asks for). A build failure (missing weights, bad arguments) is reported as a failed ``build``
    check with its message.
    """
    from ..config.adapters import CONTEXT_ARGS, bind_args
    from ..errors import BenchError
    from ..registry import import_string
    from .upstream import build_upstream

    card_test = None
    try:
        if ":" in name_or_target:
            cls = import_string(name_or_target)
            context = {"language": language, "models_dir": str(workspace.path("models")),
                       "cache_dir": str(workspace.path("cache"))}
            module = cls(**bind_args(cls, {}, context={k: context[k] for k in CONTEXT_ARGS}))
            module = module.to(device).eval()
            for p in module.parameters():
                p.requires_grad_(False)
        else:
            card = workspace.card(name_or_target)
            card_test = card.card.test
            module = build_upstream(card, language=language, workspace=workspace, device=device)
    except BenchError as e:
        return ContractReport(name_or_target, (CheckResult("build", "fail", str(e)),))
    return check_upstream(module, card_test=card_test, subject=name_or_target)
