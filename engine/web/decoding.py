"""Turning raw bodies and query strings into wire Structs, with errors that name the field."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from engine.web.errors import ApiError, invalid_request

T = TypeVar("T")

_AT_PATH = re.compile(r" - at `\$\.?([^`]*)`$")
_UNKNOWN = re.compile(r"unknown field `([^`]*)`")
_MISSING = re.compile(r"missing required field `([^`]*)`")


def _validation_error(exc: msgspec.ValidationError) -> ApiError:
    message = str(exc)
    for pattern, code in ((_UNKNOWN, "unknown_field"), (_MISSING, "parameter_missing")):
        match = pattern.search(message)
        if match:
            return invalid_request(code, message, match.group(1))
    match = _AT_PATH.search(message)
    param = match.group(1).split("[")[0].split(".")[0] if match else None
    return invalid_request("parameter_invalid", message, param or None)


def _integral(value: Any) -> Any:
    """JSON numbers written with a fraction of zero (``7004775.0``) as the integers they are."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


def decode_body(raw: bytes, type_: type[T]) -> T:
    """Decode a JSON body; an empty body counts as ``{}`` (for bodiless POSTs like close).

    JSON Schema's ``integer`` includes ``1.0``, so an integer field takes a whole-number float too: only a
    body the strict decoder refuses pays for the second, normalising pass (the hot path never does)."""
    try:
        return msgspec.json.decode(raw or b"{}", type=type_)
    except msgspec.ValidationError as exc:
        try:
            loose = _integral(msgspec.json.decode(raw or b"{}"))
            return msgspec.convert(loose, type=type_)
        except msgspec.DecodeError:  # ValidationError too; also a body that is not JSON past its first value
            raise _validation_error(exc) from None
    except msgspec.DecodeError as exc:
        raise invalid_request("invalid_json", f"request body is not valid JSON: {exc}") from None


def decode_query(query: Mapping[str, str], type_: type[T]) -> T:
    """Decode a query string; every parameter is a single value, so one given twice is refused (not the first
    or the last silently taken)."""
    names = [name for name, _ in query.items()]  # a multidict's keys() lists a repeated name once
    if len(names) != len(set(names)):
        repeated = sorted({name for name in names if names.count(name) > 1})
        raise invalid_request("parameter_invalid", f"query parameter {repeated[0]!r} given more than once",
                              repeated[0])
    try:
        return msgspec.convert(dict(query), type=type_, strict=False)
    except msgspec.ValidationError as exc:
        raise _validation_error(exc) from None
