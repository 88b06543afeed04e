"""Build ops/grafana/payengine.json, the payengine dashboard (Grafana 10+), from the panel list below.

    python ops/grafana/build_dashboard.py            # rewrite payengine.json
    python ops/grafana/build_dashboard.py --check    # exit 1 if payengine.json differs (tests/ops does this)

Written as code so every panel gets the same shape: the `datasource` variable (no datasource uid anywhere),
a description saying what healthy looks like, and a place in its row. Edit here, then rebuild; a hand edit of
the JSON is undone by the next build, and tests/ops fails while the two differ.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("payengine.json")
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"
NOT_PROBES = 'route!~"/metrics|/healthz|/readyz"'
ACCOUNT = 'account=~"$account"'
FIVE_XX = 'status=~"5..", ' + NOT_PROBES
# Gauges without labels read 0 in processes that never set them; the journal partition gauges are set by the
# processes that run the day-end scheduler, which are those whose day-end due time is set.
SCHEDULER = "on (instance, job) (payengine_dayend_due_timestamp_seconds > 0)"


@dataclass(frozen=True)
class Q:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    queries: tuple[Q, ...]
    unit: str = "short"
    kind: str = "timeseries"  # or "stat"
    width: int = 8
    height: int = 8
    mappings: tuple[dict[str, Any], ...] = ()
    thresholds: tuple[tuple[float | None, str], ...] = ((None, "green"),)


@dataclass(frozen=True)
class Row:
    title: str
    description: str
    panels: tuple[Panel, ...] = field(default_factory=tuple)


def p(title: str, description: str, *queries: Q, **kw: Any) -> Panel:
    return Panel(title, description, tuple(queries), **kw)


def rate(metric: str, by: str = "", selector: str = "") -> str:
    inner = f"rate({metric}{{{selector}}}[{RATE}])" if selector else f"rate({metric}[{RATE}])"
    return f"sum by ({by}) ({inner})" if by else f"sum({inner})"


def quantile(q: float, metric: str, by: str = "", selector: str = "") -> str:
    labels = f"le, {by}" if by else "le"
    sel = f"{{{selector}}}" if selector else ""
    return f"histogram_quantile({q}, sum by ({labels}) (rate({metric}_bucket{sel}[{RATE}])))"


OK_OR_NOT = ({"type": "value", "options": {"0": {"text": "NOT OK", "color": "red"},
                                           "1": {"text": "ok", "color": "green"}}},)

ROWS: tuple[Row, ...] = (
    Row("Traffic", "Every API request, by route and status, and how long it took.", (
        p("Requests/s by route and status",
          "API requests per second (probes and /metrics left out). Healthy: steady curves with 2xx on top; 4xx are "
          "merchants' own mistakes (bad input, declined, idempotency conflicts); 5xx stay near zero (503 also counts "
          "back-pressure refusals).",
          Q(rate("payengine_http_requests_total", "route, status", NOT_PROBES), "{{route}} {{status}}"),
          unit="reqps", width=12),
        p("Latency p50 / p99 by route",
          "Server-side request time. Healthy (bench, 2 cores, loopback): wallet payments p50 ~70 ms and p99 under "
          "~200 ms at ~850 payments/s; p99 over 1 s for 10 minutes raises PayengineHttpLatencyP99High.",
          Q(quantile(0.5, "payengine_http_request_seconds", "route", NOT_PROBES), "p50 {{route}}"),
          Q(quantile(0.99, "payengine_http_request_seconds", "route", NOT_PROBES), "p99 {{route}}"),
          unit="s", width=12),
        p("5xx ratio",
          "Share of API requests answered 5xx. Healthy: 0; over 1% for 5 minutes raises PayengineHttp5xxRatioHigh.",
          Q(rate("payengine_http_requests_total", selector=FIVE_XX) + " / "
            + rate("payengine_http_requests_total", selector=NOT_PROBES), "5xx"),
          unit="percentunit", kind="stat", width=6, thresholds=((None, "green"), (0.01, "red"))),
        p("Rate limiting",
          "Requests refused with 429 by the per-merchant limit, and requests let through unchecked because Redis "
          "did not answer in time (fail-open). Healthy: refusals only for a merchant over its limit; fail-open 0.",
          Q(rate("payengine_ratelimit_refused_total"), "refused (429)"),
          Q(rate("payengine_ratelimit_fail_open_total"), "fail-open"),
          unit="reqps", width=18),
    )),
    Row("Money path", "Payments, refunds, transfers and payouts taken, and why some were refused.", (
        p("Payments/s by status",
          "POST /v1/payments per second by HTTP status. Healthy: 201 on top and steady; 402 is a customer short of "
          "funds; 503 is back-pressure or an unavailable store (see the buffer row).",
          Q(rate("payengine_http_requests_total", "status", 'method="POST", route="/v1/payments"'), "{{status}}"),
          unit="reqps", width=12),
        p("Refusals by reason",
          "Postings refused before any money moved: back-pressure (a hot account's buffer behind), limits, risk "
          "denials, rate limiting. Healthy: all near zero; limits and risk only where merchants set them.",
          Q(rate("payengine_buffer_backpressure_refusals_total"), "back-pressure"),
          Q(rate("payengine_limit_refusals_total", "scope, metric"), "limit {{scope}} {{metric}}"),
          Q(rate("payengine_risk_decisions_total", "rule", 'decision="deny"'), "risk deny {{rule}}"),
          Q(rate("payengine_ratelimit_refused_total"), "rate limit"),
          unit="reqps", width=12),
        p("Refunds, transfers, payouts, topups /s",
          "Other money-moving requests per second by status. Healthy: 2xx on top, few 4xx, no 5xx.",
          Q(rate("payengine_http_requests_total", "route, status",
                 'method="POST", route=~"/v1/payments/\\\\{id\\\\}/refunds|/v1/transfers|/v1/payouts'
                 '|/v1/customers/\\\\{id\\\\}/topups"'), "{{route}} {{status}}"),
          unit="reqps"),
        p("Channel vouchers finished",
          "Vouchers (channel payments) made ready or failed per second. Healthy: ready on top; failed only when a "
          "channel refuses.",
          Q(rate("payengine_vouchers_total", "outcome"), "{{outcome}}"),
          unit="ops"),
        p("Payouts finished / unpaid payments closed",
          "Payouts made final by status, and unpaid payments closed at their deadline. Healthy: payouts mostly "
          "succeeded; closings follow the payments customers abandon.",
          Q(rate("payengine_payouts_finished_total", "status"), "payout {{status}}"),
          Q(rate("payengine_expiry_closed_total", "path"), "closed ({{path}})"),
          unit="ops"),
    )),
    Row("Hot-account buffer ($account)", "Per hot account: what waits in Redis, how fast flushers apply it.", (
        p("Buffer depth",
          "Legs waiting in each hot account's buffer (read from Redis at every scrape, whoever flushes). Healthy: "
          "about payments/s x flush interval, hundreds at most (bench: max 640-786 legs at ~850 payments/s); "
          "postings are refused at max_depth (default 100,000).",
          Q(f"max by (account) (payengine_buffer_depth{{{ACCOUNT}}})", "{{account}}"),
          unit="short"),
        p("Oldest pending leg age",
          "How long the oldest buffered leg has waited, against the back-pressure threshold max_lag. Healthy: well "
          "under a second (bench flush lag p99 0.2-0.5 s, 1.2 s worst); the lag alert fires at half of max_lag, "
          "refusals start at max_lag.",
          Q(f"max by (account) (payengine_buffer_oldest_age_seconds{{{ACCOUNT}}})", "{{account}}"),
          Q("max(payengine_buffer_max_lag_seconds > 0)", "back-pressure at (max_lag)"),
          unit="s"),
        p("Legs applied/s",
          "Legs flushers move from buffered to applied per second per account. Healthy: follows the payments/s that "
          "touch the account; one flusher keeps up with ~7,800 legs/s at batch 100, ~18,000 at batch 1000 (bench "
          "drain).",
          Q(rate("payengine_buffer_legs_applied_total", "account", ACCOUNT), "{{account}}"),
          unit="ops"),
        p("Time since last applied (accounts with legs waiting)",
          "Seconds since a flusher last applied a batch of an account that has legs waiting. Healthy: empty or under "
          "a second; over a minute raises PayengineBufferNotFlushing (no flusher owns the account).",
          Q(f"(time() - max by (account) (payengine_buffer_last_applied_timestamp_seconds{{{ACCOUNT}}}))"
            f" and on (account) (max by (account) (payengine_buffer_depth{{{ACCOUNT}}}) > 0)", "{{account}}"),
          unit="s"),
        p("Flush batches/s",
          "Flush batches committed per second per account. Healthy: up to 1000 / flush_interval_ms per account "
          "while legs arrive (50/s at the default 20 ms), fewer and bigger under load.",
          Q(rate("payengine_buffer_batches_total", "account", ACCOUNT), "{{account}}"),
          unit="ops"),
        p("Batch size p50 / p99",
          "Legs per flush batch, all accounts. Healthy: small under light load, rising toward batch_size (default "
          "1000) as load grows; stuck at batch_size means flushers run flat out.",
          Q(quantile(0.5, "payengine_buffer_batch_legs"), "p50"),
          Q(quantile(0.99, "payengine_buffer_batch_legs"), "p99"),
          unit="short"),
        p("Flush duration p50 / p99",
          "One flush: take from Redis, apply in PostgreSQL, ack. Healthy: milliseconds; growing toward a second "
          "means PostgreSQL is slow or batches are huge.",
          Q(quantile(0.5, "payengine_buffer_flush_seconds"), "p50"),
          Q(quantile(0.99, "payengine_buffer_flush_seconds"), "p99"),
          unit="s"),
        p("Back-pressure refusals/s",
          "Postings refused because an account's buffer was past max_lag or max_depth. Healthy: 0.",
          Q(rate("payengine_buffer_backpressure_refusals_total", "account", ACCOUNT), "{{account}}"),
          unit="reqps"),
        p("Buffer faults",
          "Flush errors (batches PostgreSQL refused), legs the recovery sweep re-enqueued (Redis lost them), and "
          "enqueues that failed after commit. Healthy: all 0.",
          Q(rate("payengine_buffer_flush_errors_total", "account, kind", ACCOUNT), "flush error {{account}} {{kind}}"),
          Q(rate("payengine_buffer_recovery_reenqueued_total", "account", ACCOUNT), "re-enqueued {{account}}"),
          Q(rate("payengine_buffer_enqueue_failures_total"), "enqueue failures"),
          unit="ops"),
    )),
    Row("Channels and gateway", "Calls to payment channels, their breakers, and the gateway's jobs.", (
        p("Channel calls/s by outcome",
          "Calls to each channel by operation outcome. Healthy: ok on top; errors and timeouts rare.",
          Q(rate("payengine_channel_calls_total", "channel, outcome"), "{{channel}} {{outcome}}"),
          unit="ops"),
        p("Channel call latency p99",
          "p99 of channel calls by channel and operation. Healthy: what the channel promises (simulators: tens of "
          "ms; real channels: hundreds of ms).",
          Q(quantile(0.99, "payengine_channel_call_seconds", "channel, operation"), "{{channel}} {{operation}}"),
          unit="s"),
        p("Breaker changes",
          "Circuit breaker phase changes per channel over 5 minutes. Healthy: none; an open means the gateway "
          "stopped calling the channel for a cool-down.",
          Q("sum by (channel, phase) (increase(payengine_channel_breaker_changes_total[5m]))",
            "{{channel}} {{phase}}"),
          unit="short"),
        p("Gateway jobs by result",
          "Gateway jobs (vouchers, closes, refunds, queries) by kind and result. Healthy: done on top; retry now and "
          "then; failed 0.",
          Q(rate("payengine_gateway_jobs_total", "kind, result"), "{{kind}} {{result}}"),
          unit="ops"),
        p("Channel notifies by verdict",
          "Payment notifications from channels by verdict. Healthy: accepted; a stream of rejected (bad signature) "
          "is worth a look.",
          Q(rate("payengine_channel_notifies_total", "channel, verdict"), "{{channel}} {{verdict}}"),
          unit="ops"),
        p("Payout worker steps",
          "What each payout worker step decided. Healthy: settle and poll; hold and crashed 0.",
          Q(rate("payengine_payout_steps_total", "decision"), "{{decision}}"),
          unit="ops"),
    )),
    Row("Webhooks", "Delivery of the outbox to merchants' endpoints.", (
        p("Webhook attempts/s by outcome",
          "Delivery attempts by outcome. Healthy: delivered on top; retry only for merchants whose endpoint is down; "
          "dead 0.",
          Q(rate("payengine_webhook_attempts_total", "outcome"), "{{outcome}}"),
          unit="ops"),
        p("Webhook backlog",
          "Pending events due for delivery now (read from PostgreSQL at every scrape, up to 10,000). Healthy: near "
          "0; a growing backlog means no worker runs or it cannot keep up.",
          Q("max(payengine_webhook_backlog_events)", "due events"),
          unit="short"),
        p("Oldest due event age",
          "How long the longest-waiting due event has been due. Healthy: under a second or two; over 5 minutes "
          "raises PayengineWebhookBacklog.",
          Q("max(payengine_webhook_oldest_due_age_seconds)", "oldest due"),
          unit="s"),
        p("Webhook attempt latency p99",
          "Time merchants' endpoints take to answer. Healthy: well under the delivery timeout.",
          Q(quantile(0.99, "payengine_webhook_attempt_seconds"), "p99"),
          unit="s"),
    )),
    Row("Limits and risk", "Limits (额度), risk rules, and the usage given back.", (
        p("Limit refusals/s",
          "Attempts refused by a limit, by scope, window and metric. Healthy: only where merchants or customers "
          "really hit their limits.",
          Q(rate("payengine_limit_refusals_total", "scope, window, metric"), "{{scope}} {{window}} {{metric}}"),
          unit="ops"),
        p("Risk decisions/s",
          "Decisions of the risk rules by decision. Healthy: allow on top; review and deny as the rules intend.",
          Q(rate("payengine_risk_decisions_total", "decision"), "{{decision}}"),
          unit="ops"),
        p("Limit usage given back",
          "Usage given back by payments and payouts that ended without money, by path, and its failures; orphan "
          "usage released by the sweep. Healthy: releases follow closed payments; failures 0.",
          Q(rate("payengine_payment_usage_released_total", "path"), "released {{path}}"),
          Q(rate("payengine_payment_usage_release_failures_total", "path"), "failed {{path}}"),
          Q(rate("payengine_limit_usage_orphans_released_total", "kind"), "orphans {{kind}}"),
          Q(rate("payengine_limit_usage_orphan_sweep_failures_total"), "sweep failures"),
          unit="ops"),
    )),
    Row("Day-end, partitions, reconciliation, payouts held", "The accounting day and what waits for a person.", (
        p("Journal partitions",
          "1 when the open date has its partition, enough days are prepared ahead and the default partition is "
          "empty, as the processes running the day-end scheduler last checked (every 5 min). Healthy: ok.",
          Q(f"max(payengine_journal_partitions_ok and {SCHEDULER})", "partitions"),
          kind="stat", width=4, mappings=OK_OR_NOT, thresholds=((None, "red"), (1, "green"))),
        p("Partition days ahead",
          "Daily journal partitions prepared after the open date. Healthy: the configured days ahead (day-end "
          "creates them); falling toward 0 means day-end has not run.",
          Q(f"max(payengine_journal_partitions_days_ahead and {SCHEDULER})", "days ahead"),
          kind="stat", width=4, thresholds=((None, "red"), (1, "orange"), (3, "green"))),
        p("Legs in the default partition",
          "Legs booked to dates without a partition. Healthy: 0.",
          Q("max(payengine_journal_partition_default_rows)", "legs"),
          kind="stat", width=4, thresholds=((None, "green"), (1, "red"))),
        p("Open accounting date age",
          "Time since the start (00:00 UTC) of the open accounting date. Healthy: under 24 h plus the day-end time "
          "(PAYENGINE_DAYEND_AT, default 00:05).",
          Q("time() - max(payengine_accounting_open_date_timestamp_seconds > 0)", "age"),
          unit="s", kind="stat", width=4, thresholds=((None, "green"), (93600, "red"))),
        p("Day-end due in",
          "Time until the scheduled day-end closes the open date (negative: overdue). Healthy: positive, or "
          "slightly negative while it runs.",
          Q("max(payengine_dayend_due_timestamp_seconds > 0) - time()", "due in"),
          unit="s", kind="stat", width=4, thresholds=((None, "red"), (-3600, "orange"), (0, "green"))),
        p("Day-end runs (1 h)",
          "Scheduled day-end runs in the last hour by result (idle checks left out). Healthy: one done a day; "
          "failed or error 0.",
          Q('sum by (result) (increase(payengine_dayend_scheduled_runs_total{result!="idle"}[1h]))', "{{result}}"),
          kind="stat", width=4),
        p("Open reconciliation items",
          "Reconciliation items waiting for an operator or a later statement, by channel and outcome. Healthy: 0 "
          "or a few short suspects cleared by the next day's statement.",
          Q("max by (channel, outcome) (payengine_recon_open_items)", "{{channel}} {{outcome}}"),
          width=12),
        p("Payouts on hold",
          "Payouts held for a person by reason (`payengine payouts held`). Healthy: 0.",
          Q("max by (reason) (payengine_payouts_on_hold)", "{{reason}}"),
          width=12),
    )),
    Row("Exception desk", "What waits for an operator's decision: proposals, differences, refused refunds.", (
        p("Desk proposals waiting",
          "Adjustments and reversals proposed and waiting for a second operator, by kind (`payengine adjustments "
          "list --status proposed`). Healthy: 0 or a few, decided within the day.",
          Q("max by (kind) (payengine_desk_open_proposals)", "{{kind}}"),
          width=6),
        p("Oldest proposal waiting",
          "Age of the oldest undecided proposal, by kind; proposals expire after PAYENGINE_DESK_PROPOSAL_TTL_S "
          "(72 h). Healthy: under a day (alert PayengineDeskProposalWaiting).",
          Q("max by (kind) (payengine_desk_oldest_proposal_age_seconds)", "{{kind}}"),
          unit="s", width=6),
        p("Open reconciliation differences",
          "Differences not closed yet (open, or resolving while their proposal waits) and the oldest one's age. "
          "Healthy: 0 after the day's resolutions (alert PayengineReconDifferenceUnresolved).",
          Q("max(payengine_recon_open_differences)", "open"),
          Q("max(payengine_recon_oldest_difference_age_seconds) / 3600", "oldest, hours"),
          width=6),
        p("Refused refunds awaiting an operator",
          "Channel refunds the channel refused, waiting to be re-routed (`payengine refunds failed`), and the "
          "oldest one's age. Healthy: 0 (alert PayengineFailedRefundsWaiting).",
          Q("max(payengine_failed_refunds_awaiting_operator)", "waiting"),
          Q("max(payengine_failed_refund_oldest_age_seconds) / 3600", "oldest, hours"),
          width=6),
    )),
    Row("Batched payments", "Wallet payments booked in batches (PAYENGINE_BATCH_MAX), one transaction each.", (
        p("Batches per second",
          "Batches booked per second. Healthy: follows wallet payment traffic; 0 with traffic means batching is "
          "off (PAYENGINE_BATCH_MAX=0).",
          Q(rate("payengine_payment_batch_size_count"), "batches/s"),
          unit="ops", width=6),
        p("Batch size p50 / p99",
          "Payments per batch. Healthy: grows with the load (bigger batches, less fixed cost per payment); a p99 at "
          "PAYENGINE_BATCH_MAX means batches are full.",
          Q(quantile(0.5, "payengine_payment_batch_size"), "p50"),
          Q(quantile(0.99, "payengine_payment_batch_size"), "p99"),
          width=6),
        p("Queue wait and batch time p99",
          "How long a payment waited for its batch, and how long a batch took to book and commit. Healthy: a few "
          "ms to tens of ms; growing together means PostgreSQL is the limit.",
          Q(quantile(0.99, "payengine_payment_batch_queue_wait_seconds"), "queue wait p99"),
          Q(quantile(0.99, "payengine_payment_batch_seconds"), "batch p99"),
          unit="s", width=6),
        p("Refused: batch queue full",
          "Payments refused 503 because PAYENGINE_BATCH_QUEUE_MAX were already waiting. Healthy: 0.",
          Q(rate("payengine_payment_batch_queue_full_total"), "refused/s"),
          unit="ops", width=6),
    )),
    Row("Processes", "Every scraped payengine process.", (
        p("Targets up",
          "1 for every payengine process Prometheus scrapes (API workers, flushers, gateway, webhooks). Healthy: "
          "all 1.",
          Q('up{job=~"payengine.*"}', "{{job}} {{instance}}"),
          width=8),
        p("CPU per process",
          "CPU seconds per second of each process. Healthy: below 1 (one core) per process; flushers and API "
          "workers busiest.",
          Q(f'rate(process_cpu_seconds_total{{job=~"payengine.*"}}[{RATE}])', "{{job}} {{instance}}"),
          unit="percentunit", width=8),
        p("Resident memory per process",
          "Resident memory of each process. Healthy: flat after warm-up; steady growth is a leak.",
          Q('process_resident_memory_bytes{job=~"payengine.*"}', "{{job}} {{instance}}"),
          unit="bytes", width=8),
        p("Gauge sampling failures",
          "Scrapes whose read of Redis or PostgreSQL for the sampled gauges failed (those gauges are then stale). "
          "Healthy: 0.",
          Q(rate("payengine_gauge_sample_failures_total", "source"), "{{source}}"),
          unit="ops", width=24),
    )),
)


def _panel(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    steps = [{"color": color, "value": value} for value, color in panel.thresholds]
    out: dict[str, Any] = {
        "id": panel_id, "type": panel.kind, "title": panel.title, "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": panel.unit, "mappings": list(panel.mappings),
                                     "thresholds": {"mode": "absolute", "steps": steps}},
                        "overrides": []},
        "targets": [{"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": q.expr,
                     "legendFormat": q.legend or "__auto", "range": True}
                    for i, q in enumerate(panel.queries)],
    }
    if panel.kind == "stat":
        out["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                          "colorMode": "value", "graphMode": "area", "textMode": "auto"}
    else:
        out["fieldConfig"]["defaults"]["custom"] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10,
                                                    "showPoints": "never", "spanNulls": False}
        out["options"] = {"legend": {"displayMode": "table", "placement": "bottom", "showLegend": True,
                                     "calcs": ["lastNotNull", "max"]},
                          "tooltip": {"mode": "multi", "sort": "desc"}}
    return out


def build() -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    y = 0
    next_id = 1
    for row in ROWS:
        panels.append({"id": next_id, "type": "row", "title": row.title, "description": row.description,
                       "collapsed": False, "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        next_id += 1
        y += 1
        x = 0
        line_height = 0
        for panel in row.panels:
            if x + panel.width > 24:
                x, y, line_height = 0, y + line_height, 0
            panels.append(_panel(panel, next_id, x, y))
            next_id += 1
            x += panel.width
            line_height = max(line_height, panel.height)
        y += line_height
    return {
        "uid": "payengine-overview",
        "title": "payengine",
        "description": "payengine: traffic, the money path, hot-account buffers, channels, webhooks, limits, "
                       "day-end. Alerts: ops/prometheus/alerts.yml; what to do: docs/RUNBOOK.md.",
        "tags": ["payengine"],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "timezone": "utc",
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True, "hide": True,
            "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard"}]},
        "templating": {"list": [
            {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
             "current": {}, "hide": 0, "refresh": 1, "regex": "", "options": []},
            {"name": "account", "label": "Hot account", "type": "query", "datasource": DATASOURCE,
             "query": "label_values(payengine_buffer_depth, account)",  # the plain form every Grafana 10+ takes
             "definition": "label_values(payengine_buffer_depth, account)",
             "multi": True, "includeAll": True, "allValue": ".*", "current": {}, "hide": 0, "refresh": 2,
             "sort": 1, "regex": "", "options": []},
        ]},
        "panels": panels,
    }


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if OUT.read_text() != text:
            print(f"{OUT} is out of date: run python {Path(__file__).as_posix()}", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
