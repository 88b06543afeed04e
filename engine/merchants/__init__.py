"""Merchant operations: onboarding from an account template, profile edits, suspension, API key rotation
and webhook secret rotation. The admin API (engine/merchants/handlers.py) and the CLI
(engine/cli/merchants.py) both call engine/merchants/flow.py, which holds the rules."""
