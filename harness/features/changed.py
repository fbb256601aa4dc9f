"""``bench check-upstream --changed [BASE]``: the upstream checks a pull request needs, on what it changed.

What a branch changed is asked of git, never guessed: ``git diff --name-only BASE...HEAD`` (the
commits since the branch left BASE), ``git diff --name-only HEAD`` (uncommitted edits, staged or
not) and ``git ls-files --others --exclude-standard`` (new files not yet added). Of those files:

- **cards**: ``upstreams/cards/*.yaml`` and the user cards folder (``paths.user_cards``);
- **adapter modules**: the module of a registered adapter, or a module of its package that it
  imports (directly or not): a change to ``upstreams/base.py`` touches every built-in adapter.

Then, in one report (item, check, result, why):

1. ``bench validate`` on the whole workspace (a typo'd card argument is a problem with a
   did-you-mean);
2. the upstream contract on each changed card: with its real weights when they are here, else
   offline through ``NAME@random`` (cards with an ``arch``), else through the tiny checkpoint its
   ``test.build`` writes in the card's real format. A changed card with validate problems is not
   built (its row says so; the validate rows carry the failure);
3. the contract tests of each changed adapter: every card that uses it, made runnable offline the
   way ``tests/test_contract.py`` does (:func:`harness.testing.contract_card`: ``@random`` with the
   ``arch`` shrunk, the ``test.build`` checkpoint, or the card as is). An adapter no card uses is
   checked as ``module:Class``; one that needs arguments fails when new (it needs a card) and is
   skipped when it already existed.

The report is ``ok`` when no row failed.
"""

from __future__ import annotations

import ast
import importlib.util
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ..errors import BenchError

if TYPE_CHECKING:
    from ..config import ResolvedCard, Workspace
    from ..errors import Problem

Result = Literal["PASS", "FAIL", "skip"]
SOURCES = ("committed", "uncommitted", "untracked")


# --------------------------------------------------------------------------- git
@dataclass(frozen=True)
class ChangedFiles:
    """Files a branch changed against ``base``, by where the change is (paths relative to ``toplevel``)."""

    toplevel: Path
    base: str
    merge_base: str  # the commit the branch left ``base`` at
    committed: tuple[str, ...]
    uncommitted: tuple[str, ...]
    untracked: tuple[str, ...]
    added: tuple[str, ...] = ()  # files that do not exist at the merge base (new on the branch)

    def sources(self) -> dict[Path, str]:
        """Absolute path -> where it changed: ``committed``, ``uncommitted``, ``untracked`` or
        ``committed + uncommitted`` (a file committed on the branch and edited since)."""
        out: dict[Path, list[str]] = {}
        for source, paths in zip(SOURCES, (self.committed, self.uncommitted, self.untracked), strict=True):
            for rel in paths:
                out.setdefault(self.toplevel / rel, []).append(source)
        return {path: " + ".join(sources) for path, sources in out.items()}

    def summary(self) -> str:
        return (f"changed against {self.base} (merge base {self.merge_base[:10]}): {len(self.committed)} committed, "
                f"{len(self.uncommitted)} uncommitted, {len(self.untracked)} untracked file(s)")


def _git(args: list[str], *, cwd: Path) -> subprocess.CompletedProcess[str]:
    git = shutil.which("git")
    if git is None:
        raise BenchError("--changed asks git what the branch changed, and no `git` executable is on PATH. "
                         "Install git (Debian: apt-get install git), or check cards by name: "
                         "bench check-upstream NAME")
    return subprocess.run([git, *args], cwd=cwd, capture_output=True, text=True, check=False)  # noqa: S603


def _lines(out: str) -> tuple[str, ...]:
    return tuple(sorted({line for line in out.splitlines() if line.strip()}))


