"""Merchant-facing events the gateway writes: the payment as the API shows it, into the outbox.

Written in the same transaction as the change they report, so a merchant never hears of a voucher
or a success that was rolled back, and never misses one that committed.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from accounts.store import Conn
from engine.payments.store import get_payment
from engine.payments.views import payment_view
from engine.webhooks.store import insert_outbox


async def write_payment_event(conn: Conn, merchant_id: str, payment_id: str, type_: str, now: datetime) -> bytes:
    """Insert `type_` (voucher.ready, payment.succeeded, ...) carrying the payment as it now stands."""
    payment = await get_payment(conn, merchant_id, payment_id)
    assert payment is not None, f"payment {payment_id} vanished inside its own transaction"
    body = msgspec.json.encode(payment_view(payment))
    await insert_outbox(conn, merchant_id, type_, payment_id, body, now)
    return body
