"""What an Idempotency-Key holds and carries through a flow: the slot, the outcome, the stored response."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class IdemSlot:
    """The idempotency key of this request; its response is stored with the effect.

    ``fingerprint`` None: the key was claimed already. Set: the flow claims it in its own effect
    statement (a folded claim, see run_idempotent), raising IdempotencyKeyTaken when it is held."""

    merchant_id: str
    key: str
    fingerprint: bytes | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int
    body: bytes
    stored: bool  # the response was written in the effect's transaction


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """What a later request with the same idempotency key gets back (written with the effect)."""

    merchant_id: str
    key: str
    status_code: int
    body: bytes


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    fingerprint: bytes
    status_code: int | None  # None: the first request is still running
    body: bytes | None
