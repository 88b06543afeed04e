"""Held payouts resolved by a person through the admin API, over real HTTP against the bank simulator.

A held payout (the channel reported another amount than ours) is listed and shown to operators; resolving it
retries (the channel is asked again), fails (PAYOUT_UNFREEZE, payout.failed, limit usage given back) or succeeds
(PAYOUT_SETTLE, payout.succeeded), each booked in one transaction with its transitions row, exactly once.
These payouts live in the two-channel world's database: one left held by a failing test harms nobody else.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from engine.controls.usage_release import release_owed
from engine.logs import JsonFormatter
from engine.payouts.checks import check_payout_money
from engine.services import SERVICES
from tests.payouts.conftest import ADMIN_TOKEN, CHANNEL, GOOD_CARD, World, eventually, held_payouts, payout_body


@pytest.fixture
def world(two_channel_world: World) -> World:
    return two_channel_world


async def _resolve(world: World, payout_id: str, action: str, reason: str = "checked with the bank",
                   **extra: Any) -> tuple[int, Any]:
    return await world.admin("POST", f"/admin/payouts/{payout_id}/resolve",
                             {"action": action, "reason": reason, **extra})


async def _raw(world: World, method: str, path: str, data: bytes = b"",
               token: str | None = ADMIN_TOKEN) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with world.http.request(method, world.url + path, data=data, headers=headers) as r:
        return r.status, await r.json()


async def _legs(world: World, payout_id: str, code: str) -> set[tuple[str, str, int]]:
    """(account role, side, amount) of the payout's entry with transaction code `code`."""
    async with world.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT a.role, l.side, l.amount FROM journal_entries e JOIN journal_legs l ON l.txn_no = e.txn_no"
            " JOIN accounts a ON a.id = l.account_id WHERE e.ref = $1 AND e.txn_code = $2", payout_id, code)
    return {(r["role"], r["side"], r["amount"]) for r in rows}


async def _events(world: World, payout_id: str) -> list[str]:
    async with world.pool.acquire() as conn:
        rows = await conn.fetch("SELECT type FROM outbox_events WHERE object_id = $1 ORDER BY created_at", payout_id)
    return [r["type"] for r in rows]


async def _money_holds(world: World) -> None:
    async with world.pool.acquire() as conn:
        money = await check_payout_money(conn)
    assert money.holds, money


async def test_succeed_settles_a_held_payout_as_the_channels_success_would(world: World,
                                                                           caplog: pytest.LogCaptureFixture) -> None:
    client = await world.merchant()
    customer = await world.funded_customer(client, 3_000)
    [held] = await held_payouts(world, client, customer, 1_000)
    assert (held["status"], held["hold_reason"]) == ("processing", "amount_mismatch"), held
    status, before = await world.admin("GET", f"/admin/payouts/{held['id']}")
    assert status == 200 and before["internal_status"] in ("sending", "processing"), before
    caplog.set_level(logging.INFO)
    status, body = await _resolve(world, held["id"], "succeed", f"bank confirmed 1000 paid to card {GOOD_CARD}",
                                  operator="ops.anna")
    assert status == 200, body
    assert (body["internal_status"], body["payout"]["status"], body["payout"]["hold_reason"]) == \
        ("succeeded", "succeeded", None), body
    step = body["transitions"][-1]
    assert (step["from_status"], step["to_status"], step["event"], step["actor"]) == \
        (before["internal_status"], "succeeded", "resolve_succeed:amount_mismatch", "ops.anna via admin-api"), step
    assert step["reason"] == "bank confirmed 1000 paid to card ************1111"  # typed digits masked
    assert await world.balance(customer, "customer_frozen") == 0
    assert await world.balance(customer, "customer_wallet") == 2_000
    assert await world.entries(held["id"]) == ["PAYOUT_FREEZE", "PAYOUT_SETTLE"]
    assert await _legs(world, held["id"], "PAYOUT_SETTLE") == {
        ("customer_frozen", "D", 1_000), ("channel_receivable", "C", 1_000)}  # our amount, not the channel's
    assert await _events(world, held["id"]) == ["payout.succeeded"]
    await _money_holds(world)
    merchant_view = (await client.get_payout(held["id"])).body
    assert (merchant_view["status"], merchant_view["hold_reason"]) == ("succeeded", None), merchant_view
    # One structured line saying who resolved what and why, with no card number anywhere.
    lines = [r for r in caplog.records if r.getMessage() == "held payout resolved by an operator"]
    assert len(lines) == 1 and lines[0].__dict__["action"] == "succeed" and lines[0].__dict__["payout_id"] == held["id"]
    assert lines[0].__dict__["actor"] == "ops.anna via admin-api"
    assert all(GOOD_CARD not in JsonFormatter().format(r) for r in caplog.records)
    await asyncio.sleep(0.3)  # nothing asks the channel again or books twice
    assert await world.entries(held["id"]) == ["PAYOUT_FREEZE", "PAYOUT_SETTLE"]


