"""All SQL for transfers. Functions take a connection and run in whatever transaction the caller holds.

``insert_transfer`` is one statement that claims the idempotency key (folded claim), finds the payer
and payee accounts (customers of this merchant, in the transfer's currency; or the merchant's available
account), inserts the transfer with its webhook event and stores the response. The caller then posts
the journal entry in the same transaction, so row, event, response and money commit together or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn, cast

import asyncpg
import msgspec

from accounts.errors import InsufficientFunds
from accounts.model import AccountId
from accounts.store import Conn
from engine.errors import DuplicateOrder, IdempotencyKeyTaken, NotFound
from engine.idempotency.records import StoredResponse
from engine.payments.store import OutboxEvent
from engine.transfers.errors import TransferCurrencyMismatch
from engine.transfers.states import TransferSource, TransferStatus


@dataclass(frozen=True, slots=True)
class TransferRecord:
    id: str
    merchant_id: str
    transfer_no: str
    source: TransferSource
    amount: int
    currency: str
    from_customer_id: str | None
    to_customer_id: str
    status: TransferStatus
    txn_no: str
    description: str | None
    metadata: dict[str, str]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Parties:
    """The accounts the entry moves money between (resolved by the insert, in the same statement)."""

    payer_account_id: AccountId
    payee_account_id: AccountId


_INSERT_TRANSFER = """
WITH k AS (
    -- Folded idempotency claim, as for payments: the key goes in with its response, in the effect's
    -- transaction; the try-lock turns "another request with this key is running" into a refusal (409)
    -- instead of a wait on the holder's uncommitted row.
    INSERT INTO idempotency_keys (merchant_id, key, fingerprint, status_code, response_body, locked_until)
    SELECT $2::text, $18::text, $21::bytea, $19::int, $20::bytea, $14::timestamptz
    WHERE $21::bytea IS NOT NULL AND pg_try_advisory_xact_lock(hashtextextended($2::text || ':' || $18::text, 0))
    ON CONFLICT (merchant_id, key) DO NOTHING
    RETURNING 1
), payer AS (
    SELECT c.wallet_account_id AS account_id FROM customers c
    WHERE $4::text = 'customer' AND c.id = $7::text AND c.merchant_id = $2::text AND c.currency = $6::text
    UNION ALL
    SELECT a.id FROM accounts a
    WHERE $4::text = 'merchant' AND a.owner_id = $2::text AND a.role = 'merchant_available'
      AND a.currency = $6::text AND a.parent_id IS NULL
), payee AS (
    SELECT c.wallet_account_id AS account_id FROM customers c
    WHERE c.id = $8::text AND c.merchant_id = $2::text AND c.currency = $6::text
), t AS (
    INSERT INTO transfers (id, merchant_id, transfer_no, source, amount, currency, from_customer_id, to_customer_id,
                           payer_account_id, payee_account_id, status, txn_no, description, metadata, risk,
                           created_at)
    SELECT $1::text, $2::text, $3::text, $4::text, $5::bigint, $6::text, $7::text, $8::text,
           payer.account_id, payee.account_id, $9::text, $10::text, $11::text, $12::jsonb, $13::jsonb,
           $14::timestamptz
    FROM payer, payee
    WHERE ($21::bytea IS NULL OR EXISTS (SELECT 1 FROM k))
    ON CONFLICT ON CONSTRAINT transfers_merchant_transfer_no DO NOTHING
    RETURNING payer_account_id, payee_account_id
), o AS (
    INSERT INTO outbox_events (id, merchant_id, type, object_id, payload, created_at)
    SELECT $15::text, $2::text, $16::text, $1::text, $17::jsonb, $14::timestamptz FROM t WHERE $15::text IS NOT NULL
), i AS (
    -- A key claimed beforehand (not folded): its response is stored with the effect.
    UPDATE idempotency_keys SET status_code = $19::int, response_body = $20::bytea
    WHERE merchant_id = $2::text AND key = $18::text AND EXISTS (SELECT 1 FROM t) AND $21::bytea IS NULL
)
SELECT t.payer_account_id, t.payee_account_id, (SELECT count(*) FROM k) AS claimed
FROM (SELECT 1) one LEFT JOIN t ON true
"""

_DIAGNOSE = """
SELECT (SELECT id FROM transfers WHERE merchant_id = $1 AND transfer_no = $2) AS existing,
       (SELECT currency FROM customers WHERE id = $3 AND merchant_id = $1) AS from_currency,
       (SELECT currency FROM customers WHERE id = $4 AND merchant_id = $1) AS to_currency