def changed_files(root: Path, *, base: str) -> ChangedFiles:
    """What the checkout holding ``root`` changed against ``base`` (a branch, tag or commit).

    Raises :class:`BenchError` when ``root`` is not in a git checkout, ``base`` names no commit, or
    the two histories share no commit (a shallow clone)."""
    top = _git(["rev-parse", "--show-toplevel"], cwd=root)
    if top.returncode != 0:
        raise BenchError(f"--changed compares this branch with {base} through git, but {root} is not in a git "
                         f"checkout ({top.stderr.strip() or 'git rev-parse failed'}). Run it in a clone of the "
                         "repository, or check cards by name: bench check-upstream NAME")
    toplevel = Path(top.stdout.strip())
    commit = _git(["rev-parse", "--verify", "--quiet", f"{base}^{{commit}}"], cwd=toplevel)
    if commit.returncode != 0:
        listed = _git(["branch", "--all", "--format=%(refname:short)"], cwd=toplevel).stdout
        branches = tuple(b for b in _lines(listed) if not b.startswith("("))  # not "(HEAD detached at ...)"
        from ..errors import did_you_mean

        listing = ", ".join(branches[:12]) + (" ..." if len(branches) > 12 else "")
        raise BenchError(f"--changed {base}: no commit named {base!r} in {toplevel}.{did_you_mean(base, branches)} "
                         f"Branches here: {listing or 'none'}. Pass the branch the pull request targets "
                         f"(bench check-upstream --changed origin/main), after `git fetch origin main` if it is "
                         "only on the remote.")
    merge = _git(["merge-base", base, "HEAD"], cwd=toplevel)
    if merge.returncode != 0:
        raise BenchError(f"--changed {base}: {base} and HEAD share no commit in {toplevel} (is this a shallow "
                         "clone? fetch the history: git fetch --unshallow, or actions/checkout with "
                         "fetch-depth: 0)")
    committed = _git(["diff", "--name-only", f"{base}...HEAD"], cwd=toplevel)
    uncommitted = _git(["diff", "--name-only", "HEAD"], cwd=toplevel)
    untracked = _git(["ls-files", "--others", "--exclude-standard", "--full-name"], cwd=toplevel)
    added = _git(["diff", "--name-only", "--diff-filter=A", merge.stdout.strip()], cwd=toplevel)
    for what, done in (("the committed diff", committed), ("the uncommitted diff", uncommitted),
                       ("the untracked files", untracked), ("the added files", added)):
        if done.returncode != 0:
            raise BenchError(f"--changed {base}: git could not list {what} in {toplevel}: {done.stderr.strip()}")
    return ChangedFiles(toplevel=toplevel, base=base, merge_base=merge.stdout.strip(),
                        committed=_lines(committed.stdout), uncommitted=_lines(uncommitted.stdout),
                        untracked=_lines(untracked.stdout),
                        added=tuple(sorted({*_lines(added.stdout), *_lines(untracked.stdout)})))


# --------------------------------------------------------------------------- what changed
def changed_cards(workspace: Workspace, changes: ChangedFiles) -> dict[str, tuple[Path, str]]:
    """Card name -> (file, source) for every changed ``*.yaml`` in a cards folder (removed ones too)."""
    folders = {(workspace.root / "upstreams" / "cards").resolve(), workspace.path("user_cards").resolve()}
    return {path.stem: (path, source) for path, source in sorted(changes.sources().items())
            if path.suffix == ".yaml" and path.parent.resolve() in folders}


def _module_file(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin).resolve() if spec is not None and spec.origin else None


