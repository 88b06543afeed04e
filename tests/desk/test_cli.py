"""``payengine adjustments|reversals ...`` and ``payengine recon resolve``: the desk from the command line, through
the running server's admin API, with the same rules (four eyes, once, nothing written on a refusal)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import asyncpg
import pytest

from engine.cli.main import main
from tests.api.conftest import ADMIN_TOKEN, Api
from tests.desk.desk import balance, desk_rows, entries_for, flushed, wallet_of, who


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYENGINE_ADMIN_TOKEN", ADMIN_TOKEN)


def _main(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse refusing a flag exits 2, as a shell would see it
        return int(exc.code or 0)


async def run_cli(capsys: pytest.CaptureFixture[str], api: Api, *argv: str) -> tuple[int, Any, str]:
    capsys.readouterr()
    code = await asyncio.to_thread(_main, [*argv, "--url", api.url])  # main() runs its own event loop
    out, err = capsys.readouterr()
    return code, json.loads(out) if code == 0 else None, err


async def test_an_adjustment_from_the_command_line(api: Api, pool: asyncpg.Pool, cli_env: None,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    client = await api.merchant()
    _, wallet = await wallet_of(api, client, 0)
    alice, bob = who(), who()
    code, proposed, _ = await run_cli(capsys, api, "adjustments", "propose", "--code", "ADJ_CUSTOMER_COMPENSATION",
                                      "--amount", "250", "--currency", "CNY", "--account", f"customer_wallet={wallet}",
                                      "--reason", "goodwill for a lost order", "--evidence", "T-77",
                                      "--operator", alice)
    assert code == 0 and proposed["status"] == "proposed", proposed
    code, _, err = await run_cli(capsys, api, "adjustments", "approve", proposed["id"], "--operator", alice)
    assert code == 1 and "four_eyes_required" in err, err
    code, approved, _ = await run_cli(capsys, api, "adjustments", "approve", proposed["id"], "--operator", bob,
                                      "--note", "checked T-77")
    assert code == 0 and (approved["status"], approved["decided_by"]) == ("approved", bob), approved
    assert await balance(pool, wallet) == 250 and len(await entries_for(pool, proposed["id"])) == 1
    code, _, err = await run_cli(capsys, api, "adjustments", "reject", proposed["id"], "--operator", who())
    assert code == 1 and "proposal_not_open" in err, err
    code, shown, _ = await run_cli(capsys, api, "adjustments", "show", proposed["id"])
    assert code == 0 and shown == approved
    code, listed, _ = await run_cli(capsys, api, "adjustments", "list", "--status", "approved", "--limit", "100")
    assert code == 0 and proposed["id"] in [p["id"] for p in listed["data"]]
    code, codes, _ = await run_cli(capsys, api, "adjustments", "codes")
    compensation = next(c for c in codes["data"] if c["code"] == "ADJ_CUSTOMER_COMPENSATION")
    assert (compensation["named_roles"], compensation["platform_roles"], compensation["legs"]) == (
        ["customer_wallet"], ["adjustments"], [{"role": "adjustments", "side": "D"},
                                               {"role": "customer_wallet", "side": "C"}])


async def test_a_reversal_from_the_command_line(api: Api, pool: asyncpg.Pool, cli_env: None,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    client = await api.merchant()
    customer, wallet = await wallet_of(api, client, 0)
    topped = (await client.topup(customer, 600, "tu-" + uuid.uuid4().hex)).body
    code, proposed, _ = await run_cli(capsys, api, "reversals", "propose", topped["txn_no"], "--reason", "duplicate",
                                      "--operator", who())
    assert code == 0 and proposed["original_txn_no"] == topped["txn_no"], proposed
    code, approved, _ = await run_cli(capsys, api, "reversals", "approve", proposed["id"], "--operator", who())
    assert code == 0 and approved["status"] == "approved", approved
    await flushed(pool, approved["txn_no"])
    assert await balance(pool, wallet) == 0
    code, _, err = await run_cli(capsys, api, "reversals", "propose", approved["txn_no"], "--reason", "undo",
                                 "--operator", who())
    assert code == 1 and "entry_is_reversal" in err, err


async def test_the_command_line_refuses_bad_input_and_writes_nothing(api: Api, pool: asyncpg.Pool, cli_env: None,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    before = await desk_rows(pool)
    code, _, err = await run_cli(capsys, api, "adjustments", "propose", "--code", "ADJ_NOPE", "--amount", "1",
                                 "--currency", "CNY", "--reason", "r", "--operator", who())
    assert code == 2 and "unknown_adjustment_code" in err, err
    code, _, err = await run_cli(capsys, api, "adjustments", "propose", "--code", "ADJ_CUSTOMER_COMPENSATION",
                                 "--amount", "0", "--currency", "CNY", "--reason", "r", "--operator", who())
    assert code == 2 and "parameter_invalid" in err, err
    code, _, _ = await run_cli(capsys, api, "adjustments", "approve", "adj_x")  # no --operator
    assert code == 2
    code, _, err = await run_cli(capsys, api, "recon", "resolve", "999999999", "--action", "explain", "--note", "n",
                                 "--operator", who())
    assert code == 1 and "resource_missing" in err, err
    assert await desk_rows(pool) == before
    capsys.readouterr()
    assert await asyncio.to_thread(_main, ["adjustments", "list", "--url", "http://127.0.0.1:9"]) == 3
