"""Dependencies point inward: accounts knows nothing of ours; buffer and channels may use accounts but
never engine and never each other; inside channels, the simulators and the adapters never import each
other (each speaks the wire on its own side). Checked on the source, so a stray import fails the suite."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"accounts", "buffer", "channels", "engine", "bench"}
ALLOWED = {
    "accounts": {"accounts"},
    "buffer": {"buffer", "accounts"},
    "channels": {"channels", "accounts"},
}


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & OURS


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_point_inward(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imported_packages(path) - ALLOWED[package])
        for path in (ROOT / package).rglob("*.py")
        if _imported_packages(path) - ALLOWED[package]
    }
    assert not offenders, f"{package} imports outside its layer: {offenders}"


def _imported_modules(path: Path) -> set[str]:
    """Every dotted name a module imports (``from a import b`` counts as ``a.b`` too: b may be a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize(("side", "other"), [("sim", "adapters"), ("adapters", "sim")])
def test_channel_simulators_and_adapters_never_import_each_other(side: str, other: str) -> None:
    forbidden = ["channels", other]
    found = {str(path.relative_to(ROOT)): sorted(m for m in _imported_modules(path) if m.split(".")[:2] == forbidden)
             for path in (ROOT / "channels" / side).rglob("*.py")}
    offenders = {path: modules for path, modules in found.items() if modules}
    assert not offenders, f"channels.{side} imports channels.{other}: {offenders}"


IMPORT_CIRCLE_MAX = 4  # modules; was 47 before one Services object replaced the app's keys


def _engine_import_graph() -> dict[str, set[str]]:
    """engine's modules and what each imports when it runs: module level and inside functions alike (an
    import in a function is still a dependency), but not what is imported for the type checker only."""
    modules: dict[str, Path] = {}
    for path in (ROOT / "engine").rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        type_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                     and "TYPE_CHECKING" in ast.unparse(block.test) for n in ast.walk(block)}
        edges: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in type_only:
                continue
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            edges.update(t for t in map(known, names) if t is not None and t != module)
        graph[module] = edges
    return graph


def _largest_circle(graph: dict[str, set[str]]) -> list[str]:
    """The biggest strongly connected set of modules (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    best: list[str] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                circle = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    circle.append(member)
                    if member == node:
                        break
                best = max(best, circle, key=len)
    return sorted(best)


def test_engine_has_no_large_import_circle() -> None:
    circle = _largest_circle(_engine_import_graph())
    assert len(circle) <= IMPORT_CIRCLE_MAX, f"an import circle of {len(circle)} modules: {circle}"


def test_import_circle_check_finds_a_circle() -> None:
    assert _largest_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c"]
