"""``payengine adjustments|reversals propose|approve|reject|list|show`` and ``payengine recon resolve``: the
exception desk from the command line, through the running server's admin API (so the booking takes the same
path as every other: the server's buffer, splits and day-end fence; the CLI holds no ledger state).

    payengine adjustments propose --code C --amount N --currency CUR --account ROLE=ACCOUNT ... --reason R --operator O
    payengine adjustments approve|reject ID --operator O [--note N]
    payengine adjustments list [--status S] [--limit N] / show ID / codes
    payengine reversals propose TXN_NO --reason R --operator O [--date D]   (approve|reject|list|show as above)
    payengine recon resolve ITEM --action adjust|reverse|explain --note N --operator O

The server is ``--url`` (default http://PAYENGINE_HOST:PAYENGINE_PORT), authenticated with PAYENGINE_ADMIN_TOKEN;
``--operator`` names the person and is required on every action. Prints the answer as JSON (exit 0); a refusal
prints its code and message (exit 2 for bad input, 1 otherwise); a server that cannot be reached exits 3.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import msgspec

from engine.settings import Settings

KINDS = {"adjustments": "/admin/adjustments", "reversals": "/admin/reversals"}
TIMEOUT_S = 60


async def _call(settings: Settings, url: str, method: str, path: str, body: Any) -> tuple[int, Any]:
    import aiohttp  # here, not at the top: `payengine --help` must not load it

    headers = {"Authorization": f"Bearer {settings.admin_token}", "Content-Type": "application/json"}
    data = b"" if body is None else msgspec.json.encode(body)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)) as session, \
                session.request(method, url.rstrip("/") + path, data=data, headers=headers) as resp:
            raw = await resp.read()
            return resp.status, msgspec.json.decode(raw) if raw else None
    except aiohttp.ClientError as exc:  # refused, reset, disconnected: the server is not there to answer
        raise ConnectionError(str(exc)) from exc


def _admin(settings: Settings, args: argparse.Namespace, method: str, path: str, body: Any = None) -> int:
    url = args.url or f"http://{settings.host}:{settings.port}"
    try:
        status, answer = asyncio.run(_call(settings, url, method, path, body))
    except (OSError, TimeoutError) as exc:
        print(f"payengine: cannot reach {url}: {exc!r}", file=sys.stderr)
        return 3
    if status < 300:
        print(msgspec.json.format(msgspec.json.encode(answer)).decode())
        return 0
    error = answer.get("error", {}) if isinstance(answer, dict) else {}
    print(f"payengine: {error.get('code', status)}: {error.get('message', answer)}", file=sys.stderr)
    return 2 if status == 400 else 1


def _accounts(pairs: list[str]) -> dict[str, str]:
    named: dict[str, str] = {}
    for pair in pairs:
        role, sep, account = pair.partition("=")
        if not sep:
            raise SystemExit(f"payengine: --account takes ROLE=ACCOUNT_ID, got {pair!r}")
        named[role] = account
    return named


def cmd_proposals(args: argparse.Namespace, settings: Settings) -> int:
    base = KINDS[args.command]
    match args.desk_command:
        case "propose" if args.command == "adjustments":
            body: dict[str, Any] = {"code": args.code, "amount": args.amount, "currency": args.currency,
                                    "accounts": _accounts(args.account), "reason": args.reason,
                                    "operator": args.operator}
            return _admin(settings, args, "POST", base, body | ({"evidence": args.evidence} if args.evidence else {}))
        case "propose":
            body = {"txn_no": args.txn_no, "reason": args.reason, "operator": args.operator}
            if args.date:
                body["accounting_date"] = args.date
            return _admin(settings, args, "POST", base, body | ({"evidence": args.evidence} if args.evidence else {}))
        case "approve" | "reject":
            decision = {"operator": args.operator} | ({"note": args.note} if args.note else {})
            return _admin(settings, args, "POST", f"{base}/{args.id}/{args.desk_command}", decision)
        case "codes":
            return _admin(settings, args, "GET", "/admin/adjustment-codes")
        case "list":
            query = f"?limit={args.limit}" + (f"&status={args.status}" if args.status else "")
            return _admin(settings, args, "GET", base + query)
        case _:
            return _admin(settings, args, "GET", f"{base}/{args.id}")


def cmd_recon(args: argparse.Namespace, settings: Settings) -> int:
    body = {"action": args.action, "operator": args.operator, "note": args.note}
    if args.evidence:
        body["evidence"] = args.evidence
    return _admin(settings, args, "POST", f"/admin/reconciliations/items/{args.item}/resolve", body)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default=None, help="server URL (default http://HOST:PORT from settings)")


def _operator(p: argparse.ArgumentParser) -> None:
    p.add_argument("--operator", required=True, help="who acts (recorded in the audit trail)")


def add_desk_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for kind in KINDS:
        p = sub.add_parser(kind, help=f"the exception desk's {kind}: propose, approve (a second operator), "
                                      "reject, list, show")
        kind_sub = p.add_subparsers(dest="desk_command", required=True)
        propose = kind_sub.add_parser("propose", help="propose; nothing is booked until another operator approves")
        if kind == "adjustments":
            propose.add_argument("--code", required=True, help="an adjustment code, e.g. ADJ_CUSTOMER_COMPENSATION")
            propose.add_argument("--amount", required=True, type=int, help="minor units")
            propose.add_argument("--currency", required=True)
            propose.add_argument("--account", action="append", default=[], metavar="ROLE=ACCOUNT_ID",
                                 help="the account for each role the code names (repeat)")
        else:
            propose.add_argument("txn_no", help="the journal entry to reverse")
            propose.add_argument("--date", default=None, help="its accounting date (a check)")
        propose.add_argument("--reason", required=True)
        propose.add_argument("--evidence", default=None, help="where the proof is (ticket, file)")
        _operator(propose)
        parsers = [propose]
        for verb in ("approve", "reject"):
            decide = kind_sub.add_parser(verb, help=f"{verb} a proposal (not its proposer)")
            decide.add_argument("id")
            decide.add_argument("--note", default=None)
            _operator(decide)
            parsers.append(decide)
        listing = kind_sub.add_parser("list", help="newest first")
        listing.add_argument("--status", default=None, choices=["proposed", "approved", "rejected", "expired"])
        listing.add_argument("--limit", type=int, default=20, help="1-100")
        show = kind_sub.add_parser("show", help="one proposal")
        show.add_argument("id")
        if kind == "adjustments":
            parsers.append(kind_sub.add_parser("codes", help="the adjustment codes, their legs and roles"))
        for parser in (*parsers, listing, show):
            _common(parser)
            parser.set_defaults(func=cmd_proposals)

    p = sub.add_parser("recon", help="reconciliation differences: close one by what happens to its money")
    recon_sub = p.add_subparsers(dest="recon_command", required=True)
    resolve = recon_sub.add_parser("resolve", help="adjust or reverse (a proposal another operator approves) or "
                                                   "explain (no money moves)")
    resolve.add_argument("item", help="the reconciliation item id (a run's exceptions list them)")
    resolve.add_argument("--action", required=True, choices=["adjust", "reverse", "explain"])
    resolve.add_argument("--note", required=True, help="why; the proposal's reason")
    resolve.add_argument("--evidence", default=None)
    _operator(resolve)
    _common(resolve)
    resolve.set_defaults(func=cmd_recon)
