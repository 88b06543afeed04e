"""Wire types shared by every operator action: who acted (the admin token authenticates the tool, the
operator field names the person) and one audit row as the admin API shows it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from msgspec import Meta

OperatorName = Annotated[str, Meta(min_length=1, max_length=64, pattern="^[A-Za-z0-9_.@-]+$")]


class AuditQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    subject_kind: Annotated[str, Meta(min_length=1, max_length=64)] | None = None
    subject_id: Annotated[str, Meta(min_length=1, max_length=128)] | None = None
    operator: OperatorName | None = None
    limit: Annotated[int, Meta(ge=1, le=1000)] = 100


class AuditEntryView(msgspec.Struct, frozen=True):
    id: int
    at: datetime
    operator: str
    action: str
    subject_kind: str
    subject_id: str
    detail: dict[str, Any]


class AuditList(msgspec.Struct, frozen=True):
    data: list[AuditEntryView]
