"""Limits (额度) and risk rules, evaluated before a payment, transfer or payout books: ``ControlGate``."""

from engine.controls.errors import ControlError, ControlsUnavailable, InvalidControl, LimitExceeded, RiskDeclined
from engine.controls.gate import Admission, Attempt, Booking, ControlGate
from engine.controls.risk import RuleDecision

__all__ = ["Admission", "Attempt", "Booking", "ControlError", "ControlGate", "ControlsUnavailable", "InvalidControl",
           "LimitExceeded", "RiskDeclined", "RuleDecision"]
