"""Admin route of the audit trail: GET /admin/audit (newest first, filtered by subject or operator)."""

from __future__ import annotations

from aiohttp import web

from engine.audit import store, wire
from engine.services import services_of
from engine.web.decoding import decode_query
from engine.web.idempotency import ok_json
from engine.web.route import RouteSpec


async def list_audit(request: web.Request) -> web.Response:
    q = decode_query(request.query, wire.AuditQuery)
    async with services_of(request).pool.acquire() as conn:
        rows = await store.entries(conn, q.subject_kind, q.subject_id, q.operator, q.limit)
    return ok_json(wire.AuditList(rows))


ROUTES = [
    RouteSpec("GET", "/admin/audit", list_audit, "The operators' audit trail, newest first", wire.AuditList,
              query=wire.AuditQuery, errors=(400, 401), auth="admin"),
]
