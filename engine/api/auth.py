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

from engine.api.errors import authentication_error
from engine.merchant_store import MerchantRecord, get_merchant

MERCHANT_HEADER = "X-Merchant-Id"
TIMESTAMP_HEADER = "X-Timestamp"
SIGNATURE_HEADER = "X-Signature"
CACHE_ENTRIES_MAX = 10_000


def derive_secret(server_key: str, merchant_id: str, salt: bytes) -> str:
    """The merchant's API secret (shown to the merchant once, recomputed to verify)."""
    digest = hmac.new(server_key.encode(), merchant_id.encode() + b"\x00" + salt, hashlib.sha256).hexdigest()
    return "sk_" + digest


def signing_payload(timestamp: str, method: str, path_qs: str, body: bytes) -> bytes:
    return f"{timestamp}\n{method.upper()}\n{path_qs}\n".encode() + body


def sign(secret: str, timestamp: str, method: str, path_qs: str, body: bytes) -> str:
    return hmac.new(secret.encode(), signing_payload(timestamp, method, path_qs, body), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class _Cached:
    merchant: MerchantRecord
    secret: str
    expires_at: float


class MerchantDirectory:
    """Merchants by id with their derived secrets, cached for ``ttl_s`` to keep auth off the database."""

    def __init__(self, pool: asyncpg.Pool, server_key: str, ttl_s: float) -> None:
        self._pool = pool
        self._server_key = server_key
        self._ttl_s = ttl_s
        self._cache: dict[str, _Cached] = {}

    async def lookup(self, merchant_id: str) -> tuple[MerchantRecord, str] | None:
        now = time.monotonic()
        hit = self._cache.get(merchant_id)
        if hit is not None and hit.expires_at > now:
            return hit.merchant, hit.secret
        async with self._pool.acquire() as conn:
            merchant = await get_merchant(conn, merchant_id)
        if merchant is None or merchant.status != "active":
            return None
        secret = derive_secret(self._server_key, merchant.id, merchant.secret_salt)
        if len(self._cache) >= CACHE_ENTRIES_MAX:
            self._cache.clear()
        self._cache[merchant_id] = _Cached(merchant, secret, now + self._ttl_s)
        return merchant, secret

    def forget(self, merchant_id: str) -> None:
        self._cache.pop(merchant_id, None)


async def authenticate(directory: MerchantDirectory, headers: Mapping[str, str], method: str, path_qs: str,
                       body: bytes, window_s: int, now_s: float) -> MerchantRecord:
    """The signing merchant; raises a 401 ApiError for anything missing, stale, unknown or forged."""
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
    if len(merchant_id) > 64:
        raise authentication_error("unknown merchant or bad signature")
    found = await directory.lookup(merchant_id)
    # Unknown merchant and bad signature answer the same, so ids cannot be probed.
    expected = sign(found[1], timestamp, method, path_qs, body) if found else "0" * 64
    if not hmac.compare_digest(expected.encode(), signature.lower().encode()) or found is None:
        raise authentication_error("unknown merchant or bad signature")
    return found[0]


def check_admin_token(authorization: str | None, admin_token: str) -> None:
    given = (authorization or "").removeprefix("Bearer ").strip()
    if not given or not hmac.compare_digest(given.encode(), admin_token.encode()):
        raise authentication_error("admin endpoints need Authorization: Bearer <admin token>")
