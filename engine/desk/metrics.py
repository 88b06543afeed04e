"""Exception desk metrics, declared together with fixed label sets; read from PostgreSQL when /metrics is
scraped (engine/http/gauges.py), so what waits for a person shows whoever should have acted.

kind: adjustment, reversal.
"""

from __future__ import annotations

from prometheus_client import Gauge

DESK_OPEN_PROPOSALS = Gauge("payengine_desk_open_proposals", "Desk proposals waiting for a second operator",
                            ["kind"])
DESK_OLDEST_PROPOSAL_AGE_S = Gauge("payengine_desk_oldest_proposal_age_seconds",
                                   "Age of the oldest desk proposal waiting for a second operator", ["kind"])
RECON_OPEN_DIFFERENCES = Gauge("payengine_recon_open_differences",
                               "Reconciliation differences not closed yet (open, or resolving: a proposal waits)")
RECON_OLDEST_DIFFERENCE_AGE_S = Gauge("payengine_recon_oldest_difference_age_seconds",
                                      "Age of the oldest reconciliation difference not closed yet, from its run")
