"""The delivery worker: leases due outbox events and POSTs each, signed, to its merchant's endpoint.

Bounded twice: at most ``webhook_concurrency`` deliveries in flight (the worker claims only as many
events as it has free slots, so nothing waits in memory past its lease), and each POST is cut off
after ``webhook_timeout_ms``. A 2xx marks the event delivered; anything else (status, timeout, refused
connection, no endpoint) is recorded and retried with backoff until the retry window has passed.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from datetime import UTC, datetime

import aiohttp
import asyncpg
import msgspec

from engine.settings import Settings
from engine.webhooks.backoff import RetryPolicy
from engine.webhooks.metrics import WEBHOOK_ATTEMPTS, WEBHOOK_LATENCY
from engine.webhooks.signing import SIGNATURE_HEADER, derive_webhook_secret, signature_header
from engine.webhooks.store import AttemptResult, DueEvent, claim_due_events, record_attempt

log = logging.getLogger(__name__)

USER_AGENT = "payengine-webhooks/1"
NO_SECRET = "merchant has a webhook_url but no webhook secret salt"
ERROR_TEXT_MAX = 300
# A leased event is due again after this many delivery timeouts (plus slack for recording the result).
LEASE_TIMEOUTS = 2
LEASE_SLACK_S = 10.0


class WebhookBody(msgspec.Struct, frozen=True):
    """What the merchant receives: the event envelope around the object exactly as the API shows it."""

    id: str
    type: str
    created_at: datetime
    data: msgspec.Raw


def encode_body(event: DueEvent) -> bytes:
    return msgspec.json.encode(WebhookBody(event.id, event.type, event.created_at,
                                           msgspec.Raw(event.payload.encode())))


class DeliveryWorker:
    def __init__(self, pool: asyncpg.Pool, session: aiohttp.ClientSession, settings: Settings,
                 rng: random.Random | None = None) -> None:
        self.pool = pool
        self.session = session
        self.settings = settings
        self.policy = RetryPolicy(settings.webhook_backoff_base_ms, settings.webhook_backoff_max_ms,
                                  settings.webhook_retry_window_s)
        self.timeout_s = settings.webhook_timeout_ms / 1000
        self.lease_s = LEASE_TIMEOUTS * self.timeout_s + LEASE_SLACK_S
        self._rng: random.Random | random.SystemRandom = rng or random.SystemRandom()
        self._inflight: set[asyncio.Task[AttemptResult]] = set()

    async def run(self) -> None:
        """Deliver until cancelled; survives database blips (the events wait in the outbox)."""
        poll_s = self.settings.webhook_poll_interval_ms / 1000
        while True:
            free = self.settings.webhook_concurrency - len(self._inflight)
            claimed = 0
            if free > 0:
                try:
                    claimed = await self.claim(min(free, self.settings.webhook_batch_max))
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    log.warning("claiming webhook events failed; will retry", exc_info=True)
            if free > 0 and claimed == min(free, self.settings.webhook_batch_max):
                continue  # a full batch: there may be more due right now
            if self._inflight and free <= 0:
                await asyncio.wait(self._inflight, timeout=poll_s, return_when=asyncio.FIRST_COMPLETED)
            else:
                await asyncio.sleep(poll_s)

    async def claim(self, limit: int) -> int:
        """Lease up to ``limit`` due events and start delivering them; returns how many rows were taken."""
        async with self.pool.acquire() as conn:
            events, taken = await claim_due_events(conn, datetime.now(UTC), self.lease_s, limit)
        for event in events:
            task = asyncio.create_task(self.deliver(event))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
        return taken

    async def drain(self, timeout_s: float) -> None:
        """Let deliveries in flight finish (bounded); the rest are cancelled and due again after their lease."""
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=timeout_s)
        for task in list(self._inflight):
            task.cancel()

    async def deliver(self, event: DueEvent) -> AttemptResult:
        """One attempt at one event, recorded. Never raises for the merchant's endpoint misbehaving."""
        started_at = datetime.now(UTC)
        started = time.perf_counter()
        status_code: int | None = None
        error: str | None = None
        if event.secret_salt is None:
            error = NO_SECRET
        else:
            status_code, error = await self._post(event, event.url, event.secret_salt)
        duration_s = time.perf_counter() - started
        now = datetime.now(UTC)
        attempts = event.attempts + 1
        ok = status_code is not None and 200 <= status_code < 300
        next_at = None if ok else self.policy.next_attempt_at(
            event.window_started_at, attempts, now, self._rng)
        result = AttemptResult(event.id, attempts, event.url, started_at, int(duration_s * 1000), status_code,
                               error, next_at)
        WEBHOOK_LATENCY.observe(duration_s)
        WEBHOOK_ATTEMPTS.labels("delivered" if ok else "retry" if next_at else "dead").inc()
        try:
            async with self.pool.acquire() as conn:
                await record_attempt(conn, result)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            # The event stays pending and is due again after its lease: at least once, maybe twice.
            log.warning("recording a webhook attempt failed", exc_info=True, extra={"event_id": event.id})
        if not ok and next_at is None:
            log.warning("webhook event dead", extra={"event_id": event.id, "merchant_id": event.merchant_id,
                                                     "error": error})
        return result

    async def _post(self, event: DueEvent, url: str, salt: bytes) -> tuple[int | None, str | None]:
        body = encode_body(event)
        secret = derive_webhook_secret(self.settings.api_secret_key, event.merchant_id, salt)
        previous = [derive_webhook_secret(self.settings.api_secret_key, event.merchant_id, event.previous_salt)] \
            if event.previous_salt is not None else []
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
                   SIGNATURE_HEADER: signature_header(secret, int(time.time()), body, *previous)}
        try:
            async with self.session.post(url, data=body, headers=headers, allow_redirects=False,
                                         timeout=aiohttp.ClientTimeout(total=self.timeout_s)) as resp:
                resp.release()  # the answer's body means nothing to us; do not read an unbounded one
                return resp.status, None if 200 <= resp.status < 300 else f"HTTP {resp.status}"
        except TimeoutError:
            return None, f"timed out after {self.timeout_s:g} s"
        except (aiohttp.ClientError, OSError, ValueError) as exc:  # refused, reset, bad URL, bad answer
            return None, f"{type(exc).__name__}: {exc}"[:ERROR_TEXT_MAX]
