"""Bad input to the accounting day: wrong statement files, unreadable lines, bad amounts, unknown
channels, a second day-end while one runs, settling a day that is not closed or has nothing due yet, missing
admin token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest

from channels.adapters.banksim.statement import parse_bank_statement
from channels.adapters.wxsim.statement import parse_wx_statement
from channels.protocol import ChannelStatus, Statement, StatementKind, StatementLine
from engine.dayend import store as dayend_store
from engine.recon.matching import WrongStatement, check_statement, normalise
from engine.recon.strategy import STRATEGY, Action, Outcome, decide
from engine.settlement.flow import nothing_due_notes
from engine.settlement.store import Unsettled
from tests.conftest import Servers
from tests.dayend.cli import run_cli
from tests.dayend.conftest import Db
from tests.dayend.world import ADMIN_TOKEN, World, new_ref, running_world

DAY = date(2026, 3, 14)


@pytest.fixture(scope="module")
async def world(servers: Servers, db: Db) -> AsyncIterator[World]:
    async with running_world(db.url, servers.redis_url, db.pool) as w:
        yield w


def _line(ref: str, amount: int, at: datetime, status: ChannelStatus = ChannelStatus.SUCCEEDED) -> StatementLine:
    return StatementLine(StatementKind.PAYMENT, ref, "T" + ref, amount, "CNY", status, at)


def test_statement_for_another_channel_or_day_is_refused() -> None:
    noon = datetime(2026, 3, 14, 12, tzinfo=UTC)
    good = Statement("wxsim", DAY, (_line("a", 1, noon),), ())
    check_statement(good, "wxsim", DAY)
    with pytest.raises(WrongStatement, match="channel"):
        check_statement(good, "banksim", DAY)
    with pytest.raises(WrongStatement, match="not 2026-03-15"):
        check_statement(good, "wxsim", DAY + timedelta(days=1))
    # The envelope says the right day but the lines are yesterday's: the file is yesterday's.
    stale = Statement("wxsim", DAY, tuple(_line(str(i), 1, noon - timedelta(days=1)) for i in range(3)), ())
    with pytest.raises(WrongStatement, match="3 of 3 lines"):
        check_statement(stale, "wxsim", DAY)


def test_malformed_lines_are_reported_with_line_numbers_and_the_rest_processed() -> None:
    header = "trade_time,mch_id,transaction_id,out_trade_no,trade_state,currency,total_fen,refund_id,out_refund_no," \
             "refund_fen,refund_status"

    def row(ref: str, amount: str) -> str:
        fields = ["2026-03-14 10:00:00", "m", "T" + ref, ref, "SUCCESS", "CNY", amount, "", "", "0", ""]
        return ",".join("`" + f for f in fields)

    text = "\n".join([header, row("ok1", "100"), row("neg", "-5"), "garbage", row("nan", "12x"), row("ok2", "7")])
    statement = parse_wx_statement("wxsim", DAY, text)
    assert [(m.line_no, m.reason.split(" ")[0]) for m in statement.malformed] == [
        (3, "amount"), (4, "expected"), (5, "amount")]
    assert [line.out_trade_no for line in statement.lines] == ["ok1", "ok2"]
    bank = "#c\ntrade_no,out_trade_no,biz_type,trade_status,amount,currency,out_request_no,refund_no,finish_time\n" \
           "T1,b1,trade,TRADE_SUCCESS,-1.00,CNY,,,2026-03-14 10:00:00\nT2,b2,trade,TRADE_SUCCESS,1.50,CNY,,," \
           "2026-03-14 10:00:00\n"
    parsed = parse_bank_statement("banksim", DAY, bank)
    assert [m.line_no for m in parsed.malformed] == [3] and parsed.lines[0].amount_minor == 150


def test_non_positive_amounts_that_parse_are_rejected_not_matched() -> None:
    noon = datetime(2026, 3, 14, 12, tzinfo=UTC)
    lines, rejected = normalise(Statement("wxsim", DAY, (_line("z", 0, noon), _line("p", 5, noon)), ()))
    assert [x.reference for x in lines] == ["p"]
    assert [(r.reference, r.reason) for r in rejected] == [("z", "amount 0 is not positive")]


def test_strategy_table_is_unambiguous_and_the_most_specific_rule_wins() -> None:
    keys = [(r.channel, r.txn_type, r.our_status, r.their_status, r.amount) for r in STRATEGY]
    assert len(keys) == len(set(keys))
    assert decide("wxsim", "payment", "pending", "succeeded", True) == (Outcome.LONG, Action.SUPPLEMENT)
    assert decide("wxsim", "payment", "pending", "succeeded", False) == (Outcome.AMOUNT_MISMATCH, Action.HOLD)
    assert decide("banksim", "refund", "succeeded", "missing", None) == (Outcome.SHORT, Action.SUSPECT)
    # Anything the table does not know is an exception for a person, never a silent accept.
    assert decide("wxsim", "payment", "weird", "succeeded", True) == (Outcome.STATUS_MISMATCH, Action.HOLD)


async def test_wrong_day_file_from_a_channel_is_refused_over_http(world: World) -> None:
    status, run = await world.admin("POST", "/admin/reconciliations", {"channel": "stale", "date": "2026-03-14"})
    assert status == 422 and run["status"] == "refused" and "dated another day" in run["error"], run
    status, again = await world.admin("GET", f"/admin/reconciliations/{run['id']}")
    assert status == 200 and again["status"] == "refused" and again["counts"] == {}


async def test_unknown_channel_and_bad_bodies_are_refused(world: World) -> None:
    status, body = await world.admin("POST", "/admin/reconciliations", {"channel": "nope", "date": "2026-03-14"})
    assert status == 400 and body["error"]["code"] == "unknown_channel"
    status, body = await world.admin("POST", "/admin/reconciliations", {"channel": "wxsim", "date": "14/03/2026"})
    assert status == 400 and body["error"]["type"] == "invalid_request_error"
    async with world.pool.acquire() as conn:
        open_date = await conn.fetchval("SELECT open_date FROM accounting_calendar")
    status, body = await world.admin("POST", "/admin/reconciliations", {"channel": "wxsim",
                                                                        "date": open_date.isoformat()})
    assert status == 409 and body["error"]["code"] == "day_still_open", body  # our side is not final yet
    status, body = await world.admin("POST", "/admin/day-end", {"date": "2026-03-14", "forced": True})
    assert status == 400 and "forced" in body["error"]["message"]


async def test_admin_routes_need_the_admin_token(world: World) -> None:
    for method, path in (("POST", "/admin/day-end"), ("POST", "/admin/reconciliations"),
                         ("GET", "/admin/reconciliations/x"), ("POST", "/admin/settlements")):
        async with world.http.request(method, world.url + path, json={},
                                      headers={"Authorization": "Bearer wrong"}) as r:
            assert r.status == 401, (method, path)
    assert ADMIN_TOKEN


async def test_day_end_while_another_runs_answers_409(world: World) -> None:
    async with world.pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", dayend_store.RUN_LOCK_KEY)
        try:
            status, body = await world.admin("POST", "/admin/day-end", {"force": True})
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", dayend_store.RUN_LOCK_KEY)
    assert status == 409 and body["error"]["code"] == "day_end_running", body


async def test_settling_a_day_that_is_not_closed_answers_409(world: World) -> None:
    async with world.pool.acquire() as conn:
        open_date = await conn.fetchval("SELECT open_date FROM accounting_calendar")
    status, body = await world.admin("POST", "/admin/settlements", {"date": open_date.isoformat()})
    assert status == 409 and body["error"]["code"] == "day_not_closed", body
    status, body = await world.admin("POST", "/admin/day-end", {"date": (open_date + timedelta(days=3)).isoformat()})
    assert status == 409 and body["error"]["code"] == "day_not_open", body


async def test_reconcile_cli_runs_and_refuses_an_unknown_channel(world: World) -> None:
    status, closed = await world.admin("POST", "/admin/day-end", {"force": True})
    assert status == 200, closed
    wx = world.sims["wxsim"].url
    channels = f"wxsim=wxsim,{wx},sim-merchant,de-wallet-key"
    code, out = await run_cli(world, "reconcile", "--channel", "wxsim", "--date", closed["accounting_date"],
                              extra_env={"PAYENGINE_CHANNELS": channels})
    assert code == 0 and '"status": "done"' in out, out
    code, out = await run_cli(world, "reconcile", "--channel", "nope", "--date", closed["accounting_date"],
                              extra_env={"PAYENGINE_CHANNELS": channels})
    assert code == 2 and "unknown channel" in out, out


async def test_a_second_reconciliation_or_settlement_of_the_same_date_answers_409(world: World) -> None:
    async with world.pool.acquire() as conn:
        day = await conn.fetchval("SELECT open_date FROM accounting_calendar") - timedelta(days=1)
        locks = [(0x7265636F, f"wxsim:{day.isoformat()}"), (0x73657474, day.isoformat())]
        for namespace, key in locks:  # what a run in another process holds while it works
            await conn.execute("SELECT pg_advisory_lock($1, hashtext($2))", namespace, key)
        try:
            status, body = await world.admin("POST", "/admin/reconciliations", {"channel": "wxsim",
                                                                                "date": day.isoformat()})
            assert status == 409 and body["error"]["code"] == "reconciliation_running", body
            status, body = await world.admin("POST", "/admin/settlements", {"date": day.isoformat()})
            assert status == 409 and body["error"]["code"] == "settlement_running", body
        finally:
            for namespace, key in locks:
                await conn.execute("SELECT pg_advisory_unlock($1, hashtext($2))", namespace, key)


async def test_settle_right_after_day_end_says_why_nothing_is_due_and_when(world: World) -> None:
    """D+1 settles on D+1's close; a channel payment waits for its statement: `created: 0` must say so."""
    wallet_shop, channel_shop = await world.merchant(60, 0), await world.merchant(60, 0)
    status, _ = await world.admin("PUT", f"/admin/merchants/{channel_shop.merchant_id}/settlement-cycle",
                                  {"cycle_days": 0})
    assert status == 200
    customer = (await wallet_shop.create_customer(new_ref("cus"))).body["id"]
    assert (await wallet_shop.topup(customer, 10_000, new_ref("tu"))).status == 201
    paid = await wallet_shop.create_payment({"merchant_order_no": new_ref("o"), "amount": 1_000, "currency": "CNY",
                                             "method": "wallet", "customer_id": customer})
    assert paid.status == 201, paid.body
    channel = await channel_shop.create_payment({"merchant_order_no": new_ref("c"), "amount": 2_000,
                                                 "currency": "CNY", "method": "channel", "channel": "wxsim"})
    assert channel.status == 201, channel.body

    async def status_is(wanted: str) -> bool:
        return bool((await channel_shop.get_payment(channel.body["id"])).body["status"] == wanted)

    await world.eventually(lambda: status_is("awaiting_payment"))
    pay_url = (await channel_shop.get_payment(channel.body["id"])).body["voucher"]["pay_url"]
    await world.sim("wxsim", "POST", "/sim/pay", {"pay_url": pay_url})
    await world.eventually(lambda: status_is("succeeded"))
    status, closed = await world.admin("POST", "/admin/day-end", {"force": True})
    assert status == 200, closed
    day = date.fromisoformat(closed["accounting_date"])

    code, out = await run_cli(world, "settle", "--date", day.isoformat(), "--merchant", wallet_shop.merchant_id)
    assert code == 0 and '"created": 0' in out, out
    assert f"note: nothing due on {day}: a payment booked on accounting date A is settled on A + its merchant's" \
           " cycle (D+N, default D+1)" in out
    assert f"note: 1 wallet payment of {wallet_shop.merchant_id} (CNY, D+1) booked {day}: due on " \
           f"{day + timedelta(days=1)}; run `payengine settle --date {day + timedelta(days=1)}` after day-end has" \
           f" closed {day + timedelta(days=1)}" in out, out
    code, out = await run_cli(world, "settle", "--date", day.isoformat(), "--merchant", channel_shop.merchant_id)
    assert code == 0 and '"created": 0' in out, out
    assert f"note: 1 wxsim payment of {channel_shop.merchant_id} (CNY, D+0) booked {day}: due, waiting for " \
           f"reconciliation; run `payengine reconcile --channel wxsim --date {day}`, then settle {day} again" in out