"""


async def insert_transfer(conn: Conn, t: TransferRecord, risk: bytes | None, event: OutboxEvent | None,
                          response: StoredResponse | None, claim_fingerprint: bytes | None = None) -> Parties:
    """Insert the transfer with its outbox event and stored response; return the accounts to book.

    With ``claim_fingerprint`` the idempotency key is claimed here (IdempotencyKeyTaken when held).
    Raises DuplicateOrder (transfer_no used, naming the transfer), NotFound (a customer that is not
    this merchant's), TransferCurrencyMismatch (a wallet in another currency), InsufficientFunds
    (cash-back by a merchant with no available account in the currency yet); then nothing was
    written and the caller rolls back."""
    assert claim_fingerprint is None or response is not None
    key, status_code, body = (response.key, response.status_code, response.body) if response else (None, None, None)
    row = await conn.fetchrow(
        _INSERT_TRANSFER,
        t.id, t.merchant_id, t.transfer_no, t.source, t.amount, t.currency, t.from_customer_id, t.to_customer_id,
        t.status, t.txn_no, t.description, msgspec.json.encode(t.metadata).decode(),
        risk.decode() if risk is not None else None, t.created_at,
        event.id if event else None, event.type if event else None, event.payload.decode() if event else None,
        key, status_code, body, claim_fingerprint,
    )
    assert row is not None
    if claim_fingerprint is not None and not row["claimed"]:
        raise IdempotencyKeyTaken(key or "")
    if row["payer_account_id"] is not None:
        return Parties(AccountId(row["payer_account_id"]), AccountId(row["payee_account_id"]))
    await _raise_refusal(conn, t)


async def _raise_refusal(conn: Conn, t: TransferRecord) -> NoReturn:
    """Why the insert wrote nothing: one read, then the first broken rule in request order."""
    found = await conn.fetchrow(_DIAGNOSE, t.merchant_id, t.transfer_no, t.from_customer_id, t.to_customer_id)
    assert found is not None
    if found["existing"] is not None:
        raise DuplicateOrder("transfer_no", t.transfer_no, found["existing"])
    if t.source == "customer":
        _check_wallet(found["from_currency"], t.currency, t.from_customer_id or "", "from_customer_id")
    _check_wallet(found["to_currency"], t.currency, t.to_customer_id, "to_customer_id")
    # Both customers are fine, so the payer is the merchant and it has no available account in the currency.
    assert t.source == "merchant", t
    raise InsufficientFunds(f"merchant_available/{t.currency}", t.amount)


def _check_wallet(currency: str | None, expected: str, customer_id: str, param: str) -> None:
    if currency is None:
        raise NotFound("customer", customer_id, param)
    if currency.strip() != expected:
        raise TransferCurrencyMismatch(expected, currency.strip(), param)


_SELECT = (
    "SELECT id, merchant_id, transfer_no, source, amount, currency, from_customer_id, to_customer_id, status,"
    " txn_no, description, metadata::text, created_at FROM transfers"
)


def _record(r: asyncpg.Record) -> TransferRecord:
    return TransferRecord(
        r["id"], r["merchant_id"], r["transfer_no"], cast(TransferSource, r["source"]), r["amount"],
        r["currency"].strip(), r["from_customer_id"], r["to_customer_id"], TransferStatus(r["status"]), r["txn_no"],
        r["description"],
        msgspec.json.decode(r["metadata"], type=dict[str, str]), r["created_at"])


async def get_transfer(conn: Conn, merchant_id: str, transfer_id: str) -> TransferRecord | None:
    """One transfer of this merchant (another merchant's is None, as if it did not exist)."""
    row = await conn.fetchrow(_SELECT + " WHERE id = $1 AND merchant_id = $2", transfer_id, merchant_id)
    return _record(row) if row else None


async def list_transfers(conn: Conn, merchant_id: str, transfer_no: str | None, customer_id: str | None,
                         limit: int, starting_after: str | None) -> tuple[list[TransferRecord], bool]:
    """Newest first; ``customer_id`` matches payer or payee; ``starting_after`` is the previous page's
    last id. Returns (page, has_more)."""
    cursor: Any = None
    if starting_after is not None:
        cursor = await conn.fetchrow(
            "SELECT created_at, id FROM transfers WHERE id = $1 AND merchant_id = $2", starting_after, merchant_id)
        if cursor is None:
            raise NotFound("transfer", starting_after, "starting_after")
    rows = await conn.fetch(
        _SELECT + " WHERE merchant_id = $1 AND ($2::text IS NULL OR transfer_no = $2)"
        " AND ($3::text IS NULL OR from_customer_id = $3 OR to_customer_id = $3)"
        " AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5::text))"
        " ORDER BY created_at DESC, id DESC LIMIT $6",
        merchant_id, transfer_no, customer_id, cursor["created_at"] if cursor else None,
        cursor["id"] if cursor else None, limit + 1,
    )
    return [_record(r) for r in rows[:limit]], len(rows) > limit
