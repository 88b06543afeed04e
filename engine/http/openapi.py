"""/openapi.json (OpenAPI 3.1), generated from the route table and the msgspec wire types."""

from __future__ import annotations

import re
from typing import Any

import msgspec
from aiohttp import web

from engine.http.paths import pattern_of
from engine.http.routes import ROUTES
from engine.services import services_of
from engine.web.errors import ErrorBody
from engine.web.route import RouteSpec

REF = "#/components/schemas/{name}"
_DESCRIPTIONS = {200: "OK", 201: "Created", 400: "Invalid request", 401: "Authentication failed",
                 402: "Payment refused", 403: "Not permitted (merchant suspended, method not allowed)",
                 404: "Not found", 409: "Conflict", 413: "Body larger than 64 KiB",
                 422: "Idempotency key reused with another body, or an invalid definition "
                      "(day-end, reconciliation: the failed or refused run)",
                 424: "Refused by the channel",
                 429: "Rate limit exceeded (see Retry-After)", 503: "Temporarily unavailable (see Retry-After)"}
# A path parameter is an object id unless its name says otherwise (GET /admin/day-end/{date}).


def _query_params(query: type, components: dict[str, Any]) -> list[dict[str, Any]]:
    component = components[query.__name__]
    required = set(component.get("required", ()))
    return [{"name": name, "in": "query", "required": name in required, "schema": schema}
            for name, schema in component.get("properties", {}).items()]


def _operation(spec: RouteSpec, schemas: dict[type, dict[str, Any]], components: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": f"{spec.method.lower()}{spec.path}".replace("/", "_").replace("{", "")
                          .replace("}", ""), "summary": spec.summary}
    params: list[dict[str, Any]] = []
    for name in re.findall(r"{(\w+)}", spec.path):
        params.append({"name": name, "in": "path", "required": True,
                       "schema": {"type": "string", "pattern": pattern_of(name),
                                  **({"format": "date"} if name == "date" else {})}})
    if spec.query is not None:
        params += _query_params(spec.query, components)
    if spec.method == "POST" and spec.auth == "merchant":
        params.append({"name": "Idempotency-Key", "in": "header", "required": False,
                       "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[A-Za-z0-9_-]+$"}})
    if params:
        op["parameters"] = params
    if spec.body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": schemas[spec.body]}}}
    ok: dict[str, Any] = {"description": _DESCRIPTIONS[spec.status]}
    if spec.response is not None:
        ok["content"] = {"application/json": {"schema": schemas[spec.response]}}
    responses: dict[str, Any] = {str(spec.status): ok}
    # Every signed request can meet the rate limit (429) and a suspended merchant (403).
    # A malformed path parameter is 400 on every route that has one (engine/http/paths.py).
    errors = {*spec.errors, 400} if "{" in spec.path else set(spec.errors)
    for status in sorted({*errors, 403, 429}) if spec.auth == "merchant" else sorted(errors):
        responses[str(status)] = {"description": _DESCRIPTIONS[status],
                                  "content": {"application/json": {"schema": schemas[ErrorBody]}}}
    op["responses"] = responses
    if spec.auth == "merchant":
        op["security"] = [{"merchantId": [], "timestamp": [], "signature": []}]
    elif spec.auth == "admin":
        op["security"] = [{"adminToken": []}]
    return op


_PLURALS = {"currencies": "currency", "channels": "channel"}


def _deployment_enums(node: Any, enums: dict[str, list[str]]) -> None:
    """Fields whose values this deployment fixes (``currency``: PAYENGINE_CURRENCIES; ``channel``: the channels
    it knows; their lists, ``allowed_channels`` included) list them: the wire types can only give the shape,
    the server refuses the others."""
    if isinstance(node, list):
        for item in node:
            _deployment_enums(item, enums)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        last = key.rsplit("_", 1)[-1]
        name = _PLURALS.get(last, last)
        if name in enums and isinstance(value, dict):
            for option in [value, *value.get("anyOf", [])]:
                if isinstance(option, dict) and option.get("type") == "string" and last == name \
                        and option.get("pattern") != "^([A-Z]{3}|[*])$":  # a limit's currency may be "*"
                    option["enum"] = enums[name]
                elif isinstance(option, dict) and isinstance(option.get("items"), dict) and last != name:
                    option["items"]["enum"] = enums[name]
        else:
            _deployment_enums(value, enums)


