"""Hard edges a fuzzer and an outage hit: each is a clear answer in the error shape, never a 500.

- a body whose Content-Encoding does not decode is 400 invalid_body, before any credentials are checked;
- a malformed path parameter (a NUL byte, an overlong id) is 400 parameter_invalid on every route that has
  one, before authentication and before any query;
- a client that hangs up mid-body is counted, not logged as an error of ours;
- PostgreSQL unreachable is 503 service_unavailable with Retry-After, and /readyz says 503; Redis
  unreachable leaves /readyz 200 "degraded" while wallet payments go on booking;
- an outage's identical warnings are logged once per interval with a count, not once per request.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid

import pytest
from prometheus_client import REGISTRY

from engine import embedded
from engine.http.routes import ROUTES
from engine.logs import RepeatFilter
from tests.api.conftest import Api, Private, merchant_with_funds


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize("encoding", ["gzip", "br", "deflate"])
async def test_a_body_that_does_not_decode_is_400_before_authentication(api: Api, encoding: str) -> None:
    async with api.session.post(api.url + "/v1/payments", data=b"this is not " + encoding.encode(),
                                headers={"Content-Encoding": encoding, "Content-Type": "application/json"}) as resp:
        body = await resp.json()
    assert resp.status == 400 and body["error"]["code"] == "invalid_body", body


def _concrete(path: str, bad: str) -> list[tuple[str, str]]:
    """The path with one parameter replaced by ``bad`` (the others well-formed), for each parameter."""
    names = re.findall(r"{(\w+)}", path)
    good = {"date": "2026-12-07", "channel": "wxsim"}
    out = []
    for name in names:
        filled = path
        for other in names:
            filled = filled.replace("{" + other + "}", bad if other == name else good.get(other, "x_1"))
        out.append((name, filled))
    return out


ID_ROUTES = sorted({(spec.method, spec.path) for spec in ROUTES if "{" in spec.path})


@pytest.mark.parametrize(("method", "path"), ID_ROUTES)
@pytest.mark.parametrize("bad", ["%00", "a%00b", "x" * 300, "%E2%80%8B", "a%20b"])
async def test_a_malformed_path_parameter_is_400_before_anything_reads_it(api: Api, method: str, path: str,
                                                                          bad: str) -> None:
    for name, concrete in _concrete(path, bad):
        async with api.session.request(method, api.url + concrete, data=b"{}") as resp:
            body = await resp.json()
        assert resp.status == 400, (concrete, body)
        assert (body["error"]["code"], body["error"]["param"]) == ("parameter_invalid", name), body


async def test_the_openapi_document_publishes_the_path_patterns_the_server_enforces(api: Api) -> None:
    async with api.session.get(api.url + "/openapi.json") as resp:
        doc = await resp.json()
    for path, operations in doc["paths"].items():
        for operation in operations.values():
            for param in operation.get("parameters", []):
                if param["in"] == "path":
                    assert param["schema"]["pattern"], (path, param)
    day = doc["paths"].get("/admin/day-end/{date}")
    if day is not None:  # the day-end route is in the table once the admin routes are
        assert re.fullmatch(day["get"]["parameters"][0]["schema"]["pattern"], "2026-12-07")


async def test_a_client_that_hangs_up_mid_body_is_counted_not_an_error(api: Api,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    before = _sample("payengine_http_client_disconnects_total")
    host, port = api.url.removeprefix("http://").split(":")
    merchant = await api.merchant()
    for _ in range(3):
        _reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"POST /v1/payments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"X-Merchant-Id: " + merchant.merchant_id.encode() + b"\r\nContent-Length: 1000\r\n\r\n{\"amo")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()
    with caplog.at_level(logging.WARNING):
        for _ in range(100):
            if _sample("payengine_http_client_disconnects_total") >= before + 3:
                break
            await asyncio.sleep(0.05)
    assert _sample("payengine_http_client_disconnects_total") == before + 3
    assert not [r for r in caplog.records if r.getMessage() == "unhandled error"]


def _unavailable_total() -> float:
    """Answers 503 for an unreachable dependency, whichever it was taken for (a socket that cannot connect
    is 'network': the error does not say whose socket it was)."""
    return sum(_sample("payengine_http_dependency_unavailable_total", dependency=d)
               for d in ("postgresql", "redis", "network"))


def _wallet_payment(customer: str) -> dict[str, object]:
    return {"method": "wallet", "amount": 100, "currency": "CNY", "merchant_order_no": "ord-" + uuid.uuid4().hex,
            "customer_id": customer}


async def test_postgresql_down_is_503_with_retry_after_and_not_ready(private: Private) -> None:
    client, customer = await merchant_with_funds(private)
    assert private.servers.pg_dir is not None
    embedded.stop_postgres(private.servers.pg_dir, mode="immediate")
    before = _unavailable_total()
    paid = await client.create_payment(_wallet_payment(customer))
    assert paid.status == 503, paid.body
    assert paid.body["error"]["code"] == "service_unavailable" and paid.headers.get("Retry-After"), paid
    assert _unavailable_total() == before + 1
    async with private.session.get(private.api_url + "/readyz") as resp:
        ready = await resp.json()
    assert resp.status == 503 and "postgresql" in ready["problems"], ready


async def test_redis_down_leaves_the_node_ready_but_degraded_and_wallet_payments_booking(private: Private) -> None:
    client, customer = await merchant_with_funds(private)
    assert private.servers.redis_dir is not None
    embedded.stop_redis(private.servers.redis_dir, kill=True)
    async with private.session.get(private.api_url + "/readyz") as resp:
        ready = await resp.json()
    assert resp.status == 200 and ready["status"] == "degraded" and "redis" in ready["problems"], ready
    assert _sample("payengine_dependency_up", dependency="redis") == 0
    paid = await client.create_payment(_wallet_payment(customer))
    assert paid.status == 201 and paid.body["status"] == "succeeded", paid.body


def _record(msg: str, exc: type[BaseException] | None = None) -> logging.LogRecord:
    info = (exc, exc(), None) if exc is not None else None
    return logging.LogRecord("engine.http", logging.WARNING, __file__, 1, msg, None, info)


def test_repeated_warnings_pass_once_per_interval_with_the_count_held_back() -> None:
    now = [0.0]
    repeat = RepeatFilter(interval_s=10, clock=lambda: now[0])
    assert repeat.filter(_record("dependency unavailable"))
    assert not any(repeat.filter(_record("dependency unavailable")) for _ in range(500))
    assert repeat.filter(_record("another warning"))  # a different message is its own kind
    assert repeat.filter(_record("dependency unavailable", ConnectionError))  # so is another exception
    now[0] = 10.5
    passed = _record("dependency unavailable")
    assert repeat.filter(passed) and passed.repeated == 500  # type: ignore[attr-defined]
    debug = _record("x")
    debug.levelno = logging.DEBUG
    assert all(repeat.filter(debug) for _ in range(3))  # only warnings and worse are held back


def test_whole_number_floats_decode_as_integers_and_garbage_is_a_400() -> None:
    from engine.customers.wire import CreateTopup
    from engine.web.decoding import decode_body
    from engine.web.errors import ApiError

    assert decode_body(b'{"amount": 7004775.0, "topup_no": "t"}', CreateTopup).amount == 7004775
    for raw in (b'{"amount": 7.5, "topup_no": "t"}', b"5\x0e\x14P", b'{"amount": 1e300, "topup_no": "t"}'):
        try:
            decode_body(raw, CreateTopup)
        except ApiError as err:
            assert err.status == 400, raw
        else:
            raise AssertionError(f"{raw!r} was accepted")


async def test_a_query_parameter_given_twice_is_refused_not_silently_collapsed(api: Api) -> None:
    client = await api.merchant()
    answer = await client.request("GET", "/v1/payments?limit=5&limit=500")
    assert (answer.status, answer.body["error"]["param"]) == (400, "limit"), answer.body
