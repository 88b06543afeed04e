"""Merchant operations: onboarding from an account template, profile edits, suspension, API key rotation
and webhook secret rotation. The admin API (engine/merchants/handlers.py) and the CLI
(engine/merchants/cli.py) both call engine/merchants/service.py, which holds the rules."""
