"""SQL about merchants and what they own outside payments: merchants, platform accounts, customers,
topups and idempotency keys. (Payments, vouchers, refunds, jobs and the outbox: engine/payments/store.py.)

Functions take a connection and run inside whatever transaction the caller holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from accounts.model import AccountId, AccountKind, AccountSpec, OverdraftMode, OverdraftRule
from accounts.store import Conn, find_account, open_account
from accounts.subjects import ROLE_SUBJECTS
from engine.errors import DuplicateOrder
from engine.payments.pricing import Pricing

PLATFORM_OWNER = "platform"
PLATFORM_ROLES = ("fee_income", "gateway_transit", "channel_receivable")
# Clearing and income accounts take most of the traffic: they are hot (buffered) when asked.
HOT_PLATFORM_ROLES = frozenset({"fee_income", "gateway_transit"})


@dataclass(frozen=True, slots=True)
class MerchantRecord:
    id: str
    name: str
    secret_salt: bytes
    pricing: Pricing
    status: str
    pending_accounts: dict[str, AccountId]  # currency -> merchant_pending account
    allowed_methods: tuple[str, ...] | None = None  # None: every method (engine/merchants sets them)
    allowed_channels: tuple[str, ...] | None = None  # None: every known channel
    fee_payable_accounts: dict[str, AccountId] = field(default_factory=dict)  # currency -> merchant_fee_payable


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    id: str
    merchant_id: str
    external_id: str
    currency: str
    wallet_account_id: AccountId
    balance_minor: int
    created_at: datetime
    frozen_minor: int = 0  # in the customer's frozen account: open payouts (engine/payouts), not spendable


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """What a later request with the same idempotency key gets back (written with the effect)."""

    merchant_id: str
    key: str
    status_code: int
    body: bytes


# ---------------------------------------------------------------- merchants and platform accounts

async def ensure_account(conn: Conn, owner_id: str, role: str, currency: str, kind: AccountKind,
                         hot: bool, overdraft: OverdraftRule, account_id: str) -> AccountId:
    """The owner's account for (role, currency), opened if missing (safe against a concurrent opener)."""
    found = await find_account(conn, owner_id, role, currency)
    if found is not None:
        return found.id
    spec = AccountSpec(AccountId(account_id), kind, owner_id, role, ROLE_SUBJECTS[role], currency, overdraft, hot)
    try:
        async with conn.transaction():  # a savepoint when the caller holds a transaction
            return (await open_account(conn, spec)).id
    except asyncpg.UniqueViolationError:
        found = await find_account(conn, owner_id, role, currency)
        assert found is not None
        return found.id


async def ensure_platform_accounts(conn: Conn, currency: str, hot: bool,
                                   new_account_id: Any) -> dict[str, AccountId]:
    """Fee income, gateway transit and channel receivable in ``currency``; role -> account id.

    Internal accounts may go either way (transit nets to zero per entry; a receivable is credited by
    channel refunds before the channel's money arrives), so they allow overdraft."""
    unlimited = OverdraftRule(OverdraftMode.UNLIMITED)
    return {
        role: await ensure_account(conn, PLATFORM_OWNER, role, currency, AccountKind.INTERNAL,
                                   hot and role in HOT_PLATFORM_ROLES, unlimited, new_account_id())
        for role in PLATFORM_ROLES
    }


async def insert_merchant(conn: Conn, merchant_id: str, name: str, secret_salt: bytes, pricing: Pricing,
                          webhook_url: str | None = None) -> bool:
    """Insert a merchant; False if the id exists already (seeding is idempotent)."""
    status = await conn.execute(
        "INSERT INTO merchants (id, name, secret_salt, fee_bps, fee_fixed, webhook_url)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
        merchant_id, name, secret_salt, pricing.fee_bps, pricing.fee_fixed_minor, webhook_url,
    )
    return status.endswith(" 1")


