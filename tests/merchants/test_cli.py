"""``payengine merchants ...``: the CLI writes through the same service as the admin API, and the running
server honours what it did at once (the CLI's change NOTIFYs every API process to drop its cache entry)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest

from engine.cli.main import main
from engine.client import PayEngineClient
from tests.api.conftest import Api
from tests.conftest import Servers
from tests.merchants.conftest import ref


@pytest.fixture
def cli_env(servers: Servers, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {"PAYENGINE_DATABASE_URL": servers.database_url, "PAYENGINE_REDIS_URL": servers.redis_url}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


async def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    capsys.readouterr()
    code = await asyncio.to_thread(_main, ["merchants", *argv])  # main() runs its own event loop
    out, err = capsys.readouterr()
    return code, json.loads(out) if code == 0 else None, err


def _main(argv: list[str]) -> int:
    """main()'s exit code, also when argparse refuses a flag (it exits 2 as a shell would see it)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


async def _status_soon(client: PayEngineClient, expected: int, timeout_s: float = 2.0) -> int:
    """The status of GET /v1/accounts once it is ``expected``, or the last one after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = (await client.accounts()).status
        if status == expected or time.monotonic() > deadline:
            return status
        await asyncio.sleep(0.02)


async def test_cli_create_runs_as_a_command(api: Api, cli_env: dict[str, str]) -> None:
    merchant_id = "mch_cli_" + ref()[:16]
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "engine.cli.main", "merchants", "create", "--name", "cli shop",
                         "--currency", "CNY", "--id", merchant_id, "--settlement-cycle", "D+0"],
        capture_output=True, text=True, timeout=60, env={**os.environ, **cli_env})
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    assert (created["id"], created["settlement_cycle"]) == (merchant_id, "D+0")
    async with PayEngineClient(api.url, merchant_id, created["secret"], session=api.session) as client:
        assert (await client.accounts()).status == 200


async def test_cli_manages_a_merchant_end_to_end(api: Api, cli_env: dict[str, str],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, created, _ = await _run(capsys, "create", "--name", "cli", "--currency", "CNY", "--allow-method", "wallet",
                                  "--webhook-url", "http://127.0.0.1:9/hook")
    assert code == 0 and created["webhook_secret"].startswith("whsec_")
    merchant_id = created["id"]
    async with PayEngineClient(api.url, merchant_id, created["secret"], session=api.session, retries_max=0) as old:
        assert (await old.accounts()).status == 200

        code, updated, _ = await _run(capsys, "update", merchant_id, "--name", "renamed", "--fee-bps", "15",
                                      "--all-methods")
        assert code == 0 and (updated["name"], updated["fee_bps"], updated["allowed_methods"]) == ("renamed", 15, None)

        code, shown, _ = await _run(capsys, "suspend", merchant_id)
        assert code == 0 and shown["status"] == "suspended"
        # The running server learns it from the CLI's NOTIFY, not from its cache running out.
        assert await _status_soon(old, 403) == 403
        code, shown, _ = await _run(capsys, "resume", merchant_id)
        assert code == 0 and shown["status"] == "active"

        code, issued, _ = await _run(capsys, "rotate-key", merchant_id, "--rollover-s", "0")
        assert code == 0 and issued["secret"] != created["secret"]
        assert await _status_soon(old, 401) == 401
    async with PayEngineClient(api.url, merchant_id, issued["secret"], session=api.session) as new:
        assert (await new.accounts()).status == 200

    code, _, err = await _run(capsys, "revoke-key", merchant_id, issued["id"])
    assert code == 1 and "key_not_revocable" in err
    code, hook, _ = await _run(capsys, "rotate-webhook-secret", merchant_id, "--overlap-s", "60")
    assert code == 0 and hook["webhook_secret"] not in (created["webhook_secret"], None)
    code, shown, _ = await _run(capsys, "show", merchant_id)
    assert code == 0 and [k["state"] for k in shown["keys"]] == ["active", "revoked"]
    assert "secret" not in json.dumps(shown["keys"])


async def test_cli_reports_bad_input_and_unknown_merchants(cli_env: dict[str, str],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = await _run(capsys, "create", "--name", "x", "--currency", "CNY", "--settlement-cycle", "T+1")
    assert code == 2 and "--settlement-cycle: expected D+N or N, N calendar days 0-30" in err and "'T+1'" in err
    code, _, err = await _run(capsys, "show", "mch_nope_" + ref()[:10])
    assert code == 1 and "resource_missing" in err
    code, _, err = await _run(capsys, "create", "--name", "x", "--currency", "CNY", "--fee-plan", "no_such_plan")
    assert code == 1 and "fee_plan_unknown" in err
    code, _, err = await _run(capsys, "rotate-key", "mch_nope_" + ref()[:10], "--rollover-s", "-5")
    assert code == 2 and "rollover_s" in err


async def test_settlement_cycle_takes_what_its_help_says(cli_env: dict[str, str],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, created, _ = await _run(capsys, "create", "--name", "cycles", "--currency", "CNY")
    assert code == 0 and created["settlement_cycle"] == "D+1"
    for given, stored in (("0", "D+0"), ("D+30", "D+30"), ("d+7", "D+7"), (" 2 ", "D+2")):
        code, updated, err = await _run(capsys, "update", created["id"], "--settlement-cycle", given)
        assert code == 0 and updated["settlement_cycle"] == stored, (given, err)
    for given in ("31", "D+31", "-1", "D+", "T+1", "1.5", ""):
        code, _, err = await _run(capsys, "update", created["id"], "--settlement-cycle", given)
        assert code == 2 and "argument --settlement-cycle: expected D+N or N" in err, (given, err)
    capsys.readouterr()
    assert _main(["merchants", "update", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--settlement-cycle D+N D+N or N: settle a day's payments N calendar days later (0-30)" in help_text
