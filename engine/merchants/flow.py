"""Merchant operations: the rules both the admin API and the CLI run (each call is one PG transaction).

Secrets are derived, never stored (HMAC of the server key, the merchant id and a salt); each is returned
once, by the call that made its salt, and never logged.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from msgspec import UNSET

from accounts.model import AccountKind, OverdraftMode, OverdraftRule
from accounts.store import Conn
from engine.errors import DuplicateOrder, InvalidRequest, NotFound, UnsupportedCurrency
from engine.keys import ACCOUNT, API_KEY, MERCHANT, new_id
from engine.merchants import store, wire
from engine.merchants.errors import IllegalMerchantStatus, KeyNotRevocable, UnknownFeePlan
from engine.merchants.pricing import FEE_PAYABLE_ROLE, Pricing
from engine.merchants.signing import derive_secret
from engine.merchants.store import ensure_account, ensure_platform_accounts, insert_merchant, set_cycle
from engine.merchants.views import account_view, cycle_days_of, cycle_name, key_view, merchant_view
from engine.webhooks.signing import derive_webhook_secret

log = logging.getLogger(__name__)

SALT_BYTES = 16
# Accounts every merchant gets per currency at onboarding (migration 067 opened fee payable for the merchants
# made before it). Fee payable holds what a merchant on an invoiced fee plan owes in fees; a deducted fee is
# netted at booking and never touches it.
MERCHANT_ACCOUNT_TEMPLATE = ("merchant_pending", "merchant_available", FEE_PAYABLE_ROLE)
# Only a big merchant's pending-settlement account takes the payment traffic that buffering is for.
HOT_TEMPLATE_ROLES = frozenset({"merchant_pending"})
# Fee payable goes below zero when a refund gives back a fee whose invoice was paid (migration 068).
TEMPLATE_OVERDRAFT = {FEE_PAYABLE_ROLE: OverdraftRule(OverdraftMode.UNLIMITED)}


@dataclass(frozen=True, slots=True)
class OpsConfig:
    server_key: str
    currencies: frozenset[str]
    channels: frozenset[str]
    hot_internal_accounts: bool


def _check_profile(cfg: OpsConfig, currencies: list[str], channels: list[str] | None) -> None:
    for currency in currencies:
        if currency not in cfg.currencies:
            raise UnsupportedCurrency(currency, "currencies")
    for channel in channels or ():
        if channel not in cfg.channels:
            raise InvalidRequest("allowed_channels", f"unknown channel {channel!r}; known: {sorted(cfg.channels)}")


def _check_no_own_fee(fee_bps: int | None, fee_fixed: int | None) -> None:
    """A merchant on a fee plan is priced by it: a fee of its own alongside is a contradiction (400)."""
    for param, value in (("fee_bps", fee_bps), ("fee_fixed", fee_fixed)):
        if value is not None:
            raise InvalidRequest(param, f"{param} comes from the merchant's fee plan; leave it out, or set fee_plan"
                                        " to null to price the merchant on its own")


async def _require_plan(conn: Conn, name: str) -> None:
    """The plan must exist (UnknownFeePlan, 422); share-locked so it cannot change under this transaction."""
    if await store.get_fee_plan(conn, name, share_lock=True) is None:
        raise UnknownFeePlan(name)


async def onboard(conn: asyncpg.Connection, cfg: OpsConfig, req: wire.OnboardMerchant,
                  now: datetime) -> wire.MerchantOnboarded:
    """The merchant, its primary key, profile, settlement cycle and template accounts, all or nothing.

    Raises DuplicateOrder when the id exists, UnsupportedCurrency / InvalidRequest for bad fields."""
    _check_profile(cfg, req.currencies, req.allowed_channels)
    if req.fee_plan is not None:
        _check_no_own_fee(req.fee_bps or None, req.fee_fixed or None)
    merchant_id = req.id or new_id(MERCHANT)
    salt = secrets.token_bytes(SALT_BYTES)
    webhook_salt = secrets.token_bytes(SALT_BYTES) if req.webhook_url else None
    currencies = list(dict.fromkeys(req.currencies))
    async with conn.transaction():
        if not await insert_merchant(conn, merchant_id, req.name, salt, Pricing(req.fee_bps, req.fee_fixed),
                                     req.webhook_url):
            raise DuplicateOrder("id", merchant_id, merchant_id)
        changes: dict[str, Any] = {"allowed_methods": req.allowed_methods, "allowed_channels": req.allowed_channels}
        if req.fee_plan is not None:
            await _require_plan(conn, req.fee_plan)
            changes["fee_plan"] = req.fee_plan
        await store.update_profile(conn, merchant_id, changes, now)
        if webhook_salt is not None:
            await store.set_first_webhook_salt(conn, merchant_id, webhook_salt)
        if req.settlement_cycle is not None:
            await set_cycle(conn, merchant_id, cycle_days_of(req.settlement_cycle))
        for currency in currencies:
            for role in MERCHANT_ACCOUNT_TEMPLATE:
                await ensure_account(conn, merchant_id, role, currency, AccountKind.MERCHANT,
                                     req.hot and role in HOT_TEMPLATE_ROLES,
                                     TEMPLATE_OVERDRAFT.get(role, OverdraftRule()), new_id(ACCOUNT))
            await ensure_platform_accounts(conn, currency, cfg.hot_internal_accounts, lambda: new_id(ACCOUNT))
        keys = await store.list_keys(conn, merchant_id)
        profile = await store.get_profile(conn, merchant_id)
    assert profile is not None and len(keys) == 1, (merchant_id, keys)
    log.info("merchant onboarded", extra={"merchant_id": merchant_id, "key_id": keys[0].id})
    return wire.MerchantOnboarded(
        id=merchant_id, name=req.name, secret=derive_secret(cfg.server_key, merchant_id, salt), key_id=keys[0].id,
        currencies=currencies, fee_bps=profile.fee_bps, fee_fixed=profile.fee_fixed_minor,
        settlement_cycle=cycle_name(profile.settlement_cycle_days), allowed_methods=profile.allowed_methods,
        allowed_channels=profile.allowed_channels, accounts=[account_view(a) for a in profile.accounts],
        fee_plan=profile.fee_plan, fee_collection=profile.fee_collection,  # type: ignore[arg-type]
        webhook_url=req.webhook_url,
        webhook_secret=derive_webhook_secret(cfg.server_key, merchant_id, webhook_salt) if webhook_salt else None)


async def show(conn: Conn, merchant_id: str, now: datetime, webhook_secret: str | None = None) -> wire.Merchant:
    profile = await store.get_profile(conn, merchant_id)
    if profile is None:
        raise NotFound("merchant", merchant_id, "id")
    return merchant_view(profile, await store.list_keys(conn, merchant_id), now, webhook_secret)


async def _lock_for_change(conn: Conn, merchant_id: str) -> str:
    """Lock the merchant for this change (rotations serialise) and have every API process forget it on
    commit (nothing is sent when the transaction rolls back); its status, or NotFound."""
    status = await store.lock_merchant(conn, merchant_id)
    if status is None:
        raise NotFound("merchant", merchant_id, "id")
    await store.notify_changed(conn, merchant_id)
    return status


async def update(conn: asyncpg.Connection, cfg: OpsConfig, merchant_id: str, req: wire.UpdateMerchant,
                 now: datetime) -> wire.Merchant:
    """Change the given profile fields. Setting a webhook URL on a merchant that never had a webhook
    secret makes one, returned in this answer only."""
    fields = {"name": req.name, "fee_bps": req.fee_bps, "fee_fixed": req.fee_fixed, "webhook_url": req.webhook_url,
              "allowed_methods": req.allowed_methods, "allowed_channels": req.allowed_channels,
              "fee_plan": req.fee_plan}
    changes = {k: v for k, v in fields.items() if v is not UNSET}
    if req.allowed_channels is not UNSET:
        _check_profile(cfg, [], req.allowed_channels)
    own_fee = (None if req.fee_bps is UNSET else req.fee_bps, None if req.fee_fixed is UNSET else req.fee_fixed)
    if isinstance(req.fee_plan, str):
        _check_no_own_fee(*own_fee)
    webhook_secret = None
    async with conn.transaction():
        await _lock_for_change(conn, merchant_id)
        if isinstance(req.fee_plan, str):
            await _require_plan(conn, req.fee_plan)
        elif req.fee_plan is UNSET and own_fee != (None, None) and await store.own_fee_plan(conn, merchant_id):
            # Its plan prices it: a fee of its own would silently do nothing.
            _check_no_own_fee(*own_fee)
        await store.update_profile(conn, merchant_id, changes, now)
        if req.settlement_cycle is not UNSET:
            await set_cycle(conn, merchant_id, cycle_days_of(req.settlement_cycle))
        if isinstance(req.webhook_url, str):
            salt = secrets.token_bytes(SALT_BYTES)
            if await store.set_first_webhook_salt(conn, merchant_id, salt):
                webhook_secret = derive_webhook_secret(cfg.server_key, merchant_id, salt)
        view = await show(conn, merchant_id, now, webhook_secret)
    log.info("merchant updated", extra={"merchant_id": merchant_id, "fields": sorted(changes)})
    return view


async def set_status(conn: asyncpg.Connection, merchant_id: str, to_status: str, now: datetime) -> wire.Merchant:
    """Suspend (``suspended``) or resume (``active``); repeating either is a no-op. Nothing else changes:
    balances, keys, payments and webhooks stay as they were."""
    assert to_status in ("active", "suspended"), to_status
    async with conn.transaction():
        status = await _lock_for_change(conn, merchant_id)
        if status not in ("active", "suspended"):
            raise IllegalMerchantStatus(merchant_id, status, "resume" if to_status == "active" else "suspend")
        if status != to_status:
            await store.set_status(conn, merchant_id, to_status, now)
        view = await show(conn, merchant_id, now)
    log.info("merchant status", extra={"merchant_id": merchant_id, "status": to_status})
    return view


async def rotate_key(conn: asyncpg.Connection, cfg: OpsConfig, merchant_id: str, rollover_s: int,
                     now: datetime) -> wire.KeyIssued:
    """A new primary key (secret returned once); the previous primary keeps verifying for ``rollover_s``."""
    key_id = new_id(API_KEY)
    salt = secrets.token_bytes(SALT_BYTES)
    async with conn.transaction():
        await _lock_for_change(conn, merchant_id)
        previous = await store.rotate_key(conn, merchant_id, key_id, salt, rollover_s, now)
        keys = [k for k in await store.list_keys(conn, merchant_id) if k.id in previous]
    log.info("api key rotated", extra={"merchant_id": merchant_id, "key_id": key_id, "rollover_s": rollover_s})
    return wire.KeyIssued(key_id, merchant_id, derive_secret(cfg.server_key, merchant_id, salt), now,
                          [key_view(k, now) for k in keys])


async def revoke_key(conn: asyncpg.Connection, merchant_id: str, key_id: str, now: datetime) -> wire.ApiKeyView:
    """Revoke a rolling key at once. Raises NotFound, or KeyNotRevocable for the primary key."""
    async with conn.transaction():
        await _lock_for_change(conn, merchant_id)
        key = await store.revoke_key(conn, merchant_id, key_id, now)
        if key is None:
            raise NotFound("api key", key_id, "key_id")
        if key.state == "active":
            raise KeyNotRevocable(key_id)
    log.info("api key revoked", extra={"merchant_id": merchant_id, "key_id": key_id})
    return key_view(key, now)


async def rotate_webhook_secret(conn: asyncpg.Connection, cfg: OpsConfig, merchant_id: str, overlap_s: int,
                                now: datetime) -> wire.WebhookSecretIssued:
    """A new webhook secret (returned once) that signs every delivery from now on; the old one also signs
    (a second v1 in the header) for ``overlap_s``, so receivers can switch without losing events."""
    salt = secrets.token_bytes(SALT_BYTES)
    async with conn.transaction():
        await _lock_for_change(conn, merchant_id)
        await store.rotate_webhook_salt(conn, merchant_id, salt, overlap_s, now)
        profile = await store.get_profile(conn, merchant_id)
    assert profile is not None
    log.info("webhook secret rotated", extra={"merchant_id": merchant_id, "overlap_s": overlap_s})
    return wire.WebhookSecretIssued(merchant_id, derive_webhook_secret(cfg.server_key, merchant_id, salt),
                                    profile.webhook_prev_expires_at)
