"""Wire types of the reconciliation admin API. A run's summary, malformed lines and exception items are
documents whose keys follow the matching rules (engine/recon/matching.py), so they stay free-form here."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

import msgspec

from engine.audit.wire import OperatorName
from engine.desk.wire import Proposal, Reason
from engine.web.wire import ChannelName, Text


class ReconRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    channel: ChannelName
    date: date


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


class ItemResolve(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What happens to the difference's money: ``adjust`` proposes the adjustment the strategy suggests (a short
    written off to the loss account, a long booked to suspense, the channel's amount taken), ``reverse`` proposes
    reversing our entry; both close the difference when a second operator approves. ``explain``: no money moves,
    the note says why; it closes at once."""

    action: Literal["adjust", "reverse", "explain"]
    operator: OperatorName
    note: Reason
    evidence: Text | None = None


class ItemResolved(msgspec.Struct, frozen=True):
    id: int
    state: Literal["resolving", "resolved"]
    resolution: Literal["adjust", "reverse", "explain", "superseded"]
    proposal: Proposal | None  # the adjustment or reversal that closes it once approved
