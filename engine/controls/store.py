"""All SQL of the controls: limit rules, risk rules, the blocklist, usage rows, payment records.

Every change to configuration bumps ``control_version`` in the same transaction, so caches reload
exactly when something changed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

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


async def remove_blocklist(conn: Conn, list_: str, digests: Sequence[str]) -> str | None:
    """Delete the list's entries with any of ``digests``; the first one deleted, or None if none was."""
    gone: list[str] = [r["digest"] for r in await conn.fetch(
        "DELETE FROM risk_blocklist WHERE list = $1 AND digest = ANY($2::text[]) RETURNING digest",
        list_, list(digests))]
    if gone:
        await conn.execute(_BUMP)
    return min(gone, key=list(digests).index) if gone else None


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
    movement_id: str | None = None  # the payment / transfer / payout this admission is for
    uncounted: bool = False  # admitted while Redis could not count it: given back only by a counter reset


# Usage rows commit asynchronously (synchronous_commit off for that one implicit transaction: no WAL flush
# wait, ~3x cheaper here). What the rebuild needs is visibility, which an asynchronous commit gives at
# once. Durability follows from the WAL being flushed in order: a movement's own (synchronous) commit
# later in the WAL flushes its usage row with it, so a database crash can only lose rows of movements that
# never committed either, and a lost delete leaves a row behind (over-counts, never under).
_ASYNC_COMMIT = "WITH local AS (SELECT set_config('synchronous_commit', 'off', true))"


async def insert_usage(conn: Conn, u: Usage) -> None:
    await insert_usages(conn, [u])


async def insert_usages(conn: Conn, rows: Sequence[Usage]) -> None:
    """Insert usage rows in one statement (one implicit, asynchronously committed transaction)."""
    await conn.execute(
        f"{_ASYNC_COMMIT} INSERT INTO limit_usage (id, merchant_id, customer_id, kind, method, currency, amount, day,"
        " movement_id) SELECT t.* FROM local, unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],"
        " $6::text[], $7::bigint[], $8::date[], $9::text[]) AS t",
        [u.id for u in rows], [u.merchant_id for u in rows], [u.customer_id for u in rows], [u.kind for u in rows],
        [u.method for u in rows], [u.currency for u in rows], [u.amount for u in rows], [u.day for u in rows],
        [u.movement_id for u in rows])


_USAGE_COLUMNS = ("id, merchant_id, customer_id, kind, method, currency, amount, day, movement_id,"
                  " uncounted_at IS NOT NULL AS uncounted")


def _usage(r: asyncpg.Record) -> Usage:
    return Usage(r["id"], r["merchant_id"], r["customer_id"], r["kind"], r["method"], r["currency"], r["amount"],
                 r["day"], r["movement_id"], r["uncounted"])


async def mark_uncounted(conn: Conn, usage_id: str) -> None:
    """The admission was let through uncounted: its subjects' counters are owed a reset (resets_owed)."""
    await conn.execute("UPDATE limit_usage SET uncounted_at = now(), counters_reset_at = NULL WHERE id = $1",
                       usage_id)


async def lock_usage(conn: Conn, usage_id: str) -> Usage | None:
    """The usage row, locked until the caller's transaction ends (None: not there, or released by the orphan
    sweep, which gave its counters back already)."""
    r = await conn.fetchrow(f"SELECT {_USAGE_COLUMNS} FROM limit_usage WHERE id = $1 AND released_at IS NULL"
                            " FOR UPDATE", usage_id)
    return None if r is None else _usage(r)


# A booking claims its admission's row in the booking transaction: the orphan sweep locks a row FOR UPDATE
# before it judges it, so a booking either holds the row first (the sweep waits, then finds it booked) or
# finds it released and must not book (its usage was given back).
_CLAIM = "SELECT 1 FROM limit_usage WHERE id = $1 AND released_at IS NULL FOR KEY SHARE"


async def claim_usage(conn: Conn, usage_id: str) -> bool:
    """Lock the admission's row for this booking transaction; False when it was released (do not book)."""
    return await conn.fetchval(_CLAIM, usage_id) is not None


async def delete_usage(conn: Conn, usage_id: str) -> None:
    await conn.execute(f"{_ASYNC_COMMIT} DELETE FROM limit_usage WHERE id = $1 AND EXISTS (SELECT 1 FROM local)",
                       usage_id)


async def release_usage_reset_owed(conn: Conn, usage_id: str) -> None:
    """The usage no longer counts, but Redis may still count it (its give-back did not get an answer, or it
    is given back by reset): the row is kept released with its subjects' counter reset owed, which the
    owed-reset loop of every process (``orphans.reset_owed``) makes once Redis answers. Over-counting until
    then, never under."""
    await conn.execute("UPDATE limit_usage SET released_at = now(), counters_reset_at = NULL WHERE id = $1",
                       usage_id)


