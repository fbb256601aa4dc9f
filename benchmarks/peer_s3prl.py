#!/usr/bin/env python
"""Side by side with the peer: s3prl's own SUPERB emotion runner and this harness, in one run.

Same upstream, same corpus, same fold:

1. **Corpus.** The project's synthetic English corpus (10 speakers, 5 female and 5 male, the 4
   IEMOCAP classes) written in IEMOCAP's official layout: ``Session1..5/sentences/wav/<dialog>/
   <utterance>.wav`` and ``Session<k>/dialog/EmoEvaluation/<dialog>.txt`` (one female and one male
   speaker per session, as in IEMOCAP), by ``harness.corpora.iemocap.write_dialog``.
2. **s3prl's preprocessing**: ``python -m s3prl.downstream.emotion.IEMOCAP_preprocess <root>``
   (from the installed ``espnet-s3prl`` wheel) writes ``meta_data/Session<k>/{train,test}_meta_data.json``.
3. **The peer**: ``python -m s3prl.run_downstream -m train -u wavlm_local -k <ckpt> -d emotion -c
   <config>`` with SUPERB's ER recipe (``SUPERB_ER_CONFIG`` below: s3prl's
   ``downstream/emotion/config.yaml``, which the wheel lacks), fold 1 (test = Session 1),
   total steps scaled to ``--epochs`` passes over the fold's training split; then, as SUPERB's
   ``er.sh`` does, ``-m evaluate -e <expdir>/dev-best.ckpt -t test``.
4. **The harness** on the same checkpoint (card ``wavlm_local``), the same IEMOCAP tree read by its
   ``iemocap`` adapter with Session 1 as the test split, and the head closest to the recipe the
   harness has (``HARNESS_DOWNSTREAM``; the differences are printed and listed in BENCHMARKS.md).
5. A table: wall time, upstream forwards (utterances through the upstream), upstream FLOPs, peak
   memory of the process tree, test accuracy with a 95% interval.

How things are counted. Each side runs in its own child process (this script, re-entered), which
hooks the upstream module: s3prl's ``Runner._get_upstream`` entry (every training batch, every dev
and test evaluation, and the Featurizer's 1 s probe forward) and the harness's
``S3PRLHubUpstream`` model (its extraction). Every forward's (batch size, padded samples) is
recorded; FLOPs are ``batch * f(samples)`` with ``f`` a quadratic fitted to
``torch.utils.flop_counter`` counts of single forwards at four lengths (exact for the linear conv
front end and the quadratic attention; the fit's largest error is printed). Memory: the largest
sum of RSS over the child's process tree, sampled every 0.2 s (DataLoader workers included).

Patches the peer needs here, applied at run time in its child process (site-packages untouched):
- ``huggingface_hub`` >= 1.0 dropped ``HfFolder`` and ``Repository``, which ``run_downstream`` and
  ``downstream/runner.py`` import for pushing to the Hub (not used here): stand-ins that raise if called.
- torch >= 2.6 loads checkpoints with ``weights_only=True``; s3prl's checkpoints hold its
  ``argparse.Namespace`` of arguments, so ``Namespace`` is added to torch's safe globals (the
  load stays weights-only).

Needs (see README "Development"): ``pip install -e '.[test,peer]'`` (torchcodec 0.9, which
torchaudio 2.9's ``torchaudio.load`` uses, and tensorboardX, which s3prl's runner logs to) and
ffmpeg's libraries (``apt-get install -y ffmpeg``).

    python benchmarks/peer_s3prl.py                      # tiny real-format WavLM, 30 epochs
    python benchmarks/peer_s3prl.py --upstream base      # random-init WavLM Base+ size (costly)
    python benchmarks/peer_s3prl.py --utterances 16 --epochs 30 --keep /tmp/peer
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CODES = {"neutral": "neu", "sad": "sad", "happy": "hap", "angry": "ang"}  # synthetic en emotions -> IEMOCAP codes
SESSIONS = (1, 2, 3, 4, 5)
TURNS_PER_DIALOG = 8
FOLD = 1  # SUPERB's fold1: Session 1 is the test set

# s3prl's downstream/emotion/config.yaml (SUPERB ER), as in the s3prl repository. The placeholders
# are the only changes: data paths, the step counts scaled to this corpus (see scaled_config), and
# num_workers 0 (the recipe pre-loads all audio; workers would only copy it into more processes
# on a 2-core machine).
SUPERB_ER_CONFIG: dict[str, Any] = {
    "runner": {"total_steps": 30000, "gradient_clipping": 1, "gradient_accumulate_steps": 8,
               "log_step": 500, "eval_step": 1000, "save_step": 1000, "max_keep": 1,
               "eval_dataloaders": ["dev", "test"]},
    "optimizer": {"name": "TorchOptim", "torch_optim_name": "Adam", "lr": 1.0e-4},
    "downstream_expert": {
        "datarc": {"root": "/groups/public/benchmark/IEMOCAP", "meta_data": "./downstream/emotion/meta_data",
                   "test_fold": "fold1", "pre_load": True, "train_batch_size": 4, "eval_batch_size": 4,
                   "num_workers": 6, "valid_ratio": 0.2},
        "modelrc": {"projector_dim": 256, "select": "UtteranceLevel", "UtteranceLevel": {"pooling": "MeanPooling"},
                    "DeepModel": {"model_type": "CNNSelfAttention", "hidden_dim": 80, "kernel_size": 5,
                                  "padding": 2, "pooling": 5, "dropout": 0.4}},
    },
}
SUPERB_STEPS = 30000
IEMOCAP_UTTERANCES, IEMOCAP_SESSION1 = 5531, 1085  # SUPERB's 4-class IEMOCAP: all sessions, Session 1
PAPER_EPOCHS = 30

# The harness's closest head: s3prl's UtteranceLevel model is Linear(D, 256) -> mean over frames
# -> Linear(256, 4), i.e. a linear map of the mean-pooled features (the two linears compose into
# one of rank <= 4, the same function class as one D -> 4 layer); same optimiser, lr, effective
# batch (4 x 8 accumulated), gradient clipping and epochs, best dev checkpoint.
HARNESS_DOWNSTREAM = """\
description: SUPERB's ER recipe as close as the harness allows (benchmarks/peer_s3prl.py)
task: emotion
head: linear
features: pooled
standardize: {standardize}
layer: sweep
sweep: {{fraction: 1.0, stride: all, seed: 0}}
head_args: {{binary_output: softmax}}
training: {{lr: 1.0e-4, batch_size: 32, max_epochs: {epochs}, grad_clip: 1.0}}
"""
DIFFERENCES = """\
differences between the two heads (what the harness cannot match):
- layers: s3prl learns a softmax-weighted sum of all hidden states with the head; the harness
  picks one layer by a dev sweep over every layer (one head trained per layer, from the cache)
