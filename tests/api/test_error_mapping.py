"""The one table from domain error to HTTP answer covers the buffer's retryable refusals: a hot account
that is behind, or a funds check Redis cannot answer, is a 503 with Retry-After, never a 500."""

from __future__ import annotations

from accounts.errors import InsufficientFunds
from buffer.errors import BufferBackpressure, BufferUnavailable
from engine.web.errors import api_error_for


def test_buffer_backpressure_is_503_with_its_retry_after() -> None:
    err = api_error_for(BufferBackpressure("acct_x", depth=5000, oldest_age_ms=9000, retry_after_s=3))
    assert err is not None
    assert (err.status, err.type, err.code) == (503, "api_error", "buffer_backpressure")
    assert err.headers["Retry-After"] == "3"


def test_buffer_unavailable_is_503() -> None:
    err = api_error_for(BufferUnavailable("acct_x", "ConnectionError"))
    assert err is not None
    assert (err.status, err.code) == (503, "buffer_unavailable")
    assert err.headers["Retry-After"] == "1"


def test_insufficient_funds_on_a_hot_account_is_still_402() -> None:
    err = api_error_for(InsufficientFunds("acct_x", 100))
    assert err is not None and (err.status, err.code) == (402, "insufficient_funds")
