"""All SQL of the controls: limit rules, risk rules, the blocklist, usage rows, payment records.

Every change to configuration bumps ``control_version`` in the same transaction, so caches reload
exactly when something changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta

import asyncpg

from accounts.store import Conn
from engine.controls.limits import ANY, LimitRule
from engine.controls.risk import History, RiskRule

HISTORY_DAYS = 90

_BUMP = "UPDATE control_version SET version = version + 1"


# ---------------------------------------------------------------- configuration

async def read_version(conn: Conn) -> int:
    version = await conn.fetchval("SELECT version FROM control_version")
    return int(version)


async def list_limit_rules(conn: Conn) -> list[tuple[str, LimitRule]]:
    """Every rule as (merchant id, rule); merchant id '' is the global default."""
    rows = await conn.fetch(
        "SELECT merchant_id, scope, time_window, method, currency, amount_max, count_max FROM limit_rules"
        " ORDER BY merchant_id, scope, time_window, method, currency")
    return [(r["merchant_id"], LimitRule(r["scope"], r["time_window"], r["method"], r["currency"], r["amount_max"],
                                         r["count_max"])) for r in rows]


async def replace_limit_rules(conn: asyncpg.Connection, merchant_id: str, rules: list[LimitRule]) -> None:
    """The merchant's ('' = global) set becomes ``rules``; run inside the caller's transaction."""
    await conn.execute("DELETE FROM limit_rules WHERE merchant_id = $1", merchant_id)
    await conn.executemany(
        "INSERT INTO limit_rules (merchant_id, scope, time_window, method, currency, amount_max, count_max)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        [(merchant_id, r.scope, r.window, r.method, r.currency or ANY, r.amount_max, r.count_max) for r in rules])
    await conn.execute(_BUMP)


async def merchant_exists(conn: Conn, merchant_id: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM merchants WHERE id = $1", merchant_id))


def _rule(row: asyncpg.Record) -> RiskRule:
    return RiskRule(row["id"], row["name"], row["kind"], row["action"], json.loads(row["params"]),
                    row["merchant_id"], tuple(row["methods"]), row["enabled"])


_RULE_COLUMNS = "id, name, kind, action, params::text AS params, merchant_id, methods, enabled"


async def list_risk_rules(conn: Conn) -> list[RiskRule]:
    return [_rule(r) for r in await conn.fetch(f"SELECT {_RULE_COLUMNS} FROM risk_rules ORDER BY created_at, id")]


async def get_risk_rule(conn: Conn, rule_id: str) -> RiskRule | None:
    row = await conn.fetchrow(f"SELECT {_RULE_COLUMNS} FROM risk_rules WHERE id = $1", rule_id)
    return _rule(row) if row is not None else None


async def upsert_risk_rule(conn: Conn, rule: RiskRule, create: bool) -> bool:
    """Insert (``create``) or update the rule; False when updating one that does not exist."""
    args = (rule.id, rule.name, rule.kind, rule.action, json.dumps(dict(rule.params)), rule.merchant_id,
            list(rule.methods), rule.enabled)
    if create:
        await conn.execute(
            "INSERT INTO risk_rules (id, name, kind, action, params, merchant_id, methods, enabled)"
            " VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8)", *args)
    else:
        moved = await conn.fetchval(
            "UPDATE risk_rules SET name = $2, kind = $3, action = $4, params = $5::jsonb, merchant_id = $6,"
            " methods = $7, enabled = $8, updated_at = now() WHERE id = $1 RETURNING 1", *args)
        if moved is None:
            return False
    await conn.execute(_BUMP)
    return True


async def delete_risk_rule(conn: Conn, rule_id: str) -> bool:
    gone = await conn.fetchval("DELETE FROM risk_rules WHERE id = $1 RETURNING 1", rule_id)
    if gone is not None:
        await conn.execute(_BUMP)
    return gone is not None


async def list_blocklist(conn: Conn) -> list[tuple[str, str]]:
    return [(r["list"], r["digest"]) for r in await conn.fetch("SELECT list, digest FROM risk_blocklist")]


async def add_blocklist(conn: Conn, list_: str, digest: str, reason: str | None) -> None:
    await conn.execute("INSERT INTO risk_blocklist (list, digest, reason) VALUES ($1, $2, $3)"
                       " ON CONFLICT (list, digest) DO UPDATE SET reason = EXCLUDED.reason", list_, digest, reason)
    await conn.execute(_BUMP)


async def remove_blocklist(conn: Conn, list_: str, digest: str) -> bool:
    gone = await conn.fetchval("DELETE FROM risk_blocklist WHERE list = $1 AND digest = $2 RETURNING 1",
                               list_, digest)
    if gone is not None:
        await conn.execute(_BUMP)
    return gone is not None


# ---------------------------------------------------------------- usage (the record behind the counters)

@dataclass(frozen=True, slots=True)
class Usage:
    id: str
    merchant_id: str
    customer_id: str | None
    kind: str
    method: str
    currency: str
    amount: int
    day: date


# Usage rows commit asynchronously (synchronous_commit off for that one implicit transaction: no WAL flush
# wait, ~3x cheaper here). What the rebuild needs is visibility, which an asynchronous commit gives at
# once. Durability follows from the WAL being flushed in order: a movement's own (synchronous) commit
# later in the WAL flushes its usage row with it, so a database crash can only lose rows of movements that
# never committed either, and a lost delete leaves a row behind (over-counts, never under).
_ASYNC_COMMIT = "WITH local AS (SELECT set_config('synchronous_commit', 'off', true))"


async def insert_usage(conn: Conn, u: Usage) -> None:
    await conn.execute(
        f"{_ASYNC_COMMIT} INSERT INTO limit_usage (id, merchant_id, customer_id, kind, method, currency, amount, day)"
        " SELECT $1, $2, $3, $4, $5, $6, $7, $8 FROM local",
        u.id, u.merchant_id, u.customer_id, u.kind, u.method, u.currency, u.amount, u.day)


async def lock_usage(conn: Conn, usage_id: str) -> Usage | None:
    """The usage row, locked until the caller's transaction ends (None: not there)."""
    r = await conn.fetchrow("SELECT id, merchant_id, customer_id, kind, method, currency, amount, day FROM limit_usage"
                            " WHERE id = $1 FOR UPDATE", usage_id)
    if r is None:
        return None
    return Usage(r["id"], r["merchant_id"], r["customer_id"], r["kind"], r["method"], r["currency"], r["amount"],
                 r["day"])


