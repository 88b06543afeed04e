"""Synchronous voucher mode (`PAYENGINE_VOUCHER_SYNC=1`), kept only so the benchmark can compare.

The create-payment request waits while this process asks the channel for the voucher, then answers
the payment as it stands: what a naive engine does, and what makes a slow channel stall merchants.
The idempotency record keeps the first (pending) answer; replays in this mode show that one.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
from aiohttp import web
from aiohttp.typedefs import Handler

from engine.gateway.context import Gateway
from engine.gateway.jobs import Retry
from engine.gateway.store import claim_job_for, payment_of_voucher
from engine.gateway.vouchers import CREATE_VOUCHER_JOB
from engine.gateway.worker import GatewayWorker
from engine.payments.store import get_payment
from engine.payments.views import payment_view
from engine.services import services_of
from engine.web.request import merchant_of

WAIT_STEP_S = 0.01


async def wait_for_voucher(gw: Gateway, worker: GatewayWorker, voucher_id: str, timeout_s: float) -> None:
    """Run the voucher's job here (or wait for whoever runs it) until it leaves `pending` or time is up."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        async with gw.pool.acquire() as conn:
            job = await claim_job_for(conn, CREATE_VOUCHER_JOB, voucher_id, gw.worker_id,
                                      gw.settings.gateway_job_lease_s)
        if job is not None:
            result = await worker.run_job(job)
            if isinstance(result, Retry):
                await asyncio.sleep(min(result.delay_s, max(0.0, deadline - time.monotonic())))
            continue
        async with gw.pool.acquire() as conn:
            payment = await payment_of_voucher(conn, voucher_id)
        if payment is None or payment.voucher_status != "pending":
            return
        await asyncio.sleep(WAIT_STEP_S)


@web.middleware
async def sync_voucher_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    if request.method != "POST" or request.path != "/v1/payments" or response.status != 201 \
            or not isinstance(response, web.Response) or not isinstance(response.body, bytes):
        return response
    created: dict[str, Any] = msgspec.json.decode(response.body)
    voucher = created.get("voucher")
    if not voucher or voucher.get("status") != "pending":
        return response
    svc = services_of(request)
    gw = svc.gateway
    await wait_for_voucher(gw, svc.gateway_worker, voucher["id"], 3 * gw.settings.gateway_call_timeout_ms / 1000)
    async with gw.pool.acquire() as conn:
        payment = await get_payment(conn, merchant_of(request).id, created["id"])
    if payment is None:
        return response
    return web.Response(status=201, body=msgspec.json.encode(payment_view(payment)), content_type="application/json")