- features: the harness z-scores each dimension with the training split's statistics (its default;
  --no-standardize turns it off); s3prl does not
- dev split: s3prl holds out a random 20% of the training sessions' utterances; the harness holds
  out whole speakers (its iemocap default, Ses04F: 1 of 8 training speakers)
- s3prl evaluates dev and test every eval_step and keeps the best dev checkpoint; the harness
  evaluates dev every epoch and keeps the best dev weights (test once, at the end)
- the upstream sees padded batches of 4 in s3prl (its WavLM masks the padding) and one utterance
  at a time in the harness (its wavlm_local card: per_utterance, exact features)"""


# --------------------------------------------------------------------------- setup checks
def check_peer_dependencies() -> None:
    """Exit with the install command when the peer's audio reading or logging cannot work here."""
    problems = []
    try:
        import torchcodec  # noqa: F401
    except Exception as e:  # noqa: BLE001 - import errors of torchcodec also cover missing ffmpeg libraries
        problems.append(f"torchcodec does not import ({type(e).__name__}: {str(e).splitlines()[0][:200]})")
    try:
        import tensorboardX  # noqa: F401
    except ImportError:
        problems.append("tensorboardX is not installed (s3prl's runner logs to it)")
    if not problems:
        import numpy as np
        import soundfile as sf
        import torchaudio

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "probe.wav"
            sf.write(str(path), np.zeros(1600, np.float32), 16000, subtype="PCM_16")
            try:
                torchaudio.load(str(path))
            except Exception as e:  # noqa: BLE001 - any failure here is the peer's dataset.py failing
                problems.append(f"torchaudio.load fails ({type(e).__name__}: {str(e).splitlines()[0][:200]})")
    if problems:
        sys.exit("peer_s3prl: s3prl's runner cannot read audio or log here:\n  - " + "\n  - ".join(problems)
                 + "\nTo fix: pip install -e '.[peer]'   (torchcodec==0.9.*, paired with torch 2.9; tensorboardX)\n"
                 "        apt-get update && apt-get install -y ffmpeg   (the FFmpeg libraries torchcodec loads)")


