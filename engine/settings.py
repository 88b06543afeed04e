"""One frozen Settings object built from ``PAYENGINE_*`` environment variables.

Every variable is parsed and checked once at start; a bad value raises ``SettingsError`` naming the
variable, so a misconfigured process refuses to start instead of failing on the first payment.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.channel_specs import ChannelSpec, parse_channel_specs

PREFIX = "PAYENGINE_"
REQUEST_AMOUNT_CEILING_MINOR = 10**15  # the wire types refuse more (engine/web/wire.py)


class SettingsError(ValueError):
    """A PAYENGINE_* variable is missing or malformed."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


def _int_in(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw, 10)
        except ValueError:
            raise ValueError(f"expected an integer, got {raw!r}") from None
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}, got {value}")
        return value

    return parse


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected a boolean (1/0/true/false), got {raw!r}")


def _clock_or_off(raw: str) -> str:
    """'HH:MM' (24 h, UTC) or 'off'; kept as text so Settings stays plain data."""
    text = raw.strip().lower()
    if text in ("off", ""):
        return "off"
    hours, sep, minutes = text.partition(":")
    if not (sep and hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60
            and len(minutes) == 2):
        raise ValueError(f"expected HH:MM (UTC) or 'off', got {raw!r}")
    return f"{int(hours):02d}:{minutes}"


