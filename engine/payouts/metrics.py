"""Payout metrics, declared together with fixed label sets (served by the API's GET /metrics).

Channel calls themselves (create_payout, query_payout) are counted by the gateway's CHANNEL_CALLS."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

PAYOUTS_FINISHED = Counter("payengine_payouts_finished_total", "Payouts made final", ["status"])
# What each worker step decided: settle, fail, poll (processing or not found yet), resend, unknown (no answer),
# deferred (no channel admits calls), crashed.
PAYOUT_STEPS = Counter("payengine_payout_steps_total", "Payout worker steps by decision", ["decision"])
# Payouts kept open for a person because the channel's word could not be booked as it stands, by reason
# (amount_mismatch: the channel reports another amount or currency than ours; no_channel: a pending payout no
# channel could ever take). Counted only when this worker's hold took effect (not after its lease was lost).
PAYOUTS_HELD = Counter("payengine_payouts_held_total", "Payouts held open for a person", ["reason"])
# Payouts held now, waiting for a person (`payengine payouts held`), read from PostgreSQL when /metrics is
# scraped (engine/http/gauges.py); by reason as in PAYOUTS_HELD.
PAYOUTS_ON_HOLD = Gauge("payengine_payouts_on_hold", "Payouts held open for a person now", ["reason"])
