"""Locust users that behave like merchant systems calling payengine.

Every request is signed as in API.md with ``engine.client.PayEngineClient.signed_headers`` (the same
code the tests and the Python client use). Test data is created through the API when the test
starts: one hot merchant (``POST /admin/merchants``, admin token) and funded customers (``POST
/v1/customers`` + topups). What succeeded is counted and written to ``loadtests/reports/expected.json``
when the test stops, so ``loadtests/run.py`` can compare it with the ledger.

Knobs (environment): PAYENGINE_ADMIN_TOKEN, LOADTEST_CUSTOMERS (default 200), LOADTEST_CHANNEL
(channel name for ChannelPayer and Withdrawer, default wxsim), LOADTEST_SIM_URL (the simulator's base URL;
the ChannelPayer pays there), LOADTEST_CHANNELS=0 to leave channel payments and payouts out of MixedMerchant,
LOADTEST_REPORTS (where expected.json and the final stats go; default loadtests/reports).

Locust's own statistics settings are changed here, before it starts (its documented way): a chart point
every second instead of every 5 (a 60 s run had 13), each point's percentiles over the last 2 s instead of
10, and p99 charted beside p50 and p95.
"""

from __future__ import annotations

import csv
import json
import os
import random
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import locust.stats
import requests
from locust import HttpUser, between, events, task
from locust.env import Environment

from engine.client import PayEngineClient

locust.stats.HISTORY_STATS_INTERVAL_SEC = 1
locust.stats.CURRENT_RESPONSE_TIME_PERCENTILE_WINDOW = 2
locust.stats.PERCENTILES_TO_CHART = [0.5, 0.95, 0.99]

REPORTS = Path(os.environ.get("LOADTEST_REPORTS") or Path(__file__).resolve().parent / "reports")
ADMIN_TOKEN = os.environ.get("PAYENGINE_ADMIN_TOKEN", "dev-admin-token")
CUSTOMERS = int(os.environ.get("LOADTEST_CUSTOMERS", "200"))
CHANNEL = os.environ.get("LOADTEST_CHANNEL", "wxsim")
SIM_URL = os.environ.get("LOADTEST_SIM_URL", "")
CHANNELS_ON = os.environ.get("LOADTEST_CHANNELS", "1") != "0" and bool(SIM_URL)
CURRENCY = "CNY"
TOPUP_MINOR = 100_000_000  # per customer: enough that no wallet payment is refused for funds
POLL_S, POLL_MAX_S = 0.2, 20.0
PAYOUT_CARD = "4111111111111111"  # passes the Luhn check; the simulators pay any well-formed card


class TestData:
    """Created once per Locust process at test start; shared by every user (guarded by a lock)."""

    def __init__(self) -> None:
        self.merchant_id = ""
        self.signer: PayEngineClient | None = None
        self.customers: list[str] = []
        self.paid: list[tuple[str, int]] = []  # (payment id, amount left to refund)
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()

    def count(self, key: str, amount: int = 0) -> None:
        with self.lock:
            self.counts[key] += 1
            if amount:
                self.counts[key + "_minor"] += amount


DATA = TestData()


def _signed(method: str, path: str, body: Any = None, key: str | None = None) -> tuple[bytes, dict[str, str]]:
    assert DATA.signer is not None, "test data was not created (see the test_start log)"
    raw = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
    headers = DATA.signer.signed_headers(method, path, raw)
    if method == "POST":
        headers["Idempotency-Key"] = key or uuid.uuid4().hex
    return raw, headers


@events.test_start.add_listener  # type: ignore[untyped-decorator]
def create_test_data(environment: Environment, **_: Any) -> None:
    host = (environment.host or "http://127.0.0.1:8080").rstrip("/")
    http = requests.Session()
    resp = http.post(f"{host}/admin/merchants", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30,
                     json={"name": f"locust-{uuid.uuid4().hex[:8]}", "currencies": [CURRENCY], "fee_bps": 60,
                           "hot": True})
    resp.raise_for_status()
    merchant = resp.json()
    DATA.merchant_id = merchant["id"]
    DATA.signer = PayEngineClient(host, merchant["id"], merchant["secret"])
    for n in range(CUSTOMERS):
        raw, headers = _signed("POST", "/v1/customers", {"external_id": f"locust-{n}", "currency": CURRENCY})
        created = http.post(f"{host}/v1/customers", data=raw, headers=headers, timeout=30)
        created.raise_for_status()
        customer_id = created.json()["id"]
        path = f"/v1/customers/{customer_id}/topups"
        raw, headers = _signed("POST", path, {"amount": TOPUP_MINOR, "topup_no": f"seed-{n}"})
        http.post(f"{host}{path}", data=raw, headers=headers, timeout=30).raise_for_status()
        DATA.customers.append(customer_id)
    print(f"locust test data: merchant {DATA.merchant_id} (hot), {len(DATA.customers)} funded customers", flush=True)


