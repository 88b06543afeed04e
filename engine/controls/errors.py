"""Errors of the controls: one base class, one subclass per refusal, carrying data."""

from __future__ import annotations

from engine.errors import Absent, Declined, DomainError, Unprocessable


class ControlError(DomainError):
    """Base of every refusal by the limits and risk gate."""

    code = "control_error"


class LimitExceeded(ControlError, Declined):
    """The attempt would take a limit past its maximum (nothing was counted)."""

    code = "limit_exceeded"

    def __init__(self, *, scope: str, window: str, metric: str, method: str, currency: str, limit: int,
                 used: int, attempted: int) -> None:
        super().__init__(f"{scope} {window} {metric} limit for method {method!r} ({currency}) is {limit}; "
                         f"{used} used, this attempt adds {attempted}")
        self.scope = scope
        self.window = window
        self.metric = metric
        self.method = method
        self.currency = currency
        self.limit = limit
        self.used = used
        self.attempted = attempted

    def details(self) -> dict[str, object]:
        return {"scope": self.scope, "window": self.window, "metric": self.metric, "method": self.method,
                "currency": self.currency, "limit": self.limit, "used": self.used, "attempted": self.attempted}


class RiskDeclined(ControlError, Declined):
    """A risk rule decided 'deny' (nothing was counted against limits)."""

    code = "risk_declined"

    def __init__(self, *, rule: str, kind: str, reason: str) -> None:
        super().__init__(f"declined by risk rule {rule} ({kind}): {reason}")
        self.rule = rule
        self.kind = kind
        self.reason = reason

    def details(self) -> dict[str, object]:
        return {"rule": self.rule, "kind": self.kind, "reason": self.reason}


class InvalidControl(ControlError, Unprocessable):
    """A malformed limit or rule definition from the admin API (422; nothing stored)."""

    code = "invalid_control"

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


class ControlNotFound(ControlError, Absent):
    code = "resource_missing"

    def __init__(self, kind: str, object_id: str) -> None:
        super().__init__(f"no such {kind}: {object_id}")
        self.param = None


class ControlsUnavailable(ControlError):
    """The counters could not be checked (Redis down): the caller may retry unchanged. ``undone`` is False
    when whatever the check may have counted could not be given back either (Redis still counts it)."""

    code = "controls_unavailable"
    retryable = True
    retry_after_s = 1

    def __init__(self, message: str, *, undone: bool = True) -> None:
        super().__init__(message)
        self.undone = undone


class AdmissionReleased(ControlError):
    """The booking came after the orphan sweep gave its admission's usage back (the request outlived the
    sweep's grace period): it must not book; the caller may retry unchanged (admitted afresh)."""

    code = "controls_unavailable"
    retryable = True
    retry_after_s = 1

    def __init__(self, admission_id: str) -> None:
        super().__init__(f"admission {admission_id} was released before its booking; retry")
        self.admission_id = admission_id