# --------------------------------------------------------------------------- checkpoints
def write_base_wavlm(path: Path, *, seed: int = 0) -> Path:
    """A random-init WavLM Base+-size checkpoint (12 layers, 768 wide, 94.7M weights) in the wavlm_local format."""
    import torch
    from s3prl.upstream.wavlm.WavLM import WavLM, WavLMConfig

    cfg = WavLMConfig({"encoder_layers": 12, "encoder_embed_dim": 768, "encoder_ffn_embed_dim": 3072,
                       "encoder_attention_heads": 12, "relative_position_embedding": True, "num_buckets": 320,
                       "max_distance": 800, "gru_rel_pos": True, "extractor_mode": "default",
                       "normalize": False}).__dict__
    torch.manual_seed(seed)
    torch.save({"cfg": cfg, "model": WavLM(WavLMConfig(cfg)).state_dict()}, path)
    return path


def write_checkpoint(kind: str, folder: Path) -> Path:
    from harness.testing import write_tiny_s3prl

    folder.mkdir(parents=True, exist_ok=True)
    if kind == "tiny":
        return write_tiny_s3prl("wavlm", folder / "tiny_wavlm.pt")
    return write_base_wavlm(folder / "base_wavlm.pt")


# --------------------------------------------------------------------------- the corpus in IEMOCAP's layout
def write_iemocap_tree(root: Path, *, cache: Path, utterances_per_speaker: int) -> dict[str, int]:
    """The synthetic English corpus (10 speakers) as ``root/Session1..5``; returns counts per session.

    Speaker k of each gender (sorted by id) becomes session k's F or M speaker; each session's
    utterances go into dialogs of ``TURNS_PER_DIALOG`` turns alternating F and M, named as IEMOCAP
    does (``Ses01F_impro01``; utterance ``Ses01F_impro01_M003``). Audio files are copied (16 kHz WAV).
    """
    from harness.corpora import iemocap
    from harness.synth import load_synth_corpus

    ds = load_synth_corpus(root=cache, language="en", options={
        "speakers_per_language": 10, "utterances_per_speaker": utterances_per_speaker,
        "split_speakers": (6, 2, 2), "long_per_test_split": 0, "short_per_test_split": 0, "seed": 0})
    by_speaker: dict[str, list[Any]] = {}
    for u in sorted(ds.utterances, key=lambda u: u.id):
        by_speaker.setdefault(u.speaker, []).append(u)
    genders = {g: sorted(s for s, us in by_speaker.items() if us[0].labels["gender"] == g) for g in ("female", "male")}
    counts = {}
    for session in SESSIONS:
        f_utts, m_utts = by_speaker[genders["female"][session - 1]], by_speaker[genders["male"][session - 1]]
        interleaved = [u for pair in zip(f_utts, m_utts, strict=True) for u in pair]
        folder = root / f"Session{session}"
        for d, start in enumerate(range(0, len(interleaved), TURNS_PER_DIALOG), 1):
            dialog = f"Ses{session:02d}F_impro{d:02d}"
            turns, index = [], {"F": 0, "M": 0}
            for u in interleaved[start: start + TURNS_PER_DIALOG]:
                g = "F" if u.labels["gender"] == "female" else "M"
                utt = f"{dialog}_{g}{index[g]:03d}"
                index[g] += 1
                turns.append(iemocap.Turn(utt, CODES[u.labels["emotion"]], u.text, u.duration_s))
                wav = folder / "sentences" / "wav" / dialog / f"{utt}.wav"
                wav.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(u.path, wav)
            iemocap.write_dialog(folder, dialog, turns)
        counts[f"Session{session}"] = len(interleaved)
    return counts


def s3prl_preprocess(root: Path) -> dict[str, int]:
    """Run s3prl's IEMOCAP_preprocess.py on ``root``; (train, test) item counts of the fold."""
    subprocess.run([sys.executable, "-m", "s3prl.downstream.emotion.IEMOCAP_preprocess", str(root)], check=True,
                   cwd=root, stdout=subprocess.DEVNULL)
    meta = root / "meta_data" / f"Session{FOLD}"
    return {split: len(json.loads((meta / f"{split}_meta_data.json").read_text())["meta_data"])
            for split in ("train", "test")}


