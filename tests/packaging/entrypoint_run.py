"""Run docker/entrypoint.sh as the image would, with fake ``payengine`` / ``locust`` that record argv."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ENTRYPOINT = REPO / "docker" / "entrypoint.sh"
VENV_BIN = REPO / ".venv" / "bin"
URLS = {"PAYENGINE_DATABASE_URL": "postgresql://u:p@postgres:5432/payengine", "PAYENGINE_REDIS_URL": "redis://redis:6379/0"}

# A stand-in that records how it was called: program name and argv, as JSON.
_FAKE = """#!/bin/sh
python3 -c 'import json, sys; json.dump(sys.argv[2:], open(sys.argv[1], "w"))' "$RECORD_FILE" "$(basename "$0")" "$@"
"""


@dataclass(frozen=True)
class Run:
    code: int
    argv: list[str] | None  # [program, *args] the entrypoint exec'd, None if it exec'd nothing
    stderr: str


def fake_bin(tmp: Path) -> Path:
    bin_dir = tmp / "fakebin"
    bin_dir.mkdir(exist_ok=True)
    for name in ("payengine", "locust"):
        path = bin_dir / name
        path.write_text(_FAKE)
        path.chmod(0o755)
    return bin_dir


def run_entrypoint(tmp: Path, args: list[str], env: dict[str, str] | None = None, urls: bool = True) -> Run:
    record = tmp / "argv.json"
    record.unlink(missing_ok=True)
    base = {"PATH": f"{fake_bin(tmp)}:{VENV_BIN}:/usr/bin:/bin", "RECORD_FILE": str(record), "HOME": str(tmp)}
    full = {**base, **(URLS if urls else {}), **(env or {})}
    proc = subprocess.run(["sh", str(ENTRYPOINT), *args], env=full, cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=False)
    argv = json.loads(record.read_text()) if record.exists() else None
    return Run(proc.returncode, argv, proc.stderr)
