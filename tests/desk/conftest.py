"""Desk tests use the real app of tests/api/conftest.py (``api``) on the session's PostgreSQL and Redis."""

from __future__ import annotations

from tests.api.conftest import api

__all__ = ["api"]
