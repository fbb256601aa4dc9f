"""``bench validate``: every problem in every configuration file and cross reference, collected
(not the first one), each with file, key, what was expected, what was found and a did-you-mean.

:func:`validate` checks the files as written; :func:`selection_problems` checks what a command
names (profile, upstreams, downstreams, languages) with the ``--set`` overrides applied;
:func:`check` raises :class:`~harness.errors.ConfigError` with all of them. Nothing expensive
starts before they pass.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

from ..errors import (
    BenchError,
    ConfigError,
    DuplicateNameError,
    Problem,
    UnknownNameError,
    did_you_mean,
)
from ..options import check_options
from ..registry import ADAPTERS, CORPORA, HEADS, builder_problem
from ..schema import LANGUAGES, Benchmark, Downstream, Task
from .adapters import random_init_refusal
from .deviations import deviations_problems
from .layout import layout_problems
from .problems import bind_problems
from .snapshot import RANDOM_SUFFIX, Snapshot


def validate(snap: Snapshot) -> list[Problem]:
    """Every problem in every file and cross reference (empty list: all good).

    The files are checked as written: ``--set`` overrides address the upstream, downstream
    and task a command runs, and are checked by :func:`selection_problems`."""
    if any(snap.overrides.values()):
        return validate(Snapshot(snap.root))
    problems: list[Problem] = []
    bench_path = str(snap.root / "benchmark.yaml")
    bench: Benchmark | None = None
    try:
        bench = snap.benchmark
    except ConfigError as e:
        problems += e.problems
    except BenchError as e:
        problems.append(Problem(bench_path, "<file>", "valid YAML", str(e)))

    tasks: dict[str, Task] = {}
    for name, path in snap.task_files().items():
        try:
            tasks[name] = snap.task(name)
        except ConfigError as e:
            problems += e.problems
        except BenchError as e:
            problems.append(Problem(str(path), "<file>", "valid YAML", str(e)))

    corpora = set(bench.corpora) if bench else set()
    for name, task in tasks.items():
        where = str(snap.task_files()[name])
        for kind, langs in task.sources.items():
            for lang, src in langs.items():
                if lang not in LANGUAGES:
                    problems.append(Problem(where, f"sources.{kind}.{lang}", f"a language in {LANGUAGES}",
                                            repr(lang), did_you_mean(lang, LANGUAGES)))
                if kind == "synth" and src.corpus != "synth":
                    problems.append(Problem(where, f"sources.{kind}.{lang}.corpus", "'synth'", repr(src.corpus)))
                if kind == "real" and src.corpus not in corpora:
                    problems.append(Problem(where, f"sources.{kind}.{lang}.corpus",
                                            "a corpus declared in benchmark.yaml `corpora`", repr(src.corpus),
                                            did_you_mean(src.corpus, corpora)))

    downstreams: dict[str, Downstream] = {}
    for name, path in snap.downstream_files().items():
        try:
            downstreams[name] = snap.downstream(name)
        except ConfigError as e:
            problems += e.problems
            continue
        except BenchError as e:
            problems.append(Problem(str(path), "<file>", "valid YAML", str(e)))
            continue
        ds = downstreams[name]
        if ds.task not in snap.task_files():
            problems.append(Problem(str(path), "task", "a task in tasks/", repr(ds.task),
                                    did_you_mean(ds.task, snap.task_files())))
        task_kind = tasks[ds.task].kind if ds.task in tasks else None
        if ds.head is None and task_kind == "classification":
            problems.append(Problem(str(path), "head", "a head (classification tasks train one)", "nothing"))
        if ds.layer_from is not None and ds.layer_from not in snap.downstream_files():
            problems.append(Problem(str(path), "layer_from", "a downstream in downstreams/", repr(ds.layer_from),
                                    did_you_mean(ds.layer_from, snap.downstream_files())))
        if ds.head is not None and ds.head not in HEADS:
            problems.append(Problem(str(path), "head", "a registered head (" + ", ".join(HEADS.names()) + ")",
                                    repr(ds.head), did_you_mean(ds.head, HEADS.names())))
        profiles = list(bench.profiles) if bench else list(ds.profiles)
        for prof in [None, *ds.profiles]:
            for wl in (False, True):
                if prof is not None and prof not in profiles:
                    problems.append(Problem(str(path), f"profiles.{prof}", "a profile of benchmark.yaml",
                                            repr(prof), did_you_mean(prof, profiles)))
                    break
                try:
                    rd = snap.resolve_downstream(name, profile=prof or "", word_level=wl)
                except ConfigError as e:
                    problems += e.problems
                    break
                if ds.head is not None and ds.head in HEADS:
                    problems += bind_problems(HEADS, ds.head, rd.head_args, where=str(path),
                                               key=f"profiles.{prof}.head_args" if prof else "head_args",
                                               skip=("input_size", "num_classes"))

    card_names: list[str] = []
    try:
        files = snap.card_files()
    except DuplicateNameError as e:
        problems.append(Problem("upstreams/cards", "<names>", "unique card names", str(e)))
        files = {}
    for name, path in files.items():
        card_names.append(name)
        try:
            rc = snap.card(name)
        except ConfigError as e:
            problems += e.problems
            continue
        except BenchError as e:
            problems.append(Problem(str(path), "<file>", "valid YAML", str(e)))
            continue
        if rc.card.adapter not in ADAPTERS:
            problems.append(Problem(str(path), "adapter", "a registered adapter (" + ", ".join(ADAPTERS.names()) + ")",
                                    repr(rc.card.adapter), did_you_mean(rc.card.adapter, ADAPTERS.names())))
            continue
        problems += bind_problems(ADAPTERS, rc.card.adapter, rc.card.args, where=str(path), key="args",
                                   skip=("language", "random_init"))
        if rc.card.test.build and builder_problem(rc.card.test.build):
            problems.append(Problem(str(path), "test.build", "a test builder of harness.testing or of a "
                                    "registered adapter's module", repr(rc.card.test.build),
                                    " A card is data: it cannot name other code to run."))

    if bench:
        for pname, pspec in bench.profiles.items():
            for i, up in enumerate(pspec.upstreams):
                base = up[: -len(RANDOM_SUFFIX)] if up.endswith(RANDOM_SUFFIX) else up
                if base not in card_names:
                    problems.append(Problem(bench_path, f"profiles.{pname}.upstreams[{i}]",
                                            "an upstream card", repr(up), did_you_mean(base, card_names)))
            for field, restricted in (("upstream_languages", pspec.upstream_languages),
                                      ("upstream_downstreams", pspec.upstream_downstreams)):
                problems += [Problem(bench_path, f"profiles.{pname}.{field}.{up}",
                                     "an upstream listed in the profile's upstreams", repr(up),
                                     did_you_mean(up, pspec.upstreams))
                             for up in restricted if up not in pspec.upstreams]
            for up, names in pspec.upstream_downstreams.items():
                for j, ds_name in enumerate(names):
                    if ds_name not in pspec.downstreams:
                        problems.append(Problem(bench_path, f"profiles.{pname}.upstream_downstreams.{up}[{j}]",
                                                "a downstream listed in the profile's downstreams", repr(ds_name),
                                                did_you_mean(ds_name, pspec.downstreams)))
            for i, ds_name in enumerate(pspec.downstreams):
                if ds_name not in snap.downstream_files():
                    problems.append(Problem(bench_path, f"profiles.{pname}.downstreams[{i}]",
                                            "a downstream in downstreams/", repr(ds_name),
                                            did_you_mean(ds_name, snap.downstream_files())))
            if pspec.baseline_profile is not None and pspec.baseline_profile not in bench.profiles:
                problems.append(Problem(bench_path, f"profiles.{pname}.baseline_profile", "a profile of benchmark.yaml",
                                        repr(pspec.baseline_profile),
                                        did_you_mean(pspec.baseline_profile, bench.profiles)))
            for i, lang in enumerate(pspec.languages):
                if lang not in LANGUAGES:
                    problems.append(Problem(bench_path, f"profiles.{pname}.languages[{i}]",
                                            f"one of {LANGUAGES}", repr(lang), did_you_mean(lang, LANGUAGES)))
        if bench.default_profile not in bench.profiles:
            problems.append(Problem(bench_path, "default_profile", "a profile name", repr(bench.default_profile),
                                    did_you_mean(bench.default_profile, bench.profiles)))
        for cname, spec in bench.corpora.items():
            if spec.adapter not in CORPORA:
                problems.append(Problem(bench_path, f"corpora.{cname}.adapter",
                                        "a corpus adapter (" + ", ".join(CORPORA.names()) + ")",
                                        repr(spec.adapter), did_you_mean(spec.adapter, CORPORA.names())))
            else:
                problems += option_problems(spec.adapter, spec.options, where=f"{bench_path}: corpora.{cname}")
    problems += layout_problems(snap.root)  # reference/paper_layout.yaml (the leaderboards' layout)
    problems += deviations_problems(snap.root)  # reference/deviations.yaml (the deviations table)
    return problems

def check(snap: Snapshot, *, profile: str | None = None, upstreams: Iterable[str] = (), downstreams: Iterable[str] = (),
          languages: Iterable[str] = (), selection: bool = False) -> None:
    """Raise ConfigError with every problem, or return when the workspace is valid.

    With ``selection`` (or any name given), the names a command asks for and the ``--set``
    overrides applied to them are checked too (:func:`selection_problems`), so that a typo
    fails before any work starts."""
    problems = validate(snap)
    if not problems and (selection or upstreams or downstreams or languages):
        problems = selection_problems(snap, profile=profile, upstreams=upstreams, downstreams=downstreams,
                                           languages=languages)
    if problems:
        raise ConfigError(problems)

def selection_problems(snap: Snapshot, *, profile: str | None, upstreams: Iterable[str] = (),
                       downstreams: Iterable[str] = (), languages: Iterable[str] = ()) -> list[Problem]:
    """Problems with the profile, upstreams, downstreams and languages a command names, with the
    ``--set`` overrides applied (unknown names with a did-you-mean, overridden values that do not
    validate, card or head arguments that do not bind)."""
    problems: list[Problem] = []
    prof_name = profile or "default profile"
    try:
        prof_name, _ = snap.profile(profile)
    except UnknownNameError as e:
        problems.append(Problem("--profile", "profile", "a profile of benchmark.yaml", repr(e.name),
                                did_you_mean(e.name, e.choices)))
    except ConfigError as e:
        problems += e.problems
    for name in dict.fromkeys(upstreams):
        problems += _upstream_problems(snap, name)
    for name in dict.fromkeys(downstreams):
        problems += _downstream_problems(snap, name, profile=prof_name)
    for lang in dict.fromkeys(languages):
        if lang not in LANGUAGES:
            problems.append(Problem("--language", "language", f"one of {LANGUAGES}", repr(lang),
                                    did_you_mean(lang, LANGUAGES)))
    return problems

def _upstream_problems(snap: Snapshot, name: str) -> list[Problem]:
    where = f"upstream {name!r}" + (" with --set upstream.*" if snap.overrides.get("upstream") else "")
    try:
        rc = snap.card(name)
    except UnknownNameError as e:
        return [Problem("--upstream", "upstream", "an upstream card (`bench ls upstreams`)", repr(name),
                        did_you_mean(e.name.removesuffix(RANDOM_SUFFIX), e.choices))]
    except ConfigError as e:
        return e.problems
    if rc.card.adapter not in ADAPTERS:
        return [Problem(str(rc.path), "adapter", "a registered adapter", repr(rc.card.adapter),
                        did_you_mean(rc.card.adapter, ADAPTERS.names()))]
    refusal = random_init_refusal(ADAPTERS.load(rc.card.adapter)) if rc.random_init else ""
    return bind_problems(ADAPTERS, rc.card.adapter, rc.card.args, where=where, key="args",
                         skip=("language", "random_init")) + \
        ([Problem(where, "@random", "an adapter with a random_init option", refusal)] if refusal else [])

def _downstream_problems(snap: Snapshot, name: str, *, profile: str) -> list[Problem]:
    try:
        ds = snap.downstream(name)
    except UnknownNameError as e:
        return [Problem("--downstream", "downstream", "a downstream in downstreams/", repr(name),
                        did_you_mean(name, e.choices))]
    problems: list[Problem] = []
    try:
        snap.task(ds.task)
    except ConfigError as e:
        problems += e.problems
    except BenchError as e:
        problems.append(Problem(f"task {ds.task!r}", "<file>", "a valid task", str(e)))
    for word_level in (False, True):
        try:
            rd = snap.resolve_downstream(name, profile=profile, word_level=word_level)
        except ConfigError as e:
            return problems + e.problems
        if rd.head is not None and rd.head in HEADS:
            where = f"downstream {name!r} (profile {profile}" + (", with --set)" if snap.overrides.get("downstream") else ")")
            problems += bind_problems(HEADS, rd.head, rd.head_args, where=where, key="head_args",
                                       skip=("input_size", "num_classes"))
    return list(dict.fromkeys(problems))


def option_problems(adapter: str, options: dict[str, Any], *, where: str) -> list[Problem]:
    """Every problem with ``options`` for the corpus adapter ``adapter`` (empty list when fine).

    ``where`` names the place in the configuration (e.g. ``"benchmark.yaml: corpora.cafe"``).
    An adapter whose module declares no ``OPTIONS`` yields no problems (it validates itself).
    """
    if adapter not in CORPORA:
        return []  # an unknown adapter is reported by the caller, with a did-you-mean
    module = importlib.import_module(CORPORA.entry(adapter).target.partition(":")[0])
    spec = getattr(module, "OPTIONS", None)
    if spec is None:
        return []
    return check_options(options, spec, where=where)