def _imports(path: Path, *, module: str) -> set[str]:
    """Modules ``path`` (module ``module``) imports anywhere in its body, relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            out |= {base} | {f"{base}.{a.name}" for a in node.names}
    return out


def adapter_files(module: str) -> dict[Path, str]:
    """The file of adapter module ``module`` and of every module of its top package it imports,
    transitively: file -> module name."""
    top = module.partition(".")[0]
    seen: dict[Path, str] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        path = _module_file(name)
        if path is None or path in seen or path.suffix != ".py":
            continue
        seen[path] = name
        todo += [m for m in _imports(path, module=name) if m.partition(".")[0] == top]
    return seen


def changed_adapters(changes: ChangedFiles) -> dict[str, str]:
    """Registered adapter -> why it counts as changed (its module, or a module it imports, changed)."""
    from ..registry import ADAPTERS

    changed = {p.resolve(): source for p, source in changes.sources().items() if p.suffix == ".py"}
    out: dict[str, str] = {}
    for name in ADAPTERS.names():
        module = ADAPTERS.entry(name).target.partition(":")[0]
        hits = [(path, mod) for path, mod in adapter_files(module).items() if path in changed]
        if hits:
            path, mod = hits[0]
            rel = path.relative_to(changes.toplevel.resolve()) if path.is_relative_to(changes.toplevel.resolve()) \
                else path
            via = "" if mod == module else f", imported by {module}"
            out[name] = f"{rel} changed ({changed[path]}{via})"
    return out


def new_adapters(changes: ChangedFiles) -> set[str]:
    """Registered adapters whose module file is new on the branch (absent at the merge base)."""
    from ..registry import ADAPTERS

    added = {(changes.toplevel / rel).resolve() for rel in changes.added}
    return {name for name in ADAPTERS.names()
            if _module_file(ADAPTERS.entry(name).target.partition(":")[0]) in added}


# --------------------------------------------------------------------------- the report
@dataclass(frozen=True)
class Row:
    item: str
    check: str
    result: Result
    why: str


@dataclass(frozen=True)
class ChangeReport:
    """What ``bench check-upstream --changed`` found and checked; ``render()`` is what it prints."""

    header: tuple[str, ...]
    rows: tuple[Row, ...]

    @property
    def ok(self) -> bool:
        return all(r.result != "FAIL" for r in self.rows)

    @property
    def failures(self) -> tuple[Row, ...]:
        return tuple(r for r in self.rows if r.result == "FAIL")

    def render(self) -> str:
        head = ("item", "check", "result", "why")
        cells = [head] + [(r.item, r.check, r.result, r.why) for r in self.rows]
        widths = [max(len(c[i]) for c in cells) for i in range(3)]
        indent = " " * (sum(widths) + 6)
        lines = list(self.header) + [""]
        for i, (item, check, result, why) in enumerate(cells):
            first, *rest = why.splitlines() or [""]
            lines.append(f"{item:<{widths[0]}}  {check:<{widths[1]}}  {result:<{widths[2]}}  {first}".rstrip())
            lines += [indent + line for line in rest]
            if i == 0:
                lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 3)
        failed = len(self.failures)
        lines += ["", "=> OK" if self.ok else f"=> {failed} failure(s): fix them and run the command again"]
        return "\n".join(lines)


def _relative(where: str, root: Path) -> str:
    path = Path(where)
    return str(path.relative_to(root)) if path.is_absolute() and path.is_relative_to(root) else where


def _validate_rows(workspace: Workspace, problems: list[Problem]) -> list[Row]:
    if not problems:
        return [Row("workspace", "bench validate", "PASS",
                    f"{len(workspace.task_files())} tasks, {len(workspace.downstream_files())} downstreams, "
                    f"{len(workspace.card_files())} upstream cards")]
    return [Row(_relative(p.where.split(":")[0], workspace.root), "bench validate", "FAIL",
                p.render().replace(str(workspace.root) + "/", "")) for p in problems]


def _card_route(workspace: Workspace, card: ResolvedCard, *, out_dir: Path) -> tuple[ResolvedCard, str]:
    """How a changed card is checked here: real weights, else ``@random`` (an ``arch``), else its
    ``test.build`` checkpoint, else as it is (the build then says what is missing)."""
    from ..config.adapters import adapter_class, random_init_refusal
    from ..testing import contract_card
    from ..weights import MISSING, PRESENT, weights_state

    state, detail = weights_state(workspace, card)
    if state != MISSING:
        return card, f"weights {state}: {detail}" if state == PRESENT else f"weights {state}"
    if "arch" in card.card.args and not random_init_refusal(adapter_class(card)):
        return workspace.card(card.name + "@random"), f"offline through @random: weights absent ({detail})"
    if card.card.test.build:
        runnable = contract_card(card, out_dir=out_dir)
        return runnable, f"offline through test.build's tiny checkpoint: weights absent ({detail})"
    return card, f"weights absent ({detail}); no `arch` for @random and no test.build"


def _adapter_route(card: ResolvedCard, *, out_dir: Path) -> tuple[ResolvedCard, str]:
    """As ``tests/test_contract.py`` runs the card (see :func:`harness.testing.contract_card`)."""
    from ..testing import contract_card, contract_route

    route = contract_route(card)
    runnable = contract_card(card, out_dir=out_dir)
    how = {"random_shrunk": "@random, arch shrunk", "tiny_checkpoint": "test.build's tiny checkpoint",
           "as_is": "as is"}[route]
    return runnable, f"offline: {how}"


def _contract_rows(workspace: Workspace, runnable: ResolvedCard, *, item: str, route: str,
                   language: str | None) -> list[Row]:
    from .contract import check_upstream
    from .upstream import build_upstream

    check = f"contract ({runnable.name})"
    try:
        module = build_upstream(runnable, workspace=workspace, language=language)
    except Exception as e:  # noqa: BLE001 - a contributor's adapter may raise anything; the row shows it
        return [Row(item, check, "FAIL", f"{route}; the build raised {type(e).__name__}: {e}")]
    report = check_upstream(module, card_test=runnable.card.test, subject=runnable.name)
    if not report.ok:
        return [Row(item, f"contract: {c.name}", "FAIL", f"{route}; {c.message}") for c in report.failures]
    passed = sum(c.status == "pass" for c in report.checks)
    skipped = "".join(f"; skip {c.name}: {c.message}" for c in report.checks if c.status == "skip")
    return [Row(item, check, "PASS", f"{route}; {passed} checks pass{skipped}")]


def _target_rows(workspace: Workspace, adapter: str, *, reason: str, new: bool, language: str | None) -> list[Row]:
    """An adapter no card uses, checked as ``module:Class``. One that cannot be built without arguments
    fails when it is new on the branch (it needs a card) and is skipped when it already existed (its
    contract runs where its arguments are known: a card, or its own tests)."""
    import inspect

    from ..config.adapters import CONTEXT_ARGS
    from ..registry import ADAPTERS
    from .contract import check_upstream_by_name

    target = ADAPTERS.entry(adapter).target
    item = f"adapter {adapter}"
    why = f"{reason}; no card uses it"
    try:
        params = inspect.signature(ADAPTERS.load(adapter)).parameters.values()
    except Exception as e:  # noqa: BLE001 - a contributed module may fail to import in any way
        return [Row(item, "contract", "FAIL", f"{why}; {target} cannot be loaded: {type(e).__name__}: {e}")]
    needed = [p.name for p in params if p.default is inspect.Parameter.empty and p.name not in CONTEXT_ARGS
              and p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    if needed and new:
        return [Row(item, "contract", "FAIL", f"{why}, and {target} needs {', '.join(needed)}: add a card "
                    f"(upstreams/cards/NAME.yaml, `adapter: {adapter}`) so the contract can run it "
                    "(CONTRIBUTING.md section 2)")]
    if needed:
        return [Row(item, "contract", "skip", f"{why}, and {target} cannot be built without "
                    f"{', '.join(needed)}; its cards' contract runs when a card uses it")]
    report = check_upstream_by_name(target, workspace=workspace, language=language)
    why += f", checked as {target}"
    if report.ok:
        return [Row(item, "contract", "PASS", why)]
    return [Row(item, f"contract: {c.name}", "FAIL", f"{why}: {c.message}") for c in report.failures]


def check_changed(workspace: Workspace, *, base: str = "main", language: str | None = "en") -> ChangeReport:
    """Validate the workspace and run the contract on the cards and adapters changed against ``base``."""
    changes = changed_files(workspace.root, base=base)
    cards = changed_cards(workspace, changes)
    adapters = changed_adapters(changes)
    problems = workspace.validate()
    header = [changes.summary(),
              "cards: " + (", ".join(f"{n} ({s})" for n, (_, s) in cards.items()) or "none"),
              "adapters: " + (", ".join(f"{n} ({why})" for n, why in adapters.items()) or "none")]
    rows = _validate_rows(workspace, problems)
    bad_files = {Path(p.where.split(":")[0]).resolve() for p in problems}
    with tempfile.TemporaryDirectory(prefix="bench-changed-") as tmp:
        rows += _changed_card_rows(workspace, cards, bad_files=bad_files, out_dir=Path(tmp), language=language)
        rows += _changed_adapter_rows(workspace, adapters, skip=set(cards), bad_files=bad_files,
                                      new=new_adapters(changes), out_dir=Path(tmp), language=language)
    if not cards and not adapters:
        rows.append(Row("branch", "contract", "skip", f"no card or adapter module changed against {base}"))
    return ChangeReport(header=tuple(header), rows=tuple(rows))


def _changed_card_rows(workspace: Workspace, cards: dict[str, tuple[Path, str]], *, bad_files: set[Path],
                       out_dir: Path, language: str | None) -> list[Row]:
    rows: list[Row] = []
    for name, (path, source) in cards.items():
        item = f"card {name}"
        if not path.is_file():
            rows.append(Row(item, "contract", "skip", f"removed ({source}); bench validate checks nothing "
                                                      "still names it"))
        elif path.resolve() in bad_files:
            rows.append(Row(item, "contract", "skip", "not built: fix its bench validate problems first"))
        else:
            rows += _routed_rows(workspace, name, item=item, out_dir=out_dir / name, language=language,
                                 adapter_reason="")
    return rows


def _changed_adapter_rows(workspace: Workspace, adapters: dict[str, str], *, skip: set[str], bad_files: set[Path],
                          new: set[str], out_dir: Path, language: str | None) -> list[Row]:
    """The cards of each changed adapter (cards already checked as changed cards are not run twice)."""
    rows: list[Row] = []
    users: dict[str, list[str]] = {a: [] for a in adapters}
    try:
        files = workspace.card_files()
    except BenchError:  # two cards of one name: a bench validate row fails; nothing can be looked up by name
        files = {}
    for name in files:
        try:
            adapter = workspace.card(name).card.adapter
        except BenchError:  # an invalid card: its bench validate row fails
            continue
        if adapter in users:
            users[adapter].append(name)
    for adapter, reason in adapters.items():
        if not users[adapter]:
            rows += _target_rows(workspace, adapter, reason=reason, new=adapter in new, language=language)
        for name in users[adapter]:
            if name in skip:
                continue
            if files[name].resolve() in bad_files:
                rows.append(Row(f"card {name}", "contract", "skip", f"adapter {adapter}: {reason}; not built: fix "
                                                                    "its bench validate problems first"))
                continue
            rows += _routed_rows(workspace, name, item=f"card {name}", out_dir=out_dir / "adapter" / name,
                                 language=language, adapter_reason=f"adapter {adapter}: {reason}")
    return rows


def _routed_rows(workspace: Workspace, name: str, *, item: str, out_dir: Path, language: str | None,
                 adapter_reason: str) -> list[Row]:
    """The contract rows of card ``name``: as a changed card (no ``adapter_reason``) or as a user of a
    changed adapter; a route that cannot be made (a refused or failing ``test.build``) is a failed row."""
    try:
        card = workspace.card(name)
        if adapter_reason:
            runnable, route = _adapter_route(card, out_dir=out_dir)
            route = f"{adapter_reason}; {route}"
        else:
            runnable, route = _card_route(workspace, card, out_dir=out_dir)
    except Exception as e:  # noqa: BLE001 - test.build fixtures and adapters are contributed code
        return [Row(item, "contract", "FAIL", f"{adapter_reason or 'changed card'}: could not make it runnable "
                                              f"offline: {type(e).__name__}: {e}")]
    return _contract_rows(workspace, runnable, item=item, route=route, language=language)
