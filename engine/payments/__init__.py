"""Payments and refunds as pure values: state machines, fees and the errors of their rules."""
