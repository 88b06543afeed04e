"""Idempotency keys: what a request's key claims and stores, shared by every money-moving domain."""
