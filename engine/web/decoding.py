"""Turning raw bodies and query strings into wire Structs, with errors that name the field."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TypeVar

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


def decode_body(raw: bytes, type_: type[T]) -> T:
    """Decode a JSON body; an empty body counts as ``{}`` (for bodiless POSTs like close)."""
    try:
        return msgspec.json.decode(raw or b"{}", type=type_)
    except msgspec.ValidationError as exc:
        raise _validation_error(exc) from None
    except msgspec.DecodeError as exc:
        raise invalid_request("invalid_json", f"request body is not valid JSON: {exc}") from None


def decode_query(query: Mapping[str, str], type_: type[T]) -> T:
    try:
        return msgspec.convert(dict(query), type=type_, strict=False)
    except msgspec.ValidationError as exc:
        raise _validation_error(exc) from None
