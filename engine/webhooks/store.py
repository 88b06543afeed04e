"""All SQL of webhook delivery: claiming due outbox events, recording attempts, listing, re-sending.

Claiming is a lease, not a long transaction: due rows are locked with ``FOR UPDATE SKIP LOCKED`` only
for the UPDATE that pushes their ``next_attempt_at`` past the delivery's timeout, so concurrent workers
(in-process and ``payengine webhooks``) never take the same event at once, and an event whose worker
died is simply due again when its lease runs out (delivered at least once, never lost).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from accounts.store import Conn
from engine.errors import NotFound
from engine.keys import EVENT, new_id
from engine.webhooks.wire import DeliveryStatus

NO_ENDPOINT = "merchant has no webhook_url"


@dataclass(frozen=True, slots=True)
class DueEvent:
    id: str
    merchant_id: str
    type: str
    payload: str  # the object's JSON text
    created_at: datetime
    window_started_at: datetime
    attempts: int  # attempts already made in this window
    url: str
    secret_salt: bytes | None  # None only for an endpoint set without a salt (by hand): cannot be signed
    previous_salt: bytes | None = None  # the salt before a rotation, while its overlap lasts (also signs)


@dataclass(frozen=True, slots=True)
class AttemptResult:
    event_id: str
    attempt: int
    url: str | None
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None
    next_attempt_at: datetime | None  # None: delivered (succeeded) or dead (failed)

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True, slots=True)
class EventRecord:
    id: str
    type: str
    object_id: str
    payload: str
    created_at: datetime
    delivery_status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None


_CLAIM = """
WITH due AS (
    SELECT id FROM outbox_events
    WHERE delivery_status = 'pending' AND next_attempt_at <= $1
    ORDER BY next_attempt_at LIMIT $3
    FOR UPDATE SKIP LOCKED
), leased AS (
    -- A merchant without an endpoint: nothing to send, so no attempt; the event stays listable and can
    -- be re-sent once an endpoint is set. Settled here, in bulk, at no cost per event.
    UPDATE outbox_events e
    SET next_attempt_at = CASE WHEN m.webhook_url IS NULL THEN $1 ELSE $1 + make_interval(secs => $2) END,
        delivery_status = CASE WHEN m.webhook_url IS NULL THEN 'dead' ELSE 'pending' END,
        last_error = CASE WHEN m.webhook_url IS NULL THEN $4 ELSE e.last_error END
    FROM due, merchants m
    WHERE e.id = due.id AND m.id = e.merchant_id
    RETURNING e.id, e.merchant_id, e.type, CASE WHEN m.webhook_url IS NOT NULL THEN e.payload::text END AS payload,
              e.created_at, coalesce(e.window_started_at, e.created_at) AS window_started_at, e.attempts,
              m.webhook_url, m.webhook_secret_salt,
              CASE WHEN m.webhook_prev_expires_at > $1 THEN m.webhook_prev_secret_salt END AS webhook_prev_salt
)
SELECT * FROM leased
"""


async def claim_due_events(conn: Conn, now: datetime, lease_s: float, limit: int) -> tuple[list[DueEvent], int]:
    """Lease up to ``limit`` pending events due by ``now`` for ``lease_s`` (skipping rows others hold).

    Returns the events to deliver and how many rows the claim took in all (those of merchants without
    an endpoint were settled as dead in the same statement)."""
    rows = await conn.fetch(_CLAIM, now, float(lease_s), limit, NO_ENDPOINT)
    return [DueEvent(r["id"], r["merchant_id"], r["type"], r["payload"], r["created_at"], r["window_started_at"],
                     r["attempts"], r["webhook_url"],
                     bytes(r["webhook_secret_salt"]) if r["webhook_secret_salt"] is not None else None,
                     bytes(r["webhook_prev_salt"]) if r["webhook_prev_salt"] is not None else None)
            for r in rows if r["webhook_url"] is not None], len(rows)


BACKLOG_COUNTED_MAX = 10_000  # the gauge says "at least this many"; counting further costs for nothing


async def due_backlog(conn: Conn, now: datetime) -> tuple[int, datetime | None]:
    """Pending events due by ``now`` (counted up to BACKLOG_COUNTED_MAX) and the earliest ``next_attempt_at`` of
    any pending event (None: none pending). Both walk the partial index outbox_events_pending."""
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM (SELECT 1 FROM outbox_events WHERE delivery_status = 'pending'"
        "        AND next_attempt_at <= $1 LIMIT $2) d) AS due,"
        " (SELECT min(next_attempt_at) FROM outbox_events WHERE delivery_status = 'pending') AS earliest",
        now, BACKLOG_COUNTED_MAX)
    assert row is not None
    return int(row["due"]), row["earliest"]


_RECORD = """
WITH a AS (
    INSERT INTO webhook_attempts (event_id, attempt, url, started_at, duration_ms, status_code, succeeded, error)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
)
UPDATE outbox_events SET attempts = attempts + 1,
       delivery_status = CASE WHEN $7 THEN 'delivered' WHEN $9::timestamptz IS NULL THEN 'dead' ELSE 'pending' END,
       next_attempt_at = coalesce($9::timestamptz, next_attempt_at),
       delivered_at = CASE WHEN $7 THEN $4::timestamptz + make_interval(secs => $5 / 1000.0) ELSE delivered_at END,
       last_error = CASE WHEN $7 THEN NULL ELSE $8 END
