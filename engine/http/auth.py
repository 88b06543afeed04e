"""Merchant request signing and the admin bearer token.

A merchant signs ``"{timestamp}\\n{METHOD}\\n{path with query}\\n{raw body}"`` with HMAC-SHA256 under
its secret. The secret is never stored: it is derived as HMAC-SHA256(server key, merchant id, salt),
so verifying needs the server key (settings) and the salt (database) together, and a database dump
alone cannot forge requests. The trade-off against a one-way hash: whoever holds the server key and
the database can recompute every secret, which an HMAC scheme needs anyway. Secrets are never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg

from engine.keys import API_SECRET_PREFIX
from engine.merchants.errors import MerchantSuspended
from engine.merchants.store import MerchantRecord, get_merchant, list_keys
from engine.web.errors import authentication_error

MERCHANT_HEADER = "X-Merchant-Id"
TIMESTAMP_HEADER = "X-Timestamp"
SIGNATURE_HEADER = "X-Signature"
# Which of the merchant's keys signed; absent = the primary key (clients from before key rotation).
KEY_ID_HEADER = "X-Key-Id"
CACHE_ENTRIES_MAX = 10_000


def derive_secret(server_key: str, merchant_id: str, salt: bytes) -> str:
    """The merchant's API secret (shown to the merchant once, recomputed to verify)."""
    digest = hmac.new(server_key.encode(), merchant_id.encode() + b"\x00" + salt, hashlib.sha256).hexdigest()
    return API_SECRET_PREFIX + digest


def signing_payload(timestamp: str, method: str, path_qs: str, body: bytes) -> bytes:
    return f"{timestamp}\n{method.upper()}\n{path_qs}\n".encode() + body


def sign(secret: str, timestamp: str, method: str, path_qs: str, body: bytes) -> str:
    return hmac.new(secret.encode(), signing_payload(timestamp, method, path_qs, body), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class _Cached:
    merchant: MerchantRecord
    primary: tuple[str, str]  # (key id, secret) of the primary key: requests without X-Key-Id use it
    # key id -> (secret, wall-clock seconds it verifies until; None = no end), every non-revoked key
    keys: dict[str, tuple[str, float | None]]
    expires_at: float


class MerchantDirectory:
    """Merchants by id with their keys' derived secrets, cached for ``ttl_s`` to keep auth off the database.

    A rolling key's end is checked at each request, so it stops verifying on time even from the cache;
    a revoke or suspension takes effect at once in the process that made it (``forget``) and within
    ``ttl_s`` elsewhere."""

    def __init__(self, pool: asyncpg.Pool, server_key: str, ttl_s: float) -> None:
        self._pool = pool
        self._server_key = server_key
        self._ttl_s = ttl_s
        self._cache: dict[str, _Cached] = {}

    async def _load(self, merchant_id: str) -> _Cached | None:
        now = time.monotonic()
        hit = self._cache.get(merchant_id)
        if hit is not None and hit.expires_at > now:
            return hit
        async with self._pool.acquire() as conn:
            merchant = await get_merchant(conn, merchant_id)
            keys = await list_keys(conn, merchant_id, usable_only=True) if merchant is not None else []
        # Suspended merchants are loaded so a correctly signed request gets 403, not 401.
        if merchant is None or merchant.status not in ("active", "suspended"):
            return None
        by_id = {k.id: (derive_secret(self._server_key, merchant.id, k.salt),
                          k.expires_at.timestamp() if k.state == "rolling" and k.expires_at else None)
                   for k in keys}
        primary_id = next((k.id for k in keys if k.state == "active"), "")
        primary = (primary_id, by_id[primary_id][0] if primary_id
                   else derive_secret(self._server_key, merchant.id, merchant.secret_salt))
        if len(self._cache) >= CACHE_ENTRIES_MAX:
            self._cache.clear()
        cached = _Cached(merchant, primary, by_id, now + self._ttl_s)
        self._cache[merchant_id] = cached
        return cached

    async def lookup(self, merchant_id: str, key_id: str | None = None,
                     now_s: float | None = None) -> tuple[MerchantRecord, list[str]] | None:
        """The merchant and the secrets a request may be signed with right now: those of ``key_id``, or
        without a key id the primary's first, then a rolling key's (so clients that never send X-Key-Id
        keep working through a rollover). At most two: a rotation revokes older rolling keys."""
        cached = await self._load(merchant_id)
        if cached is None:
            return None
        now_s = time.time() if now_s is None else now_s
        if key_id is None:
            rolling = [secret for kid, (secret, until) in cached.keys.items()
                       if kid != cached.primary[0] and until is not None and until > now_s]
            return cached.merchant, [cached.primary[1], *rolling]
        if key_id == cached.primary[0]:
            return cached.merchant, [cached.primary[1]]
        found = cached.keys.get(key_id)
        if found is None or (found[1] is not None and found[1] <= now_s):
            return None
        return cached.merchant, [found[0]]

    def forget(self, merchant_id: str) -> None:
        self._cache.pop(merchant_id, None)

    def forget_all(self) -> None:
        """Drop every cached merchant (a fee plan changed: its merchants are re-read on their next request)."""
        self._cache.clear()


async def authenticate(directory: MerchantDirectory, headers: Mapping[str, str], method: str, path_qs: str,
                       body: bytes, window_s: int, now_s: float) -> MerchantRecord:
    """The signing merchant; raises a 401 ApiError for anything missing, stale, unknown, forged, signed
    with a revoked or expired key, and MerchantSuspended (403) for a suspended merchant."""
    get = headers.get
    merchant_id, timestamp, signature = get(MERCHANT_HEADER), get(TIMESTAMP_HEADER), get(SIGNATURE_HEADER)
    if not merchant_id or not timestamp or not signature:
        raise authentication_error(f"{MERCHANT_HEADER}, {TIMESTAMP_HEADER} and {SIGNATURE_HEADER} are required")
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise authentication_error(f"{TIMESTAMP_HEADER} must be unix seconds")
    if abs(now_s - int(timestamp)) > window_s:
        raise authentication_error(f"{TIMESTAMP_HEADER} is more than {window_s} s away from server time")
    if len(signature) != 64 or any(c not in "0123456789abcdefABCDEF" for c in signature):
        raise authentication_error(f"{SIGNATURE_HEADER} must be 64 hex digits")
    key_id = get(KEY_ID_HEADER)
    if len(merchant_id) > 64 or (key_id is not None and not 0 < len(key_id) <= 64):
        raise authentication_error("unknown merchant or bad signature")
    found = await directory.lookup(merchant_id, key_id, now_s)
    # Unknown merchant and bad signature answer the same, so ids cannot be probed.
    given = signature.lower().encode()
    verified = [hmac.compare_digest(sign(secret, timestamp, method, path_qs, body).encode(), given)
                for secret in (found[1] if found else ["0" * 64])]
    if found is None or not any(verified):
        raise authentication_error("unknown merchant or bad signature")
    if found[0].status == "suspended":  # only after the signature verified, so status cannot be probed
        raise MerchantSuspended(found[0].id)
    return found[0]


def check_admin_token(authorization: str | None, admin_token: str) -> None:
    given = (authorization or "").removeprefix("Bearer ").strip()
    if not given or not hmac.compare_digest(given.encode(), admin_token.encode()):
        raise authentication_error("admin endpoints need Authorization: Bearer <admin token>")
