"""Merchant-ops store records -> wire Structs (the one place these objects get their shape)."""

from __future__ import annotations

from datetime import datetime

from engine.merchants import wire
from engine.merchants.store import DEFAULT_CYCLE_DAYS, ApiKey, FeePlanRow, MerchantAccount, MerchantProfile


def cycle_name(cycle_days: int | None) -> str:
    return f"D+{DEFAULT_CYCLE_DAYS if cycle_days is None else cycle_days}"


def cycle_days_of(name: str) -> int:
    """``D+N`` -> N (the wire pattern has checked the form)."""
    return int(name.removeprefix("D+"))


def account_view(a: MerchantAccount) -> wire.MerchantAccountView:
    return wire.MerchantAccountView(a.id, a.role, a.currency, a.balance_minor)


def key_view(k: ApiKey, now: datetime) -> wire.ApiKeyView:
    """A rolling key past its window shows as ``expired`` (the row keeps 'rolling'; auth checks the time)."""
    state = "expired" if k.state == "rolling" and not k.usable_at(now) else k.state
    return wire.ApiKeyView(k.id, state, k.created_at, k.expires_at, k.revoked_at)  # type: ignore[arg-type]


def merchant_view(p: MerchantProfile, keys: list[ApiKey], now: datetime,
                  webhook_secret: str | None = None) -> wire.Merchant:
    return wire.Merchant(
        id=p.id, name=p.name, status=p.status, fee_bps=p.fee_bps, fee_fixed=p.fee_fixed_minor,  # type: ignore[arg-type]
        fee_plan=p.fee_plan, fee_collection=p.fee_collection,  # type: ignore[arg-type]
        settlement_cycle=cycle_name(p.settlement_cycle_days), allowed_methods=p.allowed_methods,
        allowed_channels=p.allowed_channels, webhook_url=p.webhook_url,
        webhook_previous_secret_expires_at=p.webhook_prev_expires_at,
        accounts=[account_view(a) for a in p.accounts], keys=[key_view(k, now) for k in keys],
        created_at=p.created_at, updated_at=p.updated_at, status_changed_at=p.status_changed_at,
        webhook_secret=webhook_secret)


def fee_plan_view(f: FeePlanRow) -> wire.FeePlan:
    return wire.FeePlan(f.name, f.fee_bps, f.fee_fixed_minor, f.collection, f.merchants,  # type: ignore[arg-type]
                        f.created_at, f.updated_at)
