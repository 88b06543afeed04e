"""The operators' audit trail: one append-only table (migration 079) every operator action writes to."""
