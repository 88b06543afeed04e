"""Middlewares: metrics (outermost), the error shape, merchant signing for /v1 and the admin token."""

from __future__ import annotations

import logging
import time
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestPayloadError

from engine.http.auth import authenticate, check_admin_token
from engine.http.metrics import CLIENT_DISCONNECTS, DEPENDENCY_UNAVAILABLE, HTTP_LATENCY, HTTP_REQUESTS
from engine.services import services_of
from engine.web.errors import ApiError, ErrorType, api_error_for, error_body, invalid_request, unavailable
from engine.web.request import MERCHANT, RAW_BODY

log = logging.getLogger(__name__)


CLIENT_CLOSED_REQUEST = 499  # the status nginx logs for it; the client never sees it
_HTTP_CODES = {404: "route_not_found", 405: "method_not_allowed", 413: "request_too_large"}
# (method, route, status) -> its counter and histogram children, bounded (a client can invent methods).
METRIC_CHILDREN_MAX = 1000
_METRIC_CHILDREN: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def _route(request: web.Request) -> str:
    info = request.match_info.route.resource
    return info.canonical if info is not None else "unmatched"


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        labels = (request.method, _route(request), status)
        children = _METRIC_CHILDREN.get(labels)
        if children is None:  # labels() validates and locks on every call: resolve each label set once
            text = (labels[0], labels[1], str(status))
            children = (HTTP_REQUESTS.labels(*text), HTTP_LATENCY.labels(*text))
            if len(_METRIC_CHILDREN) < METRIC_CHILDREN_MAX:
                _METRIC_CHILDREN[labels] = children
        children[0].inc()
        children[1].observe(time.perf_counter() - started)


def _error_response(err: ApiError) -> web.Response:
    return web.Response(status=err.status, body=error_body(err), content_type="application/json",
                        headers=err.headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        type_: ErrorType = "invalid_request_error" if exc.status < 500 else "api_error"
        message = "request body larger than 64 KiB" if exc.status == 413 else exc.reason
        return _error_response(ApiError(exc.status, type_, code, message))
    except RequestPayloadError as exc:  # a body that does not decode (Content-Encoding), or cut short
        reason = exc.__cause__ or exc
        return _error_response(invalid_request("invalid_body", f"request body could not be read: {reason}"))
    except ConnectionResetError:
        if request.transport is None or request.transport.is_closing():
            # The client hung up before we answered: no error of ours, and nobody to answer.
            CLIENT_DISCONNECTS.inc()
            log.debug("client disconnected", extra={"route": _route(request)})
            return web.Response(status=CLIENT_CLOSED_REQUEST)
        return _error_response(_answer(request, ConnectionResetError("connection to a dependency was reset")))
    except Exception as exc:
        return _error_response(_answer(request, exc))


def _answer(request: web.Request, exc: Exception) -> ApiError:
    err = api_error_for(exc)
    if err is None:
        log.exception("unhandled error", extra={"route": _route(request)})
        return ApiError(500, "api_error", "internal_error", "internal error")
    if err.status == 503 and (dependency := unavailable(exc)) is not None:
        # Logged once per interval with a count by the repeat filter (buffer/logs.py, set up by engine/logs.py),
        # not a traceback each.
        DEPENDENCY_UNAVAILABLE.labels(dependency).inc()
        log.warning("dependency unavailable; answered 503", extra={"dependency": dependency,
                                                                   "error": type(exc).__name__})
    return err


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if path.startswith("/v1/"):
        svc = services_of(request)
        body = await request.read()
        request[MERCHANT] = await authenticate(
            svc.merchants, request.headers, request.method, request.raw_path, body,
            svc.settings.signature_window_s, time.time())
        request[RAW_BODY] = body
    elif path.startswith("/admin/"):
        check_admin_token(request.headers.get("Authorization"), services_of(request).settings.admin_token)
        request[RAW_BODY] = await request.read()
    return await handler(request)
