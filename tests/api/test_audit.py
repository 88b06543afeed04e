"""The audit trail: rows go in with the action's transaction, never change, and are read back by subject."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from engine.audit import store
from tests.api.conftest import AdminHttp, Api


async def test_an_audit_row_is_read_back_newest_first_by_subject(api: Api, pool: asyncpg.Pool) -> None:
    subject = "adj_" + uuid.uuid4().hex
    async with pool.acquire() as conn, conn.transaction():
        await store.record(conn, "li.lei", "propose", "adjustment", subject, {"reason": "short"})
        await store.record(conn, "han.mei", "approve", "adjustment", subject)
    reply = await AdminHttp(api).call("GET", f"/admin/audit?subject_kind=adjustment&subject_id={subject}")
    assert reply.status == 200, reply.body
    assert [(r["operator"], r["action"], r["detail"]) for r in reply.body["data"]] == [
        ("han.mei", "approve", {}), ("li.lei", "propose", {"reason": "short"})]


async def test_a_rolled_back_action_leaves_no_audit_row(pool: asyncpg.Pool) -> None:
    subject = "adj_" + uuid.uuid4().hex
    async with pool.acquire() as conn:
        with pytest.raises(RuntimeError):
            async with conn.transaction():
                await store.record(conn, "li.lei", "propose", "adjustment", subject)
                raise RuntimeError("the action failed after its audit row")
        assert await store.entries(conn, "adjustment", subject) == []


@pytest.mark.parametrize("statement", ["UPDATE audit_log SET operator = 'mallory' WHERE subject_id = $1",
                                       "DELETE FROM audit_log WHERE subject_id = $1"])
async def test_audit_rows_cannot_be_changed_or_removed(pool: asyncpg.Pool, statement: str) -> None:
    subject = "adj_" + uuid.uuid4().hex
    async with pool.acquire() as conn:
        await store.record(conn, "li.lei", "propose", "adjustment", subject)
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute(statement, subject)
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute("TRUNCATE audit_log")
        assert [e.operator for e in await store.entries(conn, "adjustment", subject)] == ["li.lei"]


async def test_a_bad_operator_filter_is_a_400(api: Api) -> None:
    reply = await AdminHttp(api).call("GET", "/admin/audit?operator=not%20a%20name")
    assert reply.status == 400, reply.body