def _amount_maximum(node: Any, maximum: int) -> None:
    """The most one request may move (PAYENGINE_AMOUNT_MAX) as the maximum of every request ``amount``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "amount" and isinstance(value, dict) and value.get("type") == "integer" and "maximum" in value:
                value["maximum"] = min(value["maximum"], maximum)
            else:
                _amount_maximum(value, maximum)
    elif isinstance(node, list):
        for item in node:
            _amount_maximum(item, maximum)


def _request_components(components: dict[str, Any], roots: list[type]) -> set[str]:
    """The components a request body or query is made of (following $ref), not the responses'."""
    found: set[str] = set()
    todo = [t.__name__ for t in roots]
    while todo:
        name = todo.pop()
        if name in found or name not in components:
            continue
        found.add(name)
        todo += _refs(components[name])
    return found


def _refs(node: Any) -> list[str]:
    """The component names a schema refers to, at any depth."""
    if isinstance(node, dict):
        own = [node["$ref"].rsplit("/", 1)[-1]] if isinstance(node.get("$ref"), str) else []
        return own + [name for value in node.values() for name in _refs(value)]
    if isinstance(node, list):
        return [name for item in node for name in _refs(item)]
    return []


def build_openapi(currencies: tuple[str, ...] = (), channels: frozenset[str] = frozenset(),
                  amount_max: int | None = None) -> dict[str, Any]:
    types: list[type] = [ErrorBody]
    for spec in ROUTES:
        types += [t for t in (spec.body, spec.query, spec.response) if t is not None]
    types = list(dict.fromkeys(types))
    refs, components = msgspec.json.schema_components(types, ref_template=REF)
    schemas = dict(zip(types, refs, strict=True))
    for type_ in types:  # rules between fields a wire type states for the document (json_schema_rules)
        rules = getattr(type_, "json_schema_rules", None)
        if rules and type_.__name__ in components:
            components[type_.__name__].update(rules)
    enums = {name: values for name, values in (("currency", list(currencies)), ("channel", sorted(channels)))
             if values}
    for name in _request_components(components, [t for spec in ROUTES for t in (spec.body, spec.query) if t]):
        _deployment_enums(components[name], enums)  # what we take; what we answer may name others
    if amount_max is not None:
        _amount_maximum(components, amount_max)
    paths: dict[str, Any] = {}
    for spec in ROUTES:
        paths.setdefault(spec.path, {})[spec.method.lower()] = _operation(spec, schemas, components)
    return {
        "openapi": "3.1.0",
        "info": {"title": "payengine merchant API", "version": "1",
                 "description": "Requests to /v1 are signed: X-Signature = hex HMAC-SHA256(secret, "
                                "'{timestamp}\\n{METHOD}\\n{path with query}\\n{raw body}')."},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "merchantId": {"type": "apiKey", "in": "header", "name": "X-Merchant-Id"},
                "timestamp": {"type": "apiKey", "in": "header", "name": "X-Timestamp"},
                "signature": {"type": "apiKey", "in": "header", "name": "X-Signature"},
                "adminToken": {"type": "http", "scheme": "bearer"},
            },
        },
    }


async def openapi_handler(request: web.Request) -> web.Response:
    svc = services_of(request)
    settings = svc.settings
    document = build_openapi(settings.currencies, svc.known_channels,
                             max(settings.amount_max_minor(currency) for currency in settings.currencies))
    return web.Response(body=msgspec.json.encode(document), content_type="application/json")
