"""The import rules of docs/ARCHITECTURE.md, checked on the source.

Every ``import`` and ``from ... import`` in ``labkit/`` counts, wherever it sits: a
late import inside a function hides a cycle from Python's import machinery, it
does not remove it (the two modules still need each other), so the graph is built
from the syntax tree, not from ``sys.modules``.  ``if TYPE_CHECKING:`` blocks are the
one exception: they never run.

Two rules:

* **no cycles** between modules (``from pkg import sub`` depends on ``pkg.sub``, not
  on ``pkg``'s ``__init__``, as ``import pkg.sub`` does);
* **no upward imports** between the packages: each may import only the packages
  ``ALLOWED`` lists for it (the layer table of docs/ARCHITECTURE.md).
"""
from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1] / "labkit"

#: package -> the labkit packages it may import (besides itself), lowest layer first
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "sim": {"core"},
    "engine": {"core"},
    "gitops": {"core"},
    "kube": {"core"},
    "operators": {"core"},
    "secrets": {"core", "gitops"},
    "flux": {"core", "engine", "gitops", "secrets"},
    "argo": {"core", "engine", "gitops"},
    "delivery": {"core", "sim", "engine", "gitops", "flux"},
    "faults": {"core", "sim", "engine", "gitops", "flux", "argo"},
    "tryrepo": {"core", "sim", "engine", "gitops", "secrets", "flux", "argo"},
    "scenarios": {"core", "sim", "engine", "gitops", "kube", "operators", "secrets", "flux", "argo",
                  "delivery", "faults"},
    "workshop": {"core", "sim", "engine", "gitops", "operators", "secrets", "flux", "argo", "delivery",
                 "scenarios"},
    "app": {"core", "sim", "engine", "gitops", "kube", "secrets", "flux", "argo", "tryrepo",
            "scenarios", "workshop"},
}


def _modules() -> dict[str, Path]:
    mods = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def _type_checking_blocks(tree: ast.AST) -> set[int]:
    """ids of the nodes inside ``if TYPE_CHECKING:`` blocks (they never run)."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else test.attr if isinstance(test, ast.Attribute) else ""
            if name == "TYPE_CHECKING":
                skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skip


def _imports(module: str, path: Path, mods: dict[str, Path]) -> list[tuple[str, int]]:
    """(imported labkit module, line) for every import statement of ``module``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skip = _type_checking_blocks(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in mods]
            found += [(s, node.lineno) for s in subs]
            if len(subs) < len(node.names):
                found.append((base, node.lineno))
    return [(name, line) for name, line in found if name in mods and name != module]


@pytest.fixture(scope="module")
def graph() -> nx.DiGraph:
    mods = _modules()
    g = nx.DiGraph()
    for module, path in mods.items():
        g.add_node(module)
        for target, line in _imports(module, path, mods):
            g.add_edge(module, target, where=f"{path.relative_to(ROOT.parent)}:{line}")
    return g


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_the_graph_sees_the_packages(graph):
    # guards the checker itself: an empty or mis-rooted graph would pass the rules below
    assert {_package(m) for m in graph} >= set(ALLOWED)
    assert graph.has_edge("labkit.flux.kustomize", "labkit.engine.apply") or any(
        _package(b) == "engine" for _, b in graph.out_edges("labkit.flux.kustomize"))


def test_no_import_cycles(graph):
    cycles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    lines = []
    for comp in cycles:
        sub = graph.subgraph(comp)
        lines.append(" <-> ".join(comp) + ": " + "; ".join(
            f"{a} -> {b} ({d['where']})" for a, b, d in sub.edges(data=True)))
    assert not cycles, "import cycles:\n" + "\n".join(lines)


def test_every_package_is_in_the_layer_table(graph):
    packages = {_package(m) for m in graph if _package(m) and (ROOT / _package(m)).is_dir()}
    assert packages <= set(ALLOWED), f"add {sorted(packages - set(ALLOWED))} to ALLOWED and docs/ARCHITECTURE.md"
    loose = sorted(m for m in graph if _package(m) and not (ROOT / _package(m)).is_dir()
                   and m != "labkit.__main__")
    assert not loose, f"modules outside any layer (put them in core/ or app/): {loose}"


def test_no_upward_imports(graph):
    bad = []
    for a, b, data in graph.edges(data=True):
        pa, pb = _package(a), _package(b)
        if pa is None or pa == "__main__" or pb is None or pa == pb:
            continue
        if pb not in ALLOWED.get(pa, set()):
            bad.append(f"{data['where']}: {a} imports {b} ({pa} may import only {sorted(ALLOWED.get(pa, ()))})")
    assert not bad, "imports against the layer table:\n" + "\n".join(sorted(bad))


def test_import_labkit_is_lazy():
    import subprocess
    import sys

    code = ("import sys, labkit; heavy = sorted(m for m in sys.modules if m.startswith('labkit.')"
            " or m in ('pandas', 'simpy', 'git', 'matplotlib')); print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    code = ("import sys, labkit.engine.plan; print(sorted(m for m in sys.modules if m.split('.')[:2] in"
            " (['labkit', 'flux'], ['labkit', 'sim'], ['labkit', 'gitops'], ['pandas'], ['git'])))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