def _url(schemes: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if not raw.startswith(tuple(s + "://" for s in schemes)):
            raise ValueError(f"expected a URL starting with one of {', '.join(schemes)}")
        return raw

    return parse


def _text(raw: str) -> str:
    if not raw.strip():
        raise ValueError("must not be empty")
    return raw


def _path(raw: str) -> Path:
    return Path(_text(raw)).expanduser()


def _currency_list(raw: str) -> tuple[str, ...]:
    codes = tuple(c.strip().upper() for c in raw.split(",") if c.strip())
    if not codes or any(len(c) != 3 or not c.isalpha() for c in codes):
        raise ValueError(f"expected comma-separated ISO 4217 codes, got {raw!r}")
    return codes


AMOUNT_MAX_DEFAULT_MINOR = 10**12  # 10 billion major units: far above any single real payment, far below bigint


def _amount_caps(raw: str) -> tuple[tuple[str, int], ...]:
    """``CNY=100000000000,USD=5000000000`` (minor units per currency; ``*=N`` for every other currency)."""
    caps: list[tuple[str, int]] = []
    for part in (p.strip() for p in raw.split(",") if p.strip()):
        code, _, value = part.partition("=")
        code = code.strip().upper()
        if not (code == "*" or (len(code) == 3 and code.isalpha())) or not value.strip().isdigit():
            raise ValueError(f"expected CUR=minor_units[,...], got {part!r}")
        amount = int(value)
        if not 1 <= amount <= REQUEST_AMOUNT_CEILING_MINOR:
            raise ValueError(f"{code}: must be between 1 and {REQUEST_AMOUNT_CEILING_MINOR}, got {amount}")
        caps.append((code, amount))
    return tuple(caps)


def _seconds_list(raw: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in raw.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"expected comma-separated seconds, got {raw!r}") from None
    if not values or len(values) > 50 or any(not 0 < v <= 86400 for v in values):
        raise ValueError("expected 1 to 50 delays, each in (0, 86400] seconds")
    return values


def _env(name: str, parse: Callable[[str], Any], default: Any) -> Any:
    return field(default=default, metadata={"env": PREFIX + name, "parse": parse})


@dataclass(frozen=True, slots=True)
class Settings:
    """Process settings. Field metadata names the variable and its parser."""

    # Where the servers are. Empty URL = start the embedded server in data_dir.
    database_url: str = _env("DATABASE_URL", _url(("postgresql", "postgres")), "")
    redis_url: str = _env("REDIS_URL", _url(("redis", "unix", "rediss", "redis+cluster", "rediss+cluster")), "")
    # Treat PAYENGINE_REDIS_URL as one node of a Redis Cluster (same as a redis+cluster:// URL).
    redis_cluster: bool = _env("REDIS_CLUSTER", _bool, False)
    # Longest a Redis command (or connecting) may take before it fails; no call waits forever on a Redis that
    # stopped answering without closing its connections. Every command we send is O(batch): milliseconds.
    redis_timeout_s: int = _env("REDIS_TIMEOUT_S", _int_in(1, 300), 10)
    data_dir: Path = _env("DATA_DIR", _path, Path(".payengine"))
    # Optional TCP port for the embedded PostgreSQL (0 = unix socket only).
    embedded_pg_port: int = _env("EMBEDDED_PG_PORT", _int_in(0, 65535), 0)
    # `payengine serve` stops the embedded servers it started when it stops; 1 keeps them running for a fast
    # restart (`payengine servers stop` stops them). Servers it found running are never stopped by it.
    keep_servers: bool = _env("KEEP_SERVERS", _bool, False)

    host: str = _env("HOST", _text, "127.0.0.1")
    port: int = _env("PORT", _int_in(0, 65535), 8080)
    workers: int = _env("WORKERS", _int_in(1, 64), 1)
    # Prometheus' /metrics on a port of its own (0 = off): for `payengine flush|gateway|webhooks`, which serve
    # no HTTP otherwise, and for each API worker (this port + the worker's index, 0-based), since workers
    # sharing PAYENGINE_PORT answer a scrape there from whichever one the kernel picks.
    metrics_port: int = _env("METRICS_PORT", _int_in(0, 65535), 0)
    admin_token: str = _env("ADMIN_TOKEN", _text, "dev-admin-token")
    log_level: str = _env("LOG_LEVEL", _text, "INFO")

    db_pool_min: int = _env("DB_POOL_MIN", _int_in(1, 1000), 4)
    db_pool_max: int = _env("DB_POOL_MAX", _int_in(1, 1000), 64)
    db_command_timeout_s: int = _env("DB_COMMAND_TIMEOUT_S", _int_in(1, 3600), 30)
    # A pool grown by a burst gives connections idle this long back to the server (down to DB_POOL_MIN),
    # so the server's max_connections budget is not held by processes that are quiet now.
    db_pool_idle_s: int = _env("DB_POOL_IDLE_S", _int_in(1, 86_400), 30)

    # Transaction number fields (see engine/txn_no.py for the layout).
    system_code: int = _env("SYSTEM_CODE", _int_in(0, 99), 1)
    environment_code: int = _env("ENVIRONMENT_CODE", _int_in(0, 9), 1)
    shard: int = _env("SHARD", _int_in(0, 99), 0)
    node_lease_s: int = _env("NODE_LEASE_S", _int_in(10, 86400), 60)

    # Hot-account buffer (buffer/): defaults for the live tuning (a stored row in buffer_settings,
    # changed by PUT /admin/buffer/settings or `payengine buffer tune`, wins), whether `serve` runs the
    # flushers in-process, and the recovery grace (a leg still buffered in PostgreSQL and missing from
    # Redis this long, counted from the first sweep that saw it missing, is re-enqueued).
    buffer_batch_size: int = _env("BUFFER_BATCH_SIZE", _int_in(1, 100_000), 1000)
    buffer_flush_interval_ms: int = _env("BUFFER_FLUSH_INTERVAL_MS", _int_in(1, 60_000), 20)
    buffer_max_lag_ms: int = _env("BUFFER_MAX_LAG_MS", _int_in(1, 3_600_000), 5000)
    buffer_max_depth: int = _env("BUFFER_MAX_DEPTH", _int_in(1, 100_000_000), 100_000)
    buffer_flusher_concurrency: int = _env("BUFFER_FLUSHER_CONCURRENCY", _int_in(1, 64), 2)
    buffer_backpressure_wait_ms: int = _env("BUFFER_BACKPRESSURE_WAIT_MS", _int_in(0, 60_000), 0)
    buffer_in_process_flushers: bool = _env("BUFFER_IN_PROCESS_FLUSHERS", _bool, True)
    # In-process flushers on a thread of their own (buffer/flush_thread.py) instead of the request loop: lower
    # flush lag under load on loopback, but ~8% fewer payments/s at a 1 ms database (GIL hand-offs); measured
    # in docs/SCALING.md. Off by default.
    buffer_flusher_thread: bool = _env("BUFFER_FLUSHER_THREAD", _bool, False)
    buffer_recovery_grace_ms: int = _env("BUFFER_RECOVERY_GRACE_MS", _int_in(0, 3_600_000), 2000)
    # `payengine flush` serves its metrics (buffer counters: batches, recovered legs, flush errors) on
    # PAYENGINE_HOST at this port; 0 = not at all. In-process flushers count into the API's /metrics.
    flush_metrics_port: int = _env("FLUSH_METRICS_PORT", _int_in(0, 65535), 0)

    # Batched wallet payments (engine/payments/batcher.py): at most BATCH_MAX payments per database transaction
    # (0 = off, the default: every payment books on its own; not on by default until a batch's lock order
    # agrees with the posting function's, see docs/SCALING.md), an optional wait of BATCH_LINGER_US for more
    # to arrive (at most 1 ms; 0 = natural batching only: a batch is what arrived while the previous one was
    # booking), and at most BATCH_QUEUE_MAX waiting; a payment beyond that is refused 503 with Retry-After,
    # nothing written.
    batch_max: int = _env("BATCH_MAX", _int_in(0, 10_000), 0)
    batch_linger_us: int = _env("BATCH_LINGER_US", _int_in(0, 1000), 0)
    batch_queue_max: int = _env("BATCH_QUEUE_MAX", _int_in(1, 1_000_000), 4096)
    # Batches in flight at once per process (one in PostgreSQL while another commits); 1 keeps strict arrival
    # order across batches too.
    batch_bookers: int = _env("BATCH_BOOKERS", _int_in(1, 8), 2)

    # Split accounts: how long a process trusts its cached view of which accounts are split, how long a
    # retired sub waits (must exceed that cache) before it may be closed, how often split families are
    # tidied, and the sub balance under which they are evened out (0 = no automatic rebalancing).
    split_cache_ttl_ms: int = _env("SPLIT_CACHE_TTL_MS", _int_in(10, 60_000), 1000)
    split_close_grace_s: int = _env("SPLIT_CLOSE_GRACE_S", _int_in(1, 86400), 10)
    split_tidy_interval_s: int = _env("SPLIT_TIDY_INTERVAL_S", _int_in(1, 3600), 5)
    split_rebalance_low_minor: int = _env("SPLIT_REBALANCE_LOW_MINOR", _int_in(0, 2**62), 0)
    # Hot-account detection: sampling of posting rate and row-lock waiters; auto promotion is off by default.
    hot_sample_interval_s: int = _env("HOT_SAMPLE_INTERVAL_S", _int_in(1, 600), 2)
    hot_window_s: int = _env("HOT_WINDOW_S", _int_in(10, 86400), 60)
    hot_auto_promote: bool = _env("HOT_AUTO_PROMOTE", _bool, False)
    hot_promote_legs_per_s: int = _env("HOT_PROMOTE_LEGS_PER_S", _int_in(1, 10**6), 200)

    # Merchant webhooks (engine/webhooks): deliveries in flight, per-call timeout, and the retry schedule:
    # exponential backoff with jitter from base to max, until the event is older than the retry window
    # (at least 24 h by default; tests compress it), then 'dead'.
    webhooks_in_process: bool = _env("WEBHOOKS_IN_PROCESS", _bool, True)
    webhook_concurrency: int = _env("WEBHOOK_CONCURRENCY", _int_in(1, 4096), 64)
    webhook_timeout_ms: int = _env("WEBHOOK_TIMEOUT_MS", _int_in(10, 120_000), 5000)
    webhook_poll_interval_ms: int = _env("WEBHOOK_POLL_INTERVAL_MS", _int_in(1, 60_000), 200)
    webhook_batch_max: int = _env("WEBHOOK_BATCH_MAX", _int_in(1, 10_000), 100)
    webhook_backoff_base_ms: int = _env("WEBHOOK_BACKOFF_BASE_MS", _int_in(1, 3_600_000), 10_000)
    webhook_backoff_max_ms: int = _env("WEBHOOK_BACKOFF_MAX_MS", _int_in(1, 86_400_000), 3_600_000)
    webhook_retry_window_s: int = _env("WEBHOOK_RETRY_WINDOW_S", _int_in(1, 30 * 86400), 86400)
    # Order expiry (engine/payments/expiry.py): the Redis delay queue is polled often; the PostgreSQL sweep (the
    # safety net for deadlines Redis lost) runs rarely. Both close at most expiry_batch_max per round.
    expiry_in_process: bool = _env("EXPIRY_IN_PROCESS", _bool, True)
    expiry_poll_interval_ms: int = _env("EXPIRY_POLL_INTERVAL_MS", _int_in(1, 60_000), 500)
    expiry_sweep_interval_s: int = _env("EXPIRY_SWEEP_INTERVAL_S", _int_in(1, 86400), 60)
    expiry_batch_max: int = _env("EXPIRY_BATCH_MAX", _int_in(1, 5000), 200)
    # Per-merchant rate limit (token bucket in Redis): sustained requests/s and burst. 0 turns it off.
    # Redis answers within rate_limit_timeout_ms or the request goes through (fail open, see ratelimit.py).
    rate_limit_per_s: int = _env("RATE_LIMIT_PER_S", _int_in(0, 10**7), 5000)
    rate_limit_burst: int = _env("RATE_LIMIT_BURST", _int_in(1, 10**7), 10000)
    rate_limit_timeout_ms: int = _env("RATE_LIMIT_TIMEOUT_MS", _int_in(1, 10_000), 100)

    # Merchant API (engine/api). Merchant secrets are derived from this key and a per-merchant salt.
    api_secret_key: str = _env("API_SECRET_KEY", _text, "dev-api-secret-key-change-me")
    currencies: tuple[str, ...] = _env("CURRENCIES", _currency_list, ("CNY", "USD"))
    # The largest amount one request may move, per currency (minor units; PAYENGINE_AMOUNT_MAX="CNY=...,*=...").
    # Real systems cap a single payment at a business limit; the wire types' ceiling is 10^15 whatever this says.
    amount_max: tuple[tuple[str, int], ...] = _env("AMOUNT_MAX", _amount_caps, ())
    hot_internal_accounts: bool = _env("HOT_INTERNAL_ACCOUNTS", _bool, True)
    signature_window_s: int = _env("SIGNATURE_WINDOW_S", _int_in(1, 3600), 300)
    idempotency_retention_s: int = _env("IDEMPOTENCY_RETENTION_S", _int_in(60, 30 * 86400), 86400)
    idempotency_lock_s: int = _env("IDEMPOTENCY_LOCK_S", _int_in(1, 3600), 60)
    merchant_cache_s: int = _env("MERCHANT_CACHE_S", _int_in(0, 3600), 30)
    payment_expiry_default_s: int = _env("PAYMENT_EXPIRY_DEFAULT_S", _int_in(60, 86400), 900)
    default_channel: str = _env("DEFAULT_CHANNEL", _text, "wxsim")
    bench_noop: bool = _env("BENCH_NOOP", _bool, False)

    # Channel gateway (engine/gateway). Channels: engine/channel_specs.py. Notifies come back to
    # {public_url}/channels/{name}/notify ("" = http://host:port). Delays and bounds are per channel call.
    channels: tuple[ChannelSpec, ...] = _env("CHANNELS", parse_channel_specs, ())
    public_url: str = _env("PUBLIC_URL", _url(("http", "https")), "")
    gateway_in_process: bool = _env("GATEWAY_IN_PROCESS", _bool, True)
    gateway_channel_concurrency: int = _env("GATEWAY_CHANNEL_CONCURRENCY", _int_in(1, 4096), 256)
    gateway_call_timeout_ms: int = _env("GATEWAY_CALL_TIMEOUT_MS", _int_in(50, 120_000), 3000)
    gateway_poll_interval_ms: int = _env("GATEWAY_POLL_INTERVAL_MS", _int_in(1, 10_000), 20)
    gateway_claim_batch_max: int = _env("GATEWAY_CLAIM_BATCH_MAX", _int_in(1, 1000), 64)
    gateway_attempts_per_channel: int = _env("GATEWAY_ATTEMPTS_PER_CHANNEL", _int_in(1, 20), 3)
    gateway_job_attempts_max: int = _env("GATEWAY_JOB_ATTEMPTS_MAX", _int_in(1, 1000), 20)
    gateway_backoff_base_ms: int = _env("GATEWAY_BACKOFF_BASE_MS", _int_in(1, 600_000), 500)
    gateway_backoff_max_ms: int = _env("GATEWAY_BACKOFF_MAX_MS", _int_in(1, 3_600_000), 30_000)
    gateway_job_lease_s: int = _env("GATEWAY_JOB_LEASE_S", _int_in(5, 3600), 60)
    gateway_breaker_failures: int = _env("GATEWAY_BREAKER_FAILURES", _int_in(1, 1000), 5)
    gateway_breaker_cool_down_ms: int = _env("GATEWAY_BREAKER_COOL_DOWN_MS", _int_in(10, 3_600_000), 30_000)
    # Routing's quality factors (success rate, latency) look at the gateway's calls of this many seconds.
    gateway_quality_window_s: int = _env("GATEWAY_QUALITY_WINDOW_S", _int_in(1, 86400), 60)
    # Janitor: how often it runs, and when a payment still awaiting payment is queried at the channel: the
    # first delay counts from the voucher being ready, each next one from the query before; after the last
    # the payment is left to its expiry (which queries once more before closing).
    janitor_interval_ms: int = _env("JANITOR_INTERVAL_MS", _int_in(10, 600_000), 5000)
    janitor_query_schedule_s: tuple[float, ...] = _env(
        "JANITOR_QUERY_SCHEDULE_S", _seconds_list, (30.0, 60.0, 120.0, 300.0, 600.0))
    janitor_batch_max: int = _env("JANITOR_BATCH_MAX", _int_in(1, 10_000), 200)
    # Benchmark comparison only: the create-payment request waits for the channel's voucher.
    voucher_sync: bool = _env("VOUCHER_SYNC", _bool, False)
    # Payouts (engine/payouts): the channel when a request names none (empty: DEFAULT_CHANNEL); the worker's
    # poll, lease, batch and concurrency; after an unknown outcome the first query waits payout_query_delay_ms;
    # OrderNotFound counts as "never arrived" only once payout_not_found_safe_s passed since the last send,
    # then the same out_payout_no is sent again, at most payout_sends_max times in all. It fails (and unfreezes)
    # only when the last send is older than payout_give_up_s, which must exceed the longest time a channel would
    # still act on a request (wxsim refuses requests signed more than 300 s ago), so no late copy can still pay.
    # Checked at start: the safe delay exceeds the channel call timeout, and give-up exceeds the safe delay.
    payout_default_channel: str = _env("PAYOUT_DEFAULT_CHANNEL", str, "")
    payout_poll_interval_ms: int = _env("PAYOUT_POLL_INTERVAL_MS", _int_in(1, 60_000), 200)
    payout_lease_s: int = _env("PAYOUT_LEASE_S", _int_in(1, 3600), 60)
    payout_claim_batch_max: int = _env("PAYOUT_CLAIM_BATCH_MAX", _int_in(1, 1000), 32)
    payout_concurrency: int = _env("PAYOUT_CONCURRENCY", _int_in(1, 4096), 32)
    payout_query_delay_ms: int = _env("PAYOUT_QUERY_DELAY_MS", _int_in(1, 3_600_000), 2000)
    payout_not_found_safe_s: int = _env("PAYOUT_NOT_FOUND_SAFE_S", _int_in(1, 86400), 60)
    payout_sends_max: int = _env("PAYOUT_SENDS_MAX", _int_in(1, 100), 3)
    payout_give_up_s: int = _env("PAYOUT_GIVE_UP_S", _int_in(1, 7 * 86400), 900)

    # Accounting day (engine/dayend, recon, settlement). The cached open date is re-read this often (the
    # database stamps entries, so staleness only affects what a draft shows). Day-end waits at most
    # dayend_drain_timeout_s for the buffers; the switch waits at most the lock timeout for in-flight
    # entries. DAYEND_PAUSE_AT names a step to stop at (crash tests only; empty in production).
    accounting_date_refresh_ms: int = _env("ACCOUNTING_DATE_REFRESH_MS", _int_in(10, 60_000), 500)
    dayend_drain_timeout_s: int = _env("DAYEND_DRAIN_TIMEOUT_S", _int_in(1, 86400), 300)
    dayend_poll_ms: int = _env("DAYEND_POLL_MS", _int_in(10, 60_000), 200)
    dayend_switch_lock_timeout_ms: int = _env("DAYEND_SWITCH_LOCK_TIMEOUT_MS", _int_in(10, 600_000), 10_000)
    dayend_pause_at: str = _env("DAYEND_PAUSE_AT", str, "")
    # When every API process checks whether the open date is over and closes it (engine/dayend/schedule.py):
    # 'HH:MM' UTC on the following day, or 'off' when an external scheduler runs `payengine day-end`.
    dayend_at: str = _env("DAYEND_AT", _clock_or_off, "00:05")

    # Limits and risk rules (engine/controls). Their configuration is re-checked this often; a change made
    # through the admin API applies at once in the process that made it, in the others within this.
    controls_cache_ms: int = _env("CONTROLS_CACHE_MS", _int_in(0, 60_000), 1000)
    # Usage counted for an admission whose payment/transfer/payout has not booked after this long is given
    # back by a sweep that runs this often (engine/controls/orphans.py): the process died before booking.
    # The grace must outlast any booking request (a booking after it is refused, 503, and retried).
    controls_orphan_grace_s: int = _env("CONTROLS_ORPHAN_GRACE_S", _int_in(1, 86_400), 900)
    controls_orphan_sweep_interval_s: int = _env("CONTROLS_ORPHAN_SWEEP_INTERVAL_S", _int_in(1, 3_600), 60)
    # How often every process makes the counter resets owed (released usage Redis may still count).
    controls_reset_interval_s: int = _env("CONTROLS_RESET_INTERVAL_S", _int_in(1, 3_600), 5)
    # A payment that ends without money (closed, expired, failed) gives its counted usage back at once
    # (engine/controls/usage_release.py); a release still owed after the grace (its process died, or it failed) is
    # retried by a loop that runs this often, at most batch_max per pass. Grace + interval stay well under the
    # Redis release marker's 120 s (MARKER_TTL_S in engine/controls/counters.py), within which a retried release
    # gives back once.
    usage_release_grace_s: int = _env("USAGE_RELEASE_GRACE_S", _int_in(0, 60), 10)
    usage_release_interval_s: int = _env("USAGE_RELEASE_INTERVAL_S", _int_in(1, 60), 10)
    usage_release_batch_max: int = _env("USAGE_RELEASE_BATCH_MAX", _int_in(1, 10_000), 200)
    # An exception-desk proposal (adjustment, reversal) nobody approved or rejected within this expires and books
    # nothing (engine/desk/); default 72 h.
    desk_proposal_ttl_s: int = _env("DESK_PROPOSAL_TTL_S", _int_in(1, 90 * 86400), 72 * 3600)
    desk_expiry_interval_s: int = _env("DESK_EXPIRY_INTERVAL_S", _int_in(1, 3600), 60)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from the environment; raises SettingsError naming the bad variable."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            name = f.metadata["env"]
            if name in env:
                try:
                    values[f.name] = f.metadata["parse"](env[name])
                except ValueError as exc:
                    raise SettingsError(name, str(exc)) from None
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        if self.db_pool_min > self.db_pool_max:
            raise SettingsError(PREFIX + "DB_POOL_MIN", "must not exceed PAYENGINE_DB_POOL_MAX")
        if self.split_close_grace_s * 1000 <= 2 * self.split_cache_ttl_ms:
            # A retired sub may only close once no process can still route to it from a cached view.
            raise SettingsError(PREFIX + "SPLIT_CLOSE_GRACE_S", "must exceed twice PAYENGINE_SPLIT_CACHE_TTL_MS")
        if self.batch_max and self.batch_queue_max < self.batch_max:
            # A full batch must fit in the queue, or the batcher could never gather one.
            raise SettingsError(PREFIX + "BATCH_QUEUE_MAX", "must be at least PAYENGINE_BATCH_MAX")
        self.check_payout_windows()

    def check_payout_windows(self) -> None:
        """A payout's send counts as "never arrived" only after the safe delay, which a send still in flight
        must not outlast; and it fails (unfreezes) only after the give-up window, past the safe delay."""
        if self.payout_not_found_safe_s * 1000 <= self.gateway_call_timeout_ms:
            raise SettingsError(PREFIX + "PAYOUT_NOT_FOUND_SAFE_S",
                                f"must exceed the channel call timeout PAYENGINE_GATEWAY_CALL_TIMEOUT_MS "
                                f"({self.gateway_call_timeout_ms} ms), got {self.payout_not_found_safe_s} s")
        if self.payout_give_up_s <= self.payout_not_found_safe_s:
            raise SettingsError(PREFIX + "PAYOUT_GIVE_UP_S",
                                f"must exceed PAYENGINE_PAYOUT_NOT_FOUND_SAFE_S ({self.payout_not_found_safe_s} s), "
                                f"got {self.payout_give_up_s} s")

    def amount_max_minor(self, currency: str) -> int:
        """The largest amount a request may move in ``currency`` (PAYENGINE_AMOUNT_MAX, else the default)."""
        caps = dict(self.amount_max)
        return caps.get(currency, caps.get("*", AMOUNT_MAX_DEFAULT_MINOR))

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @staticmethod
    def variables() -> dict[str, str]:
        """Variable name -> field name, for documentation and `payengine settings`."""
        return {f.metadata["env"]: f.name for f in dataclasses.fields(Settings)}
