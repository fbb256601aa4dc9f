"""The dimension-overlap report (:mod:`harness.analysis.overlap`, paper Figures 5-8) as a section
of the leaderboards: run into the profile's folder, and never allowed to stop the tables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .records import one_line


@dataclass(frozen=True)
class OverlapSection:
    """The files the overlap report wrote (relative to the leaderboard folder), or why there are none."""

    files: tuple[Path, ...] = ()
    note: str = ""


def overlap_section(results_dir: Path, profile: str, out_dir: Path) -> OverlapSection:
    """Run the overlap report of ``profile`` into ``out_dir`` (a failure becomes the note)."""
    try:
        from ..analysis.overlap import overlap_report
    except ImportError:
        return OverlapSection(note="The overlap report (harness.analysis.overlap) is not installed.")
    try:
        overlap_report(results_dir=results_dir, profile=profile, out_dir=out_dir)
    except Exception as e:  # noqa: BLE001 - an analysis must not stop the leaderboards
        first = one_line(str(e).splitlines()[0] if str(e) else "")
        return OverlapSection(note=f"The overlap report failed: {type(e).__name__}: {first}")
    files = sorted(p.relative_to(out_dir.parent) for p in out_dir.rglob("*") if p.is_file()) if out_dir.is_dir() else []
    return OverlapSection(files=tuple(Path(f) for f in files))