WHERE id = $1 AND delivery_status = 'pending'
"""


async def record_attempt(conn: Conn, result: AttemptResult) -> None:
    """Record one attempt and move the event: delivered, pending again at ``next_attempt_at``, or dead."""
    await conn.execute(_RECORD, result.event_id, result.attempt, result.url, result.started_at, result.duration_ms,
                       result.status_code, result.succeeded, result.error, result.next_attempt_at)


async def set_webhook_endpoint(conn: Conn, merchant_id: str, url: str | None, secret_salt: bytes | None) -> None:
    await conn.execute("UPDATE merchants SET webhook_url = $2, webhook_secret_salt = $3 WHERE id = $1",
                       merchant_id, url, secret_salt)


_EVENT_COLUMNS = ("id, type, object_id, payload::text AS payload, created_at, delivery_status, attempts,"
                  " CASE WHEN delivery_status = 'pending' THEN next_attempt_at END AS next_attempt_at,"
                  " delivered_at, last_error")


def _event(r: Any) -> EventRecord:
    return EventRecord(r["id"], r["type"], r["object_id"], r["payload"], r["created_at"],
                       cast(DeliveryStatus, r["delivery_status"]),
                       r["attempts"], r["next_attempt_at"], r["delivered_at"], r["last_error"])


async def get_event(conn: Conn, merchant_id: str, event_id: str) -> EventRecord | None:
    """One event of this merchant (another merchant's event is None, as if it did not exist)."""
    r = await conn.fetchrow(f"SELECT {_EVENT_COLUMNS} FROM outbox_events WHERE id = $1 AND merchant_id = $2",
                            event_id, merchant_id)
    return _event(r) if r else None


async def list_events(conn: Conn, merchant_id: str, type_: str | None, limit: int,
                      starting_after: str | None) -> tuple[list[EventRecord], bool]:
    """Newest first; ``starting_after`` is the last id of the previous page. Returns (page, has_more)."""
    cursor: Any = None
    if starting_after is not None:
        cursor = await conn.fetchrow("SELECT created_at, id FROM outbox_events WHERE id = $1 AND merchant_id = $2",
                                     starting_after, merchant_id)
        if cursor is None:
            raise NotFound("event", starting_after, "starting_after")
    rows = await conn.fetch(
        f"SELECT {_EVENT_COLUMNS} FROM outbox_events WHERE merchant_id = $1 AND ($2::text IS NULL OR type = $2)"
        " AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4::text))"
        " ORDER BY created_at DESC, id DESC LIMIT $5",
        merchant_id, type_, cursor["created_at"] if cursor else None, cursor["id"] if cursor else None, limit + 1)
    return [_event(r) for r in rows[:limit]], len(rows) > limit


async def requeue_event(conn: Conn, merchant_id: str, event_id: str, now: datetime) -> EventRecord | None:
    """Send the event again now, with a fresh retry window (whatever its delivery status was)."""
    r = await conn.fetchrow(
        "UPDATE outbox_events SET delivery_status = 'pending', attempts = 0, next_attempt_at = $3,"
        " window_started_at = $3, last_error = NULL WHERE id = $1 AND merchant_id = $2"
        f" RETURNING {_EVENT_COLUMNS}", event_id, merchant_id, now)
    return _event(r) if r else None


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    attempt: int
    started_at: datetime
    status_code: int | None
    succeeded: bool
    error: str | None


async def attempts_of(conn: Conn, event_id: str) -> list[AttemptRecord]:
    rows = await conn.fetch("SELECT attempt, started_at, status_code, succeeded, error FROM webhook_attempts"
                            " WHERE event_id = $1 ORDER BY id", event_id)
    return [AttemptRecord(r["attempt"], r["started_at"], r["status_code"], r["succeeded"], r["error"]) for r in rows]


# ---------------------------------------------------------------- the outbox (written with the change it reports)

async def insert_outbox(conn: Conn, merchant_id: str, type_: str, object_id: str, payload: bytes,
                        now: datetime) -> str:
    """One event for the merchant's endpoint, in the caller's transaction. (Payments and transfers write
    theirs inside the statement of the change itself: payments/store.py, transfers/store.py.)"""
    event_id = new_id(EVENT)
    await conn.execute(
        "INSERT INTO outbox_events (id, merchant_id, type, object_id, payload, created_at)"
        " VALUES ($1, $2, $3, $4, $5::jsonb, $6)", event_id, merchant_id, type_, object_id, payload.decode(), now)
    return event_id