@events.test_stop.add_listener  # type: ignore[untyped-decorator]
@events.quitting.add_listener  # type: ignore[untyped-decorator]
def write_expectations(environment: Environment, **_: Any) -> None:
    """Written at stop and again at quit, after every user is gone, so late answers are counted."""
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "expected.json").write_text(json.dumps(
        {"merchant_id": DATA.merchant_id, "customers": DATA.customers, "counts": dict(DATA.counts)}, indent=2))


RUN: dict[str, Environment] = {}  # the environment of this Locust process, for the quit event (which has none)


@events.init.add_listener  # type: ignore[untyped-decorator]
def remember_environment(environment: Environment, **_: Any) -> None:
    RUN["environment"] = environment


@events.quit.add_listener  # type: ignore[untyped-decorator]
def write_final_stats(exit_code: int, **_: Any) -> None:
    """Rewrite run_stats.csv and run_failures.csv from the final statistics, the ones Locust's summary
    prints. Locust rewrites them once a second while it runs, so their last version can miss the requests
    of the last second and of the stop (1692 printed, 1691 in the CSV in a 10 s run). ``quit`` comes after
    every user has stopped and the summary is printed, before Locust closes its own CSV files, whose last
    write it flushed already (each rewrite ends with a truncate), so nothing overwrites these."""
    environment = RUN.get("environment")
    prefix = getattr(environment and environment.parsed_options, "csv_prefix", None)
    if environment is None or not prefix:
        return
    writer = locust.stats.StatsCSV(environment, locust.stats.PERCENTILES_TO_REPORT)
    with open(f"{prefix}_stats.csv", "w", newline="") as out:
        writer.requests_csv(csv.writer(out))
    with open(f"{prefix}_failures.csv", "w", newline="") as out:
        writer.failures_csv(csv.writer(out))


