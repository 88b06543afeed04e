"""All SQL of merchant operations: profile, status, API keys, webhook secret salts.

Also the merchant row itself (insert_merchant, get_merchant: the record auth and flows read), the accounts
a merchant or the platform owns (ensure_account, ensure_platform_accounts).

Functions take a connection and run inside whatever transaction the caller holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from accounts.model import AccountId, AccountKind, AccountSpec, OverdraftMode, OverdraftRule
from accounts.store import Conn, find_account, open_account
from accounts.subjects import ROLE_SUBJECTS
from engine.merchants.pricing import DEDUCTED, FEE_PAYABLE_ROLE, Pricing


@dataclass(frozen=True, slots=True)
class MerchantAccount:
    id: str
    role: str
    currency: str
    balance_minor: int


@dataclass(frozen=True, slots=True)
class MerchantProfile:
    id: str
    name: str
    status: str
    fee_bps: int  # effective: the plan's when the merchant has one
    fee_fixed_minor: int
    fee_plan: str | None
    fee_collection: str
    webhook_url: str | None
    webhook_prev_expires_at: datetime | None
    allowed_methods: list[str] | None  # None: every method
    allowed_channels: list[str] | None  # None: every channel
    settlement_cycle_days: int | None  # None: the engine default
    accounts: list[MerchantAccount]
    created_at: datetime
    updated_at: datetime
    status_changed_at: datetime | None


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    merchant_id: str
    salt: bytes
    state: str  # active | rolling | revoked
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def usable_at(self, now: datetime) -> bool:
        if self.state == "active":
            return True
        return self.state == "rolling" and self.expires_at is not None and self.expires_at > now


# NOTIFY channel of committed merchant changes (engine/merchants/invalidation.py listens).
CHANGES_CHANNEL = "payengine_merchant_changed"

# Columns an update may set; the service decides which, the names never come from a request.
PROFILE_COLUMNS = frozenset({"name", "fee_bps", "fee_fixed", "webhook_url", "allowed_methods", "allowed_channels",
                             "fee_plan"})

_PROFILE = """
SELECT m.id, m.name, m.status, coalesce(f.fee_bps, m.fee_bps) AS fee_bps,
       coalesce(f.fee_fixed, m.fee_fixed) AS fee_fixed, m.fee_plan,
       coalesce(f.collection, 'deducted') AS fee_collection, m.webhook_url, m.webhook_prev_expires_at,
       m.allowed_methods, m.allowed_channels, t.cycle_days, m.created_at, m.updated_at, m.status_changed_at,
       coalesce((SELECT array_agg(a.id || ' ' || a.role || ' ' || a.currency || ' ' || a.balance
                                  ORDER BY a.role, a.currency)
                 FROM accounts a WHERE a.owner_id = m.id AND a.parent_id IS NULL), '{}') AS accounts