async def test_fail_unfreezes_and_gives_the_limit_usage_back_like_a_channel_failure(world: World) -> None:
    client = await world.merchant()
    await world.limit_customer_payouts(client.merchant_id, 1_500)
    customer = await world.funded_customer(client, 3_000)
    [held] = await held_payouts(world, client, customer, 1_000)
    assert await world.balance(customer, "customer_wallet") == 2_000
    # The limits/risk record stored with the payout, by the controls endpoint and in the payout's detail.
    status, controls = await world.admin("GET", f"/admin/payouts/{held['id']}/controls")
    assert status == 200 and controls["payout_id"] == held["id"], controls
    admission = controls["controls"]["admission"]
    assert {(lim["window"], lim["amount_max"]) for lim in controls["controls"]["limits"]} >= {("daily", 1_500)}
    status, detail = await world.admin("GET", f"/admin/payouts/{held['id']}")
    assert status == 200 and detail["risk"] == controls["controls"], detail
    over = await client.create_payout(payout_body(1_000, customer_id=customer))  # 2_000 > 1_500 today
    assert over.status == 402 and over.body["error"]["code"] == "limit_exceeded", over.body

    status, body = await _resolve(world, held["id"], "fail", "bank: payout rejected, nothing paid")
    assert status == 200, body
    payout = body["payout"]
    assert (payout["status"], payout["failure_code"], payout["hold_reason"]) == \
        ("failed", "failed_by_operator", None), payout
    assert body["transitions"][-1]["event"] == "resolve_fail:amount_mismatch"
    assert body["transitions"][-1]["actor"] == "unnamed via admin-api"
    assert await world.balance(customer, "customer_frozen") == 0
    assert await world.balance(customer, "customer_wallet") == 3_000
    assert await world.entries(held["id"]) == ["PAYOUT_FREEZE", "PAYOUT_UNFREEZE"]
    assert await _legs(world, held["id"], "PAYOUT_UNFREEZE") == {
        ("customer_frozen", "D", 1_000), ("customer_wallet", "C", 1_000)}
    assert await _events(world, held["id"]) == ["payout.failed"]
    await _money_holds(world)

    async def usage_given_back() -> bool:
        async with world.pool.acquire() as conn:
            return await conn.fetchval("SELECT count(*) FROM limit_usage WHERE id = $1", admission) == 0

    await eventually(usage_given_back)
    again = await client.create_payout(payout_body(1_000, customer_id=customer))  # fits only with it given back
    assert again.status == 201, again.body
    assert (await world.wait_payout(client, again.body["id"]))["status"] == "succeeded"


