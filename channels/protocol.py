"""What a payment channel promises, in our own words.

Every channel adapter converts its wire format into these values in one place. Amounts
are integer minor units, statuses are our normalized enums, and failures are the errors of
`channels.errors`. Nothing here knows about HTTP.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import date, datetime
from typing import NewType, Protocol

import msgspec

ChannelName = NewType("ChannelName", str)
OutTradeNo = NewType("OutTradeNo", str)
OutRefundNo = NewType("OutRefundNo", str)


class ChannelStatus(enum.StrEnum):
    """Where a payment stands at the channel."""

    PENDING = "pending"  # created, the payer has not paid (yet)
    SUCCEEDED = "succeeded"
    CLOSED = "closed"  # closed or expired unpaid; no money moved
    FAILED = "failed"
    REFUNDED = "refunded"  # paid, then (partly) refunded: money moved


class RefundStatus(enum.StrEnum):
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class PayoutStatus(enum.StrEnum):
    """Where a payout (money out to a bank card or account) stands at the channel."""

    PROCESSING = "processing"  # accepted; the bank has not settled it yet
    SUCCEEDED = "succeeded"  # the money left: final
    FAILED = "failed"  # refused or bounced after acceptance; no money left: final


class StatementKind(enum.StrEnum):
    PAYMENT = "payment"
    REFUND = "refund"
    PAYOUT = "payout"


class ChannelConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Everything an adapter needs besides its HTTP session; built by the engine from settings."""

    name: str
    base_url: str
    merchant_id: str
    key: str
    notify_url: str
    timeout_s: float = 3.0
    # Identifies the key in signatures so keys can be rotated; never a secret itself.
    key_serial: str = "1"
    notify_window_s: int = 300


class VoucherRequest(msgspec.Struct, frozen=True):
    out_trade_no: str
    amount_minor: int
    currency: str
    description: str
    expires_at: datetime


class VoucherResult(msgspec.Struct, frozen=True):
    """What the payer needs: the channel's order id and a URL or QR payload to pay with."""

    out_trade_no: str
    channel_order_id: str
    pay_url: str
    expires_at: datetime | None


class ChannelOrderStatus(msgspec.Struct, frozen=True):
    out_trade_no: str
    status: ChannelStatus
    amount_minor: int
    currency: str
    channel_txn_id: str | None = None
    paid_at: datetime | None = None
    refunded_minor: int = 0


class RefundRequest(msgspec.Struct, frozen=True):
    out_trade_no: str
    out_refund_no: str
    amount_minor: int
    # The payment's total; wallet channels check it against their own record.
    payment_amount_minor: int
    currency: str
    reason: str = ""


class RefundResult(msgspec.Struct, frozen=True):
    out_refund_no: str
    out_trade_no: str
    channel_refund_id: str
    amount_minor: int
    currency: str
    status: RefundStatus


class PayoutDestination(msgspec.Struct, frozen=True):
    """Where a payout goes. The engine validates `number` (digits) before any channel sees it."""

    kind: str  # "bank_card" | "bank_account"
    number: str
    holder_name: str
    bank_code: str | None = None


class PayoutRequest(msgspec.Struct, frozen=True):
    out_payout_no: str
    amount_minor: int
    currency: str
    destination: PayoutDestination
    description: str = ""


class PayoutResult(msgspec.Struct, frozen=True):
    """A payout as the channel last reported it; `failure_code` is set when `status` is FAILED.

    `amount_minor` and `currency` are what the channel says the payout is for (None when its wire does not
    say): the caller compares them with what it asked for before booking anything."""

    out_payout_no: str
    status: PayoutStatus
    channel_payout_no: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    finished_at: datetime | None = None
    amount_minor: int | None = None
    currency: str | None = None


class NotifyEvent(msgspec.Struct, frozen=True):
    """A verified payment notify. `notify_id` lets the receiver drop repeats cheaply."""

    notify_id: str
    out_trade_no: str
    status: ChannelStatus
    amount_minor: int
    currency: str
    channel_txn_id: str
    paid_at: datetime | None


class StatementLine(msgspec.Struct, frozen=True):
    """One line of a channel statement.

    Payout lines (`kind` PAYOUT) carry the out_payout_no both in `out_payout_no` and in
    `out_trade_no` (a payout has no payment), their `status` is a `PayoutStatus` and
    `channel_txn_id` is the channel's payout number.
    """

    kind: StatementKind
    out_trade_no: str
    channel_txn_id: str
    amount_minor: int
    currency: str
    status: ChannelStatus | RefundStatus | PayoutStatus
    occurred_at: datetime
    out_refund_no: str | None = None
    out_payout_no: str | None = None


class MalformedLine(msgspec.Struct, frozen=True):
    """A statement line we could not read; `line_no` counts from 1 like an editor."""

    line_no: int
    text: str
    reason: str


class Statement(msgspec.Struct, frozen=True):
    """A parsed daily statement: good lines, and bad lines kept for the reconciliation report."""

    channel: str
    day: date
    lines: tuple[StatementLine, ...]
    malformed: tuple[MalformedLine, ...]


class NotifyAnswer(msgspec.Struct, frozen=True):
    """The HTTP answer a channel expects to a notify, in that channel's own format."""

    status: int
    content_type: str
    body: bytes


class Channel(Protocol):
    """One payment channel (bank, wallet) as the gateway and callbacks use it.

    Every call may raise `ChannelTimeout` (outcome unknown: query before retrying),
    `ChannelUnavailable` (nothing happened), `ChannelRejected` (a business refusal),
    `MalformedResponse`, `BadSignature` or `AmountMismatch`.
    """

    @property
    def name(self) -> str: ...

    async def create_voucher(self, order: VoucherRequest) -> VoucherResult:
        """Create (or, for a repeated out_trade_no, return again) the channel order."""
        ...

    async def query(self, out_trade_no: str) -> ChannelOrderStatus:
        """Ask the channel where the payment stands; `OrderNotFound` when it has none."""
        ...

    async def close(self, out_trade_no: str) -> None:
        """Close an unpaid order; `ChannelRejected` when it is already paid."""
        ...

    async def refund(self, request: RefundRequest) -> RefundResult:
        """Refund part or all of a paid order; idempotent on out_refund_no."""
        ...

    async def query_refund(self, out_refund_no: str) -> RefundResult: ...

    def verify_notify(self, headers: Mapping[str, str], raw_body: bytes, now_s: int) -> NotifyEvent:
        """Check signature and replay window, then parse.

        Raises BadSignature, StaleNotify or MalformedResponse; never returns unverified data.
        """
        ...

    def notify_ack(self) -> NotifyAnswer: ...

    def notify_nack(self) -> NotifyAnswer: ...

    async def fetch_statement(self, day: date) -> Statement:
        """Download and parse the statement; unreadable lines land in `Statement.malformed`."""
        ...

    async def create_payout(self, request: PayoutRequest) -> PayoutResult:
        """Send money to a bank card or account; idempotent per out_payout_no at the channel.

        A repeat with the same out_payout_no returns the payout as it stands now (no second
        transfer). `ChannelTimeout` / `ChannelUnavailable` leave the outcome unknown to the
        caller, which must `query_payout` and never guess; so does `UnclearRefusal` (a business
        answer such as a "system error" that does not say whether the channel acted). Any other
        `ChannelRejected` means the channel refused this request and moved nothing. `AmountMismatch`:
        the channel answered for our out_payout_no with another amount or currency (so it holds it).
        """
        ...

    async def query_payout(self, out_payout_no: str) -> PayoutResult:
        """Ask where the payout stands; `OrderNotFound` when the channel never accepted it."""
        ...