def test_nothing_due_notes_name_the_earlier_batches_and_an_empty_queue() -> None:
    assert nothing_due_notes(DAY, [], earlier_batches=2) == [
        f"nothing new due on {DAY} (its 2 batches were made by an earlier run): no succeeded payment is waiting for"
        " settlement"]
    held = Unsettled("mch_x", "CNY", DAY - timedelta(days=3), 1, None, True, 4)
    assert nothing_due_notes(DAY, [held])[1].endswith("due, held for the next date's batch (a batch for "
                                                      f"{DAY} was made before it was due, or the merchant's refunds due"
                                                      " exceed its payments)")


async def test_a_date_later_than_today_is_not_closed_unless_forced(world: World) -> None:
    """Closing tomorrow today would stamp every new payment a day ahead, irreversibly: 409 day_not_over over
    HTTP and exit 2 from the CLI, the open date unchanged; an operator who means it forces it."""
    async with world.pool.acquire() as conn:
        open_date = await conn.fetchval("SELECT open_date FROM accounting_calendar")
    today = datetime.now(UTC).date()
    if open_date <= today:  # bring the open date to today, then the next date is tomorrow
        for _ in range((today - open_date).days + 1):
            status, closed = await world.admin("POST", "/admin/day-end", {"force": True})
            assert status == 200, closed
    async with world.pool.acquire() as conn:
        ahead = await conn.fetchval("SELECT open_date FROM accounting_calendar")
    assert ahead > today
    status, body = await world.admin("POST", "/admin/day-end", {})
    assert status == 409 and body["error"]["code"] == "day_not_over", body
    code, out = await run_cli(world, "day-end")
    assert code == 2 and "later than today" in out, out
    async with world.pool.acquire() as conn:
        assert await conn.fetchval("SELECT open_date FROM accounting_calendar") == ahead  # nothing moved
    status, closed = await world.admin("POST", "/admin/day-end", {"force": True})
    assert status == 200 and closed["accounting_date"] == ahead.isoformat(), closed
