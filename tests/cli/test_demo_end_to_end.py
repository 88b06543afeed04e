"""A newcomer's `make run` + `make demo`, as processes: `payengine serve --demo` in a fresh data dir starts the
embedded servers and the channel simulators, `payengine demo` takes a channel payment to `succeeded` through a
simulator, and Ctrl-C (SIGINT) stops everything serve started."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.cli.channel_sims import RUN_FILE

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 90


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _gone(pid: int, timeout_s: float = 10.0) -> bool:
    """The process ended (a zombie counts as ended: whoever reaps daemons here may take its time)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


@pytest.fixture
def data_dir() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="pe-demo-", dir="/tmp"))  # unix socket paths must stay short
    try:
        yield root / "data"
    finally:
        from engine import embedded

        embedded.stop_redis(root / "data" / "redis")  # only if the test failed before serve stopped them
        embedded.stop_postgres(root / "data" / "pg")
        shutil.rmtree(root, ignore_errors=True)


def test_make_run_then_make_demo_completes_a_channel_payment_and_ctrl_c_stops_everything(data_dir: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYENGINE_") and k != "XDG_RUNTIME_DIR"}
    env.update(PAYENGINE_DATA_DIR=str(data_dir), PAYENGINE_PORT=str(port), PAYENGINE_HOST="127.0.0.1")
    serve = subprocess.Popen([sys.executable, "-m", "engine.cli.main", "serve", "--demo"], cwd=REPO, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers(f"http://127.0.0.1:{port}/readyz"):
            assert serve.poll() is None, serve.communicate()
            assert time.monotonic() < deadline, "serve --demo did not become ready"
            time.sleep(0.2)
        sims = json.loads((data_dir / RUN_FILE).read_text())["simulators"]
        assert set(sims) == {"wxsim", "banksim"}
        pg_pid = int((data_dir / "pg" / "postmaster.pid").read_text().split()[0])
        redis_pid = int((data_dir / "redis" / "redis.pid").read_text())

        demo = subprocess.run([sys.executable, "-m", "engine.cli.main", "demo"], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=120)
        assert demo.returncode == 0, demo.stdout + demo.stderr
        steps = {line.split("->")[0].strip(): line.split("->")[1].strip() for line in demo.stdout.splitlines()}
        assert steps["wallet payment"].startswith("201 succeeded"), demo.stdout
        assert steps["channel payment"].startswith("201 pending_voucher"), demo.stdout
        assert "voucher ready" in steps and steps["pay at wxsim"].startswith("paid 2999"), demo.stdout
        assert steps["notified"].startswith("succeeded"), demo.stdout
    finally:
        serve.send_signal(signal.SIGINT)
        out, err = serve.communicate(timeout=60)
    assert serve.returncode == 0, err
    banner = out.split("payengine listening")[0]
    assert f"{sims['wxsim']}/sim/pay" in banner and sims["banksim"] in banner  # how to pay a voucher by hand
    assert "stopped the embedded Redis and PostgreSQL this run started" in out
    assert _gone(pg_pid) and _gone(redis_pid)
    assert not (data_dir / RUN_FILE).exists()
    for url in sims.values():
        assert not _answers(url + "/sim/admin/faults")
    # Start-up noise: one line per phase, no per-migration lines, no dependency warnings, no idle gateway.
    logs = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert [e["msg"] for e in logs].count("migrations applied") == 1
    assert not {"migration applied", "gateway idle: no channels configured (PAYENGINE_CHANNELS)"} & {
        e["msg"] for e in logs}
    assert "Warning" not in err and "WARNING" not in err, err
