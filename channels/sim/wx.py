"""The wallet-style simulator ("wxsim"), shaped after WeChat Pay API v3 (Native pay).

Differences from the real thing, on purpose: HMAC-SHA256 with the shared key instead of
RSA certificates, and the notify `resource` travels in plain JSON instead of AES-GCM.
Amounts are integer fen (minor units) as in v3.
"""

from __future__ import annotations

import time
from datetime import date, datetime

import msgspec
from aiohttp import web

from channels import signing
from channels.sim.notifier import NotifyMessage
from channels.sim.runtime import SimRuntime
from channels.sim.statement import StatementRow
from channels.sim.statement_csv import render_wx_statement
from channels.sim.store import OrderState, Refusal, SimOrder, SimRefund, SimRefused
from channels.sim.wx_payouts import WxPayouts

AUTH_WINDOW_S = 300

_REFUSALS: dict[Refusal, tuple[int, str]] = {
    Refusal.NOT_FOUND: (404, "ORDER_NOT_EXIST"),
    Refusal.PARAMS_MISMATCH: (400, "INVALID_REQUEST"),
    Refusal.ORDER_PAID: (400, "ORDERPAID"),
    Refusal.ORDER_CLOSED: (400, "ORDER_CLOSED"),
    Refusal.NOT_PAID: (400, "INVALID_REQUEST"),
    Refusal.REFUND_EXCEEDS: (400, "NOT_ENOUGH"),
    Refusal.INVALID: (400, "PARAM_ERROR"),
    Refusal.FULL: (429, "FREQUENCY_LIMITED"),
}


class WxAmount(msgspec.Struct, frozen=True):
    total: int
    currency: str = "CNY"


class WxCreate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    appid: str
    mchid: str
    description: str
    out_trade_no: str
    notify_url: str
    amount: WxAmount
    time_expire: str | None = None


class WxRefundAmount(msgspec.Struct, frozen=True):
    refund: int
    total: int
    currency: str = "CNY"


class WxRefundCreate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    out_trade_no: str
    out_refund_no: str
    amount: WxRefundAmount
    reason: str = ""


