"""Money checks for payouts, reusable by tests, benchmarks and operators.

Frozen amounts = Σ open payouts: every frozen account's balance equals the sum of the payouts still open on
it (pending, sending, processing). Together with the ledger's trial balance (Σ debits = Σ credits, balances =
Σ applied legs) this shows that no payout froze, paid or returned money twice or lost it.
"""

from __future__ import annotations

from dataclasses import dataclass

from accounts.store import Conn, trial_balance

FROZEN_ROLES = ("customer_frozen", "merchant_frozen")


@dataclass(frozen=True, slots=True)
class FrozenMismatch:
    account_id: str
    balance_minor: int
    open_payouts_minor: int


@dataclass(frozen=True, slots=True)
class PayoutMoneyCheck:
    trial_balance_holds: bool
    frozen_mismatches: tuple[FrozenMismatch, ...]
    frozen_accounts: int

    @property
    def holds(self) -> bool:
        return self.trial_balance_holds and not self.frozen_mismatches


async def frozen_mismatches(conn: Conn, account_ids: list[str] | None = None) -> list[FrozenMismatch]:
    """Frozen accounts (all, or those given) whose balance is not Σ of their open payouts."""
    rows = await conn.fetch(
        "SELECT a.id, a.balance, coalesce(o.total, 0) AS open_total FROM accounts a"
        " LEFT JOIN (SELECT frozen_account_id, sum(amount) AS total FROM payouts"
        "            WHERE status IN ('pending', 'sending', 'processing') GROUP BY frozen_account_id) o"
        "   ON o.frozen_account_id = a.id"
        " WHERE a.role = ANY($1::text[]) AND ($2::text[] IS NULL OR a.id = ANY($2::text[]))"
        "   AND a.balance <> coalesce(o.total, 0)",
        list(FROZEN_ROLES), account_ids)
    return [FrozenMismatch(r["id"], int(r["balance"]), int(r["open_total"])) for r in rows]


async def check_payout_money(conn: Conn) -> PayoutMoneyCheck:
    """Trial balance (drained: nothing buffered) and frozen = Σ open payouts, over the whole database."""
    balance = await trial_balance(conn)
    mismatches = await frozen_mismatches(conn)
    count = await conn.fetchval("SELECT count(*) FROM accounts WHERE role = ANY($1::text[])", list(FROZEN_ROLES))
    return PayoutMoneyCheck(balance.holds_drained, tuple(mismatches), int(count))
