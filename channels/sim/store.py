"""The simulator's in-memory book of orders and refunds, independent of wire format.

Both simulated channels share these rules (idempotent create, close only unpaid, refunds
never above the paid amount); each channel module only translates them to its own words.
"""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

# Refuse new orders past this many so a runaway load test cannot eat the machine's memory.
ORDERS_MAX = 2_000_000


class OrderState(enum.StrEnum):
    NOTPAY = "NOTPAY"
    SUCCESS = "SUCCESS"
    CLOSED = "CLOSED"
    REFUND = "REFUND"


class Refusal(enum.StrEnum):
    NOT_FOUND = "NOT_FOUND"
    PARAMS_MISMATCH = "PARAMS_MISMATCH"  # same out_trade_no / out_refund_no, other content
    ORDER_PAID = "ORDER_PAID"
    ORDER_CLOSED = "ORDER_CLOSED"
    NOT_PAID = "NOT_PAID"
    REFUND_EXCEEDS = "REFUND_EXCEEDS"
    INVALID = "INVALID"
    FULL = "FULL"


class SimRefused(Exception):
    def __init__(self, refusal: Refusal, detail: str) -> None:
        super().__init__(f"{refusal}: {detail}")
        self.refusal = refusal
        self.detail = detail


@dataclass
class SimRefund:
    out_refund_no: str
    out_trade_no: str
    refund_id: str
    amount_minor: int
    created_at: datetime


@dataclass
class SimOrder:
    out_trade_no: str
    channel_order_id: str
    amount_minor: int
    currency: str
    description: str
    notify_url: str
    created_at: datetime
    expires_at: datetime
    state: OrderState = OrderState.NOTPAY
    channel_txn_id: str | None = None
    paid_at: datetime | None = None
    paid_minor: int = 0
    refunded_minor: int = 0
    refunds: list[SimRefund] = field(default_factory=list)


class SimStore:
    """Orders by our out_trade_no; refunds by out_refund_no. Not thread-safe: one event loop."""

    def __init__(self, id_prefix: str) -> None:
        self._id_prefix = id_prefix
        self._seq = itertools.count(1)
        self.orders: dict[str, SimOrder] = {}
        self._by_channel_id: dict[str, SimOrder] = {}
        self.refunds: dict[str, SimRefund] = {}

    def _next_id(self, kind: str, now: datetime) -> str:
        return f"{self._id_prefix}{kind}{now:%Y%m%d}{next(self._seq):010d}"

    def create(
        self,
        out_trade_no: str,
        amount_minor: int,
        currency: str,
        description: str,
        notify_url: str,
        now: datetime,
        ttl_s: int,
    ) -> SimOrder:
        """A new order, or the existing one when the same order is sent again."""
        if amount_minor <= 0 or not out_trade_no:
            raise SimRefused(Refusal.INVALID, "amount must be positive and out_trade_no set")
        existing = self.orders.get(out_trade_no)
        if existing is not None:
            if (existing.amount_minor, existing.currency) != (amount_minor, currency):
                raise SimRefused(Refusal.PARAMS_MISMATCH, f"{out_trade_no} exists with other amount")
            return existing
        if len(self.orders) >= ORDERS_MAX:
            raise SimRefused(Refusal.FULL, "simulator order book is full")
        order = SimOrder(
            out_trade_no=out_trade_no,
            channel_order_id=self._next_id("P", now),
            amount_minor=amount_minor,
            currency=currency,
            description=description,
            notify_url=notify_url,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_s),
        )
        self.orders[out_trade_no] = order
        self._by_channel_id[order.channel_order_id] = order
        return order

    def get(self, out_trade_no: str, now: datetime) -> SimOrder:
        order = self.orders.get(out_trade_no)
        if order is None:
            raise SimRefused(Refusal.NOT_FOUND, f"no order {out_trade_no}")
        if order.state is OrderState.NOTPAY and now >= order.expires_at:
            order.state = OrderState.CLOSED
        return order

    def get_by_channel_id(self, channel_order_id: str, now: datetime) -> SimOrder:
        order = self._by_channel_id.get(channel_order_id)
        if order is None:
            raise SimRefused(Refusal.NOT_FOUND, f"no order with channel id {channel_order_id}")
        return self.get(order.out_trade_no, now)

    def close(self, out_trade_no: str, now: datetime) -> SimOrder:
        order = self.get(out_trade_no, now)
        if order.state in (OrderState.SUCCESS, OrderState.REFUND):
            raise SimRefused(Refusal.ORDER_PAID, f"{out_trade_no} is paid")
        order.state = OrderState.CLOSED
        return order

    def pay(self, order: SimOrder, paid_minor: int | None, now: datetime) -> SimOrder:
        """The payer pays; `paid_minor` lets tests make the channel report a wrong amount."""
        if order.state is OrderState.CLOSED:
            raise SimRefused(Refusal.ORDER_CLOSED, f"{order.out_trade_no} is closed")
        if order.state is not OrderState.NOTPAY:
            raise SimRefused(Refusal.ORDER_PAID, f"{order.out_trade_no} is paid")
        order.state = OrderState.SUCCESS
        order.channel_txn_id = self._next_id("T", now)
        order.paid_at = now
        order.paid_minor = order.amount_minor if paid_minor is None else paid_minor
        return order

    def refund(self, out_trade_no: str, out_refund_no: str, amount_minor: int, now: datetime) -> SimRefund:
        """Idempotent on out_refund_no; the sum of refunds never exceeds the paid amount."""
        existing = self.refunds.get(out_refund_no)
        if existing is not None:
            if (existing.out_trade_no, existing.amount_minor) != (out_trade_no, amount_minor):
                raise SimRefused(Refusal.PARAMS_MISMATCH, f"{out_refund_no} exists with other content")
            return existing
        order = self.get(out_trade_no, now)
        if order.state not in (OrderState.SUCCESS, OrderState.REFUND):
            raise SimRefused(Refusal.NOT_PAID, f"{out_trade_no} is {order.state}")
        if amount_minor <= 0 or order.refunded_minor + amount_minor > order.paid_minor:
            raise SimRefused(
                Refusal.REFUND_EXCEEDS,
                f"refund {amount_minor} with {order.refunded_minor} refunded of {order.paid_minor}",
            )
        refund = SimRefund(out_refund_no, out_trade_no, self._next_id("R", now), amount_minor, now)
        order.refunded_minor += amount_minor
        order.state = OrderState.REFUND
        order.refunds.append(refund)
        self.refunds[out_refund_no] = refund
        return refund

    def get_refund(self, out_refund_no: str) -> SimRefund:
        refund = self.refunds.get(out_refund_no)
        if refund is None:
            raise SimRefused(Refusal.NOT_FOUND, f"no refund {out_refund_no}")
        return refund

    def paid_on(self, day: date) -> list[SimOrder]:
        return [o for o in self.orders.values() if o.paid_at is not None and o.paid_at.date() == day]

    def refunded_on(self, day: date) -> list[SimRefund]:
        return [r for r in self.refunds.values() if r.created_at.date() == day]
