"""The day report over a small real day (its own database, the real app, the channel simulators, flushers): a
wallet payment and channel payments, a payment the channel's statement misses (an open short), a refund the
channel refuses, a payout held for an operator; day-end, reconciliation, settlement; then the report over HTTP and
from the CLI (JSON and the page), and a section added through the extension point."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from accounts.store import Conn
from channels.protocol import RefundRequest
from engine.cli.main import main
from engine.client import PayEngineClient
from engine.gateway.context import build_channels
from engine.reports.flow import build_day_report
from engine.reports.page import render_page
from engine.reports.sections import EXCEPTION_SECTIONS
from engine.reports.wire import ExceptionSection
from tests.conftest import Servers
from tests.dayend.conftest import Db, db  # noqa: F401  (the fixture, reused)
from tests.dayend.world import World, new_ref, running_world

GOOD_CARD = "4111111111111111"


@pytest.fixture(scope="module")
async def world(servers: Servers, db: Db) -> AsyncIterator[World]:  # noqa: F811
    async with running_world(db.url, servers.redis_url, db.pool) as w:
        yield w


async def _channel_paid(w: World, client: PayEngineClient, amount: int) -> dict[str, Any]:
    created = await client.create_payment({"merchant_order_no": new_ref("c"), "amount": amount, "currency": "CNY",
                                           "method": "channel", "channel": "wxsim"})
    assert created.status == 201, created.body
    body: dict[str, Any] = created.body

    async def voucher() -> bool:
        nonlocal body
        body = (await client.get_payment(created.body["id"])).body
        return bool(body["voucher"]["status"] == "ready")
    await w.eventually(voucher)
    await w.sim("wxsim", "POST", "/sim/pay", {"pay_url": body["voucher"]["pay_url"]})

    async def paid() -> bool:
        nonlocal body
        body = (await client.get_payment(body["id"])).body
        return bool(body["status"] == "succeeded")
    await w.eventually(paid)
    return body


async def _refused_refund(w: World, client: PayEngineClient, payment: dict[str, Any]) -> str:
    """A refund the channel refuses: someone refunded the payment in full at the channel behind our back."""
    channels = build_channels(w.settings, w.http)
    await channels["wxsim"].adapter.refund(RefundRequest(payment["txn_no"], "OOB" + uuid.uuid4().hex[:20],
                                                         payment["amount"], payment["amount"], "CNY"))
    asked = await client.refund(payment["id"], 100, new_ref("rf"))
    assert asked.status == 201, asked.body

    async def failed() -> bool:
        return bool((await client.get_refund(asked.body["id"])).body["status"] == "failed")
    await w.eventually(failed)
    refund_id: str = asked.body["id"]
    return refund_id


async def _held_payout(w: World, client: PayEngineClient, customer: str) -> str:
    """The bank reports another amount than ours: the payout is held for a person."""
    await w.sim("banksim", "PUT", "/sim/admin/faults", {"payout_report_skew_minor": 1})
    try:
        made = await client.create_payout({
            "merchant_payout_no": new_ref("po"), "amount": 700, "currency": "CNY", "source": "customer",
            "customer_id": customer, "channel": "banksim",
            "destination": {"kind": "bank_card", "number": GOOD_CARD, "holder_name": "Li Lei"}})
        assert made.status == 201, made.body

        async def held() -> bool:
            async with w.pool.acquire() as conn:
                return await conn.fetchval("SELECT hold_reason FROM payouts WHERE id = $1", made.body["id"]) is not None
        await w.eventually(held)
    finally:
        await w.sim("banksim", "PUT", "/sim/admin/faults", {})
    payout_id: str = made.body["id"]
    return payout_id


async def _small_day(w: World) -> tuple[date, dict[str, str]]:
    client = await w.merchant(100, 0)
    status, _ = await w.admin("PUT", f"/admin/merchants/{client.merchant_id}/settlement-cycle", {"cycle_days": 0})
    assert status == 200
    async with w.pool.acquire() as conn:
        day: date = await conn.fetchval("SELECT open_date FROM accounting_calendar")
    customer = (await client.create_customer(new_ref("cus"))).body["id"]
    assert (await client.topup(customer, 10_000, new_ref("tu"))).status == 201
    bought = await client.create_payment({"merchant_order_no": new_ref("o"), "amount": 2_000, "currency": "CNY",
                                          "method": "wallet", "customer_id": customer})
    assert bought.status == 201, bought.body
    kept = await _channel_paid(w, client, 3_000)
    missed = await _channel_paid(w, client, 4_000)
    refused = await _channel_paid(w, client, 1_500)
    refund_id = await _refused_refund(w, client, refused)
    payout_id = await _held_payout(w, client, customer)
    await w.seed("wxsim", day, missing=[missed["txn_no"]])
    assert kept["status"] == "succeeded"
    return day, {"merchant": client.merchant_id, "missed": missed["id"], "refund": refund_id, "payout": payout_id}


async def test_day_report_shows_day_end_recon_settlement_and_open_exceptions(
        world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    w = world
    day, ids = await _small_day(w)
    status, closed = await w.admin("POST", "/admin/day-end", {"date": day.isoformat(), "force": True})
    assert status == 200 and closed["status"] == "done", closed
    status, run = await w.admin("POST", "/admin/reconciliations", {"channel": "wxsim", "date": day.isoformat()})
    assert status == 201, run
    status, settled = await w.admin("POST", "/admin/settlements", {"date": day.isoformat()})
    assert status == 200, settled

    status, proposal = await w.admin("POST", "/admin/adjustments", {
        "code": "ADJ_RECON_LONG_SUSPENSE", "amount": 123, "currency": "CNY", "accounts": {},
        "reason": "a long the channel reported", "operator": "li.lei"})
    assert status == 201, proposal
    status, report = await w.admin("GET", f"/admin/reports/day?date={day.isoformat()}")
    assert status == 200, report
    assert report["date"] == day.isoformat() and report["day_end"]["status"] == "done"
    assert report["day_end"]["report"]["trial_balance"] == "ok"
    (recon,) = report["reconciliation"]
    assert (recon["id"], recon["channel"], recon["status"]) == (run["id"], "wxsim", "done")
    assert recon["counts"]["short"] == {"open": 1} and recon["open"] >= 1
    assert recon["items"] == sum(n for states in recon["counts"].values() for n in states.values())
    mine = [b for b in report["settlement"]["batches"] if b["merchant_id"] == ids["merchant"]]
    assert len(mine) == 1 and mine[0]["net"] > 0, report["settlement"]
    (cny,) = report["settlement"]["totals"]
    assert cny["currency"] == "CNY" and cny["batches"] == len(report["settlement"]["batches"])
    assert cny["net"] == sum(b["net"] for b in report["settlement"]["batches"])
    sections = {s["name"]: s for s in report["exceptions"]}
    assert list(sections) == ["open_recon_differences", "held_payouts", "failed_refunds", "open_proposals"]
    assert ids["missed"] in [i["payment_id"] for i in sections["open_recon_differences"]["items"]]
    assert [i["id"] for i in sections["held_payouts"]["items"]] == [ids["payout"]]
    assert sections["held_payouts"]["count"] == 1
    assert [i["id"] for i in sections["failed_refunds"]["items"]] == [ids["refund"]]
    assert sections["failed_refunds"]["count"] == 1
    assert [(i["id"], i["proposed_by"]) for i in sections["open_proposals"]["items"]] == [(proposal["id"], "li.lei")]
    assert (await w.admin("GET", "/admin/reports/day?date=yesterday"))[0] == 400
    assert (await w.admin("GET", "/admin/reports/day"))[0] == 400

    # The CLI writes the same document and the page beside it.
    monkeypatch.setenv("PAYENGINE_DATABASE_URL", w.database_url)
    monkeypatch.setenv("PAYENGINE_REDIS_URL", w.redis_url)
    out = tmp_path / "day.json"
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["report", "day", "--date", day.isoformat(), "--out", str(out)])
    assert code == 0, capsys.readouterr()
    written = json.loads(out.read_text())
    assert {k: v for k, v in written.items() if k != "generated_at"} == {
        k: v for k, v in report.items() if k != "generated_at"} | {"exceptions": written["exceptions"]}
    assert [s["count"] for s in written["exceptions"]] == [s["count"] for s in report["exceptions"]]
    page = out.with_suffix(".md").read_text()
    for heading in (f"# Day report {day.isoformat()}", "## Day-end", "## Reconciliation", "## Settlement",
                    "### Open reconciliation differences: ", "### Payouts held for an operator: 1",
                    "### Refunds the channel refused, awaiting an operator: 1"):
        assert heading in page, page
    assert ids["refund"] in page and run["id"] in page and GOOD_CARD not in page
    code = await asyncio.to_thread(main, ["report", "day", "--date", "not-a-date"])
    assert code == 2


async def test_a_section_provider_adds_a_section_without_touching_the_report(world: World) -> None:
    async def open_proposals(conn: Conn, now: datetime) -> ExceptionSection:
        count = int(await conn.fetchval("SELECT 2"))
        return ExceptionSection("open_proposals", "Adjustment proposals awaiting approval", count, ["id", "amount"],
                                [{"id": "adj_1", "amount": 5}, {"id": "adj_2", "amount": 7}])

    report = await build_day_report(world.pool, date(2001, 1, 1), datetime.now(UTC),
                                    (*EXCEPTION_SECTIONS, open_proposals))
    assert report.day_end is None and report.reconciliation == [] and report.settlement.totals == []
    assert [s.name for s in report.exceptions][-1] == "open_proposals" and report.exceptions[-1].count == 2
    page = render_page(report)
    assert "No day-end ran for this date." in page
    assert "### Adjustment proposals awaiting approval: 2" in page and "| adj_2 | 7 |" in page