async def test_fail_whose_release_fails_records_the_usage_owed_and_the_release_loop_gives_it_back(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    client = await world.merchant()
    await world.limit_customer_payouts(client.merchant_id, 1_500)
    customer = await world.funded_customer(client, 3_000)
    [held] = await held_payouts(world, client, customer, 1_000)
    status, controls = await world.admin("GET", f"/admin/payouts/{held['id']}/controls")
    assert status == 200, controls
    admission = controls["controls"]["admission"]

    async def broken(admission_id: str, *, by_reset: bool = False) -> bool:
        raise ConnectionResetError(f"lost Redis while releasing {admission_id}")

    monkeypatch.setattr(world.app[SERVICES].gate, "release_admission", broken)
    status, body = await _resolve(world, held["id"], "fail", "bank: payout rejected, nothing paid")
    monkeypatch.undo()
    assert status == 200 and body["payout"]["status"] == "failed", body  # the fail stands; the release is owed
    async with world.pool.acquire() as conn:
        assert await conn.fetchval("SELECT admission_id FROM usage_releases WHERE movement_id = $1",
                                   held["id"]) == admission
    over = await client.create_payout(payout_body(1_000, customer_id=customer))  # still counted
    assert over.status == 402 and over.body["error"]["code"] == "limit_exceeded", over.body

    await release_owed(world.pool, world.app[SERVICES].release_usage, grace_s=0, batch_max=100)
    async with world.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM usage_releases WHERE movement_id = $1", held["id"]) == 0
        assert await conn.fetchval("SELECT count(*) FROM limit_usage WHERE id = $1", admission) == 0
    again = await client.create_payout(payout_body(1_000, customer_id=customer))  # fits only with it given back
    assert again.status == 201, again.body
    assert (await world.wait_payout(client, again.body["id"]))["status"] == "succeeded"
    more = await client.create_payout(payout_body(600, customer_id=customer))  # given back once: 1_600 > 1_500
    assert more.status == 402 and more.body["error"]["code"] == "limit_exceeded", more.body


async def test_retry_asks_the_channel_again_and_books_its_corrected_word(world: World) -> None:
    client = await world.merchant()
    customer = await world.funded_customer(client, 3_000)
    [held] = await held_payouts(world, client, customer, 1_200)
    await world.set_faults(payout_report_skew_minor=1)
    status, before = await world.admin("GET", f"/admin/payouts/{held['id']}")
    assert status == 200, before
    try:  # the channel still reports another amount: asked again, held again, nothing booked
        status, body = await _resolve(world, held["id"], "retry", "bank says it fixed its report")
        assert status == 200 and body["transitions"][-1]["event"] == "resolve_retry:amount_mismatch", body
        # The hold is cleared and the payout due at once; by this answer a worker may have asked and held it again.
        cleared = body["payout"]["hold_reason"] is None and body["next_attempt_at"] is not None
        assert cleared or body["attempts"] > before["attempts"], body

        async def held_again() -> bool:
            _, detail = await world.admin("GET", f"/admin/payouts/{held['id']}")
            return bool(detail["payout"]["hold_reason"] and detail["attempts"] > before["attempts"])

        await eventually(held_again)
        again = (await client.get_payout(held["id"])).body
        assert again["status"] == "processing", again
    finally:
        await world.set_faults()
    assert await world.entries(held["id"]) == ["PAYOUT_FREEZE"]
    status, body = await _resolve(world, held["id"], "retry", "bank fixed its report now")
    assert status == 200, body
    done = await world.wait_payout(client, held["id"])
    assert (done["status"], done["hold_reason"]) == ("succeeded", None), done
    assert await world.entries(held["id"]) == ["PAYOUT_FREEZE", "PAYOUT_SETTLE"]
    assert await world.balance(customer, "customer_frozen") == 0
    assert await world.balance(customer, "customer_wallet") == 1_800
    status, detail = await world.admin("GET", f"/admin/payouts/{held['id']}")
    assert status == 200, detail
    assert [t["event"] for t in detail["transitions"]] == ["resolve_retry:amount_mismatch"] * 2
    assert all(t["from_status"] == t["to_status"] in ("sending", "processing") for t in detail["transitions"])
    await _money_holds(world)


async def test_resolving_a_payout_that_is_not_held_is_409_and_an_unknown_one_404(world: World) -> None:
    client = await world.merchant()
    customer = await world.funded_customer(client, 3_000)
    created = await client.create_payout(payout_body(500, customer_id=customer, channel=CHANNEL))
    assert created.status == 201, created.body
    done = await world.wait_payout(client, created.body["id"])
    assert done["status"] == "succeeded", done
    for action in ("retry", "fail", "succeed"):
        status, body = await _resolve(world, done["id"], action)
        assert status == 409, body
        assert (body["error"]["type"], body["error"]["code"]) == ("conflict_error", "illegal_transition"), body
    assert await world.entries(done["id"]) == ["PAYOUT_FREEZE", "PAYOUT_SETTLE"]
    assert await _events(world, done["id"]) == ["payout.succeeded"]
    async with world.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM transitions WHERE object_id = $1", done["id"]) == 0
    status, body = await _resolve(world, "po_no_such_payout", "fail")
    assert status == 404 and body["error"]["code"] == "resource_missing", body
    status, body = await world.admin("GET", "/admin/payouts/po_no_such_payout")
    assert status == 404 and body["error"]["code"] == "resource_missing", body


async def test_concurrent_resolves_of_one_payout_have_exactly_one_winner(world: World) -> None:
    client = await world.merchant()
    customer = await world.funded_customer(client, 9_000)
    held = await held_payouts(world, client, customer, 1_000, 2_000, 3_000)
    def race(payout_id: str) -> list[asyncio.Task[tuple[int, Any]]]:
        return [asyncio.create_task(_resolve(world, payout_id, action, f"race {action}"))
                for action in ("succeed", "fail", "retry", "succeed")]

    for n, payout in enumerate(held):
        if n == 0:
            # The first race for certain: a transaction holding the payout's row (taken before any resolve starts)
            # keeps every resolve waiting at its compare-and-set, each one past its own check that it is held.
            async with world.pool.acquire() as conn:
                async with conn.transaction():
                    await conn.execute("SELECT 1 FROM payouts WHERE id = $1 FOR UPDATE", payout["id"])
                    resolves = race(payout["id"])
                    await asyncio.sleep(0.5)
                    assert not any(r.done() for r in resolves), [r.result() for r in resolves if r.done()]
        else:
            resolves = race(payout["id"])
        results = await asyncio.gather(*resolves)
        statuses = sorted(status for status, _ in results)
        assert statuses == [200, 409, 409, 409], results
        assert all(b["error"]["code"] == "illegal_transition" for s, b in results if s == 409), results
        async with world.pool.acquire() as conn:
            steps = await conn.fetchval("SELECT count(*) FROM transitions WHERE object_id = $1", payout["id"])
        assert steps == 1
    for payout in held:  # a retry winner settles by the channel's (now right) word; the others are final now
        done = await world.wait_payout(client, payout["id"])
        codes = await world.entries(payout["id"])
        assert codes in (["PAYOUT_FREEZE", "PAYOUT_SETTLE"], ["PAYOUT_FREEZE", "PAYOUT_UNFREEZE"]), codes
        assert len(await _events(world, payout["id"])) == 1, done
    assert await world.balance(customer, "customer_frozen") == 0
    await _money_holds(world)


BAD_BODIES = [
    (b"{}", "parameter_missing", "action"),
    (b'{"action": "fail"}', "parameter_missing", "reason"),
    (b'{"action": "refund", "reason": "x"}', "parameter_invalid", "action"),
    (b'{"action": "fail", "reason": ""}', "parameter_invalid", "reason"),
    (b'{"action": "fail", "reason": "   "}', "parameter_invalid", "reason"),
    (b'{"action": "fail", "reason": "' + b"x" * 501 + b'"}', "parameter_invalid", "reason"),
    (b'{"action": "fail", "reason": "x", "operator": "a b"}', "parameter_invalid", "operator"),
    (b'{"action": "fail", "reason": "x", "amount": 1}', "unknown_field", "amount"),
    (b'{"action": ', "invalid_json", None),
]


async def test_bad_resolve_bodies_are_400_and_the_admin_token_is_required(world: World) -> None:
    client = await world.merchant()
    customer = await world.funded_customer(client, 1_000)
    [held] = await held_payouts(world, client, customer, 400)
    path = f"/admin/payouts/{held['id']}/resolve"
    for data, code, param in BAD_BODIES:
        status, body = await _raw(world, "POST", path, data)
        assert status == 400, (data, body)
        assert (body["error"]["type"], body["error"]["code"], body["error"]["param"]) == \
            ("invalid_request_error", code, param), (data, body)
    good = b'{"action": "fail", "reason": "bank: nothing paid"}'
    for token in (None, "wrong-token"):
        status, body = await _raw(world, "POST", path, good, token)
        assert status == 401 and body["error"]["type"] == "authentication_error", body
        status, body = await _raw(world, "GET", f"/admin/payouts/{held['id']}", token=token)
        assert status == 401, body
        status, body = await _raw(world, "GET", "/admin/payouts?held=true", token=token)
        assert status == 401, body
    still = (await client.get_payout(held["id"])).body
    assert (still["status"], still["hold_reason"]) == ("processing", "amount_mismatch"), still
    assert await world.entries(held["id"]) == ["PAYOUT_FREEZE"]
    status, body = await _raw(world, "POST", path, good)
    assert status == 200 and body["payout"]["status"] == "failed", body


async def test_operators_list_held_payouts_newest_first_and_see_one_in_full(world: World) -> None:
    client = await world.merchant()
    customer = await world.funded_customer(client, 5_000)
    first, second = await held_payouts(world, client, customer, 1_000, 1_500)
    query = f"/admin/payouts?held=true&merchant_id={client.merchant_id}"
    status, listed = await world.admin("GET", query)
    assert status == 200 and not listed["has_more"], listed
    assert [p["id"] for p in listed["data"]] == [second["id"], first["id"]]
    item = listed["data"][0]
    assert (item["merchant_id"], item["amount"], item["currency"], item["channel"], item["hold_reason"]) == \
        (client.merchant_id, 1_500, "CNY", CHANNEL, "amount_mismatch"), item
    assert "1501" in item["hold_note"], item  # what the channel reported
    status, page = await world.admin("GET", query + "&limit=1")
    assert status == 200 and page["has_more"] and [p["id"] for p in page["data"]] == [second["id"]], page
    status, page = await world.admin("GET", query + f"&limit=1&starting_after={second['id']}")
    assert status == 200 and [p["id"] for p in page["data"]] == [first["id"]] and not page["has_more"], page
    for bad in ("/admin/payouts", "/admin/payouts?held=false", "/admin/payouts?held=true&limit=0",
                "/admin/payouts?held=true&colour=red"):
        status, body = await world.admin("GET", bad)
        assert status == 400 and body["error"]["type"] == "invalid_request_error", (bad, body)

    async with world.http.get(f"{world.url}/admin/payouts/{first['id']}",
                              headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as r:
        assert r.status == 200
        raw = await r.text()
    assert GOOD_CARD not in raw  # the destination masked, the notes too
    status, detail = await world.admin("GET", f"/admin/payouts/{first['id']}")
    assert detail["payout"]["id"] == first["id"] and detail["payout"]["hold_reason"] == "amount_mismatch"
    assert detail["payout"]["destination"]["number_masked"].endswith("1111")
    assert (detail["merchant_id"], detail["payout"]["channel"]) == (client.merchant_id, CHANNEL), detail
    assert detail["internal_status"] in ("sending", "processing"), detail  # asked, never final
    assert detail["sends"] >= 1 and detail["attempts"] >= 1 and detail["next_attempt_at"] is None
    assert "1001" in detail["last_error"] and detail["transitions"] == [], detail
    for payout in (first, second):
        status, body = await _resolve(world, payout["id"], "fail", "bank: nothing paid")
        assert status == 200, body
    status, listed = await world.admin("GET", query)
    assert status == 200 and listed["data"] == [], listed
    await _money_holds(world)


async def _sends(world: World, payout_id: str) -> int:
    async with world.pool.acquire() as conn:
        return int(await conn.fetchval("SELECT sends FROM payouts WHERE id = $1", payout_id))


async def test_a_held_payout_counts_as_accepted_so_not_found_after_a_retry_never_resends_or_unfreezes(
        world: World) -> None:
    client = await world.merchant()
    customer = await world.funded_customer(client, 3_000)
    [held] = await held_payouts(world, client, customer, 1_000)
    status, detail = await world.admin("GET", f"/admin/payouts/{held['id']}")
    assert status == 200, detail
    # The channel answered for our out_payout_no: it has the payout, and we keep its number for it.
    assert detail["internal_status"] == "processing", detail
    status, sim = await world.sim_payout(held["txn_no"])
    assert status == 200 and detail["payout"]["channel_payout_no"] == sim["payout_id"], (detail, sim)
    # The channel fixed its report, but its lookup now glitches: every query answers ORDER_NOT_EXIST.
    await world.set_faults(payout_query_not_found_rate=1.0)
    try:
        status, body = await _resolve(world, held["id"], "retry", "bank says it fixed its report")
        assert status == 200 and body["payout"]["hold_reason"] is None, body
        # Well past the safe delay (1 s) and the give-up window (2 s): a payout taken for "never arrived" would
        # have been sent again by now, and failed with its amount unfrozen though the channel has it.
        await asyncio.sleep(world.settings.payout_give_up_s + 1.5)
        assert await _sends(world, held["id"]) == 1
        status, detail = await world.admin("GET", f"/admin/payouts/{held['id']}")
        assert status == 200 and detail["internal_status"] == "processing", detail
        assert "not found" in detail["last_error"], detail  # it was asked, and keeps being asked
        assert await world.entries(held["id"]) == ["PAYOUT_FREEZE"]
        assert await world.balance(customer, "customer_frozen") == 1_000
    finally:
        await world.set_faults()
    done = await world.wait_payout(client, held["id"])  # the lookup works again: the channel's word is booked
    assert done["status"] == "succeeded" and done["channel_payout_no"] == sim["payout_id"], done
    assert await _sends(world, held["id"]) == 1
    assert await world.entries(held["id"]) == ["PAYOUT_FREEZE", "PAYOUT_SETTLE"]
    assert await world.balance(customer, "customer_frozen") == 0
    assert await world.balance(customer, "customer_wallet") == 2_000
    await _money_holds(world)


async def test_operators_see_the_reported_amount_whole_while_free_text_stays_masked(world: World) -> None:
    client = await world.merchant()
    customer = await world.funded_customer(client, 150_000)
    [held] = await held_payouts(world, client, customer, 100_000)  # 1,000.00: six digits; the channel says 100_001
    status, listed = await world.admin("GET", f"/admin/payouts?held=true&merchant_id={client.merchant_id}")
    assert status == 200, listed
    [item] = listed["data"]
    assert (item["amount"], item["reported_amount"], item["reported_currency"]) == (100_000, 100_001, "CNY"), item
    assert "100001" not in item["hold_note"] and "**0001" in item["hold_note"], item  # free text: masked
    status, detail = await world.admin("GET", f"/admin/payouts/{held['id']}")
    assert status == 200, detail
    assert (detail["reported_amount"], detail["reported_currency"]) == (100_001, "CNY"), detail
    assert "100001" not in detail["last_error"], detail
    status, body = await _resolve(world, held["id"], "fail", "bank: nothing paid")
    assert status == 200, body
    assert (body["reported_amount"], body["reported_currency"]) == (None, None), body  # the hold is over
    await _money_holds(world)
