"""Opaque object ids with a type prefix (``pay_``, ``rf_``, ``vch_``, ``cus_``, ``evt_``, ...).

Random 96 bits: unguessable across merchants, so an id reveals nothing about volume or order.
"""

from __future__ import annotations

import secrets

PAYMENT, REFUND, VOUCHER, CUSTOMER, EVENT, TOPUP, MERCHANT, ACCOUNT = (
    "pay", "rf", "vch", "cus", "evt", "tu", "mch", "acct")


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"
