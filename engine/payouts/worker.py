"""The payout worker: takes due payouts from PostgreSQL and moves each one step towards final.

Each payout row is its own job (claimed with `FOR UPDATE SKIP LOCKED` and a lease, only for channels this
process serves), so any number of workers in any number of processes share the work and a dead worker's
payouts are taken again when its lease runs out. One step: a pending payout is routed (routing.py: the
merchant's chosen channel, else a payout channel it may use, breaker-aware) and sent, or held when no channel
could ever take it; a sending or processing payout is queried. What an answer means is decided in decision.py.

Logs never carry a card or account number: a crash is logged with the payout id, the exception type and the
traceback with every long digit run masked (a database error may quote the whole row).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import traceback
from datetime import UTC, datetime

from channels.errors import AmountMismatch, ChannelError, ChannelRejected, OrderNotFound, UnclearRefusal
from channels.protocol import PayoutDestination, PayoutRequest
from engine.controls.usage_release import ReleaseAdmission
from engine.gateway.context import Gateway
from engine.gateway.jobs import backoff_s
from engine.merchants.store import get_merchant
from engine.payouts import decision
from engine.payouts.destination import mask_digits
from engine.payouts.metrics import PAYOUT_STEPS, PAYOUTS_HELD
from engine.payouts.outcome import finish
from engine.payouts.routing import PayoutRoute, payout_candidates, route_payout
from engine.payouts.store import PayoutRecord, claim_due_payouts, hold_payout, mark_sending, reschedule

log = logging.getLogger(__name__)


def payout_request(p: PayoutRecord) -> PayoutRequest:
    return PayoutRequest(p.out_payout_no, p.amount, p.currency,
                         PayoutDestination(p.dest_kind, p.dest_number, p.dest_holder, p.dest_bank_code),
                         p.description or "")


class PayoutWorker:
    def __init__(self, gw: Gateway, release_usage: ReleaseAdmission | None = None) -> None:
        gw.settings.check_payout_windows()  # SettingsError: also for settings built in code, not from_env
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
                    except Exception as error:  # a database blip must not end the worker
                        log.warning("claiming payouts failed; will retry",
                                    extra={"error_type": type(error).__name__, "error": _masked(error)})
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
            # Not log.exception: the traceback's text is the exception's, which for a database error may quote
            # the payout row with its full card or account number.
            log.error("payout step crashed",
                      extra={"payout_id": p.id, "error_type": type(error).__name__, "error": _masked(error)})
            PAYOUT_STEPS.labels("crashed").inc()
            await self._later(p, self._backoff_s(p), mask_digits(f"crashed: {error!r}"))

    def _backoff_s(self, p: PayoutRecord) -> float:
        return backoff_s(p.attempts, self.settings.gateway_backoff_base_ms, self.settings.gateway_backoff_max_ms)

    async def _later(self, p: PayoutRecord, delay_s: float, note: str, accepted: bool = False,
                     channel_payout_no: str | None = None) -> None:
        async with self.gw.pool.acquire() as conn:
            await reschedule(conn, p.id, self.gw.worker_id, delay_s, note[:500], "processing" if accepted else None,
                             channel_payout_no)

    async def _send_new(self, p: PayoutRecord) -> None:
        """Never sent: the merchant's chosen channel, or the best payout channel it may use, once its breaker
        admits a call; until then the payout waits (pending) and is never sent elsewhere. An unnamed one that no
        channel could ever take is held for a person: waiting would keep it frozen for good, unseen."""
        channel: str | None = p.channel
        if not p.channel_chosen:
            route = await self._route(p)
            if route.impossible is not None:
                await self._apply(p, decision.on_no_channel(route.impossible))
                return
            channel = next(iter(route.ranked), None)
        if channel is None or not self.gw.health.admit(channel, time.monotonic()):
            PAYOUT_STEPS.labels("deferred").inc()
            await self._later(p, self._backoff_s(p), "no channel this payout may use admits calls now")
            return
        await self._send(p, channel)

    async def _route(self, p: PayoutRecord) -> PayoutRoute:
        """A payout whose channel the merchant left open: the candidates are the channels that can pay out and
        that the merchant may use now, its current channel first while healthy."""
        async with self.gw.pool.acquire() as conn:
            merchant = await get_merchant(conn, p.merchant_id)
        allowed = (p.channel,) if merchant is None else merchant.allowed_channels
        kinds = {name: configured.spec.kind for name, configured in self.gw.channels.items()}
        return route_payout(self.gw, p.currency, p.amount, p.channel, payout_candidates(kinds, allowed))

    async def _send(self, p: PayoutRecord, channel: str) -> None:
        async with self.gw.pool.acquire() as conn:
            if not await mark_sending(conn, p.id, self.gw.worker_id, channel):
                return  # lost the lease (another worker has it now), or a move after a send: never
        p = dataclasses.replace(p, channel=channel)
        request = payout_request(p)
        query_s = self.settings.payout_query_delay_ms / 1000
        try:
            result = await self.gw.call(channel, "create_payout", lambda ch: ch.create_payout(request))
        except AmountMismatch as error:  # the channel has our out_payout_no, for another amount: a person decides
            await self._apply(p, decision.on_create_mismatch(error.actual_minor, error.actual_currency,
                                                             error.channel_ref, p.amount, p.currency))
            return
        except (OrderNotFound, UnclearRefusal) as error:  # says nothing about this payout: like no answer
            PAYOUT_STEPS.labels("unknown").inc()
            await self._later(p, query_s, f"unknown after send: {error}")
            return
        except ChannelRejected as error:  # the channel refused this request definitively and moved nothing
            await self._apply(p, decision.on_create_refused(error.code, error.detail[:200], p.sends, query_s))
            return
        except ChannelError as error:  # timeout, 5xx, unreadable answer: unknown, ask later
            PAYOUT_STEPS.labels("unknown").inc()
            await self._later(p, query_s, f"unknown after send: {error}")
            return
        await self._apply(p, decision.on_result(result, self._backoff_s(p), p.amount, p.currency))

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
        await self._apply(p, decision.on_result(result, self._backoff_s(p), p.amount, p.currency))

    async def _apply(self, p: PayoutRecord, d: decision.Decision) -> None:
        now = datetime.now(UTC)
        PAYOUT_STEPS.labels(type(d).__name__.lower()).inc()
        if isinstance(d, decision.Settle):
            await finish(self.gw, p, True, d.channel_payout_no, None, None, now)
        elif isinstance(d, decision.Fail):
            await finish(self.gw, p, False, d.channel_payout_no, d.code, d.message, now, self.release_usage)
        elif isinstance(d, decision.Poll):
            await self._later(p, d.delay_s, d.note, d.accepted, d.channel_payout_no)
        elif isinstance(d, decision.Hold):
            await self._hold(p, d)
        else:
            log.warning("payout resent", extra={"payout_id": p.id, "note": d.note})
            await self._send(p, p.channel)

    async def _hold(self, p: PayoutRecord, d: decision.Hold) -> None:
        async with self.gw.pool.acquire() as conn:
            held = await hold_payout(conn, p.id, self.gw.worker_id, d)
        if not held:  # the lease ran out and another worker has the payout: it decides (and holds) on its own step
            log.warning("payout not held: its lease was lost to another worker",
                        extra={"payout_id": p.id, "reason": d.reason})
            return
        log.error("payout held for a person", extra={
            "payout_id": p.id, "channel": p.channel, "reason": d.reason, "note": d.note, "status": p.status,
            "reported_amount_minor": d.reported_amount_minor, "reported_currency": d.reported_currency})
        PAYOUTS_HELD.labels(d.reason).inc()


def _masked(error: BaseException) -> str:
    """The traceback with its chained causes, every long digit run (a card or account number) masked."""
    return mask_digits("".join(traceback.format_exception(error)))
