"""How a merchant signs its requests, and where its API secret comes from.

A merchant signs ``"{timestamp}\\n{METHOD}\\n{path with query}\\n{raw body}"`` with HMAC-SHA256 under
its secret. The secret is never stored: it is derived as HMAC-SHA256(server key, merchant id, salt),
so verifying needs the server key (settings) and the salt (database) together, and a database dump
alone cannot forge requests. The trade-off against a one-way hash: whoever holds the server key and
the database can recompute every secret, which an HMAC scheme needs anyway. Secrets are never logged.
Pure: engine/http/auth.py verifies, engine/client.py signs, onboarding shows the secret once.
"""

from __future__ import annotations

import hashlib
import hmac

from engine.keys import API_SECRET_PREFIX


def derive_secret(server_key: str, merchant_id: str, salt: bytes) -> str:
    """The merchant's API secret (shown to the merchant once, recomputed to verify)."""
    digest = hmac.new(server_key.encode(), merchant_id.encode() + b"\x00" + salt, hashlib.sha256).hexdigest()
    return API_SECRET_PREFIX + digest


def signing_payload(timestamp: str, method: str, path_qs: str, body: bytes) -> bytes:
    return f"{timestamp}\n{method.upper()}\n{path_qs}\n".encode() + body


def sign(secret: str, timestamp: str, method: str, path_qs: str, body: bytes) -> str:
    return hmac.new(secret.encode(), signing_payload(timestamp, method, path_qs, body), hashlib.sha256).hexdigest()
