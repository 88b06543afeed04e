"""Adapter for the bank-style channel (Alipay/UnionPay gateway shape, see `channels.sim.bank`).

Amounts cross this edge as major-unit strings; `channels.amounts` converts them exactly and
anything it cannot read becomes `MalformedResponse`, never a guessed number.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from urllib.parse import parse_qsl, urlencode

import aiohttp
import msgspec

from channels import signing
from channels.adapters.banksim import payouts as bank_payouts
from channels.adapters.banksim.statement import parse_bank_statement
from channels.adapters.transport import exchange
from channels.amounts import AmountFormatError, major_to_minor, minor_to_major
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

CODE_OK = "10000"
CODE_UNAVAILABLE = "20000"
_NOT_FOUND = frozenset({"ACQ.TRADE_NOT_EXIST", "ACQ.REFUND_NOT_EXIST", bank_payouts.NOT_FOUND_SUB_CODE})
_REFUND_STATES = {
    "REFUND_SUCCESS": RefundStatus.SUCCEEDED,
    "REFUND_PROCESSING": RefundStatus.PROCESSING,
    "REFUND_FAIL": RefundStatus.FAILED,
}
Params = dict[str, str]


def _bank_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


class BankSimChannel:
    def __init__(self, session: aiohttp.ClientSession, config: ChannelConfig) -> None:
        self._session = session
        self._config = config
        self._gateway_url = config.base_url.rstrip("/") + "/gateway.do"

    @property
    def name(self) -> str:
        return self._config.name

    # -- edge helpers -------------------------------------------------------------
    def _minor(self, text: str | None, field: str) -> int:
        if text is None:
            raise MalformedResponse(self.name, f"missing {field}")
        try:
            return major_to_minor(text)
        except AmountFormatError as error:
            raise MalformedResponse(self.name, f"{field}: {error}") from error

    def _field(self, fields: Params, name: str) -> str:
        value = fields.get(name)
        if not value:
            raise MalformedResponse(self.name, f"missing {name}")
        return value

    async def _call(self, operation: str, method: str, biz: Params) -> Params:
        cfg = self._config
        params: Params = {
            "app_id": cfg.merchant_id,
            "method": method,
            "charset": "utf-8",
            "sign_type": "SHA256",
            "version": "1.0",
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            **biz,
        }
        params["sign"] = signing.bank_sign(cfg.key, params)
        answer = await exchange(
            self._session,
            self.name,
            operation,
            "POST",
            self._gateway_url,
            cfg.timeout_s,
            urlencode(params).encode(),
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        if answer.status != 200:
            raise ChannelUnavailable(self.name, operation, answer.status, answer.body[:200].decode("utf-8", "replace"))
        try:
            fields = msgspec.json.decode(answer.body, type=dict[str, str])
        except msgspec.DecodeError as error:
            raise MalformedResponse(self.name, f"{operation}: {error}") from error
        if not signing.bank_verify(cfg.key, fields):
            raise BadSignature(self.name, f"{operation} answer signature does not match")
        code = fields.get("code")
        if code == CODE_OK:
            return fields
        detail = f"{fields.get('msg', '')} {fields.get('sub_msg', '')}".strip()
        if code == CODE_UNAVAILABLE:
            raise ChannelUnavailable(self.name, operation, answer.status, detail)
        sub_code = fields.get("sub_code") or str(code)
        kind = OrderNotFound if sub_code in _NOT_FOUND else ChannelRejected
        raise kind(self.name, operation, sub_code, detail)

    def _status(self, fields: Params) -> ChannelOrderStatus:
        trade_status = fields.get("trade_status")
        refunded_minor = self._minor(fields.get("refund_amount", "0"), "refund_amount")
        # Refunded trades read TRADE_CLOSED (all) or TRADE_SUCCESS (part); refund_amount says which.
        if trade_status == "WAIT_BUYER_PAY":
            status = ChannelStatus.PENDING
        elif trade_status in ("TRADE_SUCCESS", "TRADE_FINISHED", "TRADE_CLOSED") and refunded_minor > 0:
            status = ChannelStatus.REFUNDED
        elif trade_status in ("TRADE_SUCCESS", "TRADE_FINISHED"):
            status = ChannelStatus.SUCCEEDED
        elif trade_status == "TRADE_CLOSED":
            status = ChannelStatus.CLOSED
        else:
            raise MalformedResponse(self.name, f"unknown trade_status {trade_status!r}")
        paid_text = fields.get("gmt_payment")
        try:
            paid_at = _bank_time(paid_text) if paid_text else None
        except ValueError as error:
            raise MalformedResponse(self.name, f"gmt_payment {paid_text!r}") from error
        return ChannelOrderStatus(
            out_trade_no=self._field(fields, "out_trade_no"),
            status=status,
            amount_minor=self._minor(fields.get("total_amount"), "total_amount"),
            currency=self._field(fields, "currency"),
            channel_txn_id=fields.get("trade_no"),
            paid_at=paid_at,
            refunded_minor=refunded_minor,
        )

    def _refund_result(self, fields: Params) -> RefundResult:
        status = _REFUND_STATES.get(fields.get("refund_status", ""))
        if status is None:
            raise MalformedResponse(self.name, f"unknown refund_status {fields.get('refund_status')!r}")
        return RefundResult(
            out_refund_no=self._field(fields, "out_request_no"),
            out_trade_no=self._field(fields, "out_trade_no"),
            channel_refund_id=self._field(fields, "refund_no"),
            amount_minor=self._minor(fields.get("refund_amount"), "refund_amount"),
            currency=self._field(fields, "currency"),
            status=status,
        )

    # -- the Channel protocol ---------------------------------------------------------
    async def create_voucher(self, order: VoucherRequest) -> VoucherResult:
        fields = await self._call(
            "create_voucher",
            "trade.precreate",
            {
                "out_trade_no": order.out_trade_no,
                "total_amount": minor_to_major(order.amount_minor),
                "currency": order.currency,
                "subject": order.description,
                "notify_url": self._config.notify_url,
                "time_expire": order.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            },
        )
        amount_minor = self._minor(fields.get("total_amount"), "total_amount")
        currency = fields.get("currency", "")
        if (amount_minor, currency) != (order.amount_minor, order.currency):
            raise AmountMismatch(
                self.name, order.out_trade_no, order.amount_minor, amount_minor, order.currency, currency
            )
        return VoucherResult(
            order.out_trade_no, self._field(fields, "trade_no"), self._field(fields, "qr_code"), order.expires_at
        )

    async def query(self, out_trade_no: str) -> ChannelOrderStatus:
        return self._status(await self._call("query", "trade.query", {"out_trade_no": out_trade_no}))

    async def close(self, out_trade_no: str) -> None:
        await self._call("close", "trade.close", {"out_trade_no": out_trade_no})

    async def refund(self, request: RefundRequest) -> RefundResult:
        result = self._refund_result(
            await self._call(
                "refund",
                "trade.refund",
                {
                    "out_trade_no": request.out_trade_no,
                    "out_request_no": request.out_refund_no,
                    "refund_amount": minor_to_major(request.amount_minor),
                    "refund_reason": request.reason,
                },
            )
        )
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
        fields = await self._call("query_refund", "trade.refund.query", {"out_request_no": out_refund_no})
        return self._refund_result(fields)

    def verify_notify(self, headers: Mapping[str, str], raw_body: bytes, now_s: int) -> NotifyEvent:
        try:
            fields = dict(parse_qsl(raw_body.decode(), keep_blank_values=True, strict_parsing=True))
        except (UnicodeDecodeError, ValueError) as error:
            raise MalformedResponse(self.name, f"notify body: {error}") from error
        if fields.get("app_id") != self._config.merchant_id or not signing.bank_verify(self._config.key, fields):
            raise BadSignature(self.name, "notify signature does not match")
        try:
            sent_s = int(_bank_time(fields.get("notify_time", "")).timestamp())
        except ValueError as error:
            raise MalformedResponse(self.name, f"notify_time {fields.get('notify_time')!r}") from error
        if abs(now_s - sent_s) > self._config.notify_window_s:
            raise StaleNotify(self.name, sent_s, now_s, self._config.notify_window_s)
        status = self._status(fields)
        return NotifyEvent(
            notify_id=self._field(fields, "notify_id"),
            out_trade_no=status.out_trade_no,
            status=status.status,
            amount_minor=status.amount_minor,
            currency=status.currency,
            channel_txn_id=self._field(fields, "trade_no"),
            paid_at=status.paid_at,
        )

    def notify_ack(self) -> NotifyAnswer:
        return NotifyAnswer(200, "text/plain", b"success")

    def notify_nack(self) -> NotifyAnswer:
        return NotifyAnswer(200, "text/plain", b"fail")

    async def fetch_statement(self, day: date) -> Statement:
        url = f"{self._config.base_url.rstrip('/')}/sim/statements/{day.isoformat()}"
        answer = await exchange(self._session, self.name, "fetch_statement", "GET", url, self._config.timeout_s)
        if answer.status != 200:
            raise ChannelUnavailable(self.name, "fetch_statement", answer.status, "statement not served")
        return parse_bank_statement(self.name, day, answer.body.decode("utf-8", "replace"))

    async def create_payout(self, request: PayoutRequest) -> PayoutResult:
        biz = bank_payouts.create_biz(self.name, request)
        try:
            fields = await self._call("create_payout", bank_payouts.CREATE_METHOD, biz)
        except ChannelRejected as refused:
            raise bank_payouts.create_refusal(refused) from None
        return bank_payouts.created_result(self.name, request, fields)

    async def query_payout(self, out_payout_no: str) -> PayoutResult:
        fields = await self._call("query_payout", bank_payouts.QUERY_METHOD, {"out_biz_no": out_payout_no})
        return bank_payouts.payout_result(self.name, out_payout_no, fields)


# Checked by mypy: the class satisfies the Channel protocol with the registry's constructor.
ADAPTER: Callable[[aiohttp.ClientSession, ChannelConfig], Channel] = BankSimChannel
