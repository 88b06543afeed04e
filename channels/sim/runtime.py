"""State one running simulator shares between its routes: book, faults, RNG, notifier.

Fault injection lives here so that both channel formats misbehave the same way: an error
answer happens *before* the call changes anything, a hang happens *after* it did (the
order exists, the client does not know: exactly the case the gateway must query for).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Protocol

import msgspec
from aiohttp import web

from channels.sim.notifier import Notifier, NotifyMessage
from channels.sim.payouts import PayoutBook
from channels.sim.profile import Latency, SimFaults, SimProfile
from channels.sim.statement import Discrepancies, StatementRow
from channels.sim.store import SimOrder, SimStore


class SimChannel(Protocol):
    """The wire-format half of a simulator: what differs between wallet and bank."""

    def add_routes(self, app: web.Application) -> None: ...

    def system_error(self) -> web.Response: ...

    def build_notify(self, order: SimOrder) -> NotifyMessage: ...

    def is_ack(self, http_status: int, body: bytes) -> bool: ...

    def render_statement(self, day: date, rows: list[StatementRow]) -> str: ...

    def pay_url(self, order: SimOrder) -> str: ...


class SimRuntime:
    def __init__(self, profile: SimProfile, notifier: Notifier) -> None:
        self.profile = profile
        self.faults: SimFaults = profile.faults
        self.rng = random.Random(profile.seed)
        self.store = SimStore(id_prefix=profile.kind.value[:2].upper())
        self.payouts = PayoutBook(profile.kind.value[:2].upper(), profile.payout_funds_minor)
        self.notifier = notifier
        self.discrepancies: dict[date, Discrepancies] = {}
        # The notify target when an order carries none (e.g. `channel-sim --notify-base-url`).
        self.default_notify_url: str | None = None

    def now(self) -> datetime:
        return datetime.now(UTC)

    def _delay_s(self, latency: Latency) -> float:
        return max(0.0, self.rng.gauss(latency.mean_ms, latency.stddev_ms)) / 1000.0

    async def guard(
        self,
        channel: SimChannel,
        handle: Callable[[], Awaitable[web.Response]],
        creates: bool = False,
    ) -> web.Response:
        """Run one merchant call under the live fault settings."""
        faults = self.faults
        # Draw all three numbers every time so a seed gives the same story per call index.
        fails, hangs = self.rng.random() < faults.error_rate, self.rng.random() < faults.timeout_rate
        delay_s = self._delay_s(faults.create_latency if creates else faults.call_latency)
        if fails:
            return channel.system_error()
        if creates and faults.hang_next_creates:
            hangs = True
            self.faults = msgspec.structs.replace(self.faults, hang_next_creates=self.faults.hang_next_creates - 1)
        if delay_s:
            await asyncio.sleep(delay_s)
        response = await handle()
        if hangs:
            await asyncio.sleep(faults.hang_ms / 1000.0)
        return response

    def notify_paid(self, channel: SimChannel, order: SimOrder) -> bool:
        """Send the payment notify unless this order drew "accepted but no notify"."""
        if self.rng.random() < self.faults.no_notify_rate:
            return False
        url = order.notify_url or self.default_notify_url
        if not url:
            return False
        self.notifier.send(f"{order.out_trade_no}-paid", url, lambda: channel.build_notify(order), channel.is_ack)
        return True
