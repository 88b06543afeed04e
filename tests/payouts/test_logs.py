"""No card or account number reaches the logs, even when a database error quotes the payout's row."""

from __future__ import annotations

import logging

import pytest

from engine.logs import JsonFormatter
from tests.payouts.conftest import GOOD_CARD, World, eventually, payout_body


async def test_a_crashed_payout_step_logs_no_card_number(two_channel_world: World,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    world = two_channel_world  # the constraint below touches its own database only
    client = await world.merchant()
    customer = await world.funded_customer(client, 2_000)
    probe = "pii_probe_" + client.merchant_id.replace("-", "_")
    async with world.pool.acquire() as conn:
        # Real PostgreSQL refusing this merchant's payouts to start sending: its error quotes the whole row
        # ("Failing row contains (..., 4111111111111111, ...)") inside the worker's step.
        await conn.execute(f"ALTER TABLE payouts ADD CONSTRAINT {probe}"
                           f" CHECK (merchant_id <> '{client.merchant_id}' OR status <> 'sending') NOT VALID")
    caplog.set_level(logging.INFO)
    try:
        created = await client.create_payout(payout_body(700, customer_id=customer))
        assert created.status == 201, created.body

        async def crashed() -> bool:
            async with world.pool.acquire() as conn:
                error = await conn.fetchval("SELECT last_error FROM payouts WHERE id = $1", created.body["id"])
            return error is not None and error.startswith("crashed")

        await eventually(crashed)
    finally:
        async with world.pool.acquire() as conn:
            await conn.execute(f"ALTER TABLE payouts DROP CONSTRAINT {probe}")
    done = await world.wait_payout(client, created.body["id"])
    assert done["status"] == "succeeded", done
    crashes = [r for r in caplog.records if r.getMessage() == "payout step crashed"]
    assert crashes, "the step never crashed"
    formatter = JsonFormatter()
    for record in caplog.records:
        assert GOOD_CARD not in formatter.format(record), record.getMessage()
    assert GOOD_CARD not in caplog.text
    # What is logged instead: which payout, what broke, and the error with the number masked.
    assert all(r.__dict__.get("payout_id") == done["id"] for r in crashes)
    assert any("CheckViolation" in r.__dict__.get("error_type", "") for r in crashes)
    assert any("************1111" in r.__dict__.get("error", "") for r in crashes)
    async with world.pool.acquire() as conn:
        assert GOOD_CARD not in (await conn.fetchval("SELECT coalesce(last_error, '') FROM payouts WHERE id = $1",
                                                     done["id"]))
