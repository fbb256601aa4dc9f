"""``bench matrix --dry-run``: the cells, their state, which features are cached, and an estimate."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict

from ..config import Workspace
from ..run.cell import stored_result
from ..schema import Profile
from .select import CellState, cells_of, check_matrix, survey


def dry_run(ws: Workspace, *, profile: str | None = None, only: dict[str, set[str]] | None = None) -> str:
    """The cells, which are done / failed / unavailable / to do, which have cached features, and an estimate."""
    from ..corpora.load import load_task_dataset
    from ..features.build import feature_recipe
    from ..features.cache import FeatureRecipe
    from ..features.extract import lookup

    profile_name, prof = check_matrix(ws, profile, only)
    states = survey(ws, cells_of(ws, profile_name, prof, only=only))
    cached: dict[tuple[str, str, str, FeatureRecipe], bool] = {}
    lines = [f"profile {profile_name}: {len(states)} cells"]
    for st in states:
        feat = ""
        if st.plan is not None and st.plan.task.kind != "word_discrimination":
            recipe = feature_recipe(st.plan)
            k = (st.plan.card.name, st.spec.language, st.plan.source.corpus, recipe)
            if k not in cached:
                try:
                    ds = load_task_dataset(ws, st.plan.profile, st.plan.source, st.spec.language) \
                        if st.plan.source.corpus != "synth" or _synth_exists(ws, st.plan.profile, st.spec.language) \
                        else None
                    cached[k] = bool(ds is not None and lookup(ws, st.plan.card, ds, language=st.spec.language,
                                                                   recipe=recipe)[1])
                except Exception:  # noqa: BLE001 - dry run only reports
                    cached[k] = False
            feat = "features cached" if cached[k] else "features to extract"
        reason = f"  ({st.reason[:100]})" if st.reason else ""
        lines.append(f"  {st.status:<11} {st.spec.label:<55} {feat}{reason}")
    c = Counter(s.status for s in states)
    lines.append("summary: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
    missing = sum(1 for v in cached.values() if not v)
    lines.append(f"upstream passes needed: {missing} (of {len(cached)} card x corpus pairs)")
    est = _estimate(ws, profile_name, [s for s in states if s.status in ("todo", "stale")])
    lines.append(f"estimated cell time: {est}")
    return "\n".join(lines)


def _synth_exists(ws: Workspace, profile: Profile, language: str) -> bool:
    """The profile's synthetic corpus of ``language`` is complete (a dry run never generates one)."""
    from ..synth import synth_corpus_exists

    return synth_corpus_exists(root=ws.path("cache") / "corpora" / "synth", language=language,
                               options=profile.synth.model_dump(mode="json"))


def _estimate(ws: Workspace, profile_name: str, todo: list[CellState]) -> str:
    """From finished cells' wall times (same upstream and downstream, else same downstream)."""
    by_pair: dict[tuple[str, str], list[float]] = defaultdict(list)
    by_ds: dict[str, list[float]] = defaultdict(list)
    base = ws.path("results") / profile_name
    for path in sorted(base.rglob("seed*.json")) if base.is_dir() else []:
        r = stored_result(path)
        if r is not None and r.status == "ok":
            t = float((r.timings and r.timings.total_s) or 0)
            by_pair[(r.cell.upstream, r.cell.downstream)].append(t)
            by_ds[r.cell.downstream].append(t)
    total, unknown = 0.0, 0
    for st in todo:
        xs = by_pair.get((st.spec.upstream, st.spec.downstream)) or by_ds.get(st.spec.downstream)
        if xs:
            total += statistics.median(xs)
        else:
            unknown += 1
    return f"about {total / 60:.1f} min for {len(todo) - unknown} cells" + (
        f"; {unknown} cells without a timing to go by" if unknown else "")
