"""All SQL of idempotency keys: claim, replay, store a response or a refusal, release, expire.

Functions take a connection and run inside whatever transaction the caller holds.
"""

from __future__ import annotations

from accounts.store import Conn
from engine.idempotency.records import IdempotencyRecord


async def claim_idempotency_key(conn: Conn, merchant_id: str, key: str, fingerprint: bytes,
                                lock_s: float) -> IdempotencyRecord | None:
    """Claim ``key`` for this request (None = claimed, go ahead) or return what holds it.

    The primary key decides between concurrent claimers; an in-flight claim whose lock expired (the
    process died mid-request) is taken over by a retry with the same fingerprint."""
    claimed = await conn.fetchval(
        "INSERT INTO idempotency_keys (merchant_id, key, fingerprint, locked_until)"
        " VALUES ($1, $2, $3, now() + make_interval(secs => $4))"
        " ON CONFLICT (merchant_id, key) DO UPDATE SET locked_until = EXCLUDED.locked_until"
        "   WHERE idempotency_keys.status_code IS NULL AND idempotency_keys.locked_until < now()"
        "     AND idempotency_keys.fingerprint = EXCLUDED.fingerprint"
        " RETURNING true",
        merchant_id, key, fingerprint, lock_s,
    )
    if claimed:
        return None
    row = await conn.fetchrow(
        "SELECT fingerprint, status_code, response_body FROM idempotency_keys WHERE merchant_id = $1 AND key = $2",
        merchant_id, key,
    )
    if row is None:  # removed by the retention cleanup between the two statements: treat as busy
        return IdempotencyRecord(fingerprint, None, None)
    body = row["response_body"]
    return IdempotencyRecord(bytes(row["fingerprint"]), row["status_code"], bytes(body) if body else None)


async def get_idempotency_record(conn: Conn, merchant_id: str, key: str) -> IdempotencyRecord | None:
    row = await conn.fetchrow(
        "SELECT fingerprint, status_code, response_body FROM idempotency_keys WHERE merchant_id = $1 AND key = $2",
        merchant_id, key,
    )
    if row is None:
        return None
    body = row["response_body"]
    return IdempotencyRecord(bytes(row["fingerprint"]), row["status_code"], bytes(body) if body else None)


async def store_idempotent_refusal(conn: Conn, merchant_id: str, key: str, fingerprint: bytes, status_code: int,
                                   body: bytes) -> bool:
    """Keep a refusal as the key's answer (folded claims: nothing was claimed before); False if held."""
    stored = await conn.fetchval(
        "INSERT INTO idempotency_keys (merchant_id, key, fingerprint, status_code, response_body, locked_until)"
        " VALUES ($1, $2, $3, $4, $5, now()) ON CONFLICT (merchant_id, key) DO NOTHING RETURNING true",
        merchant_id, key, fingerprint, status_code, body,
    )
    return bool(stored)


async def save_idempotent_response(conn: Conn, merchant_id: str, key: str, status_code: int, body: bytes) -> None:
    await conn.execute(
        "UPDATE idempotency_keys SET status_code = $3, response_body = $4 WHERE merchant_id = $1 AND key = $2",
        merchant_id, key, status_code, body,
    )


async def release_idempotency_key(conn: Conn, merchant_id: str, key: str) -> None:
    """Forget an in-flight claim whose request failed unexpectedly, so a retry can run it again."""
    await conn.execute(
        "DELETE FROM idempotency_keys WHERE merchant_id = $1 AND key = $2 AND status_code IS NULL",
        merchant_id, key,
    )


async def delete_expired_idempotency_keys(conn: Conn, retention_s: float, batch_max: int) -> int:
    """Delete up to ``batch_max`` keys older than the retention; returns how many went."""
    status = await conn.execute(
        "DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY("
        "  SELECT ctid FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)"
        "  LIMIT $2))",
        retention_s, batch_max,
    )
    return int(status.split()[-1])
