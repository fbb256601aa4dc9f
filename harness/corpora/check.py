"""What a loaded corpus holds and what is wrong with it, without running any model.

:func:`check_dataset` returns a plain dict (JSON-serialisable) and :func:`render_check` prints it;
``bench data check NAME`` is a thin wrapper around the two. Per split: utterances, hours,
speakers, labels and their counts. Problems: missing files, unreadable audio (only the header is
opened), segments outside their file, labels outside a task's classes, speakers present in more
than one split, and what the adapter skipped while reading. Each problem kind has a count and up
to ``max_examples`` examples.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from ..data import SPLITS, Dataset, Utterance, audio_info
from ..errors import AudioError

PROBLEM_KINDS = ("missing_files", "unreadable_audio", "segments_outside_audio", "unknown_split",
                 "labels_outside_task", "speaker_overlap")


def check_dataset(dataset: Dataset, *, tasks_labels: Mapping[str, Sequence[str]] | None = None,
                  open_audio: bool = True, max_examples: int = 10) -> dict[str, Any]:
    """A report on ``dataset``: per-split statistics and problems (see the module docstring).

    ``tasks_labels`` maps a label name to the classes a task accepts (e.g. ``{"emotion":
    ["neutral", "sadness", "happiness", "anger"]}``); values outside them are problems. With
    ``open_audio`` every file's header is opened (no samples are read) and hours come from the
    headers; without it hours come from ``duration_s``.
    """
    problems: dict[str, list[str]] = {k: [] for k in PROBLEM_KINDS}
    durations: dict[str, float] = {}
    for u in dataset.utterances:
        seconds = _audio_seconds(u, problems) if open_audio else u.duration_s
        if seconds is not None:
            durations[u.id] = seconds
        if u.split not in SPLITS:
            problems["unknown_split"].append(f"{u.id}: split {u.split!r}")
        for label, classes in (tasks_labels or {}).items():
            value = u.labels.get(label)
            if value is not None and value not in classes:
                problems["labels_outside_task"].append(
                    f"{u.id}: {label} {value!r} is not one of the task's classes {list(classes)}")
    problems["speaker_overlap"] = _speaker_overlap(dataset.utterances)
    splits = {s: _split_stats([u for u in dataset.utterances if u.split == s], durations) for s in SPLITS}
    return {
        "name": dataset.name,
        "language": dataset.language,
        "root": str(dataset.root),
        "splits": splits,
        "skipped": _examples(list(dataset.skipped), max_examples),
        "problems": {k: _examples(v, max_examples) for k, v in problems.items()},
        "ok": not any(problems.values()),
    }


def _audio_seconds(u: Utterance, problems: dict[str, list[str]]) -> float | None:
    """Seconds of audio ``u`` covers (from the header), or None after recording the problem."""
    try:
        frames, rate, _ = audio_info(u.path)
    except AudioError as e:
        kind = "missing_files" if not os.path.exists(u.path) else "unreadable_audio"
        problems[kind].append(f"{u.id}: {u.path}" if kind == "missing_files" else f"{u.id}: {e}")
        return None
    file_s = frames / rate if rate else 0.0
    end = u.end_s if u.end_s is not None else file_s
    if u.start_s >= file_s or end > file_s + 0.05 or end <= u.start_s:
        problems["segments_outside_audio"].append(
            f"{u.id}: segment {u.start_s:g}-{end:g} s, file {file_s:.2f} s ({u.path})")
        return None
    return min(end, file_s) - u.start_s


def _split_stats(us: list[Utterance], durations: dict[str, float]) -> dict[str, Any]:
    labels: dict[str, Counter[str]] = defaultdict(Counter)
    for u in us:
        for name, value in u.labels.items():
            labels[name][value] += 1
    return {
        "utterances": len(us),
        "hours": round(sum(durations.get(u.id, 0.0) for u in us) / 3600, 4),
        "speakers": len({u.speaker for u in us if u.speaker}),
        "unknown_speaker": sum(1 for u in us if not u.speaker),
        "with_words": sum(1 for u in us if u.words),
        "labels": {name: dict(sorted(c.items())) for name, c in sorted(labels.items())},
    }


def _speaker_overlap(utterances: Sequence[Utterance]) -> list[str]:
    """'<speaker>: in dev, train' for every known speaker found in more than one split."""
    splits: dict[str, set[str]] = defaultdict(set)
    for u in utterances:
        if u.speaker:
            splits[u.speaker].add(u.split)
    return [f"{spk}: in {', '.join(sorted(s))}" for spk, s in sorted(splits.items()) if len(s) > 1]


def _examples(items: list[str], n: int) -> dict[str, Any]:
    return {"count": len(items), "examples": items[:n]}


def render_check(report: Mapping[str, Any]) -> str:
    """The report as text for a terminal: one block per split, then problems and skipped items."""
    lines = [f"corpus {report['name']} ({report['language']}) at {report['root']}"]
    for split, stats in report["splits"].items():
        speakers = f"{stats['speakers']} speakers"
        if stats.get("unknown_speaker"):
            speakers += f" (+{stats['unknown_speaker']} utterances of unknown speaker)"
        lines.append(f"  {split}: {stats['utterances']} utterances, {stats['hours']:.3f} h, {speakers}"
                     + (f", {stats['with_words']} with word alignments" if stats.get("with_words") else ""))
        for name, counts in stats["labels"].items():
            values = ", ".join(f"{v}={c}" for v, c in counts.items())
            lines.append(f"    {name} ({len(counts)}): {values}")
    found = {k: v for k, v in report["problems"].items() if v["count"]}
    lines.append("problems: none" if not found else "problems:")
    for kind, block in found.items():
        lines.append(f"  {kind.replace('_', ' ')}: {block['count']}")
        lines += [f"    {e}" for e in block["examples"]]
        if block["count"] > len(block["examples"]):
            lines.append(f"    ... and {block['count'] - len(block['examples'])} more")
    skipped = report["skipped"]
    lines.append(f"skipped while reading: {skipped['count']}")
    lines += [f"    {e}" for e in skipped["examples"]]
    if skipped["count"] > len(skipped["examples"]):
        lines.append(f"    ... and {skipped['count'] - len(skipped['examples'])} more")
    return "\n".join(lines)


def check_named_corpus(ws: Any, name: str, *, language: str | None = None,
                       profile: str | None = None) -> tuple[str, bool]:
    """(report text, no problems) for a corpus of benchmark.yaml or ``synth`` (per language).

    The classes each task expects of this corpus are taken from the task YAMLs, so labels
    outside a task's set are reported.
    """
    from ..errors import UnknownNameError
    from ..schema import TaskSource
    from .load import load_task_dataset

    _, prof = ws.profile(profile)
    corpora = ws.benchmark.corpora
    if name != "synth" and name not in corpora:
        raise UnknownNameError("corpus", name, ["synth", *corpora])
    kind = "synth" if name == "synth" else "real"
    labels: dict[str, dict[str, list[str]]] = defaultdict(dict)  # language -> label -> classes
    for task_name in ws.task_files():
        task = ws.task(task_name)
        for lang, src in task.sources.get(kind, {}).items():
            if src.corpus == name and src.classes:
                labels[lang][src.label or task.label] = list(src.classes)
    languages = [language] if language else (sorted(labels) or prof.languages)
    texts, ok = [], True
    for lang in languages:
        dataset = load_task_dataset(ws, prof, TaskSource(corpus=name), lang)
        report = check_dataset(dataset, tasks_labels=labels.get(lang) or None)
        texts.append(f"== {name} ({lang})\n" + render_check(report))
        ok = ok and not any(report.get("problems", {}).get(k, {}).get("count", 0) for k in PROBLEM_KINDS)
    return "\n\n".join(texts), ok
