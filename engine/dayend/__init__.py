"""Accounting day: the open accounting date, day-end cut-off, trial balance per date, snapshots."""
