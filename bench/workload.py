"""The hot-merchant workload: funded customers paying a merchant with wallet payments.

Every payment debits a customer wallet, passes through gateway transit and credits the merchant's
pending settlement and fee income (accounts/rules.py). Each mode gets its own freshly opened
merchants, customers and accounts, so modes measured back to back on the same servers never share a
row, and its own entry ref so the money checks can count exactly its payments.

Two shapes of one payment (``--workload``):
- ``payment`` (default): what ``POST /v1/payments`` does for a wallet payment, minus HTTP: one
  PostgreSQL transaction that inserts the payment row with its transition and webhook outbox event
  (engine.payments.store.insert_payment) and posts the PAY_WALLET entry, then commits. A synchronous
  hot account's row stays locked from the posting until the COMMIT round trip returns.
- ``entry``: the PAY_WALLET entry alone, posted as one statement (Booker.book): the lock is held only
  inside the server, so this shape flatters synchronous hot posting; kept to show by how much.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import asyncpg

from accounts.journal import EntryDraft, LegDraft, make_entry
from accounts.model import AccountId, AccountKind, AccountSpec, Side
from accounts.rules import build_entry
from accounts.store import open_account, post_entry
from accounts.subjects import ROLE_SUBJECTS
from bench.money import MoneyScope
from engine.booking import Booker
from engine.customers.store import insert_customer
from engine.db import release_without_reset
from engine.merchants.pricing import Pricing
from engine.merchants.store import insert_merchant
from engine.payments.batch_store import BatchPayment
from engine.payments.batcher import PaymentBatcher
from engine.payments.states import NEW, PaymentEvent, PaymentStatus
from engine.payments.store import PAYER, NewPayment, OutboxEvent, Transition, insert_payment
from engine.txn_no import TxnNoGenerator

CURRENCY = "CNY"
AMOUNT_MINOR = 1_000
FEE_MINOR = 6
FUNDING_MINOR = 10**10  # per customer: far more than any run can spend, so no payment is refused
CUSTOMERS_PER_WORKER = 8  # a worker's payments rotate over its own wallets: customers never contend
SHAPES = ("payment", "entry")


@dataclass
class WorkloadAccounts:
    """One mode's accounts. With a shared merchant every worker's list holds the same ids."""

    mode: str
    ref: str
    funding: str
    customers: list[list[str]]  # wallet account ids, per worker
    merchant: list[str]  # per worker
    fee: list[str]
    transit: list[str]
    merchant_ids: list[str] = field(default_factory=list)  # per worker: the merchant row paid
    customer_ids: list[list[str]] = field(default_factory=list)  # per worker, parallel to ``customers``
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
    """Open and fund one mode's merchants and customers (one funding entry crediting every wallet)."""
    run = uuid.uuid4().hex[:10]
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        funding = await _open(conn, "channel_receivable", AccountKind.INTERNAL, f"bench_platform_{run}")
        sides: list[tuple[str, str, str, str]] = []
        for w in range(workers if not shared else 1):
            merchant_id = _new_id("merch")
            await insert_merchant(conn, merchant_id, f"bench {mode} {w}", os.urandom(16),
                                  Pricing(fee_fixed_minor=FEE_MINOR))
            sides.append((merchant_id,
                          await _open(conn, "merchant_pending", AccountKind.MERCHANT, merchant_id),
                          await _open(conn, "fee_income", AccountKind.INTERNAL, f"bench_platform_{run}_{w}"),
                          await _open(conn, "gateway_transit", AccountKind.INTERNAL, f"bench_platform_{run}_{w}")))
        if shared:
            sides = sides * workers
        customer_ids: list[list[str]] = []
        customers: list[list[str]] = []
        for w in range(workers):
            ids = [_new_id("cust") for _ in range(CUSTOMERS_PER_WORKER)]
            wallets: list[str] = []
            for cid in ids:
                wallets.append((await insert_customer(conn, cid, sides[w][0], cid, CURRENCY, _new_id("wallet"), now))
                               .wallet_account_id)
            customer_ids.append(ids)
            customers.append(wallets)
        all_customers = [c for cs in customers for c in cs]
        legs = [LegDraft(AccountId(funding), Side.DEBIT, FUNDING_MINOR * len(all_customers), CURRENCY)]
        legs += [LegDraft(AccountId(c), Side.CREDIT, FUNDING_MINOR, CURRENCY) for c in all_customers]
        await post_entry(conn, make_entry(txn_nos.next(now), "TOPUP", now.date(), legs, ref=f"bench-fund-{run}"))
    return WorkloadAccounts(
        mode=mode, ref=f"bench-{run}-{mode}", funding=funding, customers=customers,
        merchant=[s[1] for s in sides], fee=[s[2] for s in sides], transit=[s[3] for s in sides],
        merchant_ids=[s[0] for s in sides], customer_ids=customer_ids, paid=[0] * workers,
    )


