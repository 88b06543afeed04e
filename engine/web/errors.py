"""The one table from domain error to HTTP status and error type, and the error body.

Codes are stable (they come from each error class's ``code``); messages are for humans. An error a
caller may retry unchanged (any exception with a true ``retryable`` attribute, e.g. the buffer over
its lag or Redis down) maps to 503 with Retry-After, so a new error class needs no edit here.
"""

from __future__ import annotations

from typing import Literal

import asyncpg
import msgspec
from redis import exceptions as redis_errors

from accounts.errors import (
    AccountClosed,
    CurrencyMismatch,
    DuplicateTransaction,
    InsufficientFunds,
    InvalidAmount,
    UnknownCurrency,
)
from channels.errors import ChannelError, ChannelRejected
from engine.errors import (
    Absent,
    BadInput,
    Conflicting,
    Declined,
    DuplicateOrder,
    IdempotencyInFlight,
    IdempotencyMismatch,
    NotPermitted,
    Unprocessable,
)

ErrorType = Literal["invalid_request_error", "authentication_error", "permission_error", "idempotency_error",
                    "payment_error", "conflict_error", "rate_limit_error", "channel_error", "api_error"]

# Looked up along the error's class hierarchy, most specific first: every engine error is one kind of
# engine/errors.py; the ledger's and the channels' errors (packages that know nothing of HTTP) by name.
ERROR_TABLE: dict[type[Exception], tuple[int, ErrorType]] = {
    IdempotencyInFlight: (409, "idempotency_error"),
    IdempotencyMismatch: (422, "idempotency_error"),
    BadInput: (400, "invalid_request_error"),
    Absent: (404, "invalid_request_error"),
    Unprocessable: (422, "invalid_request_error"),
    Declined: (402, "payment_error"),
    NotPermitted: (403, "permission_error"),
    Conflicting: (409, "conflict_error"),
    UnknownCurrency: (400, "invalid_request_error"),
    CurrencyMismatch: (400, "invalid_request_error"),
    InvalidAmount: (400, "invalid_request_error"),
    InsufficientFunds: (402, "payment_error"),
    AccountClosed: (409, "conflict_error"),
    DuplicateTransaction: (409, "conflict_error"),
    ChannelRejected: (424, "channel_error"),
    ChannelError: (503, "channel_error"),
}


class ErrorDetail(msgspec.Struct, frozen=True):
    type: ErrorType
    code: str
    message: str
    param: str | None = None
    # duplicate_order only: the object that already holds the number (other errors leave the key out)
    existing_id: str | msgspec.UnsetType = msgspec.UNSET


class ErrorBody(msgspec.Struct, frozen=True):
    error: ErrorDetail


class ApiError(Exception):
    """An error the HTTP layer itself raises (authentication, malformed input, size, routing)."""

    def __init__(self, status: int, type_: ErrorType, code: str, message: str, param: str | None = None,
                 headers: dict[str, str] | None = None, existing_id: str | None = None) -> None:
        super().__init__(message)
        self.existing_id = existing_id
        self.status = status
        self.type = type_
        self.code = code
        self.message = message
        self.param = param
        self.headers = headers or {}
        self.details: dict[str, object] | None = None  # e.g. which limit (LimitExceeded.details())


def authentication_error(message: str) -> ApiError:
    return ApiError(401, "authentication_error", "authentication_failed", message)


def invalid_request(code: str, message: str, param: str | None = None, status: int = 400) -> ApiError:
    return ApiError(status, "invalid_request_error", code, message, param)


# A dependency that cannot be reached or is going away: the request may succeed unchanged in a moment.
# PostgreSQL's class 08 (connection exception) and 57P (operator intervention: shutdown, crash recovery).
_PG_UNAVAILABLE_SQLSTATES = ("08", "57P")
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    asyncpg.InterfaceError, asyncpg.PostgresConnectionError, redis_errors.ConnectionError, redis_errors.TimeoutError,
    OSError, TimeoutError,  # a socket that cannot connect (refused, a unix socket gone), reset, or timed out
)
RETRY_AFTER_UNAVAILABLE_S = 2


def unavailable(exc: BaseException) -> str | None:
    """Which dependency ``exc`` says is unreachable (``postgresql``, ``redis``, ``network``), or None."""
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", "") or ""
        return "postgresql" if isinstance(exc, asyncpg.PostgresConnectionError) \
            or state.startswith(_PG_UNAVAILABLE_SQLSTATES) else None
    if isinstance(exc, asyncpg.InterfaceError):
        return "postgresql"
    if isinstance(exc, (redis_errors.ConnectionError, redis_errors.TimeoutError)):
        return "redis"
    if isinstance(exc, _UNAVAILABLE):
        return "network"
    return None


def api_error_for(exc: Exception) -> ApiError | None:
    """The ApiError for a domain error, or None when it is not one (a bug: 500). A database or Redis that
    cannot be reached is 503 service_unavailable with Retry-After: the same request may succeed in a moment."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError)):
        # A NUL byte (or a character the database cannot hold) in some free text the types let through.
        return ApiError(400, "invalid_request_error", "parameter_invalid",
                        "text may not contain NUL or characters the database cannot store; nothing was written")
    if isinstance(exc, asyncpg.NumericValueOutOfRangeError):
        # A balance or total would leave the representable range: the statement failed, so nothing was written.
        return ApiError(422, "invalid_request_error", "amount_out_of_range",
                        "the amounts involved would exceed what an account can hold; nothing was booked", "amount")
    if unavailable(exc) is not None:
        return ApiError(503, "api_error", "service_unavailable",
                        "a service the engine needs is unavailable; retry with the same Idempotency-Key", None,
                        {"Retry-After": str(RETRY_AFTER_UNAVAILABLE_S)})
    if getattr(exc, "retryable", False):
        return ApiError(503, "api_error", getattr(exc, "code", "temporarily_unavailable"),
                        "temporarily unavailable; retry with the same Idempotency-Key", None,
                        {"Retry-After": str(max(1, int(getattr(exc, "retry_after_s", 1))))})
    for cls in type(exc).__mro__:
        if cls in ERROR_TABLE:
            status, type_ = ERROR_TABLE[cls]
            code = getattr(exc, "code", None) or "channel_error"
            if isinstance(exc, DuplicateOrder):
                return ApiError(status, type_, code, str(exc), exc.field, existing_id=exc.existing_id)
            err = ApiError(status, type_, code, str(exc), getattr(exc, "param", None))
            details = getattr(exc, "details", None)
            err.details = details() if callable(details) else None
            return err
    return None


def error_body(err: ApiError) -> bytes:
    if err.details is not None:  # only errors that carry details get the key: other bodies stay as they were
        return msgspec.json.encode({"error": {"type": err.type, "code": err.code, "message": err.message,
                                              "param": err.param, "details": err.details}})
    detail = ErrorDetail(err.type, err.code, err.message, err.param,
                         msgspec.UNSET if err.existing_id is None else err.existing_id)
    return msgspec.json.encode(ErrorBody(detail))
