"""Failed channel refunds re-routed by an operator (engine/reroutes/), over HTTP against the real app, real
PostgreSQL and Redis and the channel simulators: the channel refuses the refund (someone refunded the payment in
full at the channel behind our back), then an operator sends it to the wallet, to a bank payout, or by hand."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest

from accounts.store import trial_balance
from channels.protocol import RefundRequest
from engine.cli.main import main
from engine.client import PayEngineClient
from engine.payouts.checks import frozen_mismatches
from engine.services import SERVICES
from tests.conftest import Servers
from tests.gateway.conftest import Gw, gw  # noqa: F401  (the fixture, reused)
from tests.gateway.test_invoiced_fees import _invoiced_merchant

BANK_ACCOUNT = "6222020200112233"
DESTINATION = {"kind": "bank_account", "number": BANK_ACCOUNT, "holder_name": "Li Lei"}


async def _failed_refund(gw: Gw, with_customer: bool = True, amount: int = 500,  # noqa: F811
                         client: PayEngineClient | None = None,
                         ) -> tuple[PayEngineClient, dict[str, Any], dict[str, Any], str | None]:
    """A merchant (a new one unless given), its channel payment of 1999 (fee 12) paid at wxsim, and a refund of
    ``amount`` the channel refused. Returns (client, payment, refund, customer id)."""
    client = client or await gw.merchant()
    customer_id = None
    extra: dict[str, Any] = {}
    if with_customer:
        created = await client.create_customer("ext-" + uuid.uuid4().hex, "CNY")
        assert created.status == 201, created.body
        customer_id = created.body["id"]
        extra["customer_id"] = customer_id
    ready = await gw.ready_payment(client, channel="wxsim", amount=1999, **extra)
    await gw.pay("wxsim", ready["voucher"]["pay_url"])
    paid = await gw.wait_payment(client, ready["id"], lambda p: p["status"] == "succeeded")
    adapter = gw.app[SERVICES].gateway.channels["wxsim"].adapter
    await adapter.refund(RefundRequest(paid["txn_no"], "OOB" + uuid.uuid4().hex[:20], 1999, 1999, "CNY"))
    asked = await client.refund(paid["id"], amount, "rf-" + uuid.uuid4().hex)
    assert asked.status == 201, asked.body
    deadline = time.monotonic() + 8.0
    while (refund := (await client.get_refund(asked.body["id"])).body)["status"] == "pending":
        assert time.monotonic() < deadline, refund
        await asyncio.sleep(0.05)
    assert refund["status"] == "failed", refund
    return client, paid, refund, customer_id


async def _events(gw: Gw, object_id: str) -> list[str]:  # noqa: F811
    async with gw.pool.acquire() as conn:
        rows = await conn.fetch("SELECT type FROM outbox_events WHERE object_id = $1 ORDER BY created_at, id",
                                object_id)
    return [r["type"] for r in rows]


async def _audit_rows(gw: Gw, refund_id: str) -> list[Any]:  # noqa: F811
    async with gw.pool.acquire() as conn:
        return list(await conn.fetch("SELECT operator, action FROM audit_log WHERE subject_id = $1", refund_id))


async def _balance(client: PayEngineClient, role: str) -> int:
    accounts = await client.accounts()
    found = [a["balance"] for a in accounts.body["data"] if a["role"] == role and a["currency"] == "CNY"]
    assert len(found) == 1, accounts.body
    return int(found[0])


async def _trial_balance_holds(gw: Gw) -> None:  # noqa: F811
    async def drained() -> bool:
        async with gw.pool.acquire() as conn:
            return (await trial_balance(conn)).holds_drained
    await gw.eventually(drained)


async def _awaiting_gauges(gw: Gw) -> tuple[float, float]:  # noqa: F811
    """(refunds awaiting an operator, the oldest one's age) as /metrics shows them."""
    async with gw.http.get(gw.url + "/metrics") as r:
        assert r.status == 200
        text = await r.text()
    values = {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
              if line.startswith("payengine_failed_refund")}
    return values["payengine_failed_refunds_awaiting_operator"], values["payengine_failed_refund_oldest_age_seconds"]


def _reroute(to: str, **extra: Any) -> dict[str, Any]:
    return {"to": to, "operator": "li.lei", "reason": "channel says the card is closed", **extra}


async def test_failed_refund_rerouted_to_wallet_credits_the_customer_once(gw: Gw) -> None:  # noqa: F811
    client, paid, refund, customer_id = await _failed_refund(gw)
    pending_before = await _balance(client, "merchant_pending")
    path = f"/admin/refunds/{refund['id']}/reroute"
    listed_status, listed = await gw.admin("GET", f"/admin/refunds?status=failed&merchant_id={client.merchant_id}")
    assert listed_status == 200 and [r["refund"]["id"] for r in listed["data"]] == [refund["id"]], listed
    assert listed["data"][0]["wallet_available"] is True

    waiting, oldest_s = await _awaiting_gauges(gw)
    assert waiting >= 1 and oldest_s > 0

    answers = await asyncio.gather(gw.admin("POST", path, _reroute("wallet")),
                                   gw.admin("POST", path, _reroute("wallet", operator="han.meimei")))
    assert sorted(status for status, _ in answers) == [200, 409], answers
    won = next(body for status, body in answers if status == 200)
    assert won["refund"]["status"] == "rerouted" and won["refund"]["rerouted_to"] == "wallet", won
    lost = next(body for status, body in answers if status == 409)
    assert lost["error"]["code"] == "illegal_transition", lost

    assert await gw.entries(refund["id"]) == ["REFUND_WALLET"]
    async with gw.pool.acquire() as conn:
        balance = await conn.fetchval(
            "SELECT a.balance FROM customers c JOIN accounts a ON a.id = c.wallet_account_id WHERE c.id = $1",
            customer_id)
    assert balance == 500
    # 500 back from the merchant: its net (497) from pending, the fee share (3) from fee income.
    assert await _balance(client, "merchant_pending") == pending_before - 497
    got = await client.get_refund(refund["id"])
    assert got.body["status"] == "rerouted" and got.body["rerouted_to"] == "wallet", got.body
    payment = await client.get_payment(paid["id"])
    assert payment.body["amount_refunded"] == 500  # counted as refunded again
    assert await _events(gw, refund["id"]) == ["refund.failed", "refund.rerouted"]
    rows = await _audit_rows(gw, refund["id"])
    assert [(r["action"]) for r in rows] == ["refund.reroute.wallet"] and rows[0]["operator"] in ("li.lei",
                                                                                                 "han.meimei")
    again, _ = await gw.admin("GET", f"/admin/refunds?status=failed&merchant_id={client.merchant_id}")
    assert again == 200 and _["data"] == []
    assert (await _awaiting_gauges(gw))[0] == waiting - 1
    await _trial_balance_holds(gw)


async def test_failed_refund_rerouted_to_bank_makes_exactly_one_payout(gw: Gw) -> None:  # noqa: F811
    client, paid, refund, _ = await _failed_refund(gw, with_customer=False)
    pending_before = await _balance(client, "merchant_pending")
    status, body = await gw.admin("POST", f"/admin/refunds/{refund['id']}/reroute",
                                  _reroute("bank", destination=DESTINATION, channel="banksim"))
    assert status == 200, body
    assert body["refund"]["status"] == "rerouted" and body["refund"]["rerouted_to"] == "bank", body
    payout_id = body["refund"]["payout_id"]
    assert payout_id and BANK_ACCOUNT not in str(body)
    again, _ = await gw.admin("POST", f"/admin/refunds/{refund['id']}/reroute",
                              _reroute("bank", destination=DESTINATION))
    assert again == 409
    async with gw.pool.acquire() as conn:
        payouts = await conn.fetch("SELECT id, amount, source_account_id FROM payouts WHERE merchant_id = $1",
                                   client.merchant_id)
        owed_role = await conn.fetchval("SELECT role FROM accounts WHERE id = $1", payouts[0]["source_account_id"])
    assert [(p["id"], p["amount"]) for p in payouts] == [(payout_id, 500)]
    assert owed_role == "merchant_refunds_owed"
    assert await gw.entries(refund["id"]) == ["REFUND_TO_BANK"]
    assert (await gw.entries(payout_id))[:1] == ["PAYOUT_FREEZE"]
    assert await _balance(client, "merchant_pending") == pending_before - 497
    assert (await client.get_payment(paid["id"])).body["amount_refunded"] == 500
    assert await _events(gw, refund["id"]) == ["refund.failed", "refund.rerouted"]
    # The payout worker pays it out at banksim: the money leaves against the channel receivable, owed goes to 0.
    async def settled() -> bool:
        async with gw.pool.acquire() as conn:
            return await conn.fetchval("SELECT status FROM payouts WHERE id = $1", payout_id) == "succeeded"
    await gw.eventually(settled, 15.0)
    assert await gw.entries(payout_id) == ["PAYOUT_FREEZE", "PAYOUT_SETTLE"]
    async with gw.pool.acquire() as conn:
        assert await frozen_mismatches(conn) == []
    await _trial_balance_holds(gw)


async def test_failed_refund_marked_manual_moves_no_money(gw: Gw) -> None:  # noqa: F811
    client, paid, refund, _ = await _failed_refund(gw)
    pending_before = await _balance(client, "merchant_pending")
    status, body = await gw.admin("POST", f"/admin/refunds/{refund['id']}/reroute", _reroute("manual"))
    assert status == 200 and body["refund"]["status"] == "manual", body
    assert body["resolved_by"] == "li.lei" and body["resolution_note"] == "channel says the card is closed"
    assert await gw.entries(refund["id"]) == []
    assert await _balance(client, "merchant_pending") == pending_before
    assert (await client.get_payment(paid["id"])).body["amount_refunded"] == 0  # no money left the merchant
    assert await _events(gw, refund["id"]) == ["refund.failed", "refund.manual"]
    assert [r["action"] for r in await _audit_rows(gw, refund["id"])] == ["refund.reroute.manual"]


async def test_bad_reroutes_are_4xx_and_write_nothing(gw: Gw) -> None:  # noqa: F811
    client, _paid, refund, _ = await _failed_refund(gw, with_customer=False)
    path = f"/admin/refunds/{refund['id']}/reroute"
    wallet_refund = await client.create_customer("ext-" + uuid.uuid4().hex, "CNY")
    cases: list[tuple[str, Any, int, str | None]] = [
        ("/admin/refunds/rf_nosuchrefund/reroute", _reroute("manual"), 404, "resource_missing"),
        (path, _reroute("wallet"), 422, "no_customer_wallet"),
        (path, {"to": "manual", "reason": "no operator named"}, 400, None),
        (path, _reroute("manual", operator=""), 400, None),
        (path, _reroute("bank"), 400, None),
        (path, _reroute("bank", destination={**DESTINATION, "number": "12"}), 422, "invalid_destination"),
        (path, _reroute("wallet", destination=DESTINATION), 400, None),
        (path, _reroute("sideways"), 400, None),
    ]
    for target, body, expected, code in cases:
        status, answer = await gw.admin("POST", target, body)
        assert status == expected, (body, answer)
        assert code is None or answer["error"]["code"] == code, answer
    assert wallet_refund.status == 201
    assert (await client.get_refund(refund["id"])).body["status"] == "failed"
    assert await gw.entries(refund["id"]) == []
    assert await _audit_rows(gw, refund["id"]) == []
    assert await _events(gw, refund["id"]) == ["refund.failed"]
    async with gw.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM payouts WHERE merchant_id = $1", client.merchant_id) == 0

    # A refund that did not fail (a wallet refund, succeeded at once) is no operator's business: 409, nothing written.
    customer = wallet_refund.body["id"]
    assert (await client.topup(customer, 1000, "tu-" + uuid.uuid4().hex)).status == 201
    bought = await client.create_payment({"merchant_order_no": "ord-" + uuid.uuid4().hex, "amount": 800,
                                          "currency": "CNY", "method": "wallet", "customer_id": customer})
    assert bought.status == 201, bought.body
    done = await client.refund(bought.body["id"], 100, "rf-" + uuid.uuid4().hex)
    assert done.status == 201 and done.body["status"] == "succeeded", done.body
    status, answer = await gw.admin("POST", f"/admin/refunds/{done.body['id']}/reroute", _reroute("manual"))
    assert status == 409 and answer["error"]["code"] == "illegal_transition", answer
    assert await _audit_rows(gw, done.body["id"]) == []
    assert await gw.entries(done.body["id"]) == ["REFUND_WALLET"]
    status, answer = await gw.admin("GET", "/admin/refunds")  # status=failed is required
    assert status == 400, answer


async def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["refunds", *argv])  # main() runs its own event loop
    out, err = capsys.readouterr()
    return code, json.loads(out) if code == 0 else None, err


