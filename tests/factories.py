"""Test helpers that open accounts with random ids through the real store."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, date, datetime

from accounts.model import AccountId, AccountKind, AccountSpec, OverdraftMode, OverdraftRule
from accounts.store import Account, Conn, open_account
from accounts.subjects import ROLE_SUBJECTS
from engine.txn_no import TxnNoGenerator

_TXN = TxnNoGenerator(system=99, environment=9, shard=0, node=9999)
_counter = itertools.count()


def new_txn_no() -> str:
    return _TXN.next(datetime.now(UTC))


def today() -> date:
    return datetime.now(UTC).date()


def rand_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


async def open_test_account(
    conn: Conn,
    role: str = "customer_wallet",
    currency: str = "CNY",
    kind: AccountKind = AccountKind.CUSTOMER,
    overdraft: OverdraftMode = OverdraftMode.NEVER,
    limit_minor: int = 0,
    hot: bool = False,
    owner_id: str | None = None,
) -> Account:
    return await open_account(
        conn,
        AccountSpec(
            id=AccountId(rand_id("acct")),
            kind=kind,
            owner_id=owner_id or rand_id("own"),
            role=role,
            subject_code=ROLE_SUBJECTS[role],
            currency=currency,
            overdraft=OverdraftRule(overdraft, limit_minor),
            hot=hot,
        ),
    )
