"""What a path parameter may look like: one pattern per name, enforced before any handler or query runs
and published in /openapi.json, so a NUL byte or a 10 kB id is a 400 in the error shape, never a 500 from
PostgreSQL (text cannot hold NUL) and never a query."""

from __future__ import annotations

import re

from aiohttp import web
from aiohttp.typedefs import Handler

from engine.web.errors import invalid_request

OBJECT_ID = "^[A-Za-z0-9_]{1,64}$"  # our ids (pay_..., cus_..., merchant ids), as the wire types allow them
PATTERNS: dict[str, str] = {
    "id": OBJECT_ID,
    "key_id": OBJECT_ID,
    "name": OBJECT_ID,  # fee plan names (lower case, digits, _) fit inside it
    "date": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
    "channel": "^[A-Za-z0-9_.-]{1,64}$",
}
FALLBACK = "^[\\x21-\\x7e]{1,128}$"  # any other parameter: printable ASCII, no space, bounded
_COMPILED = {name: re.compile(pattern) for name, pattern in {**PATTERNS, "": FALLBACK}.items()}


def pattern_of(name: str) -> str:
    return PATTERNS.get(name, FALLBACK)


@web.middleware
async def path_params_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse a malformed path parameter (400 parameter_invalid, naming it) before anything reads it."""
    for name, value in request.match_info.items():
        if not (_COMPILED.get(name) or _COMPILED[""]).fullmatch(value):
            raise invalid_request("parameter_invalid", f"path parameter {name!r} must match {pattern_of(name)}",
                                  name)
    return await handler(request)