async def settle_usage(conn: Conn, usage_id: str, given_back: bool) -> None:
    """After a give-back: the row goes when Redis confirmed it, else it stays as a reset owed."""
    if given_back:
        await delete_usage(conn, usage_id)
    else:
        await release_usage_reset_owed(conn, usage_id)


Sums = dict[tuple[str, str], tuple[int, int]]  # (currency, method) -> (amount, count)
PRELOAD_RECENT_S = 10  # rows younger than this may still be waiting for their own check


@dataclass(frozen=True, slots=True)
class Rebuild:
    """What a subject's lost counters are rebuilt from, read in one snapshot."""

    day: Sums
    month: Sums
    day_recent: list[str]    # admission ids in ``day`` whose check may not have run yet
    month_recent: list[str]
    history: dict[str, History] | None  # per method, in the attempt's currency (methods without admissions left out)
    # (admission id, age ms, method): each method's latest admissions, newest first
    velocity: list[tuple[str, int, str]] = field(default_factory=list)


# Usage sums are computed in numeric and saturate at the bigint maximum (Redis counters and the rules compare
# int64): at that point every limit is exceeded anyway, and saturating can only make a check stricter.
SUM_MAX = 2**63 - 1
_SUBJECT = {False: "merchant_id = $1 AND $2::text IS NULL", True: "merchant_id = $1 AND customer_id = $2"}
_SUMS = """
SELECT currency, method, day = $3 AS today, LEAST(sum(amount), $6::numeric)::bigint AS amount, count(*) AS n,
       array_agg(id) FILTER (WHERE created_at > now() - make_interval(secs => $5)) AS recent
FROM limit_usage WHERE {subject} AND day BETWEEN $4 AND $3 AND released_at IS NULL GROUP BY 1, 2, 3
"""
_HISTORY = """
SELECT method, count(*) AS n, LEAST(sum(amount), $6::numeric)::bigint AS total, max(amount) AS largest
FROM limit_usage WHERE merchant_id = $1 AND customer_id = $2 AND currency = $5 AND day > $3 AND id <> $4
  AND released_at IS NULL
GROUP BY method
"""
# The customer's latest admissions of each method inside the velocity window, with their age by the
# database's clock (the caller places them relative to its own clock, so the two clocks never meet).
_VELOCITY = """
SELECT id, age_ms, method FROM (
  SELECT id, method, (extract(epoch FROM now() - created_at) * 1000)::bigint AS age_ms,
         row_number() OVER (PARTITION BY method ORDER BY created_at DESC) AS nth
  FROM limit_usage WHERE merchant_id = $1 AND customer_id = $2 AND released_at IS NULL
    AND created_at > now() - make_interval(secs => $3::float8 / 1000)) latest
WHERE nth <= $4 ORDER BY age_ms
"""


async def usage_sums(conn: asyncpg.Connection, merchant_id: str, customer_id: str | None, day: date,
                     currency: str, own_id: str, velocity_keep_ms: int = 0, velocity_max: int = 0) -> Rebuild:
    """Day and month-to-date usage of a subject per currency and method (every committed, unreleased row,
    the caller's own included), the recent ids among them, and for a customer the history per method of the
    last HISTORY_DAYS in ``currency`` (the attempt's) without ``own_id`` and the latest ``velocity_max``
    admissions of each method, any currency (besides the caller's own), younger than ``velocity_keep_ms``.
    What lost Redis counters, histories and velocity logs are rebuilt from."""
    today: Sums = {}
    month: Sums = {}
    day_recent: list[str] = []
    month_recent: list[str] = []
    history = None
    velocity: list[tuple[str, int, str]] = []
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        rows = await conn.fetch(_SUMS.format(subject=_SUBJECT[customer_id is not None]), merchant_id, customer_id,
                                day, day.replace(day=1), PRELOAD_RECENT_S, SUM_MAX)
        if customer_id is not None:
            history = {h["method"]: History(int(h["n"]), int(h["total"]), int(h["largest"])) for h in
                       await conn.fetch(_HISTORY, merchant_id, customer_id, day - timedelta(days=HISTORY_DAYS),
                                        own_id, currency, SUM_MAX)}
            if velocity_keep_ms > 0 and velocity_max > 0:
                # One more than the largest N: the caller's own row is among the latest of its method.
                velocity = [(v["id"], max(0, int(v["age_ms"])), v["method"]) for v in
                            await conn.fetch(_VELOCITY, merchant_id, customer_id, velocity_keep_ms, velocity_max + 1)]
    for r in rows:
        for sums, recent, counted in ((month, month_recent, True), (today, day_recent, r["today"])):
            if counted:
                a, n = sums.get((r["currency"], r["method"]), (0, 0))
                sums[(r["currency"], r["method"])] = (a + int(r["amount"]), n + int(r["n"]))
                recent.extend(r["recent"] or ())
    return Rebuild(today, month, day_recent, month_recent, history, velocity)


