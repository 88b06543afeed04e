"""Dependencies point inward: accounts knows nothing of ours; buffer and channels may use accounts but
never engine and never each other. Checked on the source, so a stray import fails the suite."""

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
