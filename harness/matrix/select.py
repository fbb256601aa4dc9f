"""Which cells a matrix run covers and in what state they are.

``--only`` filters (:func:`parse_only`, checked against the profile by :func:`only_problems`),
the profile's cells in run order (:func:`cells_of`) and their state on disk (:func:`survey`:
done, failed, unavailable, stale, to do or invalid). Nothing here runs a cell.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from ..config import RANDOM_SUFFIX, Workspace
from ..config.plan import CellPlan, CellSpec, Unavailable, resolve_cell
from ..errors import BenchError, ConfigError, Problem, did_you_mean
from ..run.cell import cell_status, stored_result
from ..schema import Profile

ONLY_KEYS = ("upstream", "downstream", "language", "seed")


def parse_only(text: str) -> dict[str, set[str]]:
    """``"upstream=mfcc,downstream=gender,language=en"`` -> filters (repeat a key for several values;
    ``upstream=mfcc|siamese`` also works)."""
    out: dict[str, set[str]] = defaultdict(set)
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or key not in ONLY_KEYS:
            raise BenchError(f"--only expects key=value with key in {ONLY_KEYS}, got {part!r}")
        out[key].update(v for v in value.split("|") if v)
    return dict(out)


def only_problems(only: dict[str, set[str]], profile_name: str, profile: Profile) -> list[Problem]:
    """``--only`` values that name nothing in the profile (a typo would silently select no cell)."""
    known = {"upstream": set(profile.upstreams) | {u.removesuffix(RANDOM_SUFFIX) for u in profile.upstreams},
             "downstream": set(profile.downstreams), "language": set(profile.languages),
             "seed": {str(s) for s in profile.seeds}}
    problems = []
    for key, values in only.items():
        for value in sorted(values - known[key]):
            problems.append(Problem("--only", key, f"one of the profile {profile_name!r}'s {key}s "
                                    f"({', '.join(sorted(known[key]))})", repr(value), did_you_mean(value, known[key])))
    return problems


def check_matrix(ws: Workspace, profile: str | None, only: dict[str, set[str]] | None) -> tuple[str, Profile]:
    """Validate the workspace, the profile with its ``--set`` overrides, and ``--only``, before any work."""
    ws.check(profile=profile, selection=True)
    profile_name, prof = ws.profile(profile)
    only = only or {}
    problems = only_problems(only, profile_name, prof)
    if not problems:
        ups = [u for u in prof.upstreams if {u, u.removesuffix(RANDOM_SUFFIX)} & only.get("upstream", {u})]
        dss = [d for d in prof.downstreams if d in only.get("downstream", {d})]
        problems = ws.selection_problems(profile=profile_name, upstreams=ups, downstreams=dss)
    if problems:
        raise ConfigError(problems)
    return profile_name, prof


def cells_of(ws: Workspace, profile_name: str, profile: Profile, *, only: dict[str, set[str]] | None = None) -> list[CellSpec]:
    """The profile's cells in run order: upstream by upstream (one extraction each), English
    first (layers chosen on English are reused), downstreams in profile order, then seeds.
    (Task, language) pairs the task does not define are not cells."""
    only = only or {}
    languages = sorted(profile.languages, key=lambda lang: (lang != "en", profile.languages.index(lang)))
    downstreams = _dependency_order(ws, profile.downstreams)
    cells = []
    for up in profile.upstreams:
        for lang in languages:
            if up in profile.upstream_languages and lang not in profile.upstream_languages[up]:
                continue
            for ds in downstreams:
                if up in profile.upstream_downstreams and ds not in profile.upstream_downstreams[up]:
                    continue
                task = ws.task(ws.downstream(ds).task)
                if lang not in task.sources.get(profile.data, {}):
                    continue
                for seed in profile.seeds:
                    spec = CellSpec(profile_name, up, ds, lang, seed)
                    if _selected(spec, only):
                        cells.append(spec)
    return cells


def _dependency_order(ws: Workspace, names: list[str]) -> list[str]:
    """Downstreams after the ones whose layer they reuse (``layer_from``)."""
    ordered: list[str] = []
    for n in names:
        dep = ws.downstream(n).layer_from
        if dep and dep in names and dep not in ordered:
            ordered.append(dep)
        if n not in ordered:
            ordered.append(n)
    return ordered


def _selected(spec: CellSpec, only: dict[str, set[str]]) -> bool:
    values = {"upstream": {spec.upstream, spec.upstream.removesuffix(RANDOM_SUFFIX)}, "downstream": {spec.downstream},
              "language": {spec.language}, "seed": {str(spec.seed)}}
    return all(values[k] & v for k, v in only.items())


@dataclass
class CellState:
    spec: CellSpec
    status: str  # todo, stale, done, failed, unavailable, invalid
    plan: CellPlan | None = None
    reason: str = ""


def survey(ws: Workspace, cells: Iterable[CellSpec]) -> list[CellState]:
    states = []
    for spec in cells:
        try:
            plan = resolve_cell(ws.snapshot, spec)
        except Unavailable as e:
            states.append(CellState(spec, "unavailable", None, str(e)))
            continue
        except BenchError as e:
            states.append(CellState(spec, "invalid", None, str(e)))
            continue
        status = cell_status(plan)
        reason = _stored_reason(plan) if status in ("failed", "unavailable") else ""
        states.append(CellState(spec, {"ok": "done"}.get(status, status), plan, reason))
    return states


def _stored_reason(plan: CellPlan) -> str:
    """Why a stored result failed or could not run (as the leaderboard notes say it)."""
    from ..report import failure_reason

    record = stored_result(plan.result_path)
    return failure_reason(record) if record is not None else ""
