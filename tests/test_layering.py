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
