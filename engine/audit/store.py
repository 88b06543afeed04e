"""SQL of the audit trail. ``record`` runs inside the caller's transaction, so an action and its audit row
commit or roll back together."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from accounts.store import Conn
from engine.audit.wire import AuditEntryView

_INSERT = """
INSERT INTO audit_log (operator, action, subject_kind, subject_id, detail)
VALUES ($1, $2, $3, $4, $5::jsonb) RETURNING id
"""

_LIST = """
SELECT id, at, operator, action, subject_kind, subject_id, detail::text AS detail FROM audit_log
WHERE ($1::text IS NULL OR subject_kind = $1) AND ($2::text IS NULL OR subject_id = $2)
  AND ($3::text IS NULL OR operator = $3)
ORDER BY id DESC LIMIT $4
"""


async def record(conn: Conn, operator: str, action: str, subject_kind: str, subject_id: str,
                 detail: Mapping[str, Any] | None = None) -> int:
    """Append one audit row; returns its id."""
    return int(await conn.fetchval(_INSERT, operator, action, subject_kind, subject_id,
                                   orjson.dumps(dict(detail or {})).decode()))


async def entries(conn: Conn, subject_kind: str | None = None, subject_id: str | None = None,
                  operator: str | None = None, limit: int = 100) -> list[AuditEntryView]:
    """Newest first."""
    rows = await conn.fetch(_LIST, subject_kind, subject_id, operator, limit)
    return [AuditEntryView(r["id"], r["at"], r["operator"], r["action"], r["subject_kind"], r["subject_id"],
                           orjson.loads(r["detail"])) for r in rows]
