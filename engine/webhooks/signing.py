"""Webhook secrets and the ``Payengine-Signature`` header.

The webhook secret is derived exactly like a merchant's API secret (engine/http/auth.py): an HMAC of
the merchant id and a per-merchant salt under the server key, so it is never stored and a database
dump alone cannot forge deliveries. It has its own salt, so it can be rotated without the API secret.

Header: ``t=<unix seconds>,v1=<hex HMAC-SHA256(webhook secret, "{t}.{raw body}")>``. A receiver
recomputes it over the raw bytes it got and rejects old timestamps, so a captured delivery cannot be
replayed later.
"""

from __future__ import annotations

import hashlib
import hmac

from engine.keys import WEBHOOK_SECRET_PREFIX

SIGNATURE_HEADER = "Payengine-Signature"


def derive_webhook_secret(server_key: str, merchant_id: str, webhook_salt: bytes) -> str:
    """The merchant's webhook signing secret (shown once at creation, recomputed to sign).

    Same construction as ``engine.http.auth.derive_secret`` (a test holds them equal); not imported from
    there so the worker process needs nothing of the HTTP layer."""
    digest = hmac.new(server_key.encode(), merchant_id.encode() + b"\x00" + webhook_salt, hashlib.sha256)
    return WEBHOOK_SECRET_PREFIX + digest.hexdigest()


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes, *previous_secrets: str) -> str:
    """``previous_secrets`` add one more v1 each (after a rotation, while the old secret overlaps), so a
    receiver verifies with whichever secret it holds; the current secret's v1 always comes first."""
    macs = "".join(f",v1={_mac(s, timestamp, body)}" for s in (secret, *previous_secrets))
    return f"t={timestamp}{macs}"


def verify_signature(secret: str, header: str, body: bytes, now_s: float, tolerance_s: int = 300) -> bool:
    """What a merchant's receiver does: True iff some v1 signature matches and t is recent enough."""
    timestamp: int | None = None
    given: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            given.append(value)
    if timestamp is None or abs(now_s - timestamp) > tolerance_s:
        return False
    expected = _mac(secret, timestamp, body)
    return any(hmac.compare_digest(expected, g) for g in given)
