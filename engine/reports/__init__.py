"""The operator's one-day report: day-end, reconciliation, settlement and open exceptions, as JSON and as a page."""