FROM merchants m LEFT JOIN merchant_settlement_terms t ON t.merchant_id = m.id
LEFT JOIN fee_plans f ON f.name = m.fee_plan
WHERE m.id = $1
"""


def _account(text: str) -> MerchantAccount:
    account_id, role, currency, balance = text.split(" ")
    return MerchantAccount(account_id, role, currency, int(balance))


async def get_profile(conn: Conn, merchant_id: str) -> MerchantProfile | None:
    row = await conn.fetchrow(_PROFILE, merchant_id)
    if row is None:
        return None
    return MerchantProfile(
        row["id"], row["name"], row["status"], row["fee_bps"], row["fee_fixed"], row["fee_plan"],
        row["fee_collection"], row["webhook_url"],
        row["webhook_prev_expires_at"], row["allowed_methods"], row["allowed_channels"], row["cycle_days"],
        [_account(a) for a in row["accounts"]], row["created_at"], row["updated_at"], row["status_changed_at"])


async def own_fee_plan(conn: Conn, merchant_id: str) -> str | None:
    plan: str | None = await conn.fetchval("SELECT fee_plan FROM merchants WHERE id = $1", merchant_id)
    return plan


async def lock_merchant(conn: Conn, merchant_id: str) -> str | None:
    """Lock the merchant row for this transaction (serialises rotations); its status, or None if unknown."""
    status: str | None = await conn.fetchval("SELECT status FROM merchants WHERE id = $1 FOR UPDATE", merchant_id)
    return status


async def update_profile(conn: Conn, merchant_id: str, changes: dict[str, Any], now: datetime) -> bool:
    """Set the given profile columns; False if the merchant does not exist."""
    assert changes.keys() <= PROFILE_COLUMNS, changes.keys()
    names = list(changes)
    sets = ", ".join(f"{name} = ${i + 3}" for i, name in enumerate(names))
    status = await conn.execute(
        f"UPDATE merchants SET updated_at = $2{', ' + sets if sets else ''} WHERE id = $1",
        merchant_id, now, *(changes[n] for n in names))
    return status.endswith(" 1")


async def notify_changed(conn: Conn, merchant_id: str) -> None:
    """Tell every API process to drop the merchant from its auth cache once this transaction commits."""
    await conn.execute("SELECT pg_notify($1, $2)", CHANGES_CHANNEL, merchant_id)


async def set_status(conn: Conn, merchant_id: str, status: str, now: datetime) -> None:
    await conn.execute("UPDATE merchants SET status = $2, status_changed_at = $3, updated_at = $3 WHERE id = $1",
                       merchant_id, status, now)


# ---------------------------------------------------------------- API keys

_KEY_COLUMNS = "id, merchant_id, salt, state, created_at, expires_at, revoked_at"


def _key(row: Any) -> ApiKey:
    return ApiKey(row["id"], row["merchant_id"], bytes(row["salt"]), row["state"], row["created_at"],
                  row["expires_at"], row["revoked_at"])


async def list_keys(conn: Conn, merchant_id: str, *, usable_only: bool = False) -> list[ApiKey]:
    """The merchant's keys, newest first; ``usable_only`` leaves out revoked ones (expiry is the caller's)."""
    where = " AND state <> 'revoked'" if usable_only else ""
    rows = await conn.fetch(f"SELECT {_KEY_COLUMNS} FROM merchant_api_keys WHERE merchant_id = $1{where}"
                            " ORDER BY created_at DESC, id", merchant_id)
    return [_key(r) for r in rows]


async def rotate_key(conn: Conn, merchant_id: str, new_key_id: str, salt: bytes, rollover_s: int,
                     now: datetime) -> list[str]:
    """Make a new primary key; the old primary rolls until now + rollover_s (revoked at once when 0), and
    keys still rolling from an earlier rotation are revoked, so at most two keys ever verify.

    The caller holds the merchant row lock. Returns the ids of the keys that stopped being primary."""
    await conn.execute(
        "UPDATE merchant_api_keys SET state = 'revoked', revoked_at = $2 WHERE merchant_id = $1 AND state = 'rolling'",
        merchant_id, now)
    if rollover_s > 0:
        old = await conn.fetch(
            "UPDATE merchant_api_keys SET state = 'rolling', expires_at = $2"
            " WHERE merchant_id = $1 AND state = 'active' RETURNING id",
            merchant_id, now + timedelta(seconds=rollover_s))
    else:
        old = await conn.fetch(
            "UPDATE merchant_api_keys SET state = 'revoked', revoked_at = $2"
            " WHERE merchant_id = $1 AND state = 'active' RETURNING id", merchant_id, now)
    await conn.execute(
        "INSERT INTO merchant_api_keys (id, merchant_id, salt, state, created_at) VALUES ($1, $2, $3, 'active', $4)",
        new_key_id, merchant_id, salt, now)
    # merchants.secret_salt mirrors the primary key, for code that reads the merchant row alone.
    await conn.execute("UPDATE merchants SET secret_salt = $2, updated_at = $3 WHERE id = $1", merchant_id, salt, now)
    return [r["id"] for r in old]


async def get_key(conn: Conn, merchant_id: str, key_id: str) -> ApiKey | None:
    row = await conn.fetchrow(f"SELECT {_KEY_COLUMNS} FROM merchant_api_keys WHERE merchant_id = $1 AND id = $2",
                              merchant_id, key_id)
    return _key(row) if row else None


async def revoke_key(conn: Conn, merchant_id: str, key_id: str, now: datetime) -> ApiKey | None:
    """Revoke a rolling key (an already revoked one is left as it is); the key as it is now."""
    row = await conn.fetchrow(
        f"UPDATE merchant_api_keys SET state = 'revoked', revoked_at = $3"
        f" WHERE merchant_id = $1 AND id = $2 AND state = 'rolling' RETURNING {_KEY_COLUMNS}",
        merchant_id, key_id, now)
    return _key(row) if row else await get_key(conn, merchant_id, key_id)


# ---------------------------------------------------------------- webhook secret

async def set_first_webhook_salt(conn: Conn, merchant_id: str, salt: bytes) -> bool:
    """Give a merchant that never had a webhook secret its salt; False (nothing changed) if it has one."""
    made = await conn.fetchval("UPDATE merchants SET webhook_secret_salt = $2 WHERE id = $1"
                               " AND webhook_secret_salt IS NULL RETURNING true", merchant_id, salt)
    return bool(made)


async def rotate_webhook_salt(conn: Conn, merchant_id: str, salt: bytes, overlap_s: int, now: datetime) -> None:
    """New current webhook salt; the old one signs alongside until now + overlap_s (not at all when 0)."""
    await conn.execute(
        "UPDATE merchants SET webhook_prev_secret_salt = CASE WHEN $3 > 0 THEN webhook_secret_salt END,"
        " webhook_prev_expires_at = CASE WHEN $3 > 0 AND webhook_secret_salt IS NOT NULL"
        "   THEN $4::timestamptz + make_interval(secs => $3) END,"
        " webhook_secret_salt = $2, updated_at = $4 WHERE id = $1",
        merchant_id, salt, overlap_s, now)


# ---------------------------------------------------------------- fee plans

@dataclass(frozen=True, slots=True)
class FeePlanRow:
    name: str
    fee_bps: int
    fee_fixed_minor: int
    collection: str  # engine.merchants.pricing.COLLECTIONS
    merchants: int
    created_at: datetime
    updated_at: datetime


_PLAN = ("SELECT f.name, f.fee_bps, f.fee_fixed, f.collection, f.created_at, f.updated_at,"
         " (SELECT count(*) FROM merchants m WHERE m.fee_plan = f.name) AS merchants FROM fee_plans f")


def _plan(r: Any) -> FeePlanRow:
    return FeePlanRow(r["name"], r["fee_bps"], r["fee_fixed"], r["collection"], int(r["merchants"]),
                      r["created_at"], r["updated_at"])


async def insert_fee_plan(conn: Conn, name: str, fee_bps: int, fee_fixed_minor: int, collection: str,
                          now: datetime) -> bool:
    """False (nothing written) when a plan of that name exists."""
    made = await conn.fetchval(
        "INSERT INTO fee_plans (name, fee_bps, fee_fixed, collection, created_at, updated_at)"
        " VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (name) DO NOTHING RETURNING true",
        name, fee_bps, fee_fixed_minor, collection, now)
    return bool(made)


async def update_fee_plan(conn: Conn, name: str, fee_bps: int, fee_fixed_minor: int, collection: str,
                          now: datetime) -> bool:
    """Replace the plan's terms and tell every API process to forget the merchants on it once this commits;
    False when there is no such plan."""
    moved = await conn.fetchval(
        "UPDATE fee_plans SET fee_bps = $2, fee_fixed = $3, collection = $4, updated_at = $5 WHERE name = $1"
        " RETURNING true", name, fee_bps, fee_fixed_minor, collection, now)
    if moved:
        await conn.execute("SELECT pg_notify($1, id) FROM merchants WHERE fee_plan = $2", CHANGES_CHANNEL, name)
    return bool(moved)


async def get_fee_plan(conn: Conn, name: str, *, share_lock: bool = False) -> FeePlanRow | None:
    """The plan; ``share_lock`` keeps it from changing until the caller's transaction ends."""
    row = await conn.fetchrow(_PLAN + " WHERE f.name = $1" + (" FOR SHARE OF f" if share_lock else ""), name)
    return _plan(row) if row else None


