"""补单: book a channel payment's success that only the channel's statement told us about.

The statement line goes through the gateway's own "the channel says this order is paid" path
(``engine.gateway.outcomes.apply_paid``), exactly as a notify or a janitor query would: it locks the
channel order, checks the amount and currency against the payment, claims the channel transaction
id (unique per channel), moves the payment to succeeded and books PAY_CHANNEL with the payment's
transaction number, all in one transaction. So a notify and a statement reporting the same payment
book it once between them, and a statement processed twice books once.
"""

from __future__ import annotations

import enum
from datetime import datetime

from engine.gateway.context import Gateway
from engine.gateway.outcomes import ChannelPaid, Verdict, apply_paid


class SupplementResult(enum.StrEnum):
    BOOKED = "booked"
    ALREADY = "already"  # the notify (or an earlier run) booked this very channel transaction
    REFUSED = "refused"  # the gateway refused it (amount, unknown order, ...): its exception record says why


_RESULT = {Verdict.BOOKED: SupplementResult.BOOKED, Verdict.DUPLICATE: SupplementResult.ALREADY}


async def book_supplement(gw: Gateway, run_id: str, channel: str, out_trade_no: str, channel_txn_id: str,
                          amount_minor: int, currency: str, payment_id: str, now: datetime) -> SupplementResult:
    """Apply the statement's success of ``out_trade_no``; record the supplement when it booked."""
    verdict = await apply_paid(gw, ChannelPaid(channel, out_trade_no, amount_minor, currency, channel_txn_id,
                                               None, "statement"), now)
    result = _RESULT.get(verdict, SupplementResult.REFUSED)
    if result is SupplementResult.BOOKED:
        async with gw.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO recon_supplements (channel, channel_txn_id, payment_id, run_id, txn_no, amount)"
                " SELECT $1, $2, $3, $4, p.txn_no, $5 FROM payments p WHERE p.id = $3"
                " ON CONFLICT DO NOTHING", channel, channel_txn_id, payment_id, run_id, amount_minor)
    return result
