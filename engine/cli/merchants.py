"""``payengine merchants create|show|update|suspend|resume|rotate-key|revoke-key|rotate-webhook-secret``.

Talks to PostgreSQL directly through engine/merchants/flow.py (the same calls as the admin API) and
validates input with the same wire Structs. Prints the resulting object as JSON; a secret appears in
that output once and nowhere else. A running server sees suspensions and revocations made here within
PAYENGINE_MERCHANT_CACHE_S (its auth cache).
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec

from engine.cli.result import print_result
from engine.merchants import flow as service
from engine.merchants import wire
from engine.settings import Settings
from engine.settlement.wire import CYCLE_DAYS_MAX

Action = Callable[[asyncpg.Connection, service.OpsConfig, argparse.Namespace, datetime], Awaitable[object]]


def ops_config(settings: Settings) -> service.OpsConfig:
    from channels.registry import adapter_classes

    # The same channel names the API accepts: configured ones (PAYENGINE_CHANNELS), else the adapter kinds.
    channels = frozenset(spec.name for spec in settings.channels) or frozenset(adapter_classes())
    return service.OpsConfig(settings.api_secret_key, frozenset(settings.currencies), channels,
                             settings.hot_internal_accounts)


def _given(args: argparse.Namespace, names: tuple[str, ...]) -> dict[str, Any]:
    return {n: getattr(args, n) for n in names if getattr(args, n) is not None}


async def _create(conn: asyncpg.Connection, cfg: service.OpsConfig, args: argparse.Namespace,
                  now: datetime) -> object:
    body = _given(args, ("name", "fee_bps", "fee_fixed", "id", "webhook_url", "settlement_cycle",
                         "allowed_methods", "allowed_channels", "fee_plan"))
    req = msgspec.convert({**body, "currencies": args.currencies, "hot": args.hot}, wire.OnboardMerchant)
    return await service.onboard(conn, cfg, req, now)


async def _update(conn: asyncpg.Connection, cfg: service.OpsConfig, args: argparse.Namespace,
                  now: datetime) -> object:
    body = _given(args, ("name", "fee_bps", "fee_fixed", "webhook_url", "settlement_cycle",
                         "allowed_methods", "allowed_channels", "fee_plan"))
    for name in ("webhook_url", "fee_plan"):
        if body.get(name) == "":
            body[name] = None  # --webhook-url '' removes the endpoint; --fee-plan '' the plan
    for flag, name in (("all_methods", "allowed_methods"), ("all_channels", "allowed_channels")):
        if getattr(args, flag):
            body[name] = None
    return await service.update(conn, cfg, args.merchant, msgspec.convert(body, wire.UpdateMerchant), now)


ACTIONS: dict[str, Action] = {
    "create": _create,
    "show": lambda conn, cfg, a, now: service.show(conn, a.merchant, now),
    "update": _update,
    "suspend": lambda conn, cfg, a, now: service.set_status(conn, a.merchant, "suspended", now),
    "resume": lambda conn, cfg, a, now: service.set_status(conn, a.merchant, "active", now),
    "rotate-key": lambda conn, cfg, a, now: service.rotate_key(
        conn, cfg, a.merchant, msgspec.convert({"rollover_s": a.rollover_s}, wire.RotateKey).rollover_s, now),
    "revoke-key": lambda conn, cfg, a, now: service.revoke_key(conn, a.merchant, a.key_id, now),
    "rotate-webhook-secret": lambda conn, cfg, a, now: service.rotate_webhook_secret(
        conn, cfg, a.merchant, msgspec.convert({"overlap_s": a.overlap_s}, wire.RotateWebhookSecret).overlap_s, now),
}


def cmd_merchants(args: argparse.Namespace, settings: Settings) -> int:
    from engine.db import ensure_servers

    database_url = ensure_servers(settings).database_url

    async def run() -> object:
        conn = await asyncpg.connect(database_url)
        try:
            return await ACTIONS[args.merchants_action](conn, ops_config(settings), args, datetime.now(UTC))
        finally:
            await conn.close()

    return print_result(run())


def settlement_cycle(raw: str) -> str:
    """``--settlement-cycle`` as its help says: ``D+N`` or just ``N``, N whole calendar days 0-30; returns the
    ``D+N`` the API takes. ArgumentTypeError (argparse: exit 2 naming the flag) for anything else."""
    days = raw.strip().upper().removeprefix("D+")
    if not (days.isascii() and days.isdigit() and int(days) <= CYCLE_DAYS_MAX):
        raise argparse.ArgumentTypeError(
            f"expected D+N or N, N calendar days 0-{CYCLE_DAYS_MAX} (D+1: a day's payments are settled on the next "
            f"day's close), got {raw!r}")
    return f"D+{int(days)}"


def _profile_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fee-bps", type=int)
    p.add_argument("--fee-fixed", type=int, help="fixed fee per payment in minor units")
    p.add_argument("--webhook-url")
    p.add_argument("--settlement-cycle", type=settlement_cycle, metavar="D+N",
                   help=f"D+N or N: settle a day's payments N calendar days later (0-{CYCLE_DAYS_MAX})")
    p.add_argument("--allow-method", dest="allowed_methods", action="append", choices=["wallet", "channel"])
    p.add_argument("--allow-channel", dest="allowed_channels", action="append", metavar="CHANNEL")
    p.add_argument("--fee-plan", help="a named fee plan (POST /admin/fee-plans) pricing the merchant instead of"
                                      " --fee-bps/--fee-fixed")


def add_merchant_parsers(sub: Any) -> None:
    p = sub.add_parser("merchants", help="onboard merchants, edit, suspend/resume, rotate keys and webhook secrets")
    actions = p.add_subparsers(dest="merchants_action", required=True)
    create = actions.add_parser("create", help="onboard a merchant (prints its secret once)")
    create.add_argument("--name", required=True)
    create.add_argument("--currency", dest="currencies", action="append", required=True)
    create.add_argument("--id")
    create.add_argument("--hot", action="store_true", help="buffer its pending-settlement account")
    _profile_flags(create)
    update = actions.add_parser("update", help="change profile fields (--webhook-url '' removes the endpoint)")
    update.add_argument("merchant")
    update.add_argument("--name")
    _profile_flags(update)
    update.add_argument("--all-methods", action="store_true", help="lift the method restriction")
    update.add_argument("--all-channels", action="store_true", help="lift the channel restriction")
    for name, text in (("show", "profile, accounts and keys"), ("suspend", "requests get 403; nothing is lost"),
                       ("resume", "serve a suspended merchant again")):
        actions.add_parser(name, help=text).add_argument("merchant")
    rotate = actions.add_parser("rotate-key", help="new primary API key (secret printed once)")
    rotate.add_argument("merchant")
    rotate.add_argument("--rollover-s", type=int, default=wire.ROLLOVER_DEFAULT_S,
                        help="how long the previous key keeps verifying (0: revoke it now)")
    revoke = actions.add_parser("revoke-key", help="revoke a rolling key now")
    revoke.add_argument("merchant")
    revoke.add_argument("key_id")
    hook = actions.add_parser("rotate-webhook-secret", help="new webhook secret (printed once)")
    hook.add_argument("merchant")
    hook.add_argument("--overlap-s", type=int, default=wire.WEBHOOK_OVERLAP_DEFAULT_S,
                      help="how long deliveries also carry the old secret's signature")
    for parser in (create, update, *actions.choices.values()):
        parser.set_defaults(func=cmd_merchants)