def scaled_config(*, root: Path, fit_items: int, epochs: int, workers: int) -> tuple[dict[str, Any], int]:
    """SUPERB's ER config with the data paths set and the step counts scaled to ``epochs`` passes over
    the ``fit_items`` training utterances (s3prl's total_steps counts optimiser steps of 4 x 8 items)."""
    cfg = json.loads(json.dumps(SUPERB_ER_CONFIG))
    run = cfg["runner"]
    items_per_step = cfg["downstream_expert"]["datarc"]["train_batch_size"] * run["gradient_accumulate_steps"]
    steps = max(1, math.ceil(epochs * fit_items / items_per_step))
    per_eval = max(1, round(steps * run["eval_step"] / SUPERB_STEPS))  # SUPERB: 30 dev+test evaluations per run
    run.update(total_steps=steps, eval_step=per_eval, save_step=per_eval,
               log_step=max(1, round(steps * run["log_step"] / SUPERB_STEPS)))
    data = cfg["downstream_expert"]["datarc"]
    data.update(root=str(root), meta_data=str(root / "meta_data"), test_fold=f"fold{FOLD}", num_workers=workers)
    return cfg, steps


# --------------------------------------------------------------------------- running a side, measured
def tree_rss(pid: int) -> int:
    """Sum of RSS (bytes) of ``pid`` and all its descendants."""
    total, stack, seen = 0, [pid], set()
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    stack += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def measured(cmd: Sequence[str], *, env: dict[str, str], log: Path) -> dict[str, float]:
    """Run ``cmd`` (output to ``log``); wall seconds, CPU seconds (user + system of the process and the
    children it waited for) and peak RSS of its process tree. Exits on failure.

    CPU seconds are the steadier figure on a shared machine: wall time includes waiting for cores
    that other jobs hold.
    """
    import resource

    peak = [0]
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(list(cmd), env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], tree_rss(proc.pid))
                time.sleep(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        rc = proc.wait()
        done.set()
        sampler.join()
    seconds = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    if rc != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        sys.exit(f"peer_s3prl: {' '.join(cmd[:6])} ... failed (exit {rc}); last lines of {log}:\n{tail}")
    return {"seconds": seconds, "cpu_s": cpu, "peak_rss": float(peak[0])}


def _record_shapes(module: Any, shapes: list[list[int]], *, kind: str) -> None:
    """Forward pre-hook on ``module`` appending [batch, padded samples] per call.

    ``kind`` "list": s3prl hub experts take a list of 1-D waveforms; "tensor": s3prl.nn.S3PRLUpstream
    takes ([B, T] waveforms, lengths).
    """
    def pre(_mod: Any, args: tuple[Any, ...]) -> None:
        wavs = args[0]
        if kind == "list":
            shapes.append([len(wavs), max(int(w.shape[-1]) for w in wavs)])
        else:
            shapes.append([int(wavs.shape[0]), int(wavs.shape[-1])])

    module.register_forward_pre_hook(pre)


def child_s3prl(stats_path: str, argv: list[str]) -> None:
    """Run ``python -m s3prl.run_downstream ARGV`` in this process, patched and counted (module docstring)."""
    import argparse
    import atexit
    import runpy

    import huggingface_hub
    import torch

    class _HubPushOnly:  # huggingface_hub >= 1.0 removed these; s3prl imports them only to push to the Hub
        def __init__(self, *a: Any, **k: Any) -> None:
            raise RuntimeError("pushing to the Hugging Face Hub is not supported in this benchmark")

    for name in ("HfFolder", "Repository"):
        if not hasattr(huggingface_hub, name):
            setattr(huggingface_hub, name, _HubPushOnly)
    torch.serialization.add_safe_globals([argparse.Namespace])  # s3prl's checkpoints hold its args

    from s3prl.downstream import runner

    shapes: list[list[int]] = []
    original = runner.Runner._get_upstream

    def counted(self: Any) -> Any:
        entry = original(self)
        _record_shapes(entry.model, shapes, kind="list")
        return entry

    runner.Runner._get_upstream = counted  # type: ignore[method-assign]
    atexit.register(lambda: Path(stats_path).write_text(json.dumps({"shapes": shapes})))
    sys.argv = ["run_downstream.py", *argv]
    runpy.run_module("s3prl.run_downstream", run_name="__main__", alter_sys=True)


def child_harness(config_path: str) -> None:
    """Run the harness's cell (profile ``peer`` of the workspace in the config) in this process, counted."""
    from harness.config import Workspace
    from harness.config.plan import CellSpec
    from harness.run.cell import run_cell
    from upstreams.s3prl_hub import S3PRLHubUpstream

    conf = json.loads(Path(config_path).read_text())
    shapes: list[list[int]] = []
    build = S3PRLHubUpstream._build

    def counted(**kwargs: Any) -> Any:
        model = build(**kwargs)
        _record_shapes(model, shapes, kind="tensor")
        return model

    S3PRLHubUpstream._build = staticmethod(counted)  # type: ignore[method-assign]
    result = run_cell(Workspace(Path(conf["workspace"])), CellSpec("peer", "wavlm_local", "superb_er", "en", 0),
                      progress=False)
    if result.get("status") != "ok":
        sys.exit(f"harness cell {result.get('status')}: {json.dumps(result.get('error') or result.get('reason'))[:2000]}")
    out = {"shapes": shapes, "accuracy": result["metrics"]["accuracy"], "n_test": result["data"]["items"]["test"],
           "items": result["data"]["items"], "epochs_run": result["training"]["epochs_run"],
           "best_epoch": result["training"]["best_epoch"], "layer": result.get("layer", {}).get("chosen"),
           "timings": result.get("timings")}
    Path(conf["stats"]).write_text(json.dumps(out))


# --------------------------------------------------------------------------- FLOPs
def flop_model(ckpt: Path, lengths: Sequence[int]) -> tuple[tuple[float, float, float], float]:
    """Coefficients (a, b, c) of FLOPs(one utterance of n samples) = a + b n + c n^2, fitted to
    ``FlopCounterMode`` counts of s3prl's ``wavlm_local`` at ``lengths`` (the last one held out to
    check the fit); and the held-out relative error."""
    import numpy as np
    import s3prl.hub as hub
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    up = hub.wavlm_local(ckpt=str(ckpt)).eval()
    counts = []
    with torch.inference_mode():
        for n in lengths:
            with FlopCounterMode(display=False) as c:
                up([torch.randn(n) * 0.1])
            counts.append(float(c.get_total_flops()))
    n = np.array(lengths[:-1], dtype=np.float64)
    coef = np.linalg.solve(np.stack([np.ones_like(n), n, n * n], 1), np.array(counts[:-1]))
    last = lengths[-1]
    predicted = coef[0] + coef[1] * last + coef[2] * last * last
    return (float(coef[0]), float(coef[1]), float(coef[2])), abs(predicted - counts[-1]) / counts[-1]


def total_flops(shapes: Sequence[Sequence[int]], coef: tuple[float, float, float]) -> float:
    a, b, c = coef
    return sum(bsz * (a + b * n + c * n * n) for bsz, n in shapes)


# --------------------------------------------------------------------------- results
def s3prl_test_accuracy(log: Path) -> float:
    """The ``test acc: X`` line that s3prl's emotion expert prints in evaluate mode, in percent."""
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.startswith("test acc:")]
    if not lines:
        sys.exit(f"peer_s3prl: no 'test acc:' line in {log}")
    return 100.0 * float(lines[-1].split(":")[1])


