"""One route of the table: method, path, handler, and the types that document and validate it.

Each domain's handlers module exports ``ROUTES``; engine/http/routes.py concatenates them, registers each
one and builds /openapi.json from the same entries.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class RouteSpec:
    method: str
    path: str
    handler: Handler
    summary: str
    response: type | None
    status: int = 200
    body: type | None = None
    query: type | None = None
    errors: tuple[int, ...] = field(default=(400, 401, 404))
    auth: str = "merchant"  # merchant | admin | none


POST_ERRORS = (400, 401, 402, 404, 409, 413, 422)
CONTROL_WRITE_ERRORS = (400, 401, 413, 422)  # 422: a malformed limit or rule definition
