"""Settlement tests run the whole engine in their own database, as reconciliation's do (tests/recon/conftest.py)."""

from __future__ import annotations

from tests.recon.conftest import db, world  # noqa: F401  (module-scoped: this module gets its own)
