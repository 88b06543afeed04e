"""Admin routes of the exception desk (admin token checked by the API's middleware for /admin/*).

    GET  /admin/adjustment-codes            the codes an adjustment may use, with their legs and roles
    POST /admin/adjustments                 propose an adjustment (201, proposed: nothing booked yet)
    GET  /admin/adjustments                 newest first, filter by status
    GET  /admin/adjustments/{id}            one proposal
    POST /admin/adjustments/{id}/approve    a second operator books it (200, approved)
    POST /admin/adjustments/{id}/reject     a second operator refuses it (200, rejected)
    ... and the same five under /admin/reversals (propose with {"txn_no", ...}).

Approval is shielded: a client that hangs up does not cut the booking transaction in half.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from aiohttp import web

from engine.desk import flow, store
from engine.desk import wire as dw
from engine.desk.codes import CODES
from engine.desk.states import ProposalKind
from engine.desk.views import code_view, proposal_view
from engine.services import services_of
from engine.web.decoding import decode_body, decode_query
from engine.web.idempotency import ok_json
from engine.web.request import RAW_BODY
from engine.web.route import Handler, RouteSpec
from engine.web.wire import NoQuery


async def propose_adjustment(request: web.Request) -> web.Response:
    ctx, now = services_of(request), datetime.now(UTC)
    req = decode_body(request[RAW_BODY], dw.ProposeAdjustment)
    proposal = await flow.propose(ctx, await flow.prepare_adjustment(ctx, req, now))
    return ok_json(proposal_view(proposal), 201)


async def propose_reversal(request: web.Request) -> web.Response:
    ctx, now = services_of(request), datetime.now(UTC)
    req = decode_body(request[RAW_BODY], dw.ProposeReversal)
    proposal = await flow.propose(ctx, await flow.prepare_reversal(ctx, req, now))
    return ok_json(proposal_view(proposal), 201)


async def list_codes(request: web.Request) -> web.Response:
    decode_query(request.query, NoQuery)
    return ok_json(dw.AdjustmentCodeList([code_view(c) for c in CODES.values()]))


def list_proposals(kind: ProposalKind) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        q = decode_query(request.query, dw.ListProposalsQuery)
        ctx = services_of(request)
        await flow.expire_due(ctx, datetime.now(UTC))
        async with ctx.pool.acquire() as conn:
            page, has_more = await store.list_proposals(conn, kind, q.status, q.limit, q.starting_after)
        return ok_json(dw.ProposalList([proposal_view(p) for p in page], has_more))
    return handler


def get_proposal(kind: ProposalKind) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        decode_query(request.query, NoQuery)
        found = await flow.find(services_of(request), kind, request.match_info["id"], datetime.now(UTC))
        return ok_json(proposal_view(found))
    return handler


def approve(kind: ProposalKind) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        ctx, req = services_of(request), decode_body(request[RAW_BODY], dw.Decide)
        decided = await asyncio.shield(flow.approve(ctx, kind, request.match_info["id"], req, datetime.now(UTC)))
        return ok_json(proposal_view(decided))
    return handler


def reject(kind: ProposalKind) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        ctx, req = services_of(request), decode_body(request[RAW_BODY], dw.Decide)
        decided = await flow.reject(ctx, kind, request.match_info["id"], req, datetime.now(UTC))
        return ok_json(proposal_view(decided))
    return handler


_PROPOSE_ERRORS = (400, 401, 404, 409, 413)
_DECIDE_ERRORS = (400, 401, 402, 403, 404, 409, 413)


def _routes(kind: ProposalKind, base: str, noun: str, propose: Handler, body: type) -> tuple[RouteSpec, ...]:
    return (
        RouteSpec("POST", base, propose, f"Propose {noun}; nothing is booked until a second operator approves it",
                  dw.Proposal, 201, body, errors=_PROPOSE_ERRORS, auth="admin"),
        RouteSpec("GET", base, list_proposals(kind), f"Proposed {noun}s, newest first", dw.ProposalList,
                  query=dw.ListProposalsQuery, errors=(400, 401, 404), auth="admin"),
        RouteSpec("GET", base + "/{id}", get_proposal(kind), f"One proposed {noun}", dw.Proposal, query=NoQuery,
                  errors=(400, 401, 404), auth="admin"),
        RouteSpec("POST", base + "/{id}/approve", approve(kind),
                  f"A second operator approves {noun}: booked once, in one transaction with its audit row",
                  dw.Proposal, 200, dw.Decide, errors=_DECIDE_ERRORS, auth="admin"),
        RouteSpec("POST", base + "/{id}/reject", reject(kind), f"A second operator rejects {noun}: nothing is booked",
                  dw.Proposal, 200, dw.Decide, errors=_DECIDE_ERRORS, auth="admin"),
    )


ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/admin/adjustment-codes", list_codes, "The adjustment codes the desk books, with their legs",
              dw.AdjustmentCodeList, query=NoQuery, errors=(400, 401), auth="admin"),
    *_routes(ProposalKind.ADJUSTMENT, "/admin/adjustments", "an adjustment", propose_adjustment,
             dw.ProposeAdjustment),
    *_routes(ProposalKind.REVERSAL, "/admin/reversals", "a reversal of a journal entry", propose_reversal,
             dw.ProposeReversal),
)