async def delete_usage(conn: Conn, usage_id: str) -> None:
    await conn.execute(f"{_ASYNC_COMMIT} DELETE FROM limit_usage WHERE id = $1 AND EXISTS (SELECT 1 FROM local)",
                       usage_id)


Sums = dict[tuple[str, str], tuple[int, int]]  # (currency, method) -> (amount, count)
PRELOAD_RECENT_S = 10  # rows younger than this may still be waiting for their own check


@dataclass(frozen=True, slots=True)
class Rebuild:
    """What a subject's lost counters are rebuilt from, read in one snapshot."""

    day: Sums
    month: Sums
    day_recent: list[str]    # admission ids in ``day`` whose check may not have run yet
    month_recent: list[str]
    history: History | None


_SUBJECT = {False: "merchant_id = $1 AND $2::text IS NULL", True: "merchant_id = $1 AND customer_id = $2"}
_SUMS = """
SELECT currency, method, day = $3 AS today, sum(amount)::bigint AS amount, count(*) AS n,
       array_agg(id) FILTER (WHERE created_at > now() - make_interval(secs => $5)) AS recent
FROM limit_usage WHERE {subject} AND day BETWEEN $4 AND $3 GROUP BY 1, 2, 3
"""
_HISTORY = """
SELECT count(*) AS n, coalesce(sum(amount), 0)::bigint AS total, coalesce(max(amount), 0) AS largest
FROM limit_usage WHERE merchant_id = $1 AND customer_id = $2 AND day > $3 AND id <> $4
"""


async def usage_sums(conn: asyncpg.Connection, merchant_id: str, customer_id: str | None, day: date,
                     own_id: str) -> Rebuild:
    """Day and month-to-date usage of a subject per currency and method (every committed row, the
    caller's own included), the recent ids among them, and for a customer the history of the last
    HISTORY_DAYS without ``own_id``. What lost Redis counters are rebuilt from."""
    today: Sums = {}
    month: Sums = {}
    day_recent: list[str] = []
    month_recent: list[str] = []
    history = None
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        rows = await conn.fetch(_SUMS.format(subject=_SUBJECT[customer_id is not None]), merchant_id, customer_id,
                                day, day.replace(day=1), PRELOAD_RECENT_S)
        if customer_id is not None:
            h = await conn.fetchrow(_HISTORY, merchant_id, customer_id, day - timedelta(days=HISTORY_DAYS), own_id)
            assert h is not None
            history = History(int(h["n"]), int(h["total"]), int(h["largest"]))
    for r in rows:
        for sums, recent, counted in ((month, month_recent, True), (today, day_recent, r["today"])):
            if counted:
                a, n = sums.get((r["currency"], r["method"]), (0, 0))
                sums[(r["currency"], r["method"])] = (a + int(r["amount"]), n + int(r["n"]))
                recent.extend(r["recent"] or ())
    return Rebuild(today, month, day_recent, month_recent, history)


async def delete_old_usage(conn: Conn, before: date, batch_max: int) -> int:
    """Usage rows older than any window or history still needs, at most ``batch_max`` of them."""
    deleted = await conn.fetchval(
        "WITH gone AS (DELETE FROM limit_usage WHERE id IN (SELECT id FROM limit_usage WHERE day < $1 LIMIT $2)"
        " RETURNING 1) SELECT count(*) FROM gone", before, batch_max)
    return int(deleted)


async def write_payment_controls(conn: Conn, payment_id: str, record: dict[str, object]) -> None:
    """The admission's record with the payment; call in the payment's booking transaction."""
    await conn.execute("UPDATE payments SET controls = $2::jsonb WHERE id = $1", payment_id, json.dumps(record))


async def read_payment_controls(conn: Conn, payment_id: str) -> dict[str, object] | None:
    raw = await conn.fetchval("SELECT controls::text FROM payments WHERE id = $1", payment_id)
    return None if raw is None else dict(json.loads(raw))
