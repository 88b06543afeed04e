"""Schemathesis against /openapi.json on the live server: no 5xx, every response matches the schema.

Requests are signed by a requests auth hook (so generated bodies get past authentication and reach
the handlers). Bounded: a few examples per operation, the whole run well under a minute.
"""

from __future__ import annotations

import asyncio
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from engine.client import PayEngineClient
from tests.api.conftest import Api

EXAMPLES_PER_OPERATION = 25


class _Sign(requests.auth.AuthBase):
    def __init__(self, client: PayEngineClient, admin_token: str) -> None:
        self.client = client
        self.admin_token = admin_token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        path = r.path_url
        if path.startswith("/admin/"):
            r.headers["Authorization"] = f"Bearer {self.admin_token}"
            return r
        body = r.body if isinstance(r.body, bytes) else (r.body or "").encode()
        for name, value in self.client.signed_headers(r.method or "GET", path, body).items():
            if name != "Content-Type":
                r.headers[name] = value
        return r


def _fuzz(url: str, auth: _Sign) -> list[str]:
    schema = schemathesis.openapi.from_url(url + "/openapi.json")
    session = requests.Session()
    session.auth = auth
    failures: list[str] = []
    checks: list[Any] = [not_a_server_error, status_code_conformance, content_type_conformance,
                         response_schema_conformance]
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            response = case.call(base_url=url, session=session)
            case.validate_response(response, checks=checks)

        try:
            run()
        except Exception as exc:  # collect every operation's failure, report them together
            failures.append(f"{operation.label}: {exc}")
    return failures


async def test_schemathesis_finds_no_server_errors_and_no_schema_violations(api: Api) -> None:
    client = await api.merchant()
    await api.funded_customer(client, 10_000)
    failures = await asyncio.to_thread(_fuzz, api.url, _Sign(client, api.settings.admin_token))
    assert not failures, "\n\n".join(failures)