async def get_merchant(conn: Conn, merchant_id: str) -> MerchantRecord | None:
    row = await conn.fetchrow(
        # A merchant on a fee plan is priced by the plan; one without keeps its own fee, deducted.
        "SELECT m.id, m.name, m.secret_salt, coalesce(f.fee_bps, m.fee_bps) AS fee_bps,"
        " coalesce(f.fee_fixed, m.fee_fixed) AS fee_fixed, coalesce(f.collection, 'deducted') AS collection,"
        " m.status, m.allowed_methods, m.allowed_channels,"
        " coalesce(array_agg(a.role) FILTER (WHERE a.id IS NOT NULL), '{}') AS roles,"
        " coalesce(array_agg(a.currency) FILTER (WHERE a.id IS NOT NULL), '{}') AS currencies,"
        " coalesce(array_agg(a.id) FILTER (WHERE a.id IS NOT NULL), '{}') AS account_ids"
        " FROM merchants m LEFT JOIN fee_plans f ON f.name = m.fee_plan LEFT JOIN accounts a"
        "   ON a.owner_id = m.id AND a.role IN ('merchant_pending', 'merchant_fee_payable') AND a.parent_id IS NULL"
        " WHERE m.id = $1 GROUP BY m.id, f.name",
        merchant_id,
    )
    if row is None:
        return None
    accounts: dict[str, dict[str, AccountId]] = {"merchant_pending": {}, "merchant_fee_payable": {}}
    for role, currency, account_id in zip(row["roles"], row["currencies"], row["account_ids"], strict=True):
        accounts[role][currency] = AccountId(account_id)
    return MerchantRecord(
        row["id"], row["name"], bytes(row["secret_salt"]),
        Pricing(row["fee_bps"], row["fee_fixed"], row["collection"]), row["status"], accounts["merchant_pending"],
        _tuple_or_none(row["allowed_methods"]), _tuple_or_none(row["allowed_channels"]),
        accounts["merchant_fee_payable"],
    )


def _tuple_or_none(values: list[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(values)


# ---------------------------------------------------------------- customers and topups

_CUSTOMER_SELECT = (
    "SELECT c.id, c.merchant_id, c.external_id, c.currency, c.wallet_account_id, a.balance, c.created_at,"
    " coalesce(f.balance, 0) AS frozen"
    " FROM customers c JOIN accounts a ON a.id = c.wallet_account_id"
    " LEFT JOIN accounts f ON f.owner_id = c.id AND f.role = 'customer_frozen' AND f.currency = c.currency"
    " AND f.parent_id IS NULL"
)


def _customer(row: asyncpg.Record) -> CustomerRecord:
    return CustomerRecord(row["id"], row["merchant_id"], row["external_id"], row["currency"].strip(),
                          AccountId(row["wallet_account_id"]), row["balance"], row["created_at"], row["frozen"])


async def insert_customer(conn: Conn, customer_id: str, merchant_id: str, external_id: str, currency: str,
                          wallet_account_id: str, now: datetime) -> CustomerRecord:
    """Open the customer's wallet and insert the customer (caller holds the transaction).

    Raises DuplicateOrder naming the existing customer when external_id was used by this merchant."""
    existing = await conn.fetchval(
        "SELECT id FROM customers WHERE merchant_id = $1 AND external_id = $2", merchant_id, external_id)
    if existing is not None:
        raise DuplicateOrder("external_id", external_id, existing)
    spec = AccountSpec(AccountId(wallet_account_id), AccountKind.CUSTOMER, customer_id, "customer_wallet",
                       ROLE_SUBJECTS["customer_wallet"], currency)
    await open_account(conn, spec)
    try:
        await conn.execute(
            "INSERT INTO customers (id, merchant_id, external_id, currency, wallet_account_id, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            customer_id, merchant_id, external_id, currency, wallet_account_id, now,
        )
    except asyncpg.UniqueViolationError:  # a concurrent create won; the caller's transaction rolls back
        raise DuplicateOrder("external_id", external_id, "a concurrent request") from None
    return CustomerRecord(customer_id, merchant_id, external_id, currency, AccountId(wallet_account_id), 0, now)


async def get_customer(conn: Conn, merchant_id: str, customer_id: str) -> CustomerRecord | None:
    row = await conn.fetchrow(_CUSTOMER_SELECT + " WHERE c.id = $1 AND c.merchant_id = $2", customer_id, merchant_id)
    return _customer(row) if row else None


async def insert_topup(conn: Conn, topup_id: str, customer_id: str, topup_no: str, amount: int, txn_no: str,
                       now: datetime) -> None:
    """Record a topup; raises DuplicateOrder naming the earlier topup with the same topup_no."""
    inserted = await conn.fetchval(
        "INSERT INTO topups (id, customer_id, topup_no, amount, txn_no, created_at) VALUES ($1,$2,$3,$4,$5,$6)"
        " ON CONFLICT ON CONSTRAINT topups_customer_topup_no DO NOTHING RETURNING id",
        topup_id, customer_id, topup_no, amount, txn_no, now,
    )
    if inserted is None:
        existing = await conn.fetchval(
            "SELECT id FROM topups WHERE customer_id = $1 AND topup_no = $2", customer_id, topup_no)
        raise DuplicateOrder("topup_no", topup_no, existing)


# ---------------------------------------------------------------- idempotency keys

@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    fingerprint: bytes
    status_code: int | None  # None: the first request is still running
    body: bytes | None


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