def rfc3339(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds")


class WxSim:
    def __init__(self, runtime: SimRuntime) -> None:
        self.rt = runtime
        self.profile = runtime.profile

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v3/pay/transactions/native", self._create)
        app.router.add_get("/v3/pay/transactions/out-trade-no/{out_trade_no}", self._query)
        app.router.add_post("/v3/pay/transactions/out-trade-no/{out_trade_no}/close", self._close)
        app.router.add_post("/v3/refund/domestic/refunds", self._refund)
        app.router.add_get("/v3/refund/domestic/refunds/{out_refund_no}", self._query_refund)
        WxPayouts(self).add_routes(app)

    # -- answers ----------------------------------------------------------------
    def signed(self, status: int, payload: object | None) -> web.Response:
        body = b"" if payload is None else msgspec.json.encode(payload)
        headers = signing.wx_signed_headers(self.profile.key, self.profile.key_serial, body.decode(), int(time.time()))
        return web.Response(status=status, body=body, headers=headers, content_type="application/json")

    def error(self, status: int, code: str, message: str) -> web.Response:
        return self.signed(status, {"code": code, "message": message})

    def system_error(self) -> web.Response:
        return self.error(500, "SYSTEM_ERROR", "system error, please retry")

    def refused(self, refused: SimRefused) -> web.Response:
        status, code = _REFUSALS[refused.refusal]
        return self.error(status, code, refused.detail)

    # -- request checks ---------------------------------------------------------
    async def authenticated_body(self, request: web.Request) -> str | web.Response:
        """The raw body when the Authorization header signs it with our key; else a 401."""
        body = await request.text()
        fields = signing.parse_wx_authorization(request.headers.get("Authorization", ""))
        if fields is None or fields.get("mchid") != self.profile.merchant_id:
            return self.error(401, "SIGN_ERROR", "missing or foreign Authorization")
        try:
            timestamp_s = int(fields.get("timestamp", ""))
        except ValueError:
            return self.error(401, "SIGN_ERROR", "bad timestamp")
        if abs(time.time() - timestamp_s) > AUTH_WINDOW_S:
            return self.error(401, "SIGN_ERROR", "timestamp outside the window")
        signed = signing.wx_verify(
            self.profile.key,
            fields.get("signature", ""),
            request.method,
            request.path_qs,
            str(timestamp_s),
            fields.get("nonce_str", ""),
            body,
        )
        return body if signed else self.error(401, "SIGN_ERROR", "signature mismatch")

    # -- handlers ---------------------------------------------------------------
    async def _create(self, request: web.Request) -> web.Response:
        body = await self.authenticated_body(request)
        if isinstance(body, web.Response):
            return body
        try:
            create = msgspec.json.decode(body, type=WxCreate)
        except msgspec.DecodeError as error:
            return self.error(400, "PARAM_ERROR", str(error))

        async def handle() -> web.Response:
            try:
                order = self.rt.store.create(
                    create.out_trade_no,
                    create.amount.total,
                    create.amount.currency,
                    create.description,
                    create.notify_url,
                    self.rt.now(),
                    self.profile.order_ttl_s,
                )
            except SimRefused as refused:
                return self.refused(refused)
            return self.signed(200, {"prepay_id": order.channel_order_id, "code_url": self.pay_url(order)})

        return await self.rt.guard(self, handle, creates=True)

    async def _query(self, request: web.Request) -> web.Response:
        body = await self.authenticated_body(request)
        if isinstance(body, web.Response):
            return body

        async def handle() -> web.Response:
            try:
                order = self.rt.store.get(request.match_info["out_trade_no"], self.rt.now())
            except SimRefused as refused:
                return self.refused(refused)
            return self.signed(200, self.transaction(order))

        return await self.rt.guard(self, handle)

    async def _close(self, request: web.Request) -> web.Response:
        body = await self.authenticated_body(request)
        if isinstance(body, web.Response):
            return body

        async def handle() -> web.Response:
            try:
                self.rt.store.close(request.match_info["out_trade_no"], self.rt.now())
            except SimRefused as refused:
                return self.refused(refused)
            return self.signed(204, None)

        return await self.rt.guard(self, handle)

    async def _refund(self, request: web.Request) -> web.Response:
        body = await self.authenticated_body(request)
        if isinstance(body, web.Response):
            return body
        try:
            ask = msgspec.json.decode(body, type=WxRefundCreate)
        except msgspec.DecodeError as error:
            return self.error(400, "PARAM_ERROR", str(error))

        async def handle() -> web.Response:
            try:
                order = self.rt.store.get(ask.out_trade_no, self.rt.now())
                if ask.amount.total != order.amount_minor:
                    return self.error(400, "INVALID_REQUEST", "amount.total differs from the order")
                refund = self.rt.store.refund(ask.out_trade_no, ask.out_refund_no, ask.amount.refund, self.rt.now())
            except SimRefused as refused:
                return self.refused(refused)
            return self.signed(200, self.refund_body(refund))

        return await self.rt.guard(self, handle)

    async def _query_refund(self, request: web.Request) -> web.Response:
        body = await self.authenticated_body(request)
        if isinstance(body, web.Response):
            return body

        async def handle() -> web.Response:
            try:
                refund = self.rt.store.get_refund(request.match_info["out_refund_no"])
            except SimRefused as refused:
                return self.error(404, "RESOURCE_NOT_EXISTS", refused.detail)
            return self.signed(200, self.refund_body(refund))

        return await self.rt.guard(self, handle)

    # -- wire shapes ------------------------------------------------------------
    def transaction(self, order: SimOrder) -> dict[str, object]:
        paid = order.state in (OrderState.SUCCESS, OrderState.REFUND)
        total = order.paid_minor if paid else order.amount_minor
        return {
            "appid": "wxsimapp",
            "mchid": self.profile.merchant_id,
            "out_trade_no": order.out_trade_no,
            "transaction_id": order.channel_txn_id,
            "trade_type": "NATIVE",
            "trade_state": order.state.value,
            "success_time": rfc3339(order.paid_at),
            "amount": {"total": total, "payer_total": order.paid_minor, "currency": order.currency},
        }

    def refund_body(self, refund: SimRefund) -> dict[str, object]:
        order = self.rt.store.orders[refund.out_trade_no]
        return {
            "refund_id": refund.refund_id,
            "out_refund_no": refund.out_refund_no,
            "transaction_id": order.channel_txn_id,
            "out_trade_no": refund.out_trade_no,
            "status": "SUCCESS",
            "create_time": rfc3339(refund.created_at),
            "success_time": rfc3339(refund.created_at),
            "amount": {
                "total": order.amount_minor,
                "refund": refund.amount_minor,
                "currency": order.currency,
            },
        }

    def pay_url(self, order: SimOrder) -> str:
        return f"weixin://wxpay/bizpayurl?pr={order.channel_order_id}"

    def build_notify(self, order: SimOrder) -> NotifyMessage:
        body = msgspec.json.encode(
            {
                "id": f"EV-{order.channel_txn_id}",
                "create_time": rfc3339(self.rt.now()),
                "event_type": "TRANSACTION.SUCCESS",
                "resource_type": "plain-resource",
                "summary": "payment succeeded",
                "resource": self.transaction(order),
            }
        ).decode()
        headers = signing.wx_signed_headers(self.profile.key, self.profile.key_serial, body, int(time.time()))
        headers["Content-Type"] = "application/json"
        return NotifyMessage(headers, body.encode())

    def is_ack(self, http_status: int, body: bytes) -> bool:
        if http_status not in (200, 204):
            return False
        try:
            answer = msgspec.json.decode(body)
        except msgspec.DecodeError:
            return False
        return isinstance(answer, dict) and answer.get("code") == "SUCCESS"

    def render_statement(self, day: date, rows: list[StatementRow]) -> str:
        return render_wx_statement(self.profile.merchant_id, rows)
