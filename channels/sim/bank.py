"""The bank-style simulator ("banksim"), shaped after an Alipay/UnionPay acquiring gateway.

One form-encoded endpoint with a `method` parameter, sorted-`k=v` SHA-256 signatures,
amounts as major-unit strings ("19.99"), business errors as HTTP 200 with a code, and
notifies that the merchant must answer with the plain text `success`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from urllib.parse import urlencode

from aiohttp import web

from channels import signing
from channels.amounts import AmountFormatError, major_to_minor, minor_to_major
from channels.sim.bank_payouts import CREATE_METHOD as PAYOUT_CREATE
from channels.sim.bank_payouts import QUERY_METHOD as PAYOUT_QUERY
from channels.sim.bank_payouts import BankPayouts
from channels.sim.notifier import NotifyMessage
from channels.sim.payout_desk import answer_payout_create
from channels.sim.runtime import SimRuntime
from channels.sim.statement import StatementRow
from channels.sim.statement_csv import bank_time, render_bank_statement
from channels.sim.store import OrderState, Refusal, SimOrder, SimRefund, SimRefused

CODE_OK = "10000"
CODE_UNAVAILABLE = "20000"
CODE_MISSING_PARAM = "40001"
CODE_BAD_SIGNATURE = "40002"
CODE_BUSINESS = "40004"

_SUB_CODES: dict[Refusal, str] = {
    Refusal.NOT_FOUND: "ACQ.TRADE_NOT_EXIST",
    Refusal.PARAMS_MISMATCH: "ACQ.CONTEXT_INCONSISTENT",
    Refusal.ORDER_PAID: "ACQ.TRADE_HAS_SUCCESS",
    Refusal.ORDER_CLOSED: "ACQ.TRADE_HAS_CLOSE",
    Refusal.NOT_PAID: "ACQ.TRADE_STATUS_ERROR",
    Refusal.REFUND_EXCEEDS: "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL",
    Refusal.INVALID: "ACQ.INVALID_PARAMETER",
    Refusal.FULL: "ACQ.SYSTEM_ERROR",
}

Params = dict[str, str]


class BankSim:
    def __init__(self, runtime: SimRuntime) -> None:
        self.rt = runtime
        self.profile = runtime.profile
        self._methods: dict[str, Callable[[Params], Params]] = {
            "trade.precreate": self._create,
            "trade.query": self._query,
            "trade.close": self._close,
            "trade.refund": self._refund,
            "trade.refund.query": self._query_refund,
        }
        payouts = BankPayouts(self)
        self._methods[PAYOUT_CREATE] = payouts.create
        self._methods[PAYOUT_QUERY] = payouts.query

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/gateway.do", self._gateway)

    def answer(self, fields: Params) -> web.Response:
        fields = {name: value for name, value in fields.items() if value != ""}
        fields["sign"] = signing.bank_sign(self.profile.key, fields)
        return web.json_response(fields)

    def system_error(self) -> web.Response:
        return self.answer(
            {
                "code": CODE_UNAVAILABLE,
                "msg": "Service Currently Unavailable",
                "sub_code": "isp.unknow-error",
                "sub_msg": "system busy",
            }
        )

    def business_error(self, sub_code: str, detail: str) -> Params:
        return {"code": CODE_BUSINESS, "msg": "Business Failed", "sub_code": sub_code, "sub_msg": detail}

    async def _gateway(self, request: web.Request) -> web.Response:
        params = {name: str(value) for name, value in (await request.post()).items()}
        if params.get("app_id") != self.profile.merchant_id or not signing.bank_verify(self.profile.key, params):
            return self.answer(
                {
                    "code": CODE_BAD_SIGNATURE,
                    "msg": "Invalid Arguments",
                    "sub_code": "isv.invalid-signature",
                    "sub_msg": "signature mismatch",
                }
            )
        method = self._methods.get(params.get("method", ""))
        if method is None:
            return self.answer(
                {
                    "code": CODE_MISSING_PARAM,
                    "msg": "Missing Required Arguments",
                    "sub_code": "isv.missing-method",
                    "sub_msg": "unknown method",
                }
            )

        async def handle() -> web.Response:
            try:
                return self.answer(method(params))
            except SimRefused as refused:
                return self.answer(self.business_error(_SUB_CODES[refused.refusal], refused.detail))
            except (KeyError, AmountFormatError) as error:
                return self.answer(self.business_error("ACQ.INVALID_PARAMETER", f"bad parameter {error}"))

        async def create_payout() -> web.Response:
            response = await handle()
            # Drawn only when the fault is on, so seeded stories of other faults stay as they were.
            rate = self.rt.faults.payout_system_error_rate
            if rate and self.rt.rng.random() < rate:
                return self.answer(self.business_error(_SUB_CODES[Refusal.FULL], "system busy, query the transfer"))
            return response

        if params.get("method") == PAYOUT_CREATE:
            # Payout faults may lose the answer after the payout was accepted.
            return await self.rt.guard(self, lambda: answer_payout_create(self.rt, request, create_payout),
                                       creates=True)
        return await self.rt.guard(self, handle, creates=method == self._create)

    # -- methods: params in, answer fields out; SimRefused for business errors --------
    def _create(self, params: Params) -> Params:
        order = self.rt.store.create(
            params["out_trade_no"],
            major_to_minor(params["total_amount"]),
            params.get("currency", self.profile.currency),
            params.get("subject", ""),
            params.get("notify_url", ""),
            self.rt.now(),
            self.profile.order_ttl_s,
        )
        return {
            "code": CODE_OK,
            "msg": "Success",
            "out_trade_no": order.out_trade_no,
            "trade_no": order.channel_order_id,
            "qr_code": self.pay_url(order),
            "total_amount": minor_to_major(order.amount_minor),
            "currency": order.currency,
        }

    def _query(self, params: Params) -> Params:
        return {
            "code": CODE_OK,
            "msg": "Success",
            **self.trade_fields(self.rt.store.get(params["out_trade_no"], self.rt.now())),
        }

    def _close(self, params: Params) -> Params:
        order = self.rt.store.close(params["out_trade_no"], self.rt.now())
        return {
            "code": CODE_OK,
            "msg": "Success",
            "out_trade_no": order.out_trade_no,
            "trade_no": order.channel_order_id,
        }

    def _refund(self, params: Params) -> Params:
        refund = self.rt.store.refund(
            params["out_trade_no"],
            params["out_request_no"],
            major_to_minor(params["refund_amount"]),
            self.rt.now(),
        )
        return {"code": CODE_OK, "msg": "Success", **self.refund_fields(refund)}

    def _query_refund(self, params: Params) -> Params:
        return {
            "code": CODE_OK,
            "msg": "Success",
            **self.refund_fields(self.rt.store.get_refund(params["out_request_no"])),
        }

    # -- wire shapes -------------------------------------------------------------------
    def trade_fields(self, order: SimOrder) -> Params:
        # As at Alipay, a fully refunded trade reads TRADE_CLOSED and a partly refunded
        # one stays TRADE_SUCCESS; refund_amount tells them apart from unpaid closes.
        status = {
            OrderState.NOTPAY: "WAIT_BUYER_PAY",
            OrderState.SUCCESS: "TRADE_SUCCESS",
            OrderState.CLOSED: "TRADE_CLOSED",
            OrderState.REFUND: "TRADE_CLOSED" if order.refunded_minor == order.paid_minor else "TRADE_SUCCESS",
        }[order.state]
        paid = order.state in (OrderState.SUCCESS, OrderState.REFUND)
        return {
            "out_trade_no": order.out_trade_no,
            "trade_no": order.channel_txn_id or order.channel_order_id,
            "trade_status": status,
            "total_amount": minor_to_major(order.paid_minor if paid else order.amount_minor),
            "refund_amount": minor_to_major(order.refunded_minor),
            "currency": order.currency,
            "gmt_payment": bank_time(order.paid_at),
        }

    def refund_fields(self, refund: SimRefund) -> Params:
        order = self.rt.store.orders[refund.out_trade_no]
        return {
            "out_trade_no": refund.out_trade_no,
            "out_request_no": refund.out_refund_no,
            "refund_no": refund.refund_id,
            "trade_no": order.channel_txn_id or "",
            "refund_amount": minor_to_major(refund.amount_minor),
            "currency": order.currency,
            "refund_status": "REFUND_SUCCESS",
            "gmt_refund_pay": bank_time(refund.created_at),
        }

    def pay_url(self, order: SimOrder) -> str:
        return f"https://qr.banksim.example/pay?trade_no={order.channel_order_id}"

    def build_notify(self, order: SimOrder) -> NotifyMessage:
        fields = {
            "notify_id": f"N{order.channel_txn_id}",
            "notify_time": bank_time(self.rt.now()),
            "notify_type": "trade_status_sync",
            "app_id": self.profile.merchant_id,
            "sign_type": "SHA256",
            **self.trade_fields(order),
        }
        fields = {name: value for name, value in fields.items() if value != ""}
        fields["sign"] = signing.bank_sign(self.profile.key, fields)
        body = urlencode(fields)
        return NotifyMessage({"Content-Type": "application/x-www-form-urlencoded"}, body.encode())

    def is_ack(self, http_status: int, body: bytes) -> bool:
        return http_status == 200 and body.strip() == b"success"

    def render_statement(self, day: date, rows: list[StatementRow]) -> str:
        return render_bank_statement(self.profile.merchant_id, day, rows)
