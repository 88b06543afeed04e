"""Named fee plans (admin-managed): what a payment costs the merchant and how the fee is collected.

A plan's terms apply to payments made after a change; a payment keeps the fee and the collection it was
made with (engine.merchants.pricing), so its refunds and settlement stay consistent with its booking.
"""

from __future__ import annotations

import logging
from datetime import datetime

import asyncpg

from accounts.store import Conn
from engine.errors import NotFound
from engine.merchants import store, wire
from engine.merchants.errors import FeePlanExists
from engine.merchants.views import fee_plan_view

log = logging.getLogger(__name__)


async def create_plan(conn: asyncpg.Connection, req: wire.CreateFeePlan, now: datetime) -> wire.FeePlan:
    """Raises FeePlanExists when the name is taken (nothing changed)."""
    async with conn.transaction():
        if not await store.insert_fee_plan(conn, req.name, req.fee_bps, req.fee_fixed, req.collection, now):
            raise FeePlanExists(req.name)
        plan = await store.get_fee_plan(conn, req.name)
    assert plan is not None
    log.info("fee plan created", extra={"fee_plan": req.name, "collection": req.collection})
    return fee_plan_view(plan)


async def update_plan(conn: asyncpg.Connection, name: str, req: wire.UpdateFeePlan, now: datetime) -> wire.FeePlan:
    """Replace the plan's terms; the merchants on it are priced by them from the next payment. NotFound."""
    async with conn.transaction():
        if not await store.update_fee_plan(conn, name, req.fee_bps, req.fee_fixed, req.collection, now):
            raise NotFound("fee plan", name, "name")
        plan = await store.get_fee_plan(conn, name)
    assert plan is not None
    log.info("fee plan updated", extra={"fee_plan": name, "collection": req.collection, "merchants": plan.merchants})
    return fee_plan_view(plan)


async def show_plan(conn: Conn, name: str) -> wire.FeePlan:
    plan = await store.get_fee_plan(conn, name)
    if plan is None:
        raise NotFound("fee plan", name, "name")
    return fee_plan_view(plan)


async def list_plans(conn: Conn) -> wire.FeePlanList:
    return wire.FeePlanList([fee_plan_view(p) for p in await store.list_fee_plans(conn)])
