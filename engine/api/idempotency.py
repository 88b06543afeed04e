"""Idempotency-Key handling around every POST.

The first request claims (merchant, key) through the table's primary key, so of two concurrent
requests exactly one runs and the other gets 409. The response is stored with the effect (in the
same transaction, by the flows) or, for refusals, right after; a retry with the same key and body
gets it back with ``Idempotent-Replayed: true``, with another body 422. Failures that may succeed on
retry (5xx, 503 retryable) release the claim instead of storing it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from engine.api.context import ApiContext
from engine.api.errors import ApiError, api_error_for, error_body, invalid_request
from engine.api.payment_flows import IdemSlot, Outcome
from engine.db import release_without_reset
from engine.merchant_store import (
    claim_idempotency_key,
    release_idempotency_key,
    save_idempotent_response,
)
from engine.payments.errors import IdempotencyInFlight, IdempotencyMismatch

log = logging.getLogger(__name__)

KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_LENGTH_MAX = 255
JSON = "application/json"


def fingerprint(method: str, path_qs: str, body: bytes) -> bytes:
    return hashlib.sha256(f"{method}\n{path_qs}\n".encode() + body).digest()


def json_response(status: int, body: bytes, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=body, content_type=JSON, headers=headers)


async def run_idempotent(request: web.Request, ctx: ApiContext, merchant_id: str, body: bytes,
                         work: Callable[[IdemSlot | None], Awaitable[Outcome]]) -> web.Response:
    key = request.headers.get(KEY_HEADER)
    if key is None:
        outcome = await work(None)
        return json_response(outcome.status, outcome.body)
    if not 1 <= len(key) <= KEY_LENGTH_MAX or not key.isprintable():
        raise invalid_request("parameter_invalid", f"{KEY_HEADER} must be 1-{KEY_LENGTH_MAX} printable characters",
                              KEY_HEADER)
    print_ = fingerprint(request.method, request.raw_path, body)
    async with ctx.pool.acquire() as conn:
        held = await claim_idempotency_key(conn, merchant_id, key, print_, ctx.settings.idempotency_lock_s)
        release_without_reset(conn)  # two plain statements: no session state to reset
    if held is not None:
        if held.fingerprint != print_:
            raise IdempotencyMismatch(key)
        if held.status_code is None or held.body is None:
            raise IdempotencyInFlight(key)
        return json_response(held.status_code, held.body, {REPLAYED_HEADER: "true"})
    try:
        outcome = await work(IdemSlot(merchant_id, key))
    except Exception as exc:
        err = api_error_for(exc)
        async with ctx.pool.acquire() as conn:
            if err is None or err.status >= 500:
                await release_idempotency_key(conn, merchant_id, key)
                raise
            payload = error_body(err)
            await save_idempotent_response(conn, merchant_id, key, err.status, payload)
        return json_response(err.status, payload, err.headers)
    if not outcome.stored:
        async with ctx.pool.acquire() as conn:
            await save_idempotent_response(conn, merchant_id, key, outcome.status, outcome.body)
    return json_response(outcome.status, outcome.body)


__all__ = ["ApiError", "fingerprint", "json_response", "run_idempotent"]
