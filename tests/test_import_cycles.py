"""No import cycle in station/.

The rule (read from the source with `ast`, nothing is imported):
- every import counts, at module level or inside a function (a function-level import
  is a dependency all the same: it only hides the cycle until that function runs);
- `import a.b.c` / `from a.b import c` depend on the module a.b.c (or a.b when c is a
  name in it), and on the packages above it below `station` (their __init__ runs);
- no cycle between modules, and none between the station's parts: each package right
  under station/ (station.pipeline, station.model, station.capture, ...) is one part,
  each top-level module (station.app, station.checks, ...) is its own.
Data flows one way: capture → ingest → daemon → pipeline → model; web, hooks and
checks read snapshots and send commands (docs/ARCHITECTURE.md).
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def modules(root: Path, package: str = "station") -> dict[str, Path]:
    out = {}
    for p in (root / package).rglob("*.py"):
        parts = list(p.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def import_graph(root: Path, package: str = "station") -> dict[str, set[str]]:
    mods = modules(root, package)
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        is_pkg = p.name == "__init__.py"
        for node in ast.walk(ast.parse(p.read_text(), str(p))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = m.split(".") if is_pkg else m.split(".")[:-1]
                    up = up[:len(up) - (node.level - 1)]
                    base = ".".join(up + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for t in targets:
                parts = t.split(".")
                for i in range(2, len(parts) + 1):  # the module and the packages above it
                    dep = ".".join(parts[:i])
                    if dep in mods and dep != m and not m.startswith(dep + "."):
                        edges[m].add(dep)
    return edges


def part(module: str) -> str:
    return ".".join(module.split(".")[:2])


def part_graph(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for m, ts in edges.items():
        out.setdefault(part(m), set())
        for t in ts:
            if part(t) != part(m):
                out[part(m)].add(part(t))
                out.setdefault(part(t), set())
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def _witness(graph, comp) -> str:
    """One import of each module of a cycle that stays inside it (for the failure message)."""
    return "; ".join(f"{a} -> {', '.join(sorted(set(graph[a]) & set(comp)))}" for a in comp)


def test_no_import_cycle_between_modules():
    g = import_graph(ROOT)
    assert "station.app" in g and "station.pipeline.convert" in g
    found = cycles(g)
    assert not found, "import cycles: " + " | ".join(_witness(g, c) for c in found)


def test_no_import_cycle_between_the_stations_parts():
    g = part_graph(import_graph(ROOT))
    assert {"station.pipeline", "station.model", "station.capture", "station.app"} <= set(g)
    found = cycles(g)
    assert not found, "import cycles between parts: " + " | ".join(_witness(g, c) for c in found)


def test_the_checker_finds_cycles(tmp_path):
    """The checker itself: function-level, relative and package imports all make edges."""
    pkg = tmp_path / "station"
    (pkg / "a").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "__init__.py").write_text("from .x import f\n")
    (pkg / "a" / "x.py").write_text("def f():\n    from station.b import g\n")
    (pkg / "b.py").write_text("import station.a.x\n")
    (pkg / "c.py").write_text("from station import b\n")
    g = import_graph(tmp_path)
    assert g["station.c"] == {"station.b"}
    assert g["station.b"] == {"station.a", "station.a.x"}
    assert cycles(g) == [["station.a", "station.a.x", "station.b"]]
    assert cycles(part_graph(g)) == [["station.a", "station.b"]]
