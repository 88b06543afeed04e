"""`channels` may import `accounts` but never `engine` or `buffer` (DESIGN.md, layers)."""

from __future__ import annotations

import ast
from pathlib import Path

import channels

FORBIDDEN = ("engine", "buffer", "bench")


def test_channels_imports_neither_engine_nor_buffer() -> None:
    root = Path(channels.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(root)}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []
