"""Merchant operations under test: the real app (tests/api/conftest.py's ``api``) and the admin API over HTTP."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec
import pytest

from engine.client import PayEngineClient
from tests.api.conftest import ADMIN_TOKEN, Api, api

__all__ = ["api"]


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any

    @property
    def code(self) -> str | None:
        return self.body.get("error", {}).get("code") if isinstance(self.body, dict) else None


@dataclass(frozen=True)
class Admin:
    api: Api

    async def call(self, method: str, path: str, body: Any = None, token: str = ADMIN_TOKEN) -> Reply:
        data = b"" if body is None else msgspec.json.encode(body)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        async with self.api.session.request(method, self.api.url + path, data=data, headers=headers) as resp:
            raw = await resp.read()
            return Reply(resp.status, msgspec.json.decode(raw) if raw else None)

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
