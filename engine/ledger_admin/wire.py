"""Wire types of the ledger's admin API: the hot-account buffer, account splits, hot candidates."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from buffer.tuning import LIMITS

# ---------------------------------------------------------------- buffer


class BufferSettings(msgspec.Struct, frozen=True):
    """The live flush settings every flusher re-reads within a second."""

    batch_size: int
    flush_interval_ms: int
    max_lag_ms: int
    max_depth: int
    flusher_concurrency: int
    backpressure_wait_ms: int


# The same bounds as the table's CHECKs (buffer/tuning.py), so /openapi.json states them.
_BOUNDS = {name: Meta(ge=low, le=high) for name, (low, high) in LIMITS.items()}


class BufferSettingsChange(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The settings to change (at least one); the others keep their stored values."""

    json_schema_rules: ClassVar[dict[str, Any]] = {"minProperties": 1}

    batch_size: Annotated[int, _BOUNDS["batch_size"]] | UnsetType = UNSET
    flush_interval_ms: Annotated[int, _BOUNDS["flush_interval_ms"]] | UnsetType = UNSET
    max_lag_ms: Annotated[int, _BOUNDS["max_lag_ms"]] | UnsetType = UNSET
    max_depth: Annotated[int, _BOUNDS["max_depth"]] | UnsetType = UNSET
    flusher_concurrency: Annotated[int, _BOUNDS["flusher_concurrency"]] | UnsetType = UNSET
    backpressure_wait_ms: Annotated[int, _BOUNDS["backpressure_wait_ms"]] | UnsetType = UNSET


class BufferAccountStatus(msgspec.Struct, frozen=True):
    account_id: str
    owner_id: str  # the merchant or customer id, or "platform" for the platform's own accounts
    role: str  # e.g. merchant_pending, gateway_transit; a sub-account's index after '#'
    currency: str
    loaded: bool  # the account's balances are cached in Redis
    depth: int  # legs waiting to be flushed
    oldest_age_ms: int
    applied: int | None  # None when not loaded
    pending: int
    reserved: int
    projected: int | None
    applied_per_s: float
    last_batch_legs: int
    last_batch_ms: int


class BufferView(msgspec.Struct, frozen=True):
    accounts: list[BufferAccountStatus]
    settings: BufferSettings


# ---------------------------------------------------------------- splits and hot candidates


class SplitRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # Sub-accounts. The ledger checks the range (invalid_split_count); the document states it.
    into: Annotated[int, Meta(extra_json_schema={"minimum": 2, "maximum": 256})]


class SubAccountView(msgspec.Struct, frozen=True):
    id: str
    index: int
    balance: int
    pending: int  # net of legs still buffered (hot subs)
    status: str
    active: bool
    hot: bool


class SplitAccountView(msgspec.Struct, frozen=True):
    id: str
    currency: str
    balance: int  # its own row plus every sub
    pending: int
    own_balance: int  # still on the parent row itself (normally 0 once split)
    sub_count: int  # active subs; 0 when the account is not split
    sub_accounts: list[SubAccountView]


class HotCandidate(msgspec.Struct, frozen=True):
    account_id: str
    legs_per_s: float
    lock_waiters_avg: float
    hot: bool
    sub_count: int
    suggest: Literal["buffer", "split"] | None


class HotCandidates(msgspec.Struct, frozen=True):
    window_s: int
    data: list[HotCandidate]
