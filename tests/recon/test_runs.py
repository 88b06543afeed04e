"""Reconciliation runs as operators read and re-run them: a corrected statement re-reconciled supersedes the
old run (both kept and listed), counts are read live from the items, and bad input writes nothing."""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import timedelta
from typing import Any

from tests.dayend.cli import run_cli
from tests.dayend.world import World
from tests.recon.days import by_reference, channel_payments, close_day, explain, open_date, table_counts


async def _runs(w: World, query: str) -> list[dict[str, object]]:
    status, body = await w.admin("GET", f"/admin/reconciliations?{query}")
    assert status == 200, body
    return list(body["data"])


async def _open_in_two_live_runs(w: World) -> int:
    async with w.pool.acquire() as conn:
        return int(await conn.fetchval(
            "SELECT count(*) FROM (SELECT i.kind, coalesce(i.payment_id, i.reference), i.refund_id"
            " FROM recon_items i JOIN recon_runs r ON r.id = i.run_id"
            " WHERE r.superseded_by IS NULL AND i.state = 'open' GROUP BY 1, 2, 3 HAVING count(*) > 1) twice"))


async def test_corrected_statement_supersedes_the_run_and_counts_stay_live(world: World) -> None:
    w = world
    client = await w.merchant(60, 0)
    day = await open_date(w)
    paid = await channel_payments(w, client, "wxsim", [1_000, 3_973, 27_921, 5_000])
    short, mismatched = paid[2], paid[1]
    await w.seed("wxsim", day, missing=[short.txn_no], amount_mismatch={mismatched.txn_no: 3_000})
    await close_day(w, day)
    status, first = await w.admin("POST", "/admin/reconciliations", {"channel": "wxsim", "date": day.isoformat()})
    assert status == 201, first
    assert first["counts"] == {"matched": 2, "short": 1, "amount_mismatch": 1}, first["counts"]
    assert first["generation"] == 1 and first["superseded_by"] is None and first["operator"] is None

    # The channel sends a corrected file: the payment it left out is there now; the amount is still wrong.
    await w.seed("wxsim", day, amount_mismatch={mismatched.txn_no: 3_000})
    status, second = await w.admin("POST", "/admin/reconciliations/reruns",
                                   {"channel": "wxsim", "date": day.isoformat(), "operator": "alice"})
    assert status == 201, second
    assert (second["generation"], second["supersedes"], second["operator"]) == (2, first["id"], "alice")
    assert second["counts"] == {"matched": 3, "amount_mismatch": 1}, second["counts"]
    assert second["summary"]["outcomes"] == second["counts"]  # the summary says what the items say
    assert second["summary"]["counts_by_state"] == second["counts_by_state"]

    status, old = await w.admin("GET", f"/admin/reconciliations/{first['id']}")
    assert status == 200 and old["superseded_by"] == second["id"] and old["superseded_at"] is not None
    assert old["counts_by_state"] == {"matched": {"ok": 2}, "short": {"resolved": 1},
                                      "amount_mismatch": {"resolved": 1}}, old["counts_by_state"]
    assert old["summary"]["counts_by_state"] == old["counts_by_state"]
    old_items, new_items = by_reference(old), by_reference(second)
    carried = new_items[mismatched.txn_no]
    assert carried["state"] == "open" and carried["carried_from"] == old_items[mismatched.txn_no]["id"]
    assert short.txn_no not in new_items  # matched now: no exception in the live run
    assert "superseded by run " + second["id"] in old_items[short.txn_no]["note"]
    assert {old_items[t]["resolution"] for t in (short.txn_no, mismatched.txn_no)} == {"superseded"}
    assert await _open_in_two_live_runs(w) == 0

    # Both runs are listed; filters pick the live or the superseded one.
    listed = await _runs(w, f"channel=wxsim&date={day.isoformat()}")
    assert [r["id"] for r in listed] == [second["id"], first["id"]]
    assert [r["counts"] for r in listed] == [second["counts"], old["counts"]]
    assert [r["open"] for r in listed] == [1, 0]
    assert [r["id"] for r in await _runs(w, f"date={day.isoformat()}&superseded=true")] == [first["id"]]
    assert [r["id"] for r in await _runs(w, f"date={day.isoformat()}&superseded=false&channel=wxsim")] == [
        second["id"]]
    assert await _runs(w, f"date={day.isoformat()}&channel=wxsim&status=refused") == []
    assert len(await _runs(w, f"date={day.isoformat()}&status=done&limit=1")) == 1

    # A plain repeat returns the live run; an operator's resolution shows in every count at once.
    status, again = await w.admin("POST", "/admin/reconciliations", {"channel": "wxsim", "date": day.isoformat()})
    assert status == 201 and again["id"] == second["id"]
    status, _ = await explain(w, carried["id"], "checked with the channel")
    assert status == 200
    status, now = await w.admin("GET", f"/admin/reconciliations/{second['id']}")
    assert now["counts_by_state"]["amount_mismatch"] == {"resolved": 1}
    assert now["summary"]["counts_by_state"] == now["counts_by_state"]
    assert (await _runs(w, f"channel=wxsim&date={day.isoformat()}&superseded=false"))[0]["open"] == 0

    status, audit = await w.admin("GET", f"/admin/audit?subject_kind=reconciliation&subject_id={second['id']}")
    assert status == 200 and [(a["operator"], a["action"]) for a in audit["data"]] == [("alice", "recon.rerun")]
    assert audit["data"][0]["detail"]["supersedes"] == first["id"]
    assert audit["data"][0]["detail"]["superseded_items"] == 2


