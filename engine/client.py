"""A small Python client for the merchant API: signs every request and retries with the same
Idempotency-Key, so a retried POST can never pay twice. Used by tests, the benchmark, Locust and
``payengine demo``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec
from yarl import URL

from engine.merchants.signing import sign

RETRY_STATUSES = frozenset({409, 429, 500, 502, 503, 504})
JSON_HEADERS = {"Content-Type": "application/json"}


@dataclass(frozen=True, slots=True)
class ApiResult:
    status: int
    body: Any
    headers: dict[str, str]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def replayed(self) -> bool:
        return self.headers.get("Idempotent-Replayed") == "true"

    @property
    def error_code(self) -> str | None:
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            code: str | None = self.body["error"].get("code")
            return code
        return None


RETRY_AFTER_MAX_S = 10.0


def retry_after_s(headers: dict[str, str]) -> float:
    """Seconds from a Retry-After header (delta-seconds form), bounded; 0 when absent or malformed."""
    raw = headers.get("Retry-After", "")
    try:
        return min(max(float(raw), 0.0), RETRY_AFTER_MAX_S)
    except ValueError:
        return 0.0


class PayEngineClient:
    """``async with PayEngineClient(url, merchant_id, secret) as c: await c.create_payment(...)``.

    ``retries_max`` bounds retries of transport errors, 5xx, 429 and 409 in-flight (same key each time);
    ``timeout_s`` bounds each attempt."""

    def __init__(self, base_url: str, merchant_id: str, secret: str, *, retries_max: int = 3,
                 backoff_s: float = 0.05, timeout_s: float = 10.0,
                 session: aiohttp.ClientSession | None = None, key_id: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.merchant_id = merchant_id
        self.secret = secret
        self.key_id = key_id  # sent as X-Key-Id when set (needed to sign with a non-primary key)
        self.retries_max = retries_max
        self.backoff_s = backoff_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session = session
        self._own_session = session is None

    async def __aenter__(self) -> PayEngineClient:
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    def signed_headers(self, method: str, path_qs: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        key = {"X-Key-Id": self.key_id} if self.key_id else {}
        return {"X-Merchant-Id": self.merchant_id, "X-Timestamp": ts,
                "X-Signature": sign(self.secret, ts, method, path_qs, body), **key, **JSON_HEADERS}

    async def send_raw(self, method: str, path_qs: str, body: bytes, headers: dict[str, str]) -> ApiResult:
        """One attempt, exactly these bytes and headers (tests use it to send bad input)."""
        assert self._session is not None, "use the client as an async context manager"
        url = URL(self.base_url + path_qs, encoded=True)
        async with self._session.request(method, url, data=body, headers=headers, timeout=self._timeout) as resp:
            raw = await resp.read()
            try:
                parsed: Any = msgspec.json.decode(raw) if raw else None
            except msgspec.DecodeError:
                parsed = raw.decode(errors="replace")
            return ApiResult(resp.status, parsed, dict(resp.headers))

    async def request(self, method: str, path_qs: str, body: Any = None, *,
                      idempotency_key: str | None = None) -> ApiResult:
        """Signed request; POSTs get an Idempotency-Key (generated unless given) reused on every retry."""
        raw = b"" if body is None else msgspec.json.encode(body)
        if method == "POST" and idempotency_key is None:
            idempotency_key = uuid.uuid4().hex
        attempt = 0
        wait_s = 0.0
        while True:
            headers = self.signed_headers(method, path_qs, raw)
            if idempotency_key is not None:
                headers["Idempotency-Key"] = idempotency_key
            try:
                result = await self.send_raw(method, path_qs, raw, headers)
            except (TimeoutError, aiohttp.ClientConnectionError):
                if attempt >= self.retries_max:
                    raise
            else:
                retry_in_flight = result.status == 409 and result.error_code == "idempotency_key_in_use"
                retryable = result.status in RETRY_STATUSES and (result.status != 409 or retry_in_flight)
                if not retryable or attempt >= self.retries_max:
                    return result
                wait_s = retry_after_s(result.headers)
            attempt += 1
            # The server's Retry-After (back-pressure, rate limit) wins over our own backoff when longer.
            await asyncio.sleep(max(self.backoff_s * 2 ** (attempt - 1), wait_s))
            wait_s = 0.0

    # ------------------------------------------------------------ endpoints

    async def create_customer(self, external_id: str, currency: str = "CNY", **kw: Any) -> ApiResult:
        return await self.request("POST", "/v1/customers", {"external_id": external_id, "currency": currency}, **kw)

    async def get_customer(self, customer_id: str) -> ApiResult:
        return await self.request("GET", f"/v1/customers/{customer_id}")

    async def topup(self, customer_id: str, amount: int, topup_no: str, **kw: Any) -> ApiResult:
        return await self.request("POST", f"/v1/customers/{customer_id}/topups",
                                  {"amount": amount, "topup_no": topup_no}, **kw)

    async def create_payment(self, body: dict[str, Any], **kw: Any) -> ApiResult:
        return await self.request("POST", "/v1/payments", body, **kw)

    async def get_payment(self, payment_id: str) -> ApiResult:
        return await self.request("GET", f"/v1/payments/{payment_id}")

    async def list_payments(self, query: str = "") -> ApiResult:
        return await self.request("GET", "/v1/payments" + (f"?{query}" if query else ""))

    async def close_payment(self, payment_id: str, **kw: Any) -> ApiResult:
        return await self.request("POST", f"/v1/payments/{payment_id}/close", None, **kw)

    async def refund(self, payment_id: str, amount: int, merchant_refund_no: str, **kw: Any) -> ApiResult:
        return await self.request("POST", f"/v1/payments/{payment_id}/refunds",
                                  {"amount": amount, "merchant_refund_no": merchant_refund_no}, **kw)

    async def get_refund(self, refund_id: str) -> ApiResult:
        return await self.request("GET", f"/v1/refunds/{refund_id}")

    async def create_payout(self, body: dict[str, Any], **kw: Any) -> ApiResult:
        return await self.request("POST", "/v1/payouts", body, **kw)

    async def get_payout(self, payout_id: str) -> ApiResult:
        return await self.request("GET", f"/v1/payouts/{payout_id}")

    async def create_transfer(self, body: dict[str, Any], **kw: Any) -> ApiResult:
        return await self.request("POST", "/v1/transfers", body, **kw)

    async def get_transfer(self, transfer_id: str) -> ApiResult:
        return await self.request("GET", f"/v1/transfers/{transfer_id}")

    async def list_transfers(self, query: str = "") -> ApiResult:
        return await self.request("GET", "/v1/transfers" + (f"?{query}" if query else ""))

    async def accounts(self) -> ApiResult:
        return await self.request("GET", "/v1/accounts")

    async def account(self, account_id: str) -> ApiResult:
        return await self.request("GET", f"/v1/accounts/{account_id}")

    async def statement(self, account_id: str, query: str = "") -> ApiResult:
        return await self.request("GET", f"/v1/accounts/{account_id}/statement" + (f"?{query}" if query else ""))


async def create_merchant(base_url: str, admin_token: str, body: dict[str, Any],
                          session: aiohttp.ClientSession) -> dict[str, Any]:
    """Create a merchant through the admin API; returns its id and secret."""
    async with session.post(base_url.rstrip("/") + "/admin/merchants", data=msgspec.json.encode(body),
                            headers={"Authorization": f"Bearer {admin_token}", **JSON_HEADERS}) as resp:
        data: dict[str, Any] = msgspec.json.decode(await resp.read())
        if resp.status != 201:
            raise RuntimeError(f"creating merchant failed: {resp.status} {data}")
        return data
