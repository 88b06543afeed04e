"""Limits (额度) and risk rules, evaluated before a payment, transfer or payout books: ``gate.ControlGate``."""
