"""``payengine payouts held|show|resolve``: the CLI resolves held payouts straight against PostgreSQL with the
admin API's rules: the same booking (one entry, one event), the same refusals, who and why recorded."""

from __future__ import annotations

import asyncio
import getpass
import json
from typing import Any

import pytest

from engine.cli.main import main
from engine.payouts.checks import check_payout_money
from tests.conftest import Servers
from tests.payouts.conftest import GOOD_CARD, World, held_payouts


@pytest.fixture
def world(two_channel_world: World, servers: Servers, monkeypatch: pytest.MonkeyPatch) -> World:
    """The two-channel world (its held payouts harm no other test), its database named to the CLI."""
    monkeypatch.setenv("PAYENGINE_DATABASE_URL", two_channel_world.db_url)
    monkeypatch.setenv("PAYENGINE_REDIS_URL", servers.redis_url)
    monkeypatch.setenv("PAYENGINE_HOT_INTERNAL_ACCOUNTS", "false")
    return two_channel_world


async def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["payouts", *argv])  # main() runs its own event loop
    out, err = capsys.readouterr()
    return code, json.loads(out) if code == 0 else None, err


async def test_cli_lists_shows_and_resolves_held_payouts(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    client = await world.merchant()
    await world.limit_customer_payouts(client.merchant_id, 1_500)
    customer = await world.funded_customer(client, 3_000)
    failing, paid = await held_payouts(world, client, customer, 1_000, 300)

    code, listed, _ = await _run(capsys, "held", "--merchant", client.merchant_id)
    assert code == 0 and [p["id"] for p in listed["data"]] == [paid["id"], failing["id"]], listed
    code, shown, _ = await _run(capsys, "show", failing["id"])
    assert code == 0 and shown["payout"]["hold_reason"] == "amount_mismatch", shown
    assert GOOD_CARD not in json.dumps(shown)
    admission = shown["risk"]["admission"]

    code, failed, _ = await _run(capsys, "resolve", failing["id"], "--action", "fail", "--reason",
                                 "bank ticket: nothing paid", "--operator", "cli.tester")
    assert code == 0, failed
    assert (failed["internal_status"], failed["payout"]["failure_code"]) == ("failed", "failed_by_operator"), failed
    assert (failed["transitions"][-1]["actor"], failed["transitions"][-1]["reason"]) == \
        ("cli.tester via cli", "bank ticket: nothing paid")
    assert await world.entries(failing["id"]) == ["PAYOUT_FREEZE", "PAYOUT_UNFREEZE"]
    async with world.pool.acquire() as conn:  # given back by the CLI itself, through the gate, before it ended
        assert await conn.fetchval("SELECT count(*) FROM limit_usage WHERE id = $1", admission) == 0
        events = await conn.fetch("SELECT type FROM outbox_events WHERE object_id = $1", failing["id"])
    assert [e["type"] for e in events] == ["payout.failed"]

    code, _, err = await _run(capsys, "resolve", failing["id"], "--action", "succeed", "--reason", "again")
    assert code == 1 and "illegal_transition" in err, err
    code, _, err = await _run(capsys, "resolve", paid["id"], "--action", "succeed", "--reason", "   ")
    assert code == 2 and "reason" in err, err
    code, _, err = await _run(capsys, "resolve", "po_no_such_payout", "--action", "fail", "--reason", "x")
    assert code == 1 and "resource_missing" in err, err
    code, _, err = await _run(capsys, "held", "--limit", "0")
    assert code == 2 and "limit" in err, err
    assert await world.entries(paid["id"]) == ["PAYOUT_FREEZE"]  # the refused ones changed nothing

    code, settled, _ = await _run(capsys, "resolve", paid["id"], "--action", "succeed", "--reason",
                                  "bank paid our 300")
    assert code == 0 and settled["payout"]["status"] == "succeeded", settled
    assert settled["transitions"][-1]["actor"] == f"{getpass.getuser()} via cli"
    assert await world.entries(paid["id"]) == ["PAYOUT_FREEZE", "PAYOUT_SETTLE"]
    assert await world.balance(customer, "customer_frozen") == 0
    assert await world.balance(customer, "customer_wallet") == 2_700
    async with world.pool.acquire() as conn:
        assert (await check_payout_money(conn)).holds
    code, listed, _ = await _run(capsys, "held", "--merchant", client.merchant_id)
    assert code == 0 and listed == {"data": [], "has_more": False}, listed


async def test_cli_shows_the_reported_amount_whole(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    client = await world.merchant()
    customer = await world.funded_customer(client, 250_000)
    [held] = await held_payouts(world, client, customer, 200_000)  # the channel reports 200_001
    code, listed, _ = await _run(capsys, "held", "--merchant", client.merchant_id)
    assert code == 0, listed
    [item] = listed["data"]
    assert (item["reported_amount"], item["reported_currency"]) == (200_001, "CNY"), item
    assert "200001" not in item["hold_note"], item
    code, shown, _ = await _run(capsys, "show", held["id"])
    assert code == 0 and (shown["reported_amount"], shown["reported_currency"]) == (200_001, "CNY"), shown
    code, failed, _ = await _run(capsys, "resolve", held["id"], "--action", "fail", "--reason", "bank: nothing paid")
    assert code == 0 and failed["payout"]["status"] == "failed", failed
