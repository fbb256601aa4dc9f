"""The layers of harness/ (docs: ../shared/design/ARCHITECTURE.md, README "the house"): imports point down only.

Every module under harness/ and upstreams/ is parsed (function-local imports included, ``if
TYPE_CHECKING:`` blocks skipped); a registry's ``"module:attr"`` string counts as an edge from the
module that holds it. The test fails on any import cycle, on an import from a lower layer into a
higher one (registry strings excepted: a plugin table is late binding by design, but its cycles
count), and on an upstream adapter importing harness code outside its allow-list.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAYERS = {  # module prefix -> layer; the longest matching prefix wins
    **dict.fromkeys(("harness", "harness.errors", "harness.yamlio", "harness.safeload", "harness.tempfiles",
                     "harness.identity", "harness.protocols", "harness.progress", "harness.faults", "harness.device",
                     "harness.allocator", "harness.options"), 0),
    **dict.fromkeys(("harness.config", "harness.registry", "harness.outputs", "harness.schema", "harness.results"), 1),
    **dict.fromkeys(("harness.corpora", "harness.features", "harness.probe", "harness.smallmodels", "harness.data",
                     "harness.synth", "harness.espeak", "harness.metrics", "harness.stats", "harness.testing", "harness.hear",
                     "harness.weights"), 2),
    "harness.run": 3, **dict.fromkeys(("harness.matrix", "harness.report"), 4),
    **dict.fromkeys(("harness.cli", "harness.present"), 5),
}
UPSTREAM_ALLOWED = {"harness.smallmodels.checkpoint"} | {m for m, layer in LAYERS.items() if layer == 0}
REGISTRY_STRING = re.compile(r"(harness|upstreams)(\.\w+)+:[\w.]+")


def module_names() -> dict[str, Path]:
    files = [*(REPO / "harness").rglob("*.py"), *(REPO / "upstreams").rglob("*.py")]
    return {".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): p for p in files}


def edges_of(name: str, path: Path, modules: dict[str, Path]) -> set[tuple[str, str, bool]]:
    """(target module, kind, is a registry string) for every import of ``name`` into harness/upstreams."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    hidden = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
              for n in ast.walk(node)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[tuple[str, str, bool]] = set()
    for node in ast.walk(tree):
        targets, registry = [], False
        if id(node) in hidden:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]
            targets = subs if len(subs) == len(node.names) else [base, *subs]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and REGISTRY_STRING.fullmatch(node.value):
            targets, registry = [node.value.partition(":")[0]], True
        out |= {(t, name, registry) for t in targets if t in modules and t != name}
    return out


def knots(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan): each is an import cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = [stack.pop()]
            while comp[-1] != v:
                comp.append(stack.pop())
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def layer_of(name: str) -> int | None:
    keys = [k for k in LAYERS if name == k or (name.startswith(k + ".") and k != "harness")]
    return LAYERS[max(keys, key=len)] if keys else None


def test_imports_point_down_without_cycles() -> None:
    modules = module_names()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    problems: list[str] = []
    for name, path in sorted(modules.items()):
        if name.startswith("harness") and layer_of(name) is None:
            problems.append(f"{name}: no layer assigned (add it to LAYERS)")
        for target, _, registry in edges_of(name, path, modules):
            graph[name].add(target)
            if name.startswith("upstreams"):
                if not target.startswith("upstreams") and target not in UPSTREAM_ALLOWED:
                    problems.append(f"{name} -> {target}: upstreams may import only L0 and smallmodels.checkpoint")
            elif not registry and target.startswith("harness") and (layer_of(target) or 0) > (layer_of(name) or 0):
                problems.append(f"{name} (L{layer_of(name)}) -> {target} (L{layer_of(target)}): upward import")
    problems += [f"import cycle through: {', '.join(knot)}" for knot in knots(graph)]
    assert len(modules) > 80 and sum(map(len, graph.values())) > 200  # the walk saw the code
    assert not problems, "\n".join(problems)


def test_the_walk_sees_local_imports_registry_strings_and_cycles(tmp_path: Path) -> None:
    """The checks above can fail: a function-local import and a registry string are edges (a
    TYPE_CHECKING import is not), and a cycle through them is found."""
    a = tmp_path / "a.py"
    a.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from harness import c\n"
                 "def f():\n    from harness import b\n", encoding="utf-8")
    b = tmp_path / "b.py"
    b.write_text('TABLE = {"x": "harness.a:f"}\n', encoding="utf-8")
    modules = {"harness.a": a, "harness.b": b, "harness.c": a}
    assert edges_of("harness.a", a, modules) == {("harness.b", "harness.a", False)}
    assert edges_of("harness.b", b, modules) == {("harness.a", "harness.b", True)}
    assert knots({"harness.a": {"harness.b"}, "harness.b": {"harness.a"}, "harness.c": set()}) == [
        ["harness.a", "harness.b"]]
