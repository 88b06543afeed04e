"""All SQL of merchant operations: profile, status, API keys, webhook secret salts.

Functions take a connection and run inside whatever transaction the caller holds. Creating the merchant
row itself stays in engine/merchant_store.py (insert_merchant), which the onboarding service calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from accounts.store import Conn


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
    fee_bps: int
    fee_fixed_minor: int
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
PROFILE_COLUMNS = frozenset({"name", "fee_bps", "fee_fixed", "webhook_url", "allowed_methods", "allowed_channels"})

_PROFILE = """
SELECT m.id, m.name, m.status, m.fee_bps, m.fee_fixed, m.webhook_url, m.webhook_prev_expires_at,
       m.allowed_methods, m.allowed_channels, t.cycle_days, m.created_at, m.updated_at, m.status_changed_at,
       coalesce((SELECT array_agg(a.id || ' ' || a.role || ' ' || a.currency || ' ' || a.balance
                                  ORDER BY a.role, a.currency)
                 FROM accounts a WHERE a.owner_id = m.id AND a.parent_id IS NULL), '{}') AS accounts
FROM merchants m LEFT JOIN merchant_settlement_terms t ON t.merchant_id = m.id
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
        row["id"], row["name"], row["status"], row["fee_bps"], row["fee_fixed"], row["webhook_url"],
        row["webhook_prev_expires_at"], row["allowed_methods"], row["allowed_channels"], row["cycle_days"],
        [_account(a) for a in row["accounts"]], row["created_at"], row["updated_at"], row["status_changed_at"])


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
