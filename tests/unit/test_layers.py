"""posbench's layers point down, and no module imports itself round a cycle (issue "One house").

The import graph is read from the source with ``ast`` (imports inside functions and under
``TYPE_CHECKING`` included: a layer is a promise about what a module needs, not about when it
imports it). Layers, lowest first (``../shared/DESIGN.md``, Layout):

    core <- drivers <- setup <- spec <- diagnosis <- store <- render
         <- sim <- fixtures <- hil <- run <- discover, room <- cli

A module imports only from its own package or a lower layer: core imports nothing of posbench
outside core; drivers import only core and their own (the card codecs are drivers.card).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROOTS = {"bench": "posbench", "drivers": "posbench.drivers", "fixtures": "posbench.fixtures",
         "tests/hil": "posbench.hil"}
"""Repository folder -> the package it is installed as (pyproject.toml, package-dir)."""

RANK = {"core": 0, "drivers": 1, "setup": 2, "spec": 3, "diagnosis": 4, "store": 5, "render": 6,
        "sim": 7, "fixtures": 8, "hil": 9, "run": 10, "discover": 11, "room": 11, "cli": 12}
"""Each package's layer: a module may import a lower layer, or its own package."""


def modules() -> dict[str, Path]:
    """Every posbench module's dotted name -> its file."""
    found = {}
    for folder, package in ROOTS.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            rel = path.relative_to(REPO / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            found[".".join([package, *parts])] = path
    return found


def imports(name: str, path: Path) -> list[tuple[str, int]]:
    """The posbench modules ``name`` imports, with the line: ``from a import b`` counts as ``a.b``
    when that is a module, else as ``a``."""
    known = modules()
    is_pkg = path.name == "__init__.py"
    base = name if is_pkg else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names if alias.name.startswith("posbench")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                target = ".".join(anchor + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("posbench"):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.append((sub if sub in known else target, node.lineno))
    return found


def package(module: str) -> str:
    """The layer package of a dotted posbench module name."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "cli"  # posbench/__init__ sits with the entry points


def graph() -> dict[str, list[tuple[str, int]]]:
    known = modules()
    return {name: [(t, line) for t, line in imports(name, path) if t in known and t != name]
            for name, path in known.items()}


def test_every_module_sits_in_a_layer():
    assert sorted({package(m) for m in modules()} - set(RANK)) == []


def test_imports_only_point_down():
    known = modules()
    wrong = []
    for name, targets in graph().items():
        mine = package(name)
        for target, line in sorted(set(targets)):
            theirs = package(target)
            if theirs != mine and RANK[theirs] >= RANK[mine]:
                wrong.append(f"{known[name].relative_to(REPO)}:{line}: {mine} imports {target} ({theirs}, "
                             f"not a lower layer)")
    assert not wrong, "imports against the layers:\n" + "\n".join(sorted(wrong))


def test_no_import_cycles():
    """Tarjan's strongly connected components over the module graph: any with more than one
    module (or a module importing itself) is a cycle, named with a line of each import in it."""
    edges = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w, _ in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                cycles.append(sorted(scc))

    import sys
    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index:
            visit(v)
    known = modules()
    lines = []
    for scc in cycles:
        members = set(scc)
        lines.append("cycle: " + " -> ".join(scc))
        lines += [f"  {known[m].relative_to(REPO)}:{line}: imports {t}" for m in scc for t, line in edges[m]
                  if t in members]
    assert not cycles, "\n".join(lines)


@pytest.mark.parametrize("source, expected", [
    ("from posbench.drivers.card import emv\n", ["posbench.drivers.card.emv"]),
    ("def f():\n    from posbench.core.errors import BenchError\n", ["posbench.core.errors"]),
    ("from .codec import Answer\n", ["posbench.drivers.ecr.concert.codec"]),
])
def test_the_graph_reads_imports_in_functions_and_relative_ones(tmp_path, source, expected):
    path = tmp_path / "adapter.py"
    path.write_text(source)
    assert [t for t, _ in imports("posbench.drivers.ecr.concert.adapter", path)] == expected
