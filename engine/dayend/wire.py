"""Wire types of the day-end admin API. A day's report is a document whose keys follow the steps
(engine/dayend/flow.py), so it stays free-form here."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import msgspec


class DayEndRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    date: date | None = None  # default: the open accounting date
    # Close a date later than today (UTC) anyway: it moves the open date ahead of the calendar, irreversibly.
    force: bool = False


class DayEndView(msgspec.Struct, frozen=True):
    accounting_date: date
    status: str  # running | done | failed
    step: str  # switch | drain | balance | report | done
    attempts: int
    started_at: datetime
    finished_at: datetime | None
    error: str | None
    report: dict[str, Any] | None
