"""wxsim payouts, shaped after WeChat Pay v3 merchant transfers ("transfer bills") to a bank.

- `POST /v3/fund-app/mch-transfer/bank-transfer-bills` `{"mchid", "out_bill_no", "transfer_amount"
  (fen), "currency", "account_type": "BANK_CARD" | "BANK_ACCOUNT", "account_number", "user_name",
  "bank_code"?, "transfer_remark"?}` → the bill;
- `GET /v3/fund-app/mch-transfer/bank-transfer-bills/out-bill-no/{out_bill_no}` → the bill, or
  404 `ORDER_NOT_EXIST`.

A bill reads `{"out_bill_no", "transfer_bill_no", "transfer_amount", "currency", "state":
"PROCESSING" | "SUCCESS" | "FAIL", "fail_reason"?, "create_time", "update_time"}`. Requests
and answers are signed exactly like the payment endpoints (`WxSim.authenticated_body`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
from aiohttp import web

from channels.sim.payout_desk import accept_payout, answer_payout_create, look_up_payout
from channels.sim.payouts import FAILURE_MESSAGES, PayoutAsk, SimPayout
from channels.sim.store import SimRefused

if TYPE_CHECKING:
    from channels.sim.wx import WxSim

CREATE_PATH = "/v3/fund-app/mch-transfer/bank-transfer-bills"
_ACCOUNT_KINDS = {"BANK_CARD": "bank_card", "BANK_ACCOUNT": "bank_account"}


class WxPayoutCreate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    mchid: str
    out_bill_no: str
    transfer_amount: int
    account_type: str
    account_number: str
    user_name: str
    currency: str = "CNY"
    bank_code: str = ""
    transfer_remark: str = ""


class WxPayouts:
    def __init__(self, wx: WxSim) -> None:
        self.wx = wx
        self.rt = wx.rt

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(CREATE_PATH, self._create)
        app.router.add_get(CREATE_PATH + "/out-bill-no/{out_bill_no}", self._query)

    async def _create(self, request: web.Request) -> web.Response:
        body = await self.wx.authenticated_body(request)
        if isinstance(body, web.Response):
            return body
        try:
            create = msgspec.json.decode(body, type=WxPayoutCreate)
        except msgspec.DecodeError as error:
            return self.wx.error(400, "PARAM_ERROR", str(error))
        kind = _ACCOUNT_KINDS.get(create.account_type)
        if kind is None or create.mchid != self.wx.profile.merchant_id:
            return self.wx.error(400, "PARAM_ERROR", f"account_type {create.account_type!r} or mchid")
        ask = PayoutAsk(
            out_payout_no=create.out_bill_no,
            amount_minor=create.transfer_amount,
            currency=create.currency,
            kind=kind,
            number=create.account_number,
            holder_name=create.user_name,
            bank_code=create.bank_code,
            description=create.transfer_remark,
        )

        async def handle() -> web.Response:
            try:
                payout = accept_payout(self.rt, ask)
            except SimRefused as refused:
                return self.wx.refused(refused)
            return self.wx.signed(200, self.bill(payout))

        return await self.rt.guard(self.wx, lambda: answer_payout_create(self.rt, request, handle), creates=True)

    async def _query(self, request: web.Request) -> web.Response:
        body = await self.wx.authenticated_body(request)
        if isinstance(body, web.Response):
            return body

        async def handle() -> web.Response:
            try:
                payout = look_up_payout(self.rt, request.match_info["out_bill_no"])
            except SimRefused as refused:
                return self.wx.refused(refused)
            return self.wx.signed(200, self.bill(payout))

        return await self.rt.guard(self.wx, handle)

    def bill(self, payout: SimPayout) -> dict[str, object]:
        updated = payout.finished_at or payout.created_at
        bill: dict[str, object] = {
            "mchid": self.wx.profile.merchant_id,
            "out_bill_no": payout.ask.out_payout_no,
            "transfer_bill_no": payout.payout_id,
            "transfer_amount": payout.ask.amount_minor,
            "currency": payout.ask.currency,
            "state": payout.state.value,
            "create_time": payout.created_at.isoformat(timespec="seconds"),
            "update_time": updated.isoformat(timespec="seconds"),
        }
        if payout.failure_code is not None:
            bill["fail_reason"] = payout.failure_code
            bill["fail_message"] = FAILURE_MESSAGES.get(payout.failure_code, "transfer failed")
        return bill
