"""Operator endpoints for simulated payouts (no authentication, like the rest of `/sim/admin`).

- `GET|PUT /sim/admin/payout-funds` `{"funds_minor": N}`: the merchant's payout funds at the
  channel; a payout settling above them fails with `INSUFFICIENT_FUNDS`;
- `PUT /sim/admin/payout-holders` `{"<account number>": "<holder name>", ...}`: names the bank
  knows (merged); a payout to a listed number under another name fails with `NAME_MISMATCH`;
- `GET /sim/admin/payouts/{out_payout_no}`: the payout as the simulator holds it;
- `POST /sim/admin/payouts/{out_payout_no}/settle` `{"status": "SUCCESS" | "FAIL",
  "failure_code"?}`: settle a processing payout now (e.g. with `payout_settle_ms` large).
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from channels.sim.payout_desk import find_payout
from channels.sim.payouts import PayoutState, SimPayout
from channels.sim.runtime import SimRuntime
from channels.sim.store import Refusal, SimRefused


class PayoutFunds(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    funds_minor: int


class SettleOrder(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    status: PayoutState
    failure_code: str | None = None


class PayoutView(msgspec.Struct, frozen=True):
    out_payout_no: str
    payout_id: str
    amount_minor: int
    currency: str
    kind: str
    state: str
    failure_code: str | None
    created_at: str
    finished_at: str | None


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _view(payout: SimPayout) -> web.Response:
    view = PayoutView(
        out_payout_no=payout.ask.out_payout_no,
        payout_id=payout.payout_id,
        amount_minor=payout.ask.amount_minor,
        currency=payout.ask.currency,
        kind=payout.ask.kind,
        state=payout.state.value,
        failure_code=payout.failure_code,
        created_at=payout.created_at.isoformat(),
        finished_at=None if payout.finished_at is None else payout.finished_at.isoformat(),
    )
    return web.Response(body=msgspec.json.encode(view), content_type="application/json")


class PayoutAdmin:
    def __init__(self, runtime: SimRuntime) -> None:
        self.rt = runtime

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/sim/admin/payout-funds", self._get_funds)
        app.router.add_put("/sim/admin/payout-funds", self._put_funds)
        app.router.add_put("/sim/admin/payout-holders", self._put_holders)
        app.router.add_get("/sim/admin/payouts/{out_payout_no}", self._get)
        app.router.add_post("/sim/admin/payouts/{out_payout_no}/settle", self._settle)

    async def _get_funds(self, request: web.Request) -> web.Response:
        return web.json_response({"funds_minor": self.rt.payouts.funds_minor})

    async def _put_funds(self, request: web.Request) -> web.Response:
        try:
            funds = msgspec.json.decode(await request.read(), type=PayoutFunds)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            return _json_error(400, str(error))
        if funds.funds_minor < 0:
            return _json_error(400, "funds_minor must not be negative")
        self.rt.payouts.funds_minor = funds.funds_minor
        return await self._get_funds(request)

    async def _put_holders(self, request: web.Request) -> web.Response:
        try:
            holders = msgspec.json.decode(await request.read(), type=dict[str, str])
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            return _json_error(400, str(error))
        self.rt.payouts.holders.update(holders)
        return web.json_response({"holders": len(self.rt.payouts.holders)})

    async def _get(self, request: web.Request) -> web.Response:
        try:
            return _view(find_payout(self.rt, request.match_info["out_payout_no"]))
        except SimRefused as refused:
            return _json_error(404, str(refused))

    async def _settle(self, request: web.Request) -> web.Response:
        try:
            order = msgspec.json.decode(await request.read(), type=SettleOrder)
            if order.status is PayoutState.PROCESSING:
                raise ValueError("status must be SUCCESS or FAIL")
            # Settle what is already due first, so a payout past its time is not overridden.
            find_payout(self.rt, request.match_info["out_payout_no"])
            payout = self.rt.payouts.force(request.match_info["out_payout_no"], order.status, order.failure_code,
                                           self.rt.now())
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as error:
            return _json_error(400, str(error))
        except SimRefused as refused:
            return _json_error(404 if refused.refusal is Refusal.NOT_FOUND else 409, str(refused))
        return _view(payout)
