"""The hot-merchant workload: funded customer wallets paying a merchant with PAY_WALLET entries.

Every payment debits a customer wallet, passes through gateway transit and credits the merchant's
pending settlement and fee income (accounts/rules.py). Each mode gets its own freshly opened
accounts, so modes measured back to back on the same servers never share a row, and its own entry
ref so the money checks can count exactly its payments.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg

from accounts.journal import LegDraft, make_entry
from accounts.model import AccountId, AccountKind, AccountSpec, Side
from accounts.rules import build_entry
from accounts.store import open_account, post_entry
from accounts.subjects import ROLE_SUBJECTS
from bench.money import MoneyScope
from engine.booking import Booker
from engine.txn_no import TxnNoGenerator

CURRENCY = "CNY"
AMOUNT_MINOR = 1_000
FEE_MINOR = 6
FUNDING_MINOR = 10**10  # per customer: far more than any run can spend, so no payment is refused
CUSTOMERS_PER_WORKER = 8  # a worker's payments rotate over its own wallets: customers never contend


@dataclass
class WorkloadAccounts:
    """One mode's accounts. With a shared merchant every worker's list holds the same ids."""

    mode: str
    ref: str
    funding: str
    customers: list[list[str]]  # per worker
    merchant: list[str]  # per worker
    fee: list[str]
    transit: list[str]
    paid: list[int] = field(default_factory=list)  # per worker: acknowledged payments

    @property
    def shared_ids(self) -> list[str]:
        """The merchant-side accounts (distinct ones per worker in the reference mode)."""
        return sorted(set(self.merchant) | set(self.fee) | set(self.transit))

    @property
    def all_ids(self) -> list[str]:
        return [self.funding, *(c for cs in self.customers for c in cs), *self.shared_ids]

    def money_scope(self) -> MoneyScope:
        payments = sum(self.paid)
        n_customers = sum(len(cs) for cs in self.customers)
        expected: dict[str, int] = {self.funding: n_customers * FUNDING_MINOR}
        for worker, count in enumerate(self.paid):
            for role_ids, per_payment in ((self.merchant, AMOUNT_MINOR - FEE_MINOR), (self.fee, FEE_MINOR),
                                          (self.transit, 0)):
                expected[role_ids[worker]] = expected.get(role_ids[worker], 0) + count * per_payment
        return MoneyScope(
            label=f"hot-merchant/{self.mode}", account_ids=self.all_ids, refs=[self.ref],
            expected_entries=payments, expected_totals=expected,
        )


def _new_id(prefix: str) -> str:
    return f"bench_{prefix}_{uuid.uuid4().hex[:12]}"


async def _open(conn: asyncpg.Connection, role: str, kind: AccountKind, owner: str) -> str:
    spec = AccountSpec(id=AccountId(_new_id(role)), kind=kind, owner_id=owner, role=role,
                       subject_code=ROLE_SUBJECTS[role], currency=CURRENCY)
    return (await open_account(conn, spec)).id


async def open_workload(pool: asyncpg.Pool, txn_nos: TxnNoGenerator, mode: str, workers: int,
                        shared: bool) -> WorkloadAccounts:
    """Open and fund one mode's accounts (one funding entry crediting every wallet)."""
    run = uuid.uuid4().hex[:10]
    async with pool.acquire() as conn, conn.transaction():
        funding = await _open(conn, "channel_receivable", AccountKind.INTERNAL, f"bench_platform_{run}")
        customers = [[await _open(conn, "customer_wallet", AccountKind.CUSTOMER, _new_id("cust"))
                      for _ in range(CUSTOMERS_PER_WORKER)] for _ in range(workers)]
        sides: list[tuple[str, str, str]] = []
        for w in range(workers if not shared else 1):
            merchant_owner = _new_id("merch")
            sides.append((await _open(conn, "merchant_pending", AccountKind.MERCHANT, merchant_owner),
                          await _open(conn, "fee_income", AccountKind.INTERNAL, f"bench_platform_{run}_{w}"),
                          await _open(conn, "gateway_transit", AccountKind.INTERNAL, f"bench_platform_{run}_{w}")))
        if shared:
            sides = sides * workers
        all_customers = [c for cs in customers for c in cs]
        legs = [LegDraft(AccountId(funding), Side.DEBIT, FUNDING_MINOR * len(all_customers), CURRENCY)]
        legs += [LegDraft(AccountId(c), Side.CREDIT, FUNDING_MINOR, CURRENCY) for c in all_customers]
        now = datetime.now(UTC)
        await post_entry(conn, make_entry(txn_nos.next(now), "TOPUP", now.date(), legs, ref=f"bench-fund-{run}"))
    return WorkloadAccounts(
        mode=mode, ref=f"bench-{run}-{mode}", funding=funding, customers=customers,
        merchant=[s[0] for s in sides], fee=[s[1] for s in sides], transit=[s[2] for s in sides],
        paid=[0] * workers,
    )


class Payer:
    """The operation the load runner calls: one PAY_WALLET payment from the worker's next wallet."""

    def __init__(self, accounts: WorkloadAccounts, booker: Booker, txn_nos: TxnNoGenerator) -> None:
        self.accounts = accounts
        self.booker = booker
        self.txn_nos = txn_nos
        self._turn = [0] * len(accounts.customers)

    async def __call__(self, worker: int) -> None:
        a = self.accounts
        wallets = a.customers[worker]
        turn = self._turn[worker]
        self._turn[worker] = turn + 1
        now = datetime.now(UTC)
        entry = build_entry(
            "PAY_WALLET", self.txn_nos.next(now), now.date(), CURRENCY,
            {"customer_wallet": AccountId(wallets[turn % len(wallets)]),
             "gateway_transit": AccountId(a.transit[worker]), "merchant_pending": AccountId(a.merchant[worker]),
             "fee_income": AccountId(a.fee[worker])},
            {"amount": AMOUNT_MINOR, "fee": FEE_MINOR}, ref=a.ref,
        )
        await self.booker.book(entry)
        a.paid[worker] += 1  # counted only after the commit returned: the checks compare it to the journal