async def list_fee_plans(conn: Conn) -> list[FeePlanRow]:
    return [_plan(r) for r in await conn.fetch(_PLAN + " ORDER BY f.name")]


# ---------------------------------------------------------------- merchants and platform accounts

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


async def refund_source_accounts(conn: Conn, merchant_id: str, currency: str,
                                 fee_collection: str) -> dict[str, AccountId]:
    """The merchant's accounts a refund's money leaves, by role: the pending account, and under an invoiced fee
    plan the fee payable (the refunded fee share is owed no more)."""
    pending = await find_account(conn, merchant_id, "merchant_pending", currency)
    assert pending is not None, f"merchant {merchant_id} has no {currency} pending account"
    accounts = {"merchant_pending": pending.id}
    if fee_collection != DEDUCTED:
        fee_payable = await find_account(conn, merchant_id, FEE_PAYABLE_ROLE, currency)
        assert fee_payable is not None, f"merchant {merchant_id} has no {currency} fee payable"
        accounts[FEE_PAYABLE_ROLE] = fee_payable.id
    return accounts


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


# ---------------------------------------------------------------- settlement terms (read by engine/settlement)

DEFAULT_CYCLE_DAYS = 1  # D+1: a day's payments are settled the day after it closes


async def set_cycle(conn: Conn, merchant_id: str, cycle_days: int) -> None:
    await conn.execute(
        "INSERT INTO merchant_settlement_terms (merchant_id, cycle_days) VALUES ($1, $2)"
        " ON CONFLICT (merchant_id) DO UPDATE SET cycle_days = EXCLUDED.cycle_days, updated_at = now()",
        merchant_id, cycle_days)


async def cycle_of(conn: Conn, merchant_id: str) -> int:
    value = await conn.fetchval("SELECT cycle_days FROM merchant_settlement_terms WHERE merchant_id = $1",
                                merchant_id)
    return DEFAULT_CYCLE_DAYS if value is None else int(value)


async def set_cycle_if_merchant(conn: Conn, merchant_id: str, cycle_days: int) -> bool:
    """``set_cycle`` for a merchant that exists; False, nothing written, when there is none."""
    status = await conn.execute(
        "INSERT INTO merchant_settlement_terms (merchant_id, cycle_days) SELECT id, $2 FROM merchants WHERE id = $1"
        " ON CONFLICT (merchant_id) DO UPDATE SET cycle_days = EXCLUDED.cycle_days, updated_at = now()",
        merchant_id, cycle_days)
    return str(status) != "INSERT 0 0"