class MerchantUser(HttpUser):
    abstract = True
    wait_time = between(0.05, 0.2)

    def post(self, path: str, body: Any, name: str) -> Any:
        raw, headers = _signed("POST", path, body)
        return self.client.post(path, data=raw, headers=headers, name=name, catch_response=True)

    def get(self, path: str, name: str) -> Any:
        _, headers = _signed("GET", path)
        return self.client.get(path, headers=headers, name=name, catch_response=True)

    def wallet_payment(self) -> None:
        amount = random.randint(100, 50_000)
        body = {"merchant_order_no": uuid.uuid4().hex, "amount": amount, "currency": CURRENCY, "method": "wallet",
                "customer_id": random.choice(DATA.customers)}
        # Counted before sending: a request cut off by the stop (or a timeout) may still have been
        # booked, so the checks allow the ledger anything between acknowledged and attempted.
        DATA.count("wallet_attempted", amount)
        with self.post("/v1/payments", body, "POST /v1/payments [wallet]") as resp:
            if resp.status_code == 201 and resp.json().get("status") == "succeeded":
                resp.success()
                DATA.count("wallet_payments", amount)
                with DATA.lock:
                    DATA.paid.append((resp.json()["id"], amount))
            else:
                resp.failure(f"{resp.status_code}: {resp.text[:200]}")
                if resp.status_code:  # an answer, not a transport error: nothing was booked
                    DATA.count("wallet_refused", amount)

    def partial_refund(self) -> None:
        with DATA.lock:
            if not DATA.paid:
                return
            index = random.randrange(len(DATA.paid))
            payment_id, left = DATA.paid[index]
            amount = max(1, left // 3)
            if left - amount <= 0:
                DATA.paid.pop(index)
            else:
                DATA.paid[index] = (payment_id, left - amount)  # claimed before sending: refunds never overrun
        self.attempt("refunds", f"/v1/payments/{payment_id}/refunds",
                     {"amount": amount, "merchant_refund_no": uuid.uuid4().hex}, "POST /v1/payments/{id}/refunds")

    def attempt(self, kind: str, path: str, body: dict[str, Any], name: str) -> dict[str, Any] | None:
        """POST a money movement and count it: attempted before sending, ``kind`` when acknowledged (201),
        ``kind_refused`` when answered otherwise (nothing was booked). The created object, or None."""
        amount = int(body["amount"])
        DATA.count(f"{kind}_attempted", amount)
        with self.post(path, body, name) as resp:
            if resp.status_code == 201:
                resp.success()
                DATA.count(kind, amount)
                created: dict[str, Any] = resp.json()
                return created
            resp.failure(f"{resp.status_code}: {resp.text[:200]}")
            if resp.status_code:  # an answer, not a transport error
                DATA.count(f"{kind}_refused", amount)
            return None

    def transfer(self) -> None:
        """A customer pays another customer of the merchant from their wallet (synchronous, both wallets)."""
        payer, payee = random.sample(DATA.customers, 2)
        self.attempt("transfers", "/v1/transfers", {
            "transfer_no": uuid.uuid4().hex, "source": "customer", "from_customer_id": payer,
            "to_customer_id": payee, "amount": random.randint(100, 20_000), "currency": CURRENCY},
            "POST /v1/transfers")

    def payout(self) -> None:
        """A customer withdraws to a bank card: frozen at once, paid by the channel later; polled to the end."""
        created = self.attempt("payouts", "/v1/payouts", {
            "merchant_payout_no": uuid.uuid4().hex, "amount": random.randint(100, 20_000), "currency": CURRENCY,
            "source": "customer", "customer_id": random.choice(DATA.customers), "channel": CHANNEL,
            "destination": {"kind": "bank_card", "number": PAYOUT_CARD, "holder_name": "Locust Payee"}},
            "POST /v1/payouts")
        if created is None:
            return
        done = self.poll(f"/v1/payouts/{created['id']}", lambda p: p.get("status") in ("succeeded", "failed"),
                         "GET /v1/payouts/{id} [until final]")
        if done is not None:
            DATA.count(f"payouts_{done['status']}", int(done["amount"]))

    def channel_payment(self) -> None:
        amount = random.randint(100, 50_000)
        body = {"merchant_order_no": uuid.uuid4().hex, "amount": amount, "currency": CURRENCY, "method": "channel",
                "channel": CHANNEL}
        with self.post("/v1/payments", body, "POST /v1/payments [channel]") as resp:
            if resp.status_code != 201:
                resp.failure(f"{resp.status_code}: {resp.text[:200]}")
                return
            resp.success()
            payment_id = resp.json()["id"]
        payment = self.poll(f"/v1/payments/{payment_id}",
                            lambda p: (p.get("voucher") or {}).get("status") in ("ready", "failed"),
                            "GET /v1/payments/{id} [until voucher]")
        voucher = (payment or {}).get("voucher") or {}
        if voucher.get("status") != "ready":
            return
        start = time.perf_counter()
        paid = requests.post(f"{SIM_URL}/sim/pay", json={"pay_url": voucher["pay_url"]}, timeout=10)
        events.request.fire(  # type: ignore[no-untyped-call]
            request_type="POST", name="SIM /sim/pay", response_time=(time.perf_counter() - start) * 1000,
            response_length=len(paid.content), exception=None if paid.ok else Exception(paid.text), context={})
        if not paid.ok:
            return
        done = self.poll(f"/v1/payments/{payment_id}", lambda p: p.get("status") in ("succeeded", "failed", "closed"),
                         "GET /v1/payments/{id} [until succeeded]")
        if done is not None and done.get("status") == "succeeded":
            DATA.count("channel_payments", amount)

    def poll(self, path: str, until: Any, name: str) -> dict[str, Any] | None:
        deadline = time.monotonic() + POLL_MAX_S
        while time.monotonic() < deadline:
            with self.get(path, name) as resp:
                if resp.status_code != 200:
                    resp.failure(f"{resp.status_code}: {resp.text[:200]}")
                    return None
                resp.success()
                found: dict[str, Any] = resp.json()
            if until(found):
                return found
            time.sleep(POLL_S)
        return None


class WalletPayer(MerchantUser):
    """Wallet payments from the funded customers to the one hot merchant."""

    @task
    def pay(self) -> None:
        self.wallet_payment()


class ChannelPayer(MerchantUser):
    """Channel payment -> voucher ready -> payer pays at the simulator -> succeeded."""

    @task
    def pay(self) -> None:
        if CHANNELS_ON:
            self.channel_payment()


class Refunder(MerchantUser):
    """Partial refunds on payments made earlier in the run."""

    @task
    def refund(self) -> None:
        self.partial_refund()


class Transferrer(MerchantUser):
    """Customer-to-customer wallet transfers between the funded customers."""

    @task
    def send(self) -> None:
        self.transfer()


class Withdrawer(MerchantUser):
    """Customer payouts to a bank card through the channel, each polled until it succeeded or failed."""

    @task
    def withdraw(self) -> None:
        if CHANNELS_ON:
            self.payout()


class MixedMerchant(MerchantUser):
    """What a real merchant's traffic looks like: mostly wallet payments, some channel payments,
    refunds, transfers, payouts, and reads."""

    weight = 4

    @task(10)
    def pay_wallet(self) -> None:
        self.wallet_payment()

    @task(3)
    def pay_channel(self) -> None:
        if CHANNELS_ON:
            self.channel_payment()

    @task(2)
    def refund(self) -> None:
        self.partial_refund()

    @task(2)
    def send(self) -> None:
        self.transfer()

    @task(1)
    def withdraw(self) -> None:
        if CHANNELS_ON:
            self.payout()

    @task(2)
    def read(self) -> None:
        with DATA.lock:
            recent = DATA.paid[-1][0] if DATA.paid else None
        if recent is not None:
            with self.get(f"/v1/payments/{recent}", "GET /v1/payments/{id}") as resp:
                if resp.status_code == 200:
                    resp.success()
                else:
                    resp.failure(str(resp.status_code))
