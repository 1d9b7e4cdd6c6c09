"""The import graph of crackseg: no circles (lazy imports inside functions count) and the layers
point one way. Run alone with `pytest tests/test_architecture.py -q`; a failure lists the circle."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "crackseg"

# module prefix -> prefixes it must never import (directly or lazily)
FORBIDDEN = {
    "crackseg.models": (
        "crackseg.data",
        "crackseg.config",
        "crackseg.cli",
        "crackseg.engine",
        "crackseg.train",
        "crackseg.inference",
    ),  # fmt: skip
    "crackseg.conventions": ("crackseg.",),
    "crackseg.tensors": ("crackseg.",),
    "crackseg.errors": ("crackseg.",),
    "crackseg.inference": ("crackseg.engine.loop", "crackseg.train", "crackseg.cli"),
    "crackseg.explain": ("crackseg.engine.loop", "crackseg.train", "crackseg.cli"),
    "crackseg.data": ("crackseg.engine", "crackseg.train", "crackseg.cli", "crackseg.models"),
    "crackseg.engine": ("crackseg.train", "crackseg.config", "crackseg.cli"),
    "crackseg.metrics": ("crackseg.engine", "crackseg.train", "crackseg.cli", "crackseg.data"),
    "crackseg.deploy": ("crackseg.inference", "crackseg.train", "crackseg.cli"),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """module -> crackseg modules it imports anywhere in its file (top level or inside functions)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative import
                    anchor = name.split(".") if is_package else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                for alias in node.names:  # `from pkg import submodule` points at the submodule
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in modules else base)
            edges.update(t for t in targets if t in modules and t != name)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_graph_sees_lazy_imports():
    graph = import_graph()
    assert "crackseg.models" in graph["crackseg.models.presets"] or any(
        e.startswith("crackseg.models.") for e in graph["crackseg.models.presets"]
    )
    # the walker must see imports inside functions, e.g. the CLI's lazy command imports
    assert any(e.startswith("crackseg.train") for e in graph["crackseg.cli.train"])


def test_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circles():
    found = cycles(import_graph())
    assert not found, "import circles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_layers_point_one_way():
    bad = []
    for module, edges in import_graph().items():
        for prefix, forbidden in FORBIDDEN.items():
            if module == prefix or module.startswith(prefix + "."):
                bad += [f"{module} -> {e}" for e in edges if e.startswith(forbidden)]
    assert not bad, "imports against the layering:\n" + "\n".join(sorted(bad))
