"""Wire types of the reconciliation admin API. A run's summary, malformed lines and exception items are
documents whose keys follow the matching rules (engine/recon/matching.py), so they stay free-form here."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

import msgspec

from engine.web.wire import ChannelName, Text


class ReconRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    channel: ChannelName
    date: date


class ItemResolve(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    note: Text


class ReconView(msgspec.Struct, frozen=True):
    id: str
    channel: str
    date: date
    status: str  # running | done | refused
    error: str | None
    started_at: datetime
    finished_at: datetime | None
    counts: dict[str, int]  # outcome -> items
    counts_by_state: dict[str, dict[str, int]]  # outcome -> state -> items
    summary: dict[str, Any] | None
    malformed: list[dict[str, Any]]
    exceptions: list[dict[str, Any]]  # at most EXCEPTIONS_LISTED_MAX, oldest first


class ItemResolved(msgspec.Struct, frozen=True):
    id: int
    state: Literal["resolved"]
