"""``payengine channel-sim``: its help names every profile the code has, and at start it prints the exact
PAYENGINE_CHANNELS entry that points the engine at it."""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

from channels.sim import PROFILES
from engine.channel_specs import parse_channel_specs
from engine.cli.main import build_parser

REPO = Path(__file__).resolve().parents[2]


def _help(*argv: str) -> str:
    done = subprocess.run([sys.executable, "-m", "engine.cli.main", *argv, "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return " ".join(done.stdout.split())  # argparse wraps lines, sometimes inside a name


def test_help_and_readme_name_every_simulator_profile() -> None:
    listed = "one of: " + ", ".join(PROFILES)
    assert listed in _help("channel-sim")
    readme = (REPO / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `payengine channel-sim"))
    assert re.findall(r"`([a-z-]+)`", row.split("|")[2]) == list(PROFILES)
    # An unknown profile is refused by argparse, naming the choices.
    assert build_parser().parse_args(["channel-sim", "--profile", "banksim-flaky"]).profile == "banksim-flaky"


def test_channel_sim_prints_the_channels_setting_that_points_at_it() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli.main", "channel-sim", "--profile", "banksim",
                             "--notify-base-url", "http://127.0.0.1:9"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline()]
        while "pay a voucher" not in lines[-1]:  # the last line of what it prints at start
            assert lines[-1], f"exited early: {lines}"
            lines.append(proc.stdout.readline())
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    url = re.search(r"listening on (http://127\.0\.0\.1:\d+)", lines[0])
    assert url, lines
    setting = next(line.strip() for line in lines if line.strip().startswith("PAYENGINE_CHANNELS="))
    (spec,) = parse_channel_specs(shlex.split(setting.removeprefix("PAYENGINE_CHANNELS="))[0])
    profile = PROFILES["banksim"]
    assert (spec.name, spec.kind, spec.base_url, spec.merchant_id, spec.key) == (
        "banksim", "banksim", url.group(1), profile.merchant_id, profile.key)
    assert any("PAYENGINE_DEFAULT_CHANNEL=banksim" in line for line in lines)
    assert any(f"{url.group(1)}/sim/pay" in line for line in lines)
    assert any("http://127.0.0.1:9/channels/banksim/notify" in line for line in lines)


def test_readme_gives_the_simulators_credentials_and_the_channels_format() -> None:
    readme = (REPO / "README.md").read_text()
    assert "## Wiring a channel" in readme and "name=kind,base_url,merchant_id,key[,cost_bps]" in readme
    for profile in PROFILES.values():
        assert f"`{profile.merchant_id}`" in readme and f"`{profile.key}`" in readme, profile.name
    assert "--notify-base-url" in readme
