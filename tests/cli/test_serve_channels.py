"""`payengine serve` and its channels: a default channel that is not configured stops it before it starts
anything; no channels at all is said once, with what it means for payments."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from engine.channel_specs import parse_channel_specs
from engine.cli.serve import channel_problem, channel_warning
from engine.settings import Settings

REPO = Path(__file__).resolve().parents[2]
BANKS = "bank-a=banksim,http://127.0.0.1:9,sim-merchant,k1;bank-b=banksim,http://127.0.0.1:9,sim-merchant,k2"


def test_serve_refuses_a_default_channel_missing_from_the_configured_ones(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYENGINE_")}
    env.update(PAYENGINE_CHANNELS=BANKS, PAYENGINE_DATA_DIR=str(tmp_path / "data"), PAYENGINE_PORT="0")
    done = subprocess.run([sys.executable, "-m", "engine.cli.main", "serve"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done
    assert done.stderr.strip().splitlines() == [
        "payengine: PAYENGINE_DEFAULT_CHANNEL=wxsim is not one of PAYENGINE_CHANNELS (bank-a, bank-b): channel "
        "payments naming no channel would all be refused; set PAYENGINE_DEFAULT_CHANNEL to one of them"]
    assert not (tmp_path / "data").exists()  # refused before any server was started


def test_a_default_channel_among_the_configured_ones_is_accepted() -> None:
    banks = parse_channel_specs(BANKS)
    assert channel_problem(Settings(channels=banks, default_channel="bank-b")) is None
    assert channel_problem(Settings()) is None  # no channels: nothing to contradict (the warning says the rest)


def test_without_channels_serve_says_channel_payments_cannot_complete() -> None:
    note = channel_warning(Settings())
    assert note is not None and "PAYENGINE_CHANNELS" in note and "can never complete" in note
    assert channel_warning(Settings(channels=parse_channel_specs(BANKS), default_channel="bank-a")) is None
