#!/usr/bin/env python
"""Cache bytes and wall time of one frame-level cell under each frame scheme (issue 17; numbers,
not assertions).

For each scheme (``all``: every sweep-candidate layer's frames of the whole corpus in the main
entry; ``bounded``: the sweep's subset and dev for the candidates, then the chosen layer for
every split; ``stream``: no frames, the upstream runs inside head training) the cell runs in a
fresh workspace (a copy of the repository's configuration; the synthetic corpus is shared through
a link) and the script prints the bytes under ``cache/features/<upstream>/``, the entries, the
chosen layer, the test micro-F1 and the cell's wall time.

    python benchmarks/frame_schemes.py [--profile smoke] [--upstream wavlm_base_plus@random]
                                       [--downstream emotion] [--language en] [--schemes all,bounded,stream]
                                       [--corpora .bench/cache/corpora] [--out DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCHEMES = {"all": {}, "bounded": {"sweep_frames": "bounded"}, "stream": {"source": "stream"}}


def workspace_copy(dst: Path, *, profile: str, features: dict[str, str], corpora: Path) -> Path:
    import yaml

    dst.mkdir(parents=True)
    raw = yaml.safe_load((ROOT / "benchmark.yaml").read_text(encoding="utf-8"))
    raw["profiles"][profile]["features"] = features
    (dst / "benchmark.yaml").write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    for folder in ("tasks", "downstreams"):
        shutil.copytree(ROOT / folder, dst / folder)
    shutil.copytree(ROOT / "upstreams" / "cards", dst / "upstreams" / "cards")
    cache = dst / ".bench" / "cache"
    cache.mkdir(parents=True)
    corpora.mkdir(parents=True, exist_ok=True)  # the first workspace synthesises into it, the others reuse it
    (cache / "corpora").symlink_to(corpora.resolve())
    return dst


def folder_bytes(folder: Path) -> tuple[int, dict[str, int]]:
    entries = {p.name: sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
               for p in sorted(folder.glob("*/*")) if p.is_dir()}
    return sum(entries.values()), entries


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--upstream", default="wavlm_base_plus@random")
    ap.add_argument("--downstream", default="emotion")
    ap.add_argument("--language", default="en")
    ap.add_argument("--schemes", default="all,bounded,stream")
    ap.add_argument("--corpora", type=Path, default=ROOT / ".bench" / "cache" / "corpora")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    from harness.config import Workspace
    from harness.config.plan import CellSpec
    from harness.run.cell import run_cell

    out = args.out or Path(tempfile.mkdtemp(prefix="frame-schemes-"))
    spec = CellSpec(args.profile, args.upstream, args.downstream, args.language, 0)
    print(f"{args.upstream} / {args.downstream} / {args.language} on profile {args.profile} (workspaces in {out})")
    print(f"{'scheme':<8} {'cache bytes':>12} {'layer':>5} {'test F1':>8} {'wall s':>7}  entries")
    for scheme in args.schemes.split(","):
        root = workspace_copy(out / scheme, profile=args.profile, features=SCHEMES[scheme], corpora=args.corpora)
        t0 = time.perf_counter()
        res = run_cell(Workspace(root), spec, progress=False, force=True).result
        wall = time.perf_counter() - t0
        if res.status != "ok":
            print(f"{scheme:<8} {res.status}: {res.error.message if res.error else res.reason}")
            continue
        total, entries = folder_bytes(root / ".bench" / "cache" / "features" / args.upstream)
        layer = res.layer.chosen if res.layer else None
        f1 = res.metrics.f1_micro if res.metrics else float("nan")
        names = ", ".join(f"{n.split('.', 1)[1] if '.' in n else 'main'} {b / 1e6:.2f} MB" for n, b in entries.items())
        print(f"{scheme:<8} {total:>12,} {layer!s:>5} {f1:>8.2f} {wall:>7.1f}  {names}")


if __name__ == "__main__":
    main()
