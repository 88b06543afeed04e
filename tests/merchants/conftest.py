"""Merchant operations under test: the real app (tests/api/conftest.py's ``api``) and the admin API over HTTP."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
import pytest

from engine.client import PayEngineClient
from tests.api.conftest import AdminHttp, Api, api

__all__ = ["api"]


class Admin(AdminHttp):
    async def create(self, **fields: Any) -> dict[str, Any]:
        body = {"name": "ops merchant", "currencies": ["CNY"], "fee_bps": 60, **fields}
        reply = await self.call("POST", "/admin/merchants", body)
        assert reply.status == 201, reply.body
        created: dict[str, Any] = reply.body
        return created

    def client(self, created: dict[str, Any], secret: str | None = None, key_id: str | None = None,
               session: aiohttp.ClientSession | None = None) -> PayEngineClient:
        return PayEngineClient(self.api.url, created["id"], secret or created["secret"], key_id=key_id,
                               session=session or self.api.session, retries_max=0)


@pytest.fixture
def admin(api: Api) -> Admin:
    return Admin(api)


def ref() -> str:
    return uuid.uuid4().hex
