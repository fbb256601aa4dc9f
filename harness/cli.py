"""The ``bench`` command: a thin layer over library functions.

``bench --help`` and ``bench ls`` import neither torch nor any model library: every command
imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from .errors import BenchError, ConfigError

EXIT_USAGE = 2


def _workspace(args: argparse.Namespace) -> Any:
    from .config import Workspace

    return Workspace.discover(getattr(args, "root", None), overrides=getattr(args, "set", None) or ())


# --------------------------------------------------------------------------- commands
def cmd_validate(args: argparse.Namespace) -> int:
    ws = _workspace(args)
    problems = ws.validate()
    if problems:
        print(ConfigError(problems), file=sys.stderr)
        return 1
    print(f"ok: {ws.root / 'benchmark.yaml'}, {len(ws.task_files())} tasks, {len(ws.downstream_files())} "
          f"downstreams, {len(ws.card_files())} upstream cards")
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    from . import yamlio
    from .registry import ADAPTERS, CORPORA, HEADS

    ws = _workspace(args)
    rows: list[tuple[str, str]] = []
    if args.what == "upstreams":
        from .weights import weights_state

        for name, path in ws.card_files().items():
            try:
                raw = yamlio.load(path, expand=False)
                meta = raw.get("meta", {}) if isinstance(raw, dict) else {}
                state, _ = weights_state(ws, ws.card(name))
                rows.append((name, f"weights {state:<10}  {raw.get('adapter', '?')}: {meta.get('display', '')} "
                                   f"[{meta.get('group', '')}] {','.join(meta.get('languages', []))}"))
            except BenchError as e:
                rows.append((name, f"<invalid: {e}>"))
    elif args.what in ("downstreams", "tasks"):
        files = ws.downstream_files() if args.what == "downstreams" else ws.task_files()
        for name, path in files.items():
            try:
                raw = yamlio.load(path, expand=False)
                desc = " ".join(str(raw.get("description", "")).split())
                extra = f"task={raw.get('task')} head={raw.get('head')}" if args.what == "downstreams" else \
                    f"kind={raw.get('kind')} languages={sorted({lang for src in raw.get('sources', {}).values() for lang in src})}"
                rows.append((name, f"{extra}  {desc[:80]}"))
            except BenchError as e:
                rows.append((name, f"<invalid: {e}>"))
    elif args.what == "heads":
        rows = [(n, HEADS.entry(n).target) for n in HEADS.names()]
    elif args.what == "adapters":
        rows = [(n, f"{ADAPTERS.entry(n).target}  ({ADAPTERS.entry(n).source})") for n in ADAPTERS.names()]
    elif args.what == "corpora":
        rows = [(n, CORPORA.entry(n).target) for n in CORPORA.names()]
    elif args.what == "profiles":
        for name, prof in ws.benchmark.profiles.items():
            rows.append((name + (" (default)" if name == ws.benchmark.default_profile else ""),
                         f"{len(prof.upstreams)} upstreams x {len(prof.downstreams)} downstreams x "
                         f"{len(prof.languages)} languages x {len(prof.seeds)} seeds, data={prof.data}"
                         + (f", layer={prof.layer}" if prof.layer else "")
                         + (f", baseline={prof.baseline_profile}" if prof.baseline_profile else "")))
    width = max((len(r[0]) for r in rows), default=0)
    for name, desc in rows:
        print(f"{name:<{width}}  {desc}")
    return 0


def _prepare_outputs(ws: Any, settings: tuple[str, ...]) -> None:
    """Check the command's output folders and point matplotlib's font cache into the feature
    cache (this ``bench`` process only: the library never changes the environment)."""
    from .outputs import matplotlib_env, prepare_outputs

    prepare_outputs({s: ws.path(s) for s in settings})
    os.environ.update(matplotlib_env(ws.path("cache")))


def cmd_run(args: argparse.Namespace) -> int:
    from .config.plan import CellSpec
    from .device import resolve_device
    from .present import print_cell_result
    from .run.cell import run_cell

    ws = _workspace(args)
    ws.check(profile=args.profile, upstreams=[args.upstream], downstreams=[args.downstream],
             languages=[args.language] if args.language else [], selection=True)
    profile, prof = ws.profile(args.profile)
    device = resolve_device(args.device or prof.device)
    _prepare_outputs(ws, ("cache", "results", "models", "user_cards"))
    languages = [args.language] if args.language else prof.languages
    seeds = _run_seeds(seed=args.seed, listed=(ws.overrides.get("profile") or {}).get("seeds"), profile_seeds=prof.seeds)
    worst = 0
    for lang in languages:
        for seed in seeds:
            spec = CellSpec(profile, args.upstream, args.downstream, lang, seed)
            outcome = run_cell(ws, spec, device=device, progress=not args.no_progress, force=args.force)
            print_cell_result(outcome)
            worst = max(worst, 0 if outcome.result.status == "ok" else 1)
    return worst


def _run_seeds(*, seed: int | None, listed: Any, profile_seeds: Sequence[int]) -> list[int]:
    """The seeds ``bench run`` runs: ``--seed``, else every seed of ``--set profile.seeds=[...]``, else the
    profile's first seed (one cell per language). ``--seed`` given with ``profile.seeds`` must be one of them."""
    if listed is None:
        return [seed] if seed is not None else list(profile_seeds[:1])
    if seed is not None and seed not in profile_seeds:
        raise BenchError(f"--seed {seed} and --set profile.seeds={list(profile_seeds)} disagree: the seed must be "
                         f"one of the listed seeds. Pass only one of them (--seed for one seed, profile.seeds to run "
                         "each listed seed).")
    return [seed] if seed is not None else list(profile_seeds)


