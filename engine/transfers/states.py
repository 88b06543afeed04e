"""What a transfer can be: its source, and its one status (a row exists only once its money moved)."""

from __future__ import annotations

import enum
from typing import Literal

TransferSource = Literal["customer", "merchant"]  # the payer's wallet, or the merchant's available balance


class TransferStatus(enum.StrEnum):
    SUCCEEDED = "succeeded"
