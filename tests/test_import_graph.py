"""bridgeway's layout: imports only go down (issue 16 item 2, CONTRIBUTING.md).

Every module of ``bridgeway/`` is parsed (not imported) and every import counted:
module level, inside functions and under ``TYPE_CHECKING`` alike, since each one ties
the importing module to the imported one. The groups, top to bottom:

* the public modules (``bridgeway``, ``wsgi_to_asgi``, ``asgi_to_wsgi``, ``dispatch``,
  ``detect``, ``cli`` ...): may import anything below them;
* the subpackages ``_w2a`` (WSGIToASGI's internals), ``_a2w`` (ASGIToWSGI's) and
  ``_mix`` (the dispatchers'): each may import its own modules, the shared ground and
  ``errors``; never a sibling subpackage (the two directions meet through the protocols
  of the shared ``_upstream``), never a public module (each sees its adapter through
  its own ``adapter.Adapter`` protocol);
* the shared ground (the private top-level modules, and ``errors``): imports only
  itself.

And no cycle anywhere.
"""

from __future__ import annotations

import ast
from pathlib import Path

import bridgeway

PACKAGE = Path(bridgeway.__file__).parent
SUBPACKAGES = ("_w2a", "_a2w", "_mix")

# Edges the rules above would refuse, each with why it stays.
ALLOWED_EDGES = {
    # The command line's server runner serves the app the way detect recognised it;
    # only cli imports _servers, so this adds no cycle.
    ("bridgeway._servers", "bridgeway.detect"),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """``{module: the bridgeway modules it imports}`` for every module of ``package``."""
    paths = {module_name(p): p for p in sorted(package.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here[: len(here) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                targets.add(module)
                # ``from . import x``: x may be a module itself.
                targets.update(f"{module}.{alias.name}" for alias in node.names)
        graph[name] = {t for t in targets if t in paths and t != name}
    return graph


def group(module: str) -> str:
    """ "public", "shared" or the subpackage's name."""
    parts = module.split(".")
    if len(parts) > 2 or (len(parts) == 2 and parts[1] in SUBPACKAGES):
        return parts[1]
    leaf = parts[-1]
    if len(parts) == 1 or leaf in ("__main__",) or not leaf.startswith("_"):
        return "shared" if leaf == "errors" else "public"
    return "shared"


def forbidden(source: str, target: str) -> str | None:
    """Why the import ``source -> target`` breaks the layering, or None."""
    if (source, target) in ALLOWED_EDGES:
        return None
    mine, theirs = group(source), group(target)
    if mine == "public" or mine == theirs or theirs == "shared":
        return None
    if mine == "shared":
        return f"the shared ground imports {theirs}"
    if theirs == "public":
        return f"subpackage {mine} imports a public module"
    return f"subpackage {mine} imports its sibling {theirs}"


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[frozenset[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def group_edges(graph: dict[str, set[str]]) -> dict[tuple[str, str], int]:
    """How many module imports go from each group to each other group."""
    counts: dict[tuple[str, str], int] = {}
    for source, targets in graph.items():
        for target in targets:
            pair = (group(source), group(target))
            if pair[0] != pair[1]:
                counts[pair] = counts.get(pair, 0) + 1
    return counts


def test_the_graph_sees_every_module_and_its_imports() -> None:
    graph = import_graph()
    assert {"bridgeway", "bridgeway._w2a.cycle", "bridgeway._a2w.request"} <= set(graph)
    assert "bridgeway._w2a.cycle" in graph["bridgeway.wsgi_to_asgi"]  # module level
    assert "bridgeway._w2a.adapter" in graph["bridgeway._w2a.cycle"]  # TYPE_CHECKING
    assert "bridgeway._a2w.greenlets" in graph["bridgeway._a2w.pool"]  # in a function
    assert {group(m) for m in graph} == {"public", "shared", *SUBPACKAGES}


def test_imports_only_go_down() -> None:
    graph = import_graph()
    broken = sorted(
        f"{source} -> {target}: {why}"
        for source, targets in graph.items()
        for target in targets
        if (why := forbidden(source, target)) is not None
    )
    assert broken == [], "\n".join(broken)
    # An allowed edge that is gone is taken off the list.
    assert all(target in graph[source] for source, target in ALLOWED_EDGES)


def test_there_is_no_import_cycle() -> None:
    found = cycles(import_graph())
    assert found == [], f"import cycles: {[sorted(c) for c in found]}"


def test_the_rules_refuse_what_the_layout_forbids() -> None:
    # The checks themselves, on edges the tree does not have.
    assert forbidden("bridgeway._w2a.cycle", "bridgeway._a2w.nested") is not None
    assert forbidden("bridgeway._a2w.request", "bridgeway.asgi_to_wsgi") is not None
    assert forbidden("bridgeway._mix.replay", "bridgeway.dispatch") is not None
    assert forbidden("bridgeway._upstream", "bridgeway._w2a.cycle") is not None
    assert forbidden("bridgeway._w2a.cycle", "bridgeway.errors") is None
    assert forbidden("bridgeway.dispatch", "bridgeway._mix.replay") is None
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [frozenset({"a", "b"})]