async def test_cli_lists_failed_refunds_and_reroutes_one_once(gw: Gw, servers: Servers,  # noqa: F811
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PAYENGINE_DATABASE_URL", servers.database_url)
    monkeypatch.setenv("PAYENGINE_REDIS_URL", servers.redis_url)
    client, paid, refund, _ = await _failed_refund(gw)
    code, listed, _ = await _cli(capsys, "failed", "--merchant", client.merchant_id)
    assert code == 0 and [r["refund"]["id"] for r in listed["data"]] == [refund["id"]], listed
    code, _, err = await _cli(capsys, "reroute", refund["id"], "--to", "bank", "--reason", "no destination")
    assert code == 1 and "parameter_invalid" in err, err
    code, done, _ = await _cli(capsys, "reroute", refund["id"], "--to", "wallet", "--reason", "card closed",
                               "--operator", "cli.tester")
    assert code == 0 and done["refund"]["status"] == "rerouted" and done["resolved_by"] == "cli.tester", done
    code, _, err = await _cli(capsys, "reroute", refund["id"], "--to", "wallet", "--reason", "again")
    assert code == 1 and "illegal_transition" in err, err
    assert await gw.entries(refund["id"]) == ["REFUND_WALLET"]
    assert [r["operator"] for r in await _audit_rows(gw, refund["id"])] == ["cli.tester"]
    assert (await client.get_payment(paid["id"])).body["amount_refunded"] == 500
    code, _, err = await _cli(capsys, "reroute", refund["id"], "--to", "manual", "--reason", "x", "--operator", "")
    assert code == 2, err


async def test_refused_auto_refund_of_a_late_payment_rerouted_to_the_wallet(gw: Gw) -> None:  # noqa: F811
    client = await gw.merchant()
    customer_id = (await client.create_customer("ext-" + uuid.uuid4().hex, "CNY")).body["id"]
    await gw.set_faults("wxsim", no_notify_rate=1.0)
    try:
        ready = await gw.ready_payment(client, channel="wxsim", amount=5000, customer_id=customer_id)
        await gw.pay("wxsim", ready["voucher"]["pay_url"])
    finally:
        await gw.set_faults("wxsim")
    # Someone refunds 1 at the channel behind our back: the auto-refund of all 5000 will be refused there.
    adapter = gw.app[SERVICES].gateway.channels["wxsim"].adapter
    await adapter.refund(RefundRequest(ready["txn_no"], "OOB" + uuid.uuid4().hex[:20], 1, 5000, "CNY"))
    closed = await client.close_payment(ready["id"])  # the merchant gives up; the payer already paid
    assert closed.status == 200, closed.body

    async def refused() -> bool:
        found = await gw.exceptions(payment_id=ready["id"])
        return bool(found) and found[0]["refund_status"] == "failed"
    await gw.eventually(refused)
    (exc,) = await gw.exceptions(payment_id=ready["id"])
    assert await gw.entries(ready["id"]) == ["PAY_CHANNEL"] and await gw.entries(exc["id"]) == []
    assert await _balance(client, "merchant_pending") == 5000  # the late money, held for the payer

    path = f"/admin/exceptions/{exc['id']}/reroute"
    answers = await asyncio.gather(gw.admin("POST", path, _reroute("wallet")),
                                   gw.admin("POST", path, _reroute("wallet", operator="han.meimei")))
    assert sorted(status for status, _ in answers) == [200, 409], answers
    won = next(body for status, body in answers if status == 200)
    assert won["rerouted_to"] == "wallet" and await gw.entries(exc["id"]) == ["REFUND_WALLET"], won
    async with gw.pool.acquire() as conn:
        assert await conn.fetchval(
            "SELECT a.balance FROM customers c JOIN accounts a ON a.id = c.wallet_account_id WHERE c.id = $1",
            customer_id) == 5000
    assert won["refund_status"] == "rerouted" and won["resolved_by"] in ("li.lei", "han.meimei"), won
    assert await _balance(client, "merchant_pending") == 0
    (after,) = await gw.exceptions(payment_id=ready["id"])
    assert after["status"] == "resolved" and after["refund_status"] == "rerouted", after
    assert [r["action"] for r in await _audit_rows(gw, exc["id"])] == ["refund.reroute.wallet"]
    again, body = await gw.admin("POST", path, _reroute("manual"))
    assert again == 409 and body["error"]["code"] == "illegal_transition", body
    assert (await gw.admin("POST", "/admin/exceptions/exc_nosuch/reroute", _reroute("manual")))[0] == 404
    await _trial_balance_holds(gw)


async def test_reroute_refused_when_later_refunds_took_its_room(gw: Gw) -> None:  # noqa: F811
    client, paid, refund, _ = await _failed_refund(gw, amount=1500)
    # A second refund, stuck pending while the channel is down, holds 1000 of the 1999: no room for 1500 again.
    await gw.set_faults("wxsim", error_rate=1.0)
    try:
        stuck = await client.refund(paid["id"], 1000, "rf-" + uuid.uuid4().hex)
        assert stuck.status == 201 and stuck.body["status"] == "pending", stuck.body
        status, body = await gw.admin("POST", f"/admin/refunds/{refund['id']}/reroute", _reroute("wallet"))
    finally:
        await gw.set_faults("wxsim")
        gw.forget_channel_health()
    assert status == 409 and body["error"]["code"] == "refund_exceeds_payment", body
    assert (await client.get_refund(refund["id"])).body["status"] == "failed"
    assert await gw.entries(refund["id"]) == [] and await _audit_rows(gw, refund["id"]) == []
    assert await _events(gw, refund["id"]) == ["refund.failed"]


async def test_bank_reroute_of_an_invoiced_merchant_gives_back_the_owed_fee_share(gw: Gw) -> None:  # noqa: F811
    client, paid, refund, _ = await _failed_refund(gw, with_customer=False, client=await _invoiced_merchant(gw))
    assert paid["fee"] == 12
    before = {a["role"]: a["balance"] for a in (await client.accounts()).body["data"] if a["currency"] == "CNY"}
    status, body = await gw.admin("POST", f"/admin/refunds/{refund['id']}/reroute",
                                  _reroute("bank", destination=DESTINATION, channel="banksim"))
    assert status == 200, body
    assert await gw.entries(refund["id"]) == ["REFUND_TO_BANK_INVOICED"]
    after = {a["role"]: a["balance"] for a in (await client.accounts()).body["data"] if a["currency"] == "CNY"}
    # The whole 500 from pending; the fee share of 3 is owed no more; owed 500, frozen at once for the payout.
    assert after["merchant_pending"] == before["merchant_pending"] - 500
    assert after["merchant_fee_payable"] == before["merchant_fee_payable"] - 3
    assert after["merchant_refunds_owed"] == 0
    async with gw.pool.acquire() as conn:
        payload = await conn.fetchval("SELECT payload::text FROM outbox_events WHERE object_id = $1"
                                      " AND type = 'refund.rerouted'", refund["id"])
    event = json.loads(payload)
    assert (event["status"], event["rerouted_to"], event["payout_id"]) == ("rerouted", "bank",
                                                                           body["refund"]["payout_id"])
    await _trial_balance_holds(gw)
