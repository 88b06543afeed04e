"""Wire types of the reconciliation admin API. A run's summary, malformed lines and exception items are
documents whose keys follow the matching rules (engine/recon/matching.py), so they stay free-form here."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from engine.audit.wire import OperatorName
from engine.desk.wire import Proposal, Reason
from engine.web.wire import ChannelName, Text

RUNS_LISTED_MAX = 500
RunStatus = Literal["running", "done", "refused"]


class ReconRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    channel: ChannelName
    date: date


class RerunRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Re-reconcile a date against the channel's statement as it is now (corrected or supplementary)."""

    channel: ChannelName
    date: date
    operator: OperatorName


class RunsQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    channel: ChannelName | None = None
    date: date | None = None
    status: RunStatus | None = None
    superseded: bool | None = None  # true: only superseded runs; false: only live ones
    limit: Annotated[int, Meta(ge=1, le=RUNS_LISTED_MAX)] = 100


class ReconView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    channel: str
    date: date
    status: str  # running | done | refused
    error: str | None
    started_at: datetime
    finished_at: datetime | None
    counts: dict[str, int]  # outcome -> items, counted now
    counts_by_state: dict[str, dict[str, int]]  # outcome -> state -> items, counted now
    summary: dict[str, Any] | None  # its outcomes, actions and counts_by_state are the live counts too
    malformed: list[dict[str, Any]]
    exceptions: list[dict[str, Any]]  # at most EXCEPTIONS_LISTED_MAX, oldest first
    generation: int  # 1: the first run of the channel and date; n + 1 supersedes run n
    supersedes: str | None
    superseded_by: str | None  # a superseded run's items count in no live figure
    superseded_at: datetime | None
    operator: str | None  # who asked for this re-run


class RunListed(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    channel: str
    date: date
    status: str
    generation: int
    started_at: datetime
    finished_at: datetime | None
    supersedes: str | None
    superseded_by: str | None
    operator: str | None
    counts: dict[str, int]  # outcome -> items, counted now
    open: int  # items still open


class RunList(msgspec.Struct, frozen=True):
    data: list[RunListed]


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
