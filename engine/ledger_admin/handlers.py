"""Admin (SRE) endpoints of the merchant API: the trial balance. (Merchants: engine/merchants/handlers.py.)"""

from __future__ import annotations

import msgspec
from aiohttp import web

from accounts.store import trial_balance
from engine.services import services_of
from engine.web.idempotency import json_response
from engine.web.route import RouteSpec


async def trial_balance_handler(request: web.Request) -> web.Response:
    async with services_of(request).pool.acquire() as conn:
        tb = await trial_balance(conn)
    body = {
        "holds": tb.holds, "holds_drained": tb.holds_drained, "buffered_legs": tb.buffered_legs,
        "applied": [{"currency": t.currency, "debit": t.debit_normal_minor, "credit": t.credit_normal_minor}
                    for t in tb.applied],
        "projected": [{"currency": t.currency, "debit": t.debit_normal_minor, "credit": t.credit_normal_minor}
                      for t in tb.projected],
        "mismatched_accounts": [list(m) for m in tb.mismatched_accounts],
    }
    return json_response(200, msgspec.json.encode(body))


ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/admin/trial-balance", trial_balance_handler, "Trial balance", None,
              errors=(401,), auth="admin"),
)