async def delete_old_usage(conn: Conn, before: date, batch_max: int) -> int:
    """Usage rows older than any window or history still needs, at most ``batch_max`` of them."""
    deleted = await conn.fetchval(
        "WITH gone AS (DELETE FROM limit_usage WHERE id IN (SELECT id FROM limit_usage WHERE day < $1 LIMIT $2)"
        " RETURNING 1) SELECT count(*) FROM gone", before, batch_max)
    return int(deleted)


# ---------------------------------------------------------------- orphans (admitted, never booked)

@dataclass(frozen=True, slots=True)
class Released:
    """A usage row the orphan sweep released; its subjects' counters are reset after the commit."""

    usage: Usage
    age_s: float


# The movement each kind books; an admission whose movement row exists booked (its usage stays counted).
_BOOKED = """
SELECT {columns}, extract(epoch FROM now() - created_at)::float8 AS age_s FROM limit_usage u
WHERE id = ANY($1::text[]) AND movement_id IS NOT NULL AND released_at IS NULL
  AND NOT (kind = 'payment' AND EXISTS (SELECT 1 FROM payments p WHERE p.id = u.movement_id))
  AND NOT (kind = 'transfer' AND EXISTS (SELECT 1 FROM transfers t WHERE t.id = u.movement_id))
  AND NOT (kind = 'payout' AND EXISTS (SELECT 1 FROM payouts o WHERE o.id = u.movement_id))
"""


