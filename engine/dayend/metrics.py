"""Metrics of day-end and the journal's daily partitions (served by the API's GET /metrics).

The partition gauges are set whenever day-end prepares partitions and, between day-ends, by the
scheduler's periodic health check, so an alert can fire before legs pile up in the default partition.
"""

from __future__ import annotations

from prometheus_client import Gauge

PARTITIONS_DAYS_AHEAD = Gauge("payengine_journal_partitions_days_ahead",
                              "Consecutive daily journal_legs partitions after the open accounting date")
PARTITION_OPEN_DATE_COVERED = Gauge("payengine_journal_partition_open_date_covered",
                                    "1 when the open accounting date has its own journal_legs partition")
PARTITION_DEFAULT_ROWS = Gauge("payengine_journal_partition_default_rows",
                               "Legs in journal_legs_default (counted up to 10,000): dates without a partition")
PARTITIONS_OK = Gauge("payengine_journal_partitions_ok",
                      "1 when the open date is covered, enough days are ahead and the default partition is empty")
# The open accounting date (as the Unix time of its 00:00 UTC) and, when this process schedules day-end
# (PAYENGINE_DAYEND_AT), when that date is due to close; read when /metrics is scraped (engine/http/gauges.py).
OPEN_DATE = Gauge("payengine_accounting_open_date_timestamp_seconds",
                  "The open accounting date, as the Unix time of its start (00:00 UTC)")
DAYEND_DUE = Gauge("payengine_dayend_due_timestamp_seconds",
                   "When the scheduled day-end is due to close the open accounting date (Unix time)")
