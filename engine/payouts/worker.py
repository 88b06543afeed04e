"""The payout worker: takes due payouts from PostgreSQL and moves each one step towards final.

Each payout row is its own job (claimed with `FOR UPDATE SKIP LOCKED` and a lease, only for channels this
process serves), so any number of workers in any number of processes share the work and a dead worker's
payouts are taken again when its lease runs out. One step: a pending payout is routed (breaker-aware) and
sent; a sending or processing payout is queried. What an answer means is decided in decision.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime

from aiohttp import web

from channels.errors import ChannelError, ChannelRejected, OrderNotFound
from channels.protocol import PayoutDestination, PayoutRequest
from engine.app import GATE
from engine.gateway.context import Gateway
from engine.gateway.jobs import backoff_s
from engine.payouts import decision
from engine.payouts.metrics import PAYOUT_STEPS
from engine.payouts.outcome import UsageRelease, finish
from engine.payouts.store import PayoutRecord, claim_due_payouts, mark_sending, reschedule

log = logging.getLogger(__name__)


def payout_request(p: PayoutRecord) -> PayoutRequest:
    return PayoutRequest(p.out_payout_no, p.amount, p.currency,
                         PayoutDestination(p.dest_kind, p.dest_number, p.dest_holder, p.dest_bank_code),
                         p.description or "")


def gate_release(app: web.Application) -> UsageRelease:
    """Release through the app's control gate, looked up at call time (its context starts after the gateway's)."""
    async def release(admission_id: str) -> bool:
        gate = app.get(GATE)
        return False if gate is None else await gate.release_admission(admission_id)

    return release


class PayoutWorker:
    def __init__(self, gw: Gateway, release_usage: UsageRelease | None = None) -> None:
        self.gw = gw
        self.release_usage = release_usage
        self.settings = gw.settings
        self._running: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        s = self.settings
        try:
            while True:
                free = s.payout_concurrency - len(self._running)
                claimed: list[PayoutRecord] = []
                if free > 0:
                    try:
                        async with self.gw.pool.acquire() as conn:
                            claimed = await claim_due_payouts(conn, list(self.gw.channels), self.gw.worker_id,
                                                              s.payout_lease_s, min(free, s.payout_claim_batch_max))
                    except Exception:  # a database blip must not end the worker
                        log.warning("claiming payouts failed; will retry", exc_info=True)
                for payout in claimed:
                    task = asyncio.create_task(self.step(payout), name=f"payout-{payout.id}")
                    self._running.add(task)
                    task.add_done_callback(self._running.discard)
                if len(claimed) < s.payout_claim_batch_max:
                    await asyncio.sleep(s.payout_poll_interval_ms / 1000)
        finally:
            for task in list(self._running):
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*self._running, return_exceptions=True)

    async def step(self, p: PayoutRecord) -> None:
        """One step; an unexpected error leaves the payout to be taken again after a backoff (or its lease)."""
        try:
            if p.status == "pending":
                await self._send_new(p)
            else:
                await self._query(p)
        except Exception as error:
            log.exception("payout step crashed", extra={"payout_id": p.id})
            PAYOUT_STEPS.labels("crashed").inc()
            await self._later(p, self._backoff_s(p), f"crashed: {error!r}")

    def _backoff_s(self, p: PayoutRecord) -> float:
        return backoff_s(p.attempts, self.settings.gateway_backoff_base_ms, self.settings.gateway_backoff_max_ms)

    async def _later(self, p: PayoutRecord, delay_s: float, note: str, accepted: bool = False,
                     channel_payout_no: str | None = None) -> None:
        async with self.gw.pool.acquire() as conn:
            await reschedule(conn, p.id, self.gw.worker_id, delay_s, note[:500], "processing" if accepted else None,
                             channel_payout_no)

    async def _send_new(self, p: PayoutRecord) -> None:
        """Never sent: pick a healthy channel (the merchant's while its breaker admits calls) and send."""
        ranked = self.gw.route(p.currency, p.amount, p.channel)
        channel = p.channel if p.channel in ranked[:1] else next(iter(ranked), None)
        if channel is None or not self.gw.health.admit(channel, time.monotonic()):
            PAYOUT_STEPS.labels("deferred").inc()
            await self._later(p, self._backoff_s(p), "no channel admits calls now (breakers open)")
            return
        await self._send(p, channel)

    async def _send(self, p: PayoutRecord, channel: str) -> None:
        async with self.gw.pool.acquire() as conn:
            if not await mark_sending(conn, p.id, self.gw.worker_id, channel):
                return  # lost the lease: another worker has it now
        request = payout_request(p)
        try:
            result = await self.gw.call(channel, "create_payout", lambda ch: ch.create_payout(request))
        except OrderNotFound as error:  # not a refusal of this payout: treat like no answer
            PAYOUT_STEPS.labels("unknown").inc()
            await self._later(p, self.settings.payout_query_delay_ms / 1000, f"unknown after send: {error}")
            return
        except ChannelRejected as error:  # the channel refused it and moved nothing
            await self._apply(p, decision.Fail(error.code, error.detail[:200]))
            return
        except ChannelError as error:  # timeout, 5xx, unreadable answer: the outcome is unknown, ask later
            PAYOUT_STEPS.labels("unknown").inc()
            await self._later(p, self.settings.payout_query_delay_ms / 1000, f"unknown after send: {error}")
            return
        await self._apply(p, decision.on_result(result, self._backoff_s(p)))

    async def _query(self, p: PayoutRecord) -> None:
        s = self.settings
        try:
            result = await self.gw.call(p.channel, "query_payout", lambda ch: ch.query_payout(p.out_payout_no))
        except OrderNotFound:
            since_s = (datetime.now(UTC) - (p.last_sent_at or p.created_at)).total_seconds()
            await self._apply(p, decision.on_not_found(p.status == "processing", p.sends, since_s,
                                                       s.payout_not_found_safe_s, s.payout_sends_max,
                                                       s.payout_give_up_s))
            return
        except ChannelError as error:
            PAYOUT_STEPS.labels("unknown").inc()
            await self._later(p, self._backoff_s(p), f"query failed: {error}")
            return
        await self._apply(p, decision.on_result(result, self._backoff_s(p)))

    async def _apply(self, p: PayoutRecord, d: decision.Decision) -> None:
        now = datetime.now(UTC)
        PAYOUT_STEPS.labels(type(d).__name__.lower()).inc()
        if isinstance(d, decision.Settle):
            await finish(self.gw, p, True, d.channel_payout_no, None, None, now)
        elif isinstance(d, decision.Fail):
            await finish(self.gw, p, False, d.channel_payout_no, d.code, d.message, now, self.release_usage)
        elif isinstance(d, decision.Poll):
            await self._later(p, d.delay_s, d.note, d.accepted, d.channel_payout_no)
        else:
            log.warning("payout resent", extra={"payout_id": p.id, "note": d.note})
            await self._send(p, p.channel)