def wilson(acc_pct: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson interval of an accuracy (percent) measured on ``n`` items."""
    p = acc_pct / 100.0
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return 100 * (centre - half), 100 * (centre + half)


def fmt_gib(b: float) -> str:
    return f"{b / 2**30:.2f} GiB"


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "_child-s3prl":
        return child_s3prl(sys.argv[2], sys.argv[3:])
    if len(sys.argv) > 2 and sys.argv[1] == "_child-harness":
        return child_harness(sys.argv[2])
    if len(sys.argv) > 2 and sys.argv[1] == "--report":  # print the table of a kept run again
        return print(report(json.loads((Path(sys.argv[2]) / "measurements.json").read_text())))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--upstream", choices=("tiny", "base"), default="tiny",
                   help="tiny: 2-layer real-format WavLM (fast); base: random-init WavLM Base+ size (a realistic cost)")
    p.add_argument("--utterances", type=int, default=16, help="utterances per speaker (10 speakers)")
    p.add_argument("--epochs", type=int, default=PAPER_EPOCHS, help="passes over the training split, both sides")
    p.add_argument("--workers", type=int, default=0, help="s3prl DataLoader workers (the recipe: 6)")
    p.add_argument("--no-standardize", dest="standardize", action="store_false",
                   help="the harness's head reads the raw features, as s3prl's does (default: z-scored, its default)")
    p.add_argument("--keep", help="folder to work in (kept); default: a temporary folder, removed")
    args = p.parse_args()
    check_peer_dependencies()
    work = Path(args.keep or tempfile.mkdtemp(prefix="bench-peer-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "PYTHONUNBUFFERED": "1"}

    ckpt = write_checkpoint(args.upstream, work / "ckpt")
    corpus = work / "IEMOCAP_full_release"
    if corpus.exists():
        shutil.rmtree(corpus)
    sessions = write_iemocap_tree(corpus, cache=work / "synth", utterances_per_speaker=args.utterances)
    fold = s3prl_preprocess(corpus)
    valid_ratio = SUPERB_ER_CONFIG["downstream_expert"]["datarc"]["valid_ratio"]
    fit_items = int((1 - valid_ratio) * fold["train"])
    config, steps = scaled_config(root=corpus, fit_items=fit_items, epochs=args.epochs, workers=args.workers)
    (work / "superb_er.yaml").write_text(json.dumps(config, indent=1))  # JSON is YAML

    # ---- the peer: train, then evaluate the best dev checkpoint on test (SUPERB's er.sh)
    expdir = work / "s3prl_exp"
    shutil.rmtree(expdir, ignore_errors=True)
    me = [sys.executable, str(Path(__file__).resolve())]
    train = measured([*me, "_child-s3prl", str(work / "s3prl_train.json"), "-m", "train", "-u", "wavlm_local", "-k",
                      str(ckpt), "-d", "emotion", "-c", str(work / "superb_er.yaml"), "-p", str(expdir),
                      "--device", "cpu"], env=env, log=work / "s3prl_train.log")
    best = expdir / "dev-best.ckpt"
    if not best.is_file():
        sys.exit(f"peer_s3prl: s3prl wrote no {best} (see {work / 's3prl_train.log'})")
    evaluate = measured([*me, "_child-s3prl", str(work / "s3prl_test.json"), "-m", "evaluate", "-e", str(best),
                         "-t", "test", "--device", "cpu"], env=env, log=work / "s3prl_test.log")
    peer_acc = s3prl_test_accuracy(work / "s3prl_test.log")

    # ---- the harness: a workspace with the repo's tasks and cards, this corpus and the recipe's head
    ws = work / "harness_ws"
    shutil.rmtree(ws, ignore_errors=True)
    (ws / "downstreams").mkdir(parents=True)
    for name in ("tasks", "upstreams"):
        (ws / name).symlink_to(ROOT / name, target_is_directory=True)
    (ws / "downstreams" / "superb_er.yaml").write_text(HARNESS_DOWNSTREAM.format(
        epochs=args.epochs, standardize=str(args.standardize).lower()))
    (ws / "benchmark.yaml").write_text(json.dumps({
        "paths": {"cache": "cache", "results": "results", "models": "models", "user_cards": "cards",
                  "leaderboards": "leaderboards"},
        "corpora": {"iemocap": {"adapter": "iemocap", "root": str(corpus),
                                "options": {"test_sessions": [str(FOLD)], "dev_speakers": ["Ses04F"]}}},
        "default_profile": "peer",
        "profiles": {"peer": {"data": "real", "upstreams": ["wavlm_local"], "downstreams": ["superb_er"],
                              "languages": ["en"], "seeds": [0],
                              "analyses": {"layer_sweep": True, "capacity": False, "overlap": False,
                                           "inference_time": False, "umap": False}}}}, indent=1))
    (work / "harness.json").write_text(json.dumps({"workspace": str(ws), "stats": str(work / "harness_stats.json")}))
    henv = {**env, "WAVLM_CKPT": str(ckpt)}
    for var in ("BENCH_CACHE", "BENCH_RESULTS", "BENCH_MODELS", "BENCH_CARDS", "BENCH_LEADERBOARDS"):
        henv.pop(var, None)
    harness = measured([*me, "_child-harness", str(work / "harness.json")], env=henv, log=work / "harness.log")
    hstats = json.loads((work / "harness_stats.json").read_text())

    coef, fit_err = flop_model(ckpt, [16000, 48000, 96000, 64000])
    m = {"upstream": args.upstream, "ckpt": ckpt.name, "epochs": args.epochs, "standardize": args.standardize, "sessions": sessions, "fold": fold,
         "fit_items": fit_items, "steps": steps, "eval_step": config["runner"]["eval_step"], "coef": coef,
         "fit_err": fit_err, "train": train, "evaluate": evaluate, "peer_acc": peer_acc, "harness": harness,
         "hstats": hstats, "peer_train_shapes": json.loads((work / "s3prl_train.json").read_text())["shapes"],
         "peer_test_shapes": json.loads((work / "s3prl_test.json").read_text())["shapes"],
         "torch": __import__("torch").__version__, "cpus": os.cpu_count()}
    (work / "measurements.json").write_text(json.dumps(m))
    print(report(m))
    print(f"work folder: {work}" + ("" if args.keep else " (removed)"))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


def report(m: dict[str, Any]) -> str:
    """The side-by-side table and the extrapolation, from the measurements of one run."""
    coef = tuple(m["coef"])
    peer_shapes = m["peer_train_shapes"] + m["peer_test_shapes"]
    hstats, harness, train, evaluate = m["hstats"], m["harness"], m["train"], m["evaluate"]
    peer_flops, harness_flops = total_flops(peer_shapes, coef), total_flops(hstats["shapes"], coef)
    peer_fwd, harness_fwd = sum(b for b, _ in peer_shapes), sum(b for b, _ in hstats["shapes"])
    peer_s, peer_cpu = train["seconds"] + evaluate["seconds"], train["cpu_s"] + evaluate["cpu_s"]
    peer_mem = max(train["peak_rss"], evaluate["peak_rss"])
    n_test = m["fold"]["test"]
    out = [f"upstream: WavLM ({m['upstream']}, {m['ckpt']}) through s3prl's wavlm_local on both sides; corpus: "
           f"synthetic English in IEMOCAP's layout, 10 speakers, {sum(m['sessions'].values())} utterances; "
           f"fold {FOLD} (test = Session {FOLD}: {n_test} utterances)",
           f"s3prl: SUPERB ER recipe, total_steps {m['steps']} (= {m['epochs']} epochs of {m['fit_items']} training "
           f"utterances at 4 x 8 per step; SUPERB: {SUPERB_STEPS}), eval_step {m['eval_step']}; harness: linear "
           f"head on pooled {'z-scored' if m.get('standardize', True) else 'raw'} features, {m['epochs']} epochs (ran {hstats['epochs_run']}, best {hstats['best_epoch']}), "
           f"layer {hstats['layer']} by dev sweep; items {hstats['items']}",
           f"FLOPs: quadratic fit to torch's FLOP counter (held-out error {100 * m['fit_err']:.2f}%); "
           f"torch {m['torch']}, {m['cpus']} CPUs", ""]
    rows = [("", "wall time", "CPU time", "upstream fwd", "upstream GFLOP", "peak RSS", "test acc (95% CI)")]
    for label, secs, cpu, fwd, flops, mem, acc in (
            ("s3prl run_downstream", peer_s, peer_cpu, peer_fwd, peer_flops, peer_mem, m["peer_acc"]),
            ("harness", harness["seconds"], harness["cpu_s"], harness_fwd, harness_flops, harness["peak_rss"],
             hstats["accuracy"])):
        lo, hi = wilson(acc, n_test)
        rows.append((label, f"{secs:.0f} s", f"{cpu:.0f} s", f"{fwd:,}", f"{flops / 1e9:,.1f}", fmt_gib(mem),
                     f"{acc:.1f}% ({lo:.0f}-{hi:.0f})"))
    rows.append(("ratio s3prl / harness", f"{peer_s / harness['seconds']:.1f}x",
                 f"{peer_cpu / max(harness['cpu_s'], 1e-9):.1f}x", f"{peer_fwd / max(harness_fwd, 1):.0f}x",
                 f"{peer_flops / max(harness_flops, 1):.0f}x", f"{peer_mem / max(harness['peak_rss'], 1):.2f}x", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out += [r[0].ljust(widths[0]) + "".join("  " + c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True))
            for r in rows]
    out.append(f"  s3prl: train {train['seconds']:.0f} s + evaluate {evaluate['seconds']:.0f} s wall, "
               f"{train['cpu_s']:.0f} + {evaluate['cpu_s']:.0f} s CPU; peak RSS train {fmt_gib(train['peak_rss'])}, "
               f"evaluate {fmt_gib(evaluate['peak_rss'])}")
    p1, p2 = m["peer_acc"] / 100, hstats["accuracy"] / 100
    half = 196 * math.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / n_test)
    diff = abs(m["peer_acc"] - hstats["accuracy"])
    out.append(f"accuracy difference {diff:.1f} points; 95% interval of a difference on {n_test} items: +-{half:.1f} "
               f"-> {'agree' if diff <= half else 'DIFFER'}")
    out += ["", extrapolation(m, peer_fwd=peer_fwd, harness_fwd=harness_fwd, harness_flops=harness_flops), "",
            DIFFERENCES]
    return "\n".join(out)


def extrapolation(m: dict[str, Any], *, peer_fwd: int, harness_fwd: int, harness_flops: float) -> str:
    """The ratios at the paper's 30 epochs and SUPERB's 30k steps, from this run's measured costs.

    Peer: forwards = steps x 32 + 30 dev+test evaluations (SUPERB evaluates every 1000 of 30k steps);
    FLOPs per forward as measured in training; seconds = start-up + forwards x seconds per forward,
    both from the two measured runs (train and evaluate: same start-up, different forward counts).
    Harness: one pass over the corpus whatever the length; its head training (sweep + final head)
    scales with the epochs.
    """
    coef = tuple(m["coef"])
    train_fwd = sum(b for b, _ in m["peer_train_shapes"])
    test_fwd = sum(b for b, _ in m["peer_test_shapes"])
    per_fwd_flops = total_flops(m["peer_train_shapes"], coef) / max(train_fwd, 1)
    eval_items = m["fold"]["train"] - m["fit_items"] + m["fold"]["test"]
    hs, ht = m["harness"], m["hstats"]["timings"]
    head_s = ht["layer_selection_s"] + ht["train_s"]
    lines = ["at real training lengths (per-forward cost and start-up measured in this run; the harness's head "
             f"training, {head_s:.1f} s of its {hs['seconds']:.0f} s, scaled by epochs):"]
    for label, n_steps in (("paper, 30 epochs", math.ceil(PAPER_EPOCHS * m["fit_items"] / 32)),
                           ("SUPERB, 30k steps", SUPERB_STEPS)):
        fwd = n_steps * 32 + 30 * eval_items
        epochs = n_steps * 32 / m["fit_items"]
        ratios = []
        for key in ("seconds", "cpu_s"):
            per = (m["train"][key] - m["evaluate"][key]) / max(train_fwd - test_fwd, 1)
            startup = max(m["evaluate"][key] - per * test_fwd, 0.0)
            peer_t = startup + per * fwd
            harness_t = hs[key] + head_s * (epochs / m["epochs"] - 1)
            ratios.append(f"{peer_t / harness_t:,.1f}x ({peer_t / 3600:,.1f} h vs {harness_t / 60:,.1f} min)")
        lines.append(f"  {label:<18} {n_steps:>6} steps ({epochs:,.0f} epochs): {fwd:,} upstream forwards = "
                     f"{fwd / max(harness_fwd, 1):,.0f}x the harness's, {fwd * per_fwd_flops / 1e12:,.2f} TFLOP = "
                     f"{fwd * per_fwd_flops / max(harness_flops, 1):,.0f}x; wall {ratios[0]}; CPU {ratios[1]}")
    # The same counts on IEMOCAP's real size: SUPERB's 4-class set (exc merged into hap) has 5,531
    # utterances, 1,085 of them in Session 1 (fold 1's test set); the harness passes each once.
    total, test = IEMOCAP_UTTERANCES, IEMOCAP_SESSION1
    fit = int(0.8 * (total - test))
    evals = 30 * (total - test - fit + test)
    lines.append(f"  on IEMOCAP's real size ({total:,} utterances; fold 1 tests on {test:,}), upstream forwards: "
                 f"paper's 30 epochs {30 * fit + evals:,} = {(30 * fit + evals) / total:,.0f}x the harness's "
                 f"{total:,}; SUPERB's 30k steps {SUPERB_STEPS * 32 + evals:,} = "
                 f"{(SUPERB_STEPS * 32 + evals) / total:,.0f}x")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