async def test_a_difference_closed_by_an_operator_is_not_reopened_by_a_rerun(world: World) -> None:
    w = world
    client = await w.merchant(60, 0)
    day = await open_date(w)
    paid = await channel_payments(w, client, "wxsim", [2_000, 2_500])
    await w.seed("wxsim", day, missing=[paid[0].txn_no])
    await close_day(w, day)
    status, first = await w.admin("POST", "/admin/reconciliations", {"channel": "wxsim", "date": day.isoformat()})
    assert status == 201 and first["counts"] == {"matched": 1, "short": 1}, first
    item = by_reference(first)[paid[0].txn_no]
    status, _ = await explain(w, item["id"], "written off")
    assert status == 200

    # The same file again (nothing corrected): the short stays closed, once, in the new run.
    status, second = await w.admin("POST", "/admin/reconciliations/reruns",
                                   {"channel": "wxsim", "date": day.isoformat(), "operator": "bob"})
    assert status == 201, second
    again = by_reference(second)[paid[0].txn_no]
    assert (again["state"], again["carried_from"]) == ("resolved", item["id"])
    assert again["note"] == f"closed in run {first['id']}: written off"
    status, body = await explain(w, again["id"], "twice")
    assert status == 409, body
    status, old = await w.admin("GET", f"/admin/reconciliations/{first['id']}")
    assert by_reference(old)[paid[0].txn_no]["state"] == "resolved"  # the old resolution is left as it was

    # A third generation supersedes the second; only the newest is live.
    status, third = await w.admin("POST", "/admin/reconciliations/reruns",
                                  {"channel": "wxsim", "date": day.isoformat(), "operator": "bob"})
    assert status == 201 and (third["generation"], third["supersedes"]) == (3, second["id"]), third
    listed = await _runs(w, f"channel=wxsim&date={day.isoformat()}")
    assert [(r["generation"], r["superseded_by"]) for r in listed] == [(3, None), (2, third["id"]),
                                                                        (1, second["id"])]
    assert await _open_in_two_live_runs(w) == 0