async def release_orphans(conn: asyncpg.Connection, grace_s: float, batch_max: int,
                          lock_timeout_ms: int) -> tuple[int, list[Released]] | None:
    """Look at up to ``batch_max`` usage rows older than ``grace_s`` past the sweep's watermark, release
    (mark ``released_at``) those whose movement did not book and advance the watermark past all of them;
    returns (rows looked at, rows released). Runs in its own transaction; None when another process is
    sweeping. Each row is locked (FOR UPDATE) BEFORE its movement is looked up, so a booking that claimed it
    (``claim_usage``) has committed by then and is seen, and one that comes later finds it released. Raises
    asyncpg.LockNotAvailableError when a booking holds a row past ``lock_timeout_ms`` (nothing changed; the
    next run looks again)."""
    async with conn.transaction():
        mark = await conn.fetchrow("SELECT through_at, through_id FROM limit_usage_sweep FOR UPDATE SKIP LOCKED")
        if mark is None:
            return None
        await conn.execute(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
        seen = await conn.fetch(
            "SELECT id, created_at FROM limit_usage WHERE created_at >= $1 AND (created_at, id) > ($1, $2)"
            " AND created_at <= now() - make_interval(secs => $3::float8) ORDER BY created_at, id LIMIT $4"
            " FOR UPDATE", mark["through_at"], mark["through_id"], grace_s, batch_max)
        if not seen:
            return 0, []
        rows = await conn.fetch(_BOOKED.format(columns=_USAGE_COLUMNS), [r["id"] for r in seen])
        # A reset made earlier (of an uncounted row) is owed again: the counters may count the row since.
        await conn.execute("UPDATE limit_usage SET released_at = now(), counters_reset_at = NULL"
                           " WHERE id = ANY($1::text[])", [r["id"] for r in rows])
        await conn.execute("UPDATE limit_usage_sweep SET through_at = $1, through_id = $2",
                           seen[-1]["created_at"], seen[-1]["id"])
    return len(seen), [Released(_usage(r), float(r["age_s"])) for r in rows]


@dataclass(frozen=True, slots=True)
class OwedReset:
    """A usage row whose subjects' counters are owed a reset (drop, then rebuild from PostgreSQL)."""

    usage: Usage
    released_at: datetime | None  # as read: a release that comes after the read owes a reset of its own
    settled: bool  # owed for longer than the settle time when read (mark_reset may then settle it)


async def resets_owed(conn: Conn, batch_max: int, settle_s: float) -> list[OwedReset]:
    """Released or uncounted rows whose subjects' counters have not been reset yet (oldest first)."""
    rows = await conn.fetch(
        "SELECT *, now() - owed_at >= make_interval(secs => $2::float8) AS settled FROM ("
        f" (SELECT {_USAGE_COLUMNS}, released_at, released_at AS owed_at FROM limit_usage"
        "   WHERE released_at IS NOT NULL AND counters_reset_at IS NULL ORDER BY released_at LIMIT $1)"
        f" UNION ALL (SELECT {_USAGE_COLUMNS}, released_at, uncounted_at AS owed_at FROM limit_usage"
        "   WHERE uncounted_at IS NOT NULL AND counters_reset_at IS NULL AND released_at IS NULL"
        "   ORDER BY uncounted_at LIMIT $1)) owed ORDER BY owed_at LIMIT $1", batch_max, settle_s)
    return [OwedReset(_usage(r), r["released_at"], r["settled"]) for r in rows]


async def mark_reset(conn: Conn, owed: Sequence[OwedReset]) -> None:
    """Settle the resets of ``owed`` made after they were read; a row released since then stays owed."""
    await conn.execute(
        "UPDATE limit_usage u SET counters_reset_at = now()"
        " FROM unnest($1::text[], $2::timestamptz[]) AS r(id, released_at)"
        " WHERE u.id = r.id AND u.released_at IS NOT DISTINCT FROM r.released_at"
        " AND (u.released_at IS NOT NULL OR u.uncounted_at IS NOT NULL)",
        [o.usage.id for o in owed], [o.released_at for o in owed])


@dataclass(frozen=True, slots=True)
class AdmissionClaim:
    """What a movement's own statement stores with it: the admission's record (``Admission.record()``), and
    the admission's usage row to claim (``CLAIM_USAGE``) in that statement."""

    admission_id: str
    record: dict[str, object]

    @property
    def record_json(self) -> str:
        return json.dumps(self.record)


# The claim as a CTE ``u`` of the movement's own statement (a row when the admission still holds): the
# movement's insert requires it, so a released admission books nothing. Takes the admission id as ${n}.
def claim_usage_cte(param: int) -> str:
    return f"u AS ({_CLAIM.replace('$1', f'${param}::text')})"


# Where each kind of movement keeps the gate's record (Admission.record()), written in its booking transaction.
RECORD_COLUMNS = {"payment": ("payments", "controls"), "transfer": ("transfers", "risk"), "payout": ("payouts", "risk")}


async def read_controls(conn: Conn, kind: str, object_id: str) -> tuple[bool, dict[str, object] | None]:
    """(the payment/transfer/payout exists, the record stored with it: None when no gate admitted it)."""
    table, column = RECORD_COLUMNS[kind]
    row = await conn.fetchrow(f"SELECT {column}::text AS record FROM {table} WHERE id = $1", object_id)
    if row is None:
        return False, None
    return True, None if row["record"] is None else dict(json.loads(row["record"]))


# ---------------------------------------------------------------- limit usage owed back (usage_release.py)

async def usage_owed(conn: Conn, movement_id: str) -> str | None:
    """The admission whose usage the payment or payout still owes back, if any."""
    admission: str | None = await conn.fetchval(
        "SELECT admission_id FROM usage_releases WHERE movement_id = $1", movement_id)
    return admission


async def lock_usage_owed(conn: Conn, grace_s: float, limit: int) -> list[tuple[str, str]]:
    """(payment or payout id, admission id) owed longer than ``grace_s``, oldest first, locked for the caller's
    transaction; rows another process holds are skipped, not waited for."""
    rows = await conn.fetch(
        "SELECT movement_id, admission_id FROM usage_releases WHERE owed_since <= now() - make_interval(secs => $1)"
        " ORDER BY owed_since LIMIT $2 FOR UPDATE SKIP LOCKED", float(grace_s), limit)
    return [(r["movement_id"], r["admission_id"]) for r in rows]


async def settle_usage_owed(conn: Conn, movement_ids: list[str]) -> None:
    """The usage of these payments or payouts was given back: nothing owed any more."""
    await conn.execute("DELETE FROM usage_releases WHERE movement_id = ANY($1::text[])", movement_ids)


# A payment that ends without money, or a payout that failed, owes its limit usage back
# (engine/controls/usage_release.py): the owed row goes in with the transition. Needs a CTE ``p`` returning the moved
# payment's or payout's ``id`` and ``admission`` (the gate's admission id from ``payments.controls`` or
# ``payouts.risk``, NULL when nothing was counted or nothing is owed).
USAGE_OWED = """usage_owed AS (
    INSERT INTO usage_releases (movement_id, admission_id) SELECT id, admission FROM p WHERE admission IS NOT NULL
    ON CONFLICT (movement_id) DO NOTHING
)"""
