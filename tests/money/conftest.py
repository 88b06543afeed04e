"""The mixed-run money tests use the payout world (tests/payouts/conftest.py): the real app with its gateway and
payout worker, a real bank simulator, a database of its own."""

from __future__ import annotations

from tests.payouts.conftest import payout_db, world

__all__ = ["payout_db", "world"]