_TRANSITION = Transition(NEW, PaymentStatus.SUCCEEDED.value, PaymentEvent.WALLET_DEBITED.value)


class Payer:
    """The operation the load runner calls: one wallet payment from the worker's next customer.

    With a ``batcher`` (the batched mode) the same payment, rows and entry, goes through the in-process
    batcher (engine/payments/batcher.py) instead of a transaction of its own: many payers' payments are
    booked by one statement and one commit."""

    def __init__(self, accounts: WorkloadAccounts, booker: Booker, txn_nos: TxnNoGenerator,
                 shape: str = "payment", batcher: PaymentBatcher | None = None) -> None:
        if shape not in SHAPES:
            raise ValueError(f"unknown workload shape {shape!r}; known: {', '.join(SHAPES)}")
        self.accounts = accounts
        self.booker = booker
        self.txn_nos = txn_nos
        self.shape = shape
        self.batcher = batcher
        self._turn = [0] * len(accounts.customers)

    async def __call__(self, worker: int) -> None:
        a = self.accounts
        turn = self._turn[worker]
        self._turn[worker] = turn + 1
        slot = turn % len(a.customers[worker])
        now = datetime.now(UTC)
        txn_no = self.txn_nos.next(now)
        entry = build_entry(
            "PAY_WALLET", txn_no, now.date(), CURRENCY,
            {"customer_wallet": AccountId(a.customers[worker][slot]),
             "gateway_transit": AccountId(a.transit[worker]), "merchant_pending": AccountId(a.merchant[worker]),
             "fee_income": AccountId(a.fee[worker])},
            {"amount": AMOUNT_MINOR, "fee": FEE_MINOR}, ref=a.ref,
        )
        if self.shape == "entry":
            await self.booker.book(entry)
        else:
            # A batched entry's ref is its payment's id (as in the API): the mode's ref prefixes it (bench.money).
            payment_id = f"{a.ref}/{txn_no}" if self.batcher is not None else f"pay_{txn_no}"
            row = NewPayment(payment_id, a.merchant_ids[worker], payment_id, AMOUNT_MINOR, CURRENCY, "wallet", None,
                             a.customer_ids[worker][slot], PaymentStatus.SUCCEEDED.value, FEE_MINOR, txn_no, None, {},
                             now + timedelta(minutes=30), now, None)
            event = OutboxEvent(f"evt_{txn_no}", "payment.succeeded", b'{"object":"payment"}')
            if self.batcher is not None:
                await self._batched(row, event, entry, a.customers[worker][slot])
                a.paid[worker] += 1
                return
            async with self.booker.transaction() as tx:
                await insert_payment(tx.conn, row, _TRANSITION, None, event, None)
                await tx.post(entry)
                release_without_reset(tx.conn)  # as the API's payment flow does: transaction-local state only
        a.paid[worker] += 1  # counted only after the commit returned: the checks compare it to the journal

    async def _batched(self, row: NewPayment, event: OutboxEvent, entry: EntryDraft, wallet: str) -> None:
        """The payment through the batcher: the payer's wallet leg named PAYER, found by the batch statement
        with its customer check (as the API's flow hands it over). Raises the item's refusal, if any."""
        assert self.batcher is not None
        legs = tuple(replace(leg, account_id=PAYER) if leg.account_id == wallet else leg for leg in entry.legs)
        result = await self.batcher.submit(BatchPayment(row, _TRANSITION, event, replace(entry, legs=legs), None, None,
                                                        None, None))
        if result.error is not None:
            raise result.error
