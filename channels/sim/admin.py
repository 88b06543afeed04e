"""Endpoints that are not part of any channel's API: the payer, the operator, the statement.

Tests, the benchmark and Locust drive the simulator through these. They carry no
authentication: simulators bind to loopback and hold no real money.
"""

from __future__ import annotations

from datetime import date

import msgspec
from aiohttp import web

from channels.sim.payout_admin import PayoutAdmin
from channels.sim.payout_desk import finished_payouts
from channels.sim.profile import SimFaults
from channels.sim.runtime import SimChannel, SimRuntime
from channels.sim.statement import Discrepancies, statement_rows
from channels.sim.store import Refusal, SimOrder, SimRefused


class PayRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Identify the order by any one of our reference, the channel's id or the pay URL."""

    out_trade_no: str | None = None
    channel_order_id: str | None = None
    pay_url: str | None = None
    # Pay a different amount than ordered, so tests can see a notify with the wrong amount.
    amount_minor: int | None = None


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class SimAdmin:
    def __init__(self, runtime: SimRuntime, channel: SimChannel) -> None:
        self.rt = runtime
        self.channel = channel

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/sim/pay", self._pay)
        app.router.add_get("/sim/admin/faults", self._get_faults)
        app.router.add_put("/sim/admin/faults", self._put_faults)
        app.router.add_put("/sim/admin/discrepancies/{day}", self._put_discrepancies)
        app.router.add_get("/sim/admin/notifies", self._notifies)
        app.router.add_get("/sim/statements/{day}", self._statement)
        PayoutAdmin(self.rt).add_routes(app)

    def _find(self, ask: PayRequest) -> SimOrder:
        now = self.rt.now()
        if ask.out_trade_no is not None:
            return self.rt.store.get(ask.out_trade_no, now)
        if ask.channel_order_id is not None:
            return self.rt.store.get_by_channel_id(ask.channel_order_id, now)
        if ask.pay_url is not None:
            # Both channels put their order id after the last "=" of the pay URL.
            return self.rt.store.get_by_channel_id(ask.pay_url.rsplit("=", 1)[-1], now)
        raise ValueError("give out_trade_no, channel_order_id or pay_url")

    async def _pay(self, request: web.Request) -> web.Response:
        try:
            ask = msgspec.json.decode(await request.read(), type=PayRequest)
            order = self.rt.store.pay(self._find(ask), ask.amount_minor, self.rt.now())
        except (msgspec.DecodeError, ValueError) as error:
            return _json_error(400, str(error))
        except SimRefused as refused:
            return _json_error(404 if refused.refusal is Refusal.NOT_FOUND else 409, str(refused))
        notified = self.rt.notify_paid(self.channel, order)
        return web.json_response(
            {
                "out_trade_no": order.out_trade_no,
                "channel_txn_id": order.channel_txn_id,
                "paid_minor": order.paid_minor,
                "notify_sent": notified,
            }
        )

    async def _get_faults(self, request: web.Request) -> web.Response:
        return web.Response(body=msgspec.json.encode(self.rt.faults), content_type="application/json")

    async def _put_faults(self, request: web.Request) -> web.Response:
        """Replace the live fault settings; fields left out keep the profile's values."""
        try:
            changes = msgspec.json.decode(await request.read(), type=dict[str, object])
            merged = msgspec.to_builtins(self.rt.profile.faults) | changes
            self.rt.faults = msgspec.convert(merged, type=SimFaults)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as error:
            return _json_error(400, str(error))
        return await self._get_faults(request)

    async def _put_discrepancies(self, request: web.Request) -> web.Response:
        try:
            day = date.fromisoformat(request.match_info["day"])
            seeded = msgspec.json.decode(await request.read(), type=Discrepancies)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as error:
            return _json_error(400, str(error))
        self.rt.discrepancies[day] = seeded
        return web.Response(body=msgspec.json.encode(seeded), content_type="application/json")

    async def _notifies(self, request: web.Request) -> web.Response:
        return web.Response(body=msgspec.json.encode(list(self.rt.notifier.attempts)), content_type="application/json")

    async def _statement(self, request: web.Request) -> web.Response:
        try:
            day = date.fromisoformat(request.match_info["day"])
        except ValueError as error:
            return _json_error(400, str(error))
        seeded = self.rt.discrepancies.get(day, Discrepancies())
        rows = statement_rows(self.rt.store, day, seeded, self.rt.profile.currency, finished_payouts(self.rt, day))
        return web.Response(text=self.channel.render_statement(day, rows), content_type="text/csv")
