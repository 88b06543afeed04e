"""Adapter for the wallet-style channel (WeChat Pay v3 shape, see `channels.sim.wx`).

Every answer the channel signs is verified before it is read, so a man in the middle
cannot forge a "SUCCESS" query result any more than a notify.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import TypeVar
from urllib.parse import quote

import aiohttp
import msgspec

from channels import signing
from channels.adapters.transport import RawAnswer, exchange
from channels.adapters.wxsim import payouts as wx_payouts
from channels.adapters.wxsim.statement import parse_wx_statement
from channels.errors import (
    AmountMismatch,
    BadSignature,
    ChannelRejected,
    ChannelUnavailable,
    MalformedResponse,
    OrderNotFound,
    StaleNotify,
)
from channels.protocol import (
    Channel,
    ChannelConfig,
    ChannelOrderStatus,
    ChannelStatus,
    NotifyAnswer,
    NotifyEvent,
    PayoutRequest,
    PayoutResult,
    RefundRequest,
    RefundResult,
    RefundStatus,
    Statement,
    VoucherRequest,
    VoucherResult,
)

_TRADE_STATES = {
    "SUCCESS": ChannelStatus.SUCCEEDED,
    "NOTPAY": ChannelStatus.PENDING,
    "USERPAYING": ChannelStatus.PENDING,
    "CLOSED": ChannelStatus.CLOSED,
    "REVOKED": ChannelStatus.CLOSED,
    "PAYERROR": ChannelStatus.FAILED,
    "REFUND": ChannelStatus.REFUNDED,
}
_REFUND_STATES = {
    "SUCCESS": RefundStatus.SUCCEEDED,
    "PROCESSING": RefundStatus.PROCESSING,
    "ABNORMAL": RefundStatus.FAILED,
    "CLOSED": RefundStatus.FAILED,
}
_T = TypeVar("_T")
_NOT_FOUND_CODES = frozenset({"ORDER_NOT_EXIST", "ORDERNOTEXIST", "RESOURCE_NOT_EXISTS"})


# Wire types from the channel tolerate unknown fields: a channel adds fields without notice
# and that must not stop payments.
class _Amount(msgspec.Struct, frozen=True):
    total: int
    currency: str
    payer_total: int | None = None
    refund: int | None = None


class _Prepay(msgspec.Struct, frozen=True):
    prepay_id: str
    code_url: str


class _Transaction(msgspec.Struct, frozen=True):
    out_trade_no: str
    trade_state: str
    amount: _Amount
    transaction_id: str | None = None
    success_time: datetime | None = None


class _Refund(msgspec.Struct, frozen=True):
    refund_id: str
    out_refund_no: str
    out_trade_no: str
    status: str
    amount: _Amount


class _Notify(msgspec.Struct, frozen=True):
    id: str
    event_type: str
    resource: _Transaction


class _Error(msgspec.Struct, frozen=True):
    code: str
    message: str = ""


class WxSimChannel:
    def __init__(self, session: aiohttp.ClientSession, config: ChannelConfig) -> None:
        self._session = session
        self._config = config
        self._base_url = config.base_url.rstrip("/")

    @property
    def name(self) -> str:
        return self._config.name

    async def _call(self, operation: str, method: str, path: str, payload: object | None = None) -> RawAnswer:
        body = b"" if payload is None else msgspec.json.encode(payload)
        cfg = self._config
        auth = signing.wx_authorization(
            cfg.key, cfg.merchant_id, cfg.key_serial, method, path, body.decode(), int(time.time())
        )
        headers = {"Authorization": auth, "Accept": "application/json"}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        answer = await exchange(
            self._session, self.name, operation, method, self._base_url + path, cfg.timeout_s, body, headers
        )
        if answer.status >= 500 or answer.status == 429:
            raise ChannelUnavailable(self.name, operation, answer.status, answer.body[:200].decode("utf-8", "replace"))
        self._check_signature(answer.headers, answer.body, int(time.time()))
        if answer.status >= 400:
            error = self._decode(answer.body, _Error)
            kind = OrderNotFound if error.code in _NOT_FOUND_CODES else ChannelRejected
            raise kind(self.name, operation, error.code, error.message)
        return answer

    def _decode(self, body: bytes, type_: type[_T]) -> _T:
        try:
            return msgspec.json.decode(body, type=type_)
        except msgspec.DecodeError as error:
            raise MalformedResponse(self.name, f"{type_.__name__.lstrip('_')}: {error}") from error

    def _check_signature(self, headers: Mapping[str, str], body: bytes, now_s: int) -> int:
        """Verify the channel's signature headers; returns the signed timestamp."""
        lowered = {name.lower(): value for name, value in headers.items()}
        timestamp = lowered.get(signing.WX_HEADER_TIMESTAMP.lower(), "")
        if lowered.get(signing.WX_HEADER_SERIAL.lower()) != self._config.key_serial:
            raise BadSignature(self.name, "unknown key serial")
        if not timestamp.isdigit() or not signing.wx_verify(
            self._config.key,
            lowered.get(signing.WX_HEADER_SIGNATURE.lower(), ""),
            timestamp,
            lowered.get(signing.WX_HEADER_NONCE.lower(), ""),
            body.decode("utf-8", "replace"),
        ):
            raise BadSignature(self.name, "signature does not match")
        return int(timestamp)

    def _status(self, tx: _Transaction) -> ChannelOrderStatus:
        state = _TRADE_STATES.get(tx.trade_state)
        if state is None:
            raise MalformedResponse(self.name, f"unknown trade_state {tx.trade_state!r}")
        if tx.amount.total < 0:
            raise MalformedResponse(self.name, f"negative amount {tx.amount.total}")
        return ChannelOrderStatus(
            out_trade_no=tx.out_trade_no,
            status=state,
            amount_minor=tx.amount.total,
            currency=tx.amount.currency,
            channel_txn_id=tx.transaction_id,
            paid_at=tx.success_time,
        )

    def _refund_result(self, refund: _Refund) -> RefundResult:
        status = _REFUND_STATES.get(refund.status)
        if status is None or refund.amount.refund is None:
            raise MalformedResponse(self.name, f"refund status {refund.status!r} / amount {refund.amount}")
        return RefundResult(
            out_refund_no=refund.out_refund_no,
            out_trade_no=refund.out_trade_no,
            channel_refund_id=refund.refund_id,
            amount_minor=refund.amount.refund,
            currency=refund.amount.currency,
            status=status,
        )

    async def create_voucher(self, order: VoucherRequest) -> VoucherResult:
        payload = {
            "appid": "wxsimapp",
            "mchid": self._config.merchant_id,
            "description": order.description,
            "out_trade_no": order.out_trade_no,
            "notify_url": self._config.notify_url,
            "time_expire": order.expires_at.isoformat(timespec="seconds"),
            "amount": {"total": order.amount_minor, "currency": order.currency},
        }
        answer = await self._call("create_voucher", "POST", "/v3/pay/transactions/native", payload)
        prepay = self._decode(answer.body, _Prepay)
        return VoucherResult(order.out_trade_no, prepay.prepay_id, prepay.code_url, order.expires_at)

    async def query(self, out_trade_no: str) -> ChannelOrderStatus:
        path = f"/v3/pay/transactions/out-trade-no/{quote(out_trade_no, safe='')}?mchid={self._config.merchant_id}"
        answer = await self._call("query", "GET", path)
        return self._status(self._decode(answer.body, _Transaction))

    async def close(self, out_trade_no: str) -> None:
        path = f"/v3/pay/transactions/out-trade-no/{quote(out_trade_no, safe='')}/close"
        await self._call("close", "POST", path, {"mchid": self._config.merchant_id})

    async def refund(self, request: RefundRequest) -> RefundResult:
        payload = {
            "out_trade_no": request.out_trade_no,
            "out_refund_no": request.out_refund_no,
            "reason": request.reason,
            "amount": {
                "refund": request.amount_minor,
                "total": request.payment_amount_minor,
                "currency": request.currency,
            },
        }
        answer = await self._call("refund", "POST", "/v3/refund/domestic/refunds", payload)
        result = self._refund_result(self._decode(answer.body, _Refund))
        if (result.amount_minor, result.currency) != (request.amount_minor, request.currency):
            raise AmountMismatch(
                self.name,
                request.out_trade_no,
                request.amount_minor,
                result.amount_minor,
                request.currency,
                result.currency,
            )
        return result

    async def query_refund(self, out_refund_no: str) -> RefundResult:
        answer = await self._call("query_refund", "GET", f"/v3/refund/domestic/refunds/{quote(out_refund_no, safe='')}")
        return self._refund_result(self._decode(answer.body, _Refund))

    def verify_notify(self, headers: Mapping[str, str], raw_body: bytes, now_s: int) -> NotifyEvent:
        timestamp_s = self._check_signature(headers, raw_body, now_s)
        window_s = self._config.notify_window_s
        if abs(now_s - timestamp_s) > window_s:
            raise StaleNotify(self.name, timestamp_s, now_s, window_s)
        notify = self._decode(raw_body, _Notify)
        if notify.event_type != "TRANSACTION.SUCCESS" or notify.resource.transaction_id is None:
            raise MalformedResponse(self.name, f"unexpected notify {notify.event_type!r}")
        status = self._status(notify.resource)
        return NotifyEvent(
            notify_id=notify.id,
            out_trade_no=status.out_trade_no,
            status=status.status,
            amount_minor=status.amount_minor,
            currency=status.currency,
            channel_txn_id=notify.resource.transaction_id,
            paid_at=status.paid_at,
        )

    def notify_ack(self) -> NotifyAnswer:
        return NotifyAnswer(200, "application/json", b'{"code":"SUCCESS"}')

    def notify_nack(self) -> NotifyAnswer:
        return NotifyAnswer(500, "application/json", b'{"code":"FAIL","message":"not processed"}')

    async def fetch_statement(self, day: date) -> Statement:
        url = f"{self._base_url}/sim/statements/{day.isoformat()}"
        answer = await exchange(self._session, self.name, "fetch_statement", "GET", url, self._config.timeout_s)
        if answer.status != 200:
            raise ChannelUnavailable(self.name, "fetch_statement", answer.status, "statement not served")
        return parse_wx_statement(self.name, day, answer.body.decode("utf-8", "replace"))

    async def create_payout(self, request: PayoutRequest) -> PayoutResult:
        body = wx_payouts.create_body(self.name, self._config.merchant_id, request)
        try:
            answer = await self._call("create_payout", "POST", wx_payouts.CREATE_PATH, body)
        except ChannelRejected as refused:
            raise wx_payouts.create_refusal(refused) from None
        return wx_payouts.created_result(self.name, request, self._decode(answer.body, wx_payouts.Bill))

    async def query_payout(self, out_payout_no: str) -> PayoutResult:
        answer = await self._call("query_payout", "GET", wx_payouts.query_path(out_payout_no))
        return wx_payouts.payout_result(self.name, out_payout_no, self._decode(answer.body, wx_payouts.Bill))


# Checked by mypy: the class satisfies the Channel protocol with the registry's constructor.
ADAPTER: Callable[[aiohttp.ClientSession, ChannelConfig], Channel] = WxSimChannel
