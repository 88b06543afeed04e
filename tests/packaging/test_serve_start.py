"""`payengine serve` on a port that is taken says so in one line and starts nothing; the development
credentials are called out when they are still the defaults."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from engine.cli.serve import dev_credentials, port_in_use
from engine.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def test_serve_on_a_busy_port_says_so_in_one_line_before_starting_anything(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert port_in_use("127.0.0.1", port)
        env = {**os.environ, "PAYENGINE_PORT": str(port), "PAYENGINE_HOST": "127.0.0.1",
               "PAYENGINE_DATA_DIR": str(tmp_path / "data")}
        done = subprocess.run([sys.executable, "-m", "engine.cli.main", "serve"], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done
    assert done.stderr.strip().splitlines() == [f"payengine: port {port} on 127.0.0.1 is in use (set PAYENGINE_PORT)"]
    assert "listening" not in done.stdout and not (tmp_path / "data").exists()  # no server was started


def test_the_development_credentials_are_named_until_they_are_set() -> None:
    assert dev_credentials(Settings()) == ["PAYENGINE_ADMIN_TOKEN", "PAYENGINE_API_SECRET_KEY"]
    assert dev_credentials(Settings(admin_token="a-real-token", api_secret_key="a-real-key")) == []


def test_settings_say_when_a_secret_is_still_the_development_default() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYENGINE_")}
    shown = subprocess.run([sys.executable, "-m", "engine.cli.main", "settings"], cwd=REPO, text=True,
                           capture_output=True, timeout=60, env={**env, "PAYENGINE_ADMIN_TOKEN": "a-real-one"}).stdout
    assert "PAYENGINE_ADMIN_TOKEN=[set]" in shown
    assert "PAYENGINE_API_SECRET_KEY=[development default: set it]" in shown
    assert "a-real-one" not in shown
