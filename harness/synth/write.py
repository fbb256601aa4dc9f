"""Writing one corpus folder (wav/, manifest.jsonl, meta.json), and the generator's entry point.

``python -m harness.synth --language en --out DIR [--options JSON]`` runs :func:`main` in a
fresh process (see :mod:`harness.synth.cache` for why).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..data import Utterance, write_manifest
from ..errors import ConfigError
from ..schema import SynthSpec
from .languages import LANGUAGE_PROFILES
from .options import SAMPLE_RATE_HZ, generator_config, validate_options
from .plan import plan_corpus
from .render import render

MANIFEST_NAME = "manifest.jsonl"
META_NAME = "meta.json"


def generate_corpus(*, out_dir: Path, language: str, spec: SynthSpec) -> dict[str, Any]:
    """Synthesise the corpus into ``out_dir`` (wav/, manifest.jsonl, meta.json); returns the meta.

    Run it in a fresh process (:func:`load_synth_corpus` does): espeak's output depends on the
    calls made before in the same process.
    """
    import soundfile as sf

    from ..espeak import Espeak

    t0 = time.perf_counter()
    engine = Espeak.get()
    out_dir = Path(out_dir)
    (out_dir / "wav").mkdir(parents=True, exist_ok=True)
    utterances = []
    for plan in plan_corpus(language=language, spec=spec):
        rendered = render(plan, engine=engine, language=language)
        path = out_dir / "wav" / f"{plan.id}.wav"
        sf.write(str(path), rendered.wav_16k, SAMPLE_RATE_HZ, subtype="PCM_16", format="WAV")
        labels = {"gender": plan.speaker.gender, "emotion": plan.emotion,
                  LANGUAGE_PROFILES[language].semantic_label: plan.semantic}
        utterances.append(Utterance(id=plan.id, path=str(path), split=plan.speaker.split, language=language,
                                    speaker=plan.speaker.id, labels=labels, text=rendered.text,
                                    words=rendered.words, duration_s=round(rendered.duration_s, 6)))
    write_manifest(out_dir / MANIFEST_NAME, utterances)
    meta = _meta(language=language, spec=spec, utterances=utterances, out_dir=out_dir,
                 generation_s=time.perf_counter() - t0)
    (out_dir / META_NAME).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return meta


def _meta(*, language: str, spec: SynthSpec, utterances: Sequence[Utterance], out_dir: Path,
          generation_s: float) -> dict[str, Any]:
    durations = np.array([u.duration_s or 0.0 for u in utterances])
    label_names = ("gender", "emotion", LANGUAGE_PROFILES[language].semantic_label)
    counts = {split: _split_counts([u for u in utterances if u.split == split], label_names=label_names)
              for split in ("train", "dev", "test")}
    return {"config": generator_config(language=language, spec=spec), "counts": counts,
            "utterances": len(utterances), "total_audio_s": round(float(durations.sum()), 2),
            "duration_s": {"min": round(float(durations.min()), 3),
                           "median": round(float(np.median(durations)), 3),
                           "max": round(float(durations.max()), 3)},
            "bytes_on_disk": _bytes_under(out_dir), "generation_s": round(generation_s, 2)}


def _split_counts(utterances: Sequence[Utterance], *, label_names: Sequence[str]) -> dict[str, Any]:
    return {"utterances": len(utterances), "speakers": len({u.speaker for u in utterances}),
            "audio_s": round(sum(u.duration_s or 0.0 for u in utterances), 2),
            "labels": {name: _count(u.labels[name] for u in utterances) for name in label_names}}


def _count(values: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))


def _bytes_under(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m harness.synth --language en --out DIR [--options JSON]``: generate one corpus folder."""
    parser = argparse.ArgumentParser(prog="python -m harness.synth", description=main.__doc__)
    parser.add_argument("--language", required=True, choices=sorted(LANGUAGE_PROFILES))
    parser.add_argument("--out", required=True, type=Path, help="folder to write (created; must be empty)")
    parser.add_argument("--options", default="{}", help="SynthSpec fields as a JSON object")
    args = parser.parse_args(argv)
    try:
        spec = validate_options(json.loads(args.options))
    except (json.JSONDecodeError, ConfigError) as e:
        parser.error(str(e))
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"--out {args.out} is not empty")
    meta = generate_corpus(out_dir=args.out, language=args.language, spec=spec)
    print(json.dumps({k: meta[k] for k in ("utterances", "total_audio_s", "bytes_on_disk", "generation_s")}))
    return 0
