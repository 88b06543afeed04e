"""Errors raised by channel adapters, one class per broken rule.

Adapters translate aiohttp and wire-format failures into these at their edge, so the
gateway and callback handlers never see library exceptions.
"""

from __future__ import annotations


class ChannelError(Exception):
    """Base of every channel failure; `channel` names the channel that failed."""

    def __init__(self, channel: str, message: str) -> None:
        super().__init__(f"{channel}: {message}")
        self.channel = channel


class ChannelTimeout(ChannelError):
    """No usable answer arrived after the request may have been sent: the outcome is
    *unknown*, not failed. Query before retrying; a dropped connection counts here too."""

    def __init__(self, channel: str, operation: str, timeout_s: float, detail: str = "timed out") -> None:
        super().__init__(channel, f"{operation} outcome unknown after {timeout_s:g} s: {detail}")
        self.operation = operation
        self.timeout_s = timeout_s
        self.detail = detail


class ChannelUnavailable(ChannelError):
    """The channel could not be reached or answered with a server error; nothing happened."""

    def __init__(self, channel: str, operation: str, http_status: int | None, detail: str) -> None:
        super().__init__(channel, f"{operation} unavailable (HTTP {http_status}): {detail}")
        self.operation = operation
        self.http_status = http_status
        self.detail = detail


class ChannelRejected(ChannelError):
    """The channel understood the request and refused it with a business error code."""

    def __init__(self, channel: str, operation: str, code: str, detail: str) -> None:
        super().__init__(channel, f"{operation} rejected: {code} {detail}")
        self.operation = operation
        self.code = code
        self.detail = detail


class OrderNotFound(ChannelRejected):
    """The channel has no order (or refund) under our reference."""


class UnclearRefusal(ChannelRejected):
    """The channel answered a create with a business code that does not say whether it acted (a "system
    error", a conflict with what it holds under our reference): as unknown as a timeout. The caller must
    query, never take it as a refusal that moved nothing."""


class BadSignature(ChannelError):
    """A notify or response was not signed with the key we share with the channel."""

    def __init__(self, channel: str, reason: str) -> None:
        super().__init__(channel, f"bad signature: {reason}")
        self.reason = reason


class StaleNotify(ChannelError):
    """A notify's timestamp lies outside the replay window."""

    def __init__(self, channel: str, timestamp_s: int, now_s: int, window_s: int) -> None:
        super().__init__(channel, f"notify timestamp {timestamp_s} is {abs(now_s - timestamp_s)} s from now")
        self.timestamp_s = timestamp_s
        self.now_s = now_s
        self.window_s = window_s


class MalformedResponse(ChannelError):
    """The channel sent something we cannot parse: garbage body, bad amount, missing field."""

    def __init__(self, channel: str, detail: str) -> None:
        super().__init__(channel, f"malformed response: {detail}")
        self.detail = detail


class AmountMismatch(ChannelError):
    """The channel reports a different amount or currency than we asked for."""

    def __init__(
        self,
        channel: str,
        out_trade_no: str,
        expected_minor: int,
        actual_minor: int,
        expected_currency: str,
        actual_currency: str,
        channel_ref: str | None = None,
    ) -> None:
        super().__init__(
            channel,
            f"{out_trade_no}: expected {expected_minor} {expected_currency}, got {actual_minor} {actual_currency}",
        )
        self.out_trade_no = out_trade_no
        self.expected_minor = expected_minor
        self.actual_minor = actual_minor
        self.expected_currency = expected_currency
        self.actual_currency = actual_currency
        self.channel_ref = channel_ref  # the channel's own number for it, when its answer gave one