async def test_bad_reruns_and_filters_are_refused_and_write_nothing(world: World) -> None:
    w = world
    day = await open_date(w)
    await close_day(w, day)
    before = await table_counts(w)
    never = (day - timedelta(days=40)).isoformat()
    cases = [
        ({"channel": "wxsim", "date": never, "operator": "alice"}, 404, "reconciliation_not_found"),
        ({"channel": "wxsim", "date": (day + timedelta(days=1)).isoformat(), "operator": "alice"}, 409,
         "day_still_open"),
        ({"channel": "wxsim", "date": day.isoformat()}, 400, "parameter_missing"),
        ({"channel": "wxsim", "date": day.isoformat(), "operator": ""}, 400, "parameter_invalid"),
        ({"channel": "wxsim", "date": day.isoformat(), "operator": "alice", "rerun": True}, 400, "unknown_field"),
        ({"channel": "nosuch", "date": day.isoformat(), "operator": "alice"}, 400, "unknown_channel"),
        ({"channel": "wxsim", "date": "2026-02-30", "operator": "alice"}, 400, "parameter_invalid"),
    ]
    for body, expected, code in cases:
        status, answer = await w.admin("POST", "/admin/reconciliations/reruns", body)
        assert (status, answer["error"]["code"]) == (expected, code), (body, answer)
    # A statement the channel serves for another day: a first run is refused (and kept as such); a re-run
    # against the still-wrong file is refused without superseding anything.
    status, refused = await w.admin("POST", "/admin/reconciliations", {"channel": "stale", "date": day.isoformat()})
    assert status == 422 and refused["status"] == "refused", refused
    after_refused = await table_counts(w)
    status, answer = await w.admin("POST", "/admin/reconciliations/reruns",
                                   {"channel": "stale", "date": day.isoformat(), "operator": "alice"})
    assert (status, answer["error"]["code"]) == (422, "statement_refused"), answer
    assert await table_counts(w) == after_refused == {**before, "runs": before["runs"] + 1}
    status, got = await w.admin("GET", f"/admin/reconciliations/{refused['id']}")
    assert status == 200 and got["superseded_by"] is None

    status, answer = await w.admin("GET", "/admin/reconciliations/rcn_nosuchrun")
    assert status == 404, answer
    for query in ("status=bogus", "limit=0", "limit=501", "superseded=maybe", "date=2026-13-01", "channel=BAD!",
                  "color=blue", "limit=1&limit=2"):
        status, answer = await w.admin("GET", f"/admin/reconciliations?{query}")
        assert status == 400 and answer["error"]["type"] == "invalid_request_error", (query, answer)
    assert await table_counts(w) == after_refused


def _json_in(out: str, start: str) -> Any:
    """The JSON document the command printed, starting at the first ``start``."""
    return json.JSONDecoder().raw_decode(out[out.index(start):])[0]


async def test_reconcile_cli_prints_exceptions_by_id_and_reruns_and_lists(world: World) -> None:
    w = world
    client = await w.merchant(60, 0)
    day = await open_date(w)
    paid = await channel_payments(w, client, "wxsim", [3_100, 3_200])
    await w.seed("wxsim", day, missing=[paid[0].txn_no])
    await close_day(w, day)
    channels = {"PAYENGINE_CHANNELS": f"wxsim=wxsim,{w.sims['wxsim'].url},sim-merchant,de-wallet-key"}
    code, out = await run_cli(w, "reconcile", "--channel", "wxsim", "--date", day.isoformat(), extra_env=channels)
    assert code == 0, out
    first = _json_in(out, '{"id"')
    (short,) = first["exceptions"]
    assert (short["outcome"], short["payment_id"], short["our_amount"]) == ("short", paid[0].id, 3_100)
    table = [line.split() for line in out.splitlines() if line.strip().startswith(str(short["id"]))]
    assert table == [[str(short["id"]), "short", "payment", paid[0].id, "3100", "-", "open"]], out

    await w.seed("wxsim", day)
    code, out = await run_cli(w, "reconcile", "--channel", "wxsim", "--date", day.isoformat(), "--rerun",
                              extra_env=channels)
    assert code == 2 and "--operator" in out, out
    code, out = await run_cli(w, "reconcile", "--channel", "wxsim", "--date", day.isoformat(), "--rerun",
                              "--operator", "dave", extra_env=channels)
    assert code == 0, out
    second = _json_in(out, '{"id"')
    assert (second["supersedes"], second["operator"], second["counts"]) == (first["id"], "dave", {"matched": 2})

    code, out = await run_cli(w, "recon", "runs", "--channel", "wxsim", "--date", day.isoformat())
    assert code == 0, out
    listed = _json_in(out, "{")["data"]
    assert [(r["id"], r["superseded_by"]) for r in listed] == [(second["id"], None), (first["id"], second["id"])]
    code, out = await run_cli(w, "recon", "runs", "--date", day.isoformat(), "--superseded")
    assert code == 0 and [r["id"] for r in _json_in(out, "{")["data"]] == [first["id"]], out
    code, out = await run_cli(w, "recon", "runs", "--status", "bogus")
    assert code == 2 and "parameter_invalid" in out, out