def cmd_matrix(args: argparse.Namespace) -> int:
    from .device import resolve_device
    from .matrix import dry_run, parse_only, run_matrix
    from .matrix.plan import parse_size
    from .outputs import matplotlib_env
    from .present import matrix_summary

    ws = _workspace(args)
    only = parse_only(args.only)
    if args.dry_run:
        print(dry_run(ws, profile=args.profile, only=only))
        return 0
    _, prof = ws.profile(args.profile)
    device = resolve_device(args.device or prof.device)
    os.environ.update(matplotlib_env(ws.path("cache")))
    out = run_matrix(ws, profile=args.profile, only=only, retry_failed=args.retry_failed, executor=args.executor,
                     address=args.address, device=device, progress=not args.no_progress,
                     leaderboard=not args.no_leaderboard, workers=args.workers,
                     disk_budget=parse_size(args.disk_budget) if args.disk_budget else None)
    print(matrix_summary(out))
    return 1 if out.counts.get("failed") else 0


def cmd_plan(args: argparse.Namespace) -> int:
    from .matrix import parse_only
    from .matrix.plan import Runtime, gpu, parse_size, plan_for_profile, render_plan

    ws = _workspace(args)
    budget = parse_size(args.disk_budget) if args.disk_budget else None
    main_gpu = gpu(ws.snapshot, args.gpu, tflops=args.gpu_tflops, utilisation=args.utilisation)
    runtime = Runtime.bounded() if args.runtime == "bounded" else None  # None: the profile's, in this checkout
    plan = plan_for_profile(ws, profile=args.profile, only=parse_only(args.only), budget_bytes=budget, gpu_=main_gpu,
                            runtime=runtime, measure_corpora=not args.published)
    others = [gpu(ws.snapshot, name, utilisation=args.utilisation) for name in ("h200", "a100") if name != main_gpu.name]
    print(render_plan(plan, other_gpus=others))
    return 0 if plan.fits else 3


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from .report import write_leaderboards

    ws = _workspace(args)
    profile, _ = ws.profile(args.profile)
    out = write_leaderboards(ws, profile=profile)
    print(f"leaderboards written to {out}")
    if args.html:  # the page is written every time (as index.md is); --html says where to open it
        print(f"open {(out / 'index.html').resolve().as_uri()}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from .features.info import render_info, upstream_info

    ws = _workspace(args)
    info = upstream_info(ws, args.upstream)
    print(json.dumps(info, indent=1, default=str) if args.json else render_info(info))
    return 0


def cmd_check_upstream(args: argparse.Namespace) -> int:
    from .features.changed import check_changed
    from .features.contract import check_upstream_by_name

    if (args.name is None) == (args.changed is None):
        raise BenchError("check-upstream takes a NAME (a card, NAME@random or module:Class) or --changed [BASE] "
                         f"(the cards and adapters this branch changed), not {'both' if args.name else 'neither'}. "
                         "Examples: bench check-upstream wavlm_base_plus@random; bench check-upstream --changed main")
    ws = _workspace(args)
    report: Any = (check_changed(ws, base=args.changed, language=args.language) if args.changed is not None
                   else check_upstream_by_name(args.name, workspace=ws, language=args.language))
    print(report.render())
    return 0 if report.ok else 1


def cmd_extract(args: argparse.Namespace) -> int:
    from .corpora.load import load_task_dataset
    from .device import resolve_device
    from .features.extract import ensure_features

    ws = _workspace(args)
    ws.check(profile=args.profile, upstreams=[args.upstream], languages=[args.language], selection=True)
    profile, prof = ws.profile(args.profile)
    card = ws.card(args.upstream)
    task = ws.task(args.task)
    source = task.sources.get(prof.data, {}).get(args.language)
    if source is None:
        raise BenchError(f"task {args.task!r} has no {prof.data} data for language {args.language!r}")
    _prepare_outputs(ws, ("cache", "models"))
    dataset = load_task_dataset(ws, prof, source, args.language)
    store = ensure_features(workspace=ws, card=card, dataset=dataset, language=args.language,
                            frame_layers=args.frame_layers if args.frame_layers != "all" else "all",
                            device=resolve_device(args.device or prof.device), batch_s=prof.extract_batch_s,
                            progress=not args.no_progress)
    m = store.meta
    print(f"{store.path}\n  {len(m.ids)} utterances, {m.audio_seconds:.0f} s audio, {m.num_layers} layers x "
          f"{m.hidden_size}, frames stored for layers {m.frame_layers}, {store.bytes_on_disk / 1e6:.1f} MB, "
          f"extraction {m.extract_seconds:.1f} s (RTF {m.extract_seconds / max(m.audio_seconds, 1e-9):.3f}), "
          f"{len(m.skipped)} skipped")
    for uid, why in list(m.skipped.items())[:10]:
        print(f"  skipped {uid}: {why}")
    return 0


def cmd_train_upstream(args: argparse.Namespace) -> int:
    """Train unless the checkpoint of the profile's recipe exists (``--force`` retrains); print the summary."""
    from .present import small_model_summary
    from .smallmodels.checkpoint import load_checkpoint
    from .smallmodels.recipe import profile_checkpoint
    from .smallmodels.train import train_for_profile

    ws = _workspace(args)
    ws.check(profile=args.profile, languages=[args.language], selection=True)
    _prepare_outputs(ws, ("cache", "models", "user_cards"))
    path = profile_checkpoint(ws, profile=args.profile, model=args.model, language=args.language, seed=args.seed)
    if path.is_file() and not args.force:
        ckpt = load_checkpoint(path)
        print(f"{path} exists (trained {ckpt.get('created')}, {ckpt.get('epochs')} epochs, recipe "
              f"{path.parent.name}); --force retrains")
        return 0
    info = train_for_profile(ws, profile=args.profile, model=args.model, language=args.language,
                             seed=args.seed, progress=not args.no_progress)
    print(small_model_summary(info, model=args.model, language=args.language))
    return 0


def cmd_data_check(args: argparse.Namespace) -> int:
    from .corpora.check import check_named_corpus

    ws = _workspace(args)
    text, ok = check_named_corpus(ws, args.name, language=args.language, profile=args.profile)
    print(text)
    return 0 if ok else 1


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench", description="Benchmark speech embeddings: upstreams x downstreams x "
                                "languages. Offline by default, on an embedded synthetic multilingual corpus.")
    p.add_argument("--root", help="folder with benchmark.yaml (default: the nearest above the current folder)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn: Any, help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(fn=fn)
        sp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="typed override, e.g. training.lr=1e-4, profile.seeds=[0,1], upstream.args.x=1")
        return sp

    sp = add("run", cmd_run, "run one cell (or one per language) and print its metrics")
    sp.add_argument("--upstream", required=True)
    sp.add_argument("--downstream", required=True)
    sp.add_argument("--language", help="en, fi or fr (default: every language of the profile)")
    sp.add_argument("--seed", type=int)
    sp.add_argument("--profile")
    sp.add_argument("--device", help="cpu, cuda, cuda:1 or auto")
    sp.add_argument("--force", action="store_true", help="recompute even if the result exists")
    sp.add_argument("--no-progress", action="store_true")

    sp = add("matrix", cmd_matrix, "run every cell a profile declares, then write the leaderboards")
    sp.add_argument("--profile")
    sp.add_argument("--only", default="", help="filter, e.g. upstream=mfcc,downstream=gender,language=en")
    sp.add_argument("--dry-run", action="store_true", help="list the cells, their state and the work left")
    sp.add_argument("--retry-failed", action="store_true", help="rerun only the cells that failed")
    sp.add_argument("--executor", choices=("local", "ray"), default="local")
    sp.add_argument("--address", help="Ray cluster address HOST:PORT (with --executor ray)")
    sp.add_argument("--workers", type=int, help="local worker processes for cells (default: CPU cores)")
    sp.add_argument("--device", help="cpu, cuda or auto")
    sp.add_argument("--no-progress", action="store_true")
    sp.add_argument("--no-leaderboard", action="store_true")

    sp.add_argument("--disk-budget", help="refuse to start when the feature cache's projected peak passes this "
                    "size (500GB, 1.5TB, 800GiB); see `bench plan`")

    sp = add("plan", cmd_plan, "project a matrix before running it: audio hours, upstream FLOPs, GPU- and CPU-hours, "
                               "cache bytes, RAM, the disk budget (offline, no corpus needed)")
    sp.add_argument("--profile")
    sp.add_argument("--only", default="", help="filter, e.g. upstream=mfcc,downstream=gender,language=en")
    sp.add_argument("--disk-budget", help="the feature cache's budget, e.g. 500GB (the plan picks cache or stream "
                    "per upstream and corpus to fit it)")
    sp.add_argument("--gpu", help="a GPU of reference/gpus.yaml (h200, h100, a100, l40s, l4, v100; default h200)")
    sp.add_argument("--gpu-tflops", type=float, help="declared dense bf16 TFLOP/s of another GPU")
    sp.add_argument("--utilisation", type=float, default=0.3, help="share of the declared throughput assumed (0.3)")
    sp.add_argument("--runtime", choices=("checkout", "bounded"), default="checkout",
                    help="checkout: what this checkout runs; bounded: issue 17's bounded frames, streaming and eviction")
    sp.add_argument("--published", action="store_true",
                    help="count every corpus from reference/corpus_sizes.yaml, even one present here")

    sp = add("validate", cmd_validate, "check every YAML file and cross reference; print all problems")

    sp = add("ls", cmd_ls, "list registered things")
    sp.add_argument("what", choices=("upstreams", "downstreams", "tasks", "heads", "adapters", "corpora", "profiles"))

    sp = add("leaderboard", cmd_leaderboard, "regenerate the leaderboards of a profile from its result files")
    sp.add_argument("--profile")
    sp.add_argument("--html", action="store_true",
                    help="print the file:// address of the browsable index.html (always written beside index.md)")

    sp = add("info", cmd_info, "parameters, layers, frame rate, languages and weights of an upstream")
    sp.add_argument("--upstream", required=True)
    sp.add_argument("--json", action="store_true")

    sp = add("check-upstream", cmd_check_upstream, "run the upstream contract on a card or a module:Class, or "
             "(--changed) validate and check every card and adapter a branch changed")
    sp.add_argument("name", nargs="?", help="a card, NAME@random, or module:Class")
    sp.add_argument("--changed", nargs="?", const="main", metavar="BASE",
                    help="check what this branch changed against BASE (default main): committed since it left "
                         "BASE, uncommitted and untracked files; exits 1 on any failure")
    sp.add_argument("--language", default="en")

    sp = add("extract", cmd_extract, "compute (or find) the cached features of an upstream on a task's corpus")
    sp.add_argument("--upstream", required=True)
    sp.add_argument("--task", "--dataset", dest="task", required=True, help="the task whose corpus to extract")
    sp.add_argument("--language", default="en")
    sp.add_argument("--profile")
    sp.add_argument("--frame-layers", default="all", type=lambda s: s if s == "all" else [int(x) for x in s.split(",")])
    sp.add_argument("--device")
    sp.add_argument("--no-progress", action="store_true")

    sp = add("train-upstream", cmd_train_upstream, "train a small model (Audio word2vec, Speech2vec, Siamese, LEE)")
    sp.add_argument("--model", required=True, choices=("audio_word2vec", "speech2vec", "siamese", "lee"))
    sp.add_argument("--language", default="en")
    sp.add_argument("--profile")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--force", action="store_true")
    sp.add_argument("--no-progress", action="store_true")

    data = sub.add_parser("data", help="corpus tools")
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    sp = dsub.add_parser("check", help="per split: utterances, hours, labels, speakers and problems (no model)")
    sp.set_defaults(fn=cmd_data_check)
    sp.add_argument("name", help="a corpus of benchmark.yaml, or 'synth'")
    sp.add_argument("--language", default=None)
    sp.add_argument("--profile")
    sp.add_argument("--set", action="append", default=[])
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from . import faults

    faults.arm()
    try:
        return int(args.fn(args) or 0)
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        return EXIT_USAGE
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:  # a folder the harness writes to fails in a place no check foresaw
        from .tempfiles import os_error_reason

        where = f" {e.filename}" if e.filename else ""
        print(f"error: cannot write or read{where}: {os_error_reason(e)} ({e.strerror or e}). Free space or fix "
              "the permissions there (paths.* in benchmark.yaml / BENCH_* choose the folders); finished results "
              "are intact, rerun the same command to resume.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; finished cells are kept, a rerun resumes", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
