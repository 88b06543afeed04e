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

import msgspec
from aiohttp import web

from engine.db import release_without_reset
from engine.errors import IdempotencyInFlight, IdempotencyKeyTaken, IdempotencyMismatch
from engine.idempotency.records import IdempotencyRecord, IdemSlot, Outcome
from engine.idempotency.store import (
    claim_idempotency_key,
    get_idempotency_record,
    release_idempotency_key,
    save_idempotent_response,
    store_idempotent_refusal,
)
from engine.services import Services
from engine.web.errors import ApiError, api_error_for, error_body, invalid_request

log = logging.getLogger(__name__)

KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_LENGTH_MAX = 255
JSON = "application/json"


def fingerprint(method: str, path_qs: str, body: bytes) -> bytes:
    return hashlib.sha256(f"{method}\n{path_qs}\n".encode() + body).digest()


def json_response(status: int, body: bytes, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=body, content_type=JSON, headers=headers)


def ok_json(obj: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """``obj`` (a wire Struct, or plain data) encoded as the JSON answer."""
    return json_response(status, msgspec.json.encode(obj), headers)


async def run_idempotent(request: web.Request, ctx: Services, merchant_id: str, body: bytes,
                         work: Callable[[IdemSlot | None], Awaitable[Outcome]], folded: bool = False) -> web.Response:
    """Run ``work`` at most once per key. ``folded``: the work claims the key inside its own effect
    statement (it must then always store its success response with the effect)."""
    key = request.headers.get(KEY_HEADER)
    if key is None:
        outcome = await work(None)
        return json_response(outcome.status, outcome.body)
    if not 1 <= len(key) <= KEY_LENGTH_MAX or not key.isprintable():
        raise invalid_request("parameter_invalid", f"{KEY_HEADER} must be 1-{KEY_LENGTH_MAX} printable characters",
                              KEY_HEADER)
    print_ = fingerprint(request.method, request.raw_path, body)
    if folded:
        return await _run_folded(ctx, merchant_id, key, print_, work)
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


def _answer_held(held: IdempotencyRecord | None, key: str, print_: bytes) -> web.Response:
    """The answer for a key someone else holds: 422 for another body, 409 while running, else the replay."""
    if held is not None and held.fingerprint != print_:
        raise IdempotencyMismatch(key)
    if held is None or held.status_code is None or held.body is None:
        raise IdempotencyInFlight(key)  # None: its holder has not committed yet
    return json_response(held.status_code, held.body, {REPLAYED_HEADER: "true"})


async def _run_folded(ctx: Services, merchant_id: str, key: str, print_: bytes,
                      work: Callable[[IdemSlot | None], Awaitable[Outcome]]) -> web.Response:
    """The claim rides in the effect's transaction: one round trip less per request.

    The key row only ever commits together with the effect and its response (or, for a refusal,
    together with the refusal), so there are no half-done claims to release or take over. Exactly one
    request per key gets to run its effect: the primary key and the transaction-scoped try-lock in the
    effect statement decide, as the separate claim's primary key did."""
    try:
        outcome = await work(IdemSlot(merchant_id, key, print_))
    except IdempotencyKeyTaken:
        async with ctx.pool.acquire() as conn:
            held = await get_idempotency_record(conn, merchant_id, key)
        return _answer_held(held, key, print_)
    except Exception as exc:
        err = api_error_for(exc)
        if err is None or err.status >= 500:
            raise  # rolled back with the effect: nothing claimed, a retry runs again
        payload = error_body(err)
        async with ctx.pool.acquire() as conn:
            stored = await store_idempotent_refusal(conn, merchant_id, key, print_, err.status, payload)
            held = None if stored else await get_idempotency_record(conn, merchant_id, key)
        if not stored:
            return _answer_held(held, key, print_)
        return json_response(err.status, payload, err.headers)
    assert outcome.stored, "a folded flow stores its response with its effect"
    return json_response(outcome.status, outcome.body)


__all__ = ["ApiError", "fingerprint", "json_response", "run_idempotent"]