async def test_concurrent_reruns_leave_one_live_run_and_an_interrupted_rerun_is_finished_by_a_plain_post(
        world: World) -> None:
    w = world
    client = await w.merchant(60, 0)
    day = await open_date(w)
    paid = await channel_payments(w, client, "wxsim", [4_100, 4_200, 4_300])
    await w.seed("wxsim", day, missing=[paid[0].txn_no], amount_mismatch={paid[1].txn_no: 4_000})
    await close_day(w, day)
    body = {"channel": "wxsim", "date": day.isoformat()}
    status, first = await w.admin("POST", "/admin/reconciliations", body)
    assert status == 201 and first["counts"] == {"matched": 1, "short": 1, "amount_mismatch": 1}, first

    answers = await asyncio.gather(*(w.admin("POST", "/admin/reconciliations/reruns", {**body, "operator": op})
                                     for op in ("ann", "ben", "cyd", "dan")))
    made = [run for status, run in answers if status == 201]
    assert made and all(status == 201 or run["error"]["code"] == "reconciliation_running"
                        for status, run in answers), answers
    listed = await _runs(w, f"channel=wxsim&date={day.isoformat()}")
    assert [r["generation"] for r in listed] == list(range(len(made) + 1, 0, -1))
    assert [r["superseded_by"] is None for r in listed] == [True] + [False] * len(made)
    assert all(r["superseded_by"] == newer["id"] for newer, r in itertools.pairwise(listed))
    assert await _open_in_two_live_runs(w) == 0
    live = listed[0]
    assert live["counts"] == first["counts"] and live["open"] == 2

    # A re-run killed after its first transaction: the run is live and running. A re-run is refused until a plain
    # POST finishes it, which carries the superseded items again (the same links, the same states).
    status, before = await w.admin("GET", f"/admin/reconciliations/{live['id']}")
    async with w.pool.acquire() as conn:
        await conn.execute("UPDATE recon_runs SET status = 'running', finished_at = NULL, summary = NULL"
                           " WHERE id = $1", live["id"])
    status, answer = await w.admin("POST", "/admin/reconciliations/reruns", {**body, "operator": "ann"})
    assert (status, answer["error"]["code"]) == (409, "reconciliation_unfinished"), answer
    status, finished = await w.admin("POST", "/admin/reconciliations", body)
    assert status == 201 and finished["id"] == live["id"] and finished["status"] == "done", finished
    assert finished["counts_by_state"] == before["counts_by_state"]
    assert [(e["reference"], e["state"], e["carried_from"]) for e in finished["exceptions"]] == [
        (e["reference"], e["state"], e["carried_from"]) for e in before["exceptions"]]
    assert all(e["carried_from"] is not None for e in finished["exceptions"])
