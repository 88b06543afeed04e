"""Buffer errors: one base class, one subclass per condition, each retryable by the caller."""

from __future__ import annotations


class HotBufferError(Exception):
    """Base of the buffer's refusals. ``code`` is stable for APIs and logs; all are retryable."""

    code = "buffer_error"
    retry_after_s = 1
    retryable = True  # the HTTP layer answers 503 + Retry-After; the same request may simply be sent again


class BufferUnavailable(HotBufferError):
    """Redis could not be reached for a check that must not be skipped (a hot debit's funds check)."""

    code = "buffer_unavailable"

    def __init__(self, account_id: str, reason: str) -> None:
        super().__init__(f"hot-account buffer unavailable for {account_id}: {reason}")
        self.account_id = account_id
        self.reason = reason


class BufferBackpressure(HotBufferError):
    """An account's buffer is past max_depth or max_lag_ms; retry after ``retry_after_s``."""

    code = "buffer_backpressure"

    def __init__(self, account_id: str, depth: int, oldest_age_ms: int, retry_after_s: int) -> None:
        super().__init__(
            f"hot account {account_id} is behind (depth {depth}, oldest {oldest_age_ms} ms); retry in {retry_after_s}s"
        )
        self.account_id = account_id
        self.depth = depth
        self.oldest_age_ms = oldest_age_ms
        self.retry_after_s = retry_after_s
