"""Reconciliation metrics, declared together with fixed label sets (served by the API's GET /metrics)."""

from __future__ import annotations

from prometheus_client import Gauge

# Items of every run still open: an operator or a later statement must act, and the settlement of their
# orders waits. Read from PostgreSQL when /metrics is scraped (engine/http/gauges.py), so runs made by
# `payengine reconcile` (a process nobody scrapes) count too. channel: the configured channels; outcome: long,
# short, amount_mismatch, status_mismatch (matched items are never open).
RECON_OPEN_ITEMS = Gauge("payengine_recon_open_items", "Reconciliation items waiting for an operator or a later "
                         "statement", ["channel", "outcome"])
