"""Webhook signatures and the retry schedule: pure."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from engine.webhooks.backoff import RetryPolicy
from engine.webhooks.signing import derive_webhook_secret, signature_header, verify_signature

NOW = 1_800_000_000


def test_signature_verifies_over_exact_body_and_recent_timestamp() -> None:
    secret = derive_webhook_secret("server-key", "mch_1", b"salt")
    body = b'{"id":"evt_1","type":"payment.succeeded"}'
    header = signature_header(secret, NOW, body)
    assert header.startswith(f"t={NOW},v1=")
    assert verify_signature(secret, header, body, NOW + 10)
    assert not verify_signature(secret, header, body + b" ", NOW)
    assert not verify_signature(secret + "x", header, body, NOW)
    assert not verify_signature(secret, header, body, NOW + 301)
    assert not verify_signature(secret, "v1=" + header.split("v1=")[1], body, NOW)


def test_webhook_secret_differs_from_api_secret_and_per_salt() -> None:
    from engine.merchants.signing import derive_secret

    a = derive_webhook_secret("k", "mch_1", b"s1")
    assert a.startswith("whsec_") and a != derive_webhook_secret("k", "mch_1", b"s2")
    assert a.removeprefix("whsec_") == derive_secret("k", "mch_1", b"s1").removeprefix("sk_")


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap() -> None:
    policy = RetryPolicy(base_ms=10_000, max_ms=3_600_000, window_s=86_400)
    rng = random.Random(1)
    for attempts in range(1, 30):
        ceiling = min(3600.0, 10.0 * 2 ** (attempts - 1))
        delay = policy.delay_s(attempts, rng)
        assert ceiling / 2 <= delay <= ceiling


def test_retries_span_at_least_the_window_before_dead() -> None:
    policy = RetryPolicy(base_ms=10_000, max_ms=3_600_000, window_s=86_400)
    start = datetime(2026, 11, 22, tzinfo=UTC)
    now, attempts = start, 0
    rng = random.Random(2)
    while True:
        attempts += 1
        nxt = policy.next_attempt_at(start, attempts, now, rng)
        if nxt is None:
            break
        now = nxt
    assert now - start >= timedelta(hours=24)
    assert attempts < 60  # and it does end
