-- Usage rows that never booked (the process died between the gate's admission and the booking): the
-- movement each row was admitted for, when it was released by the orphan sweep, and when the subjects'
-- Redis counters were reset after that release (engine/controls/orphans.py).

-- The id of the payment / transfer / payout the admission was for (generated before the admission).
-- NULL on rows written before this migration: the sweep never releases those (it cannot tell).
ALTER TABLE limit_usage ADD COLUMN movement_id text;
-- Set, in one transaction with the check that no movement booked, by the sweep. A released row counts
-- nowhere (sums, history, velocity) and can no longer be claimed by a booking.
ALTER TABLE limit_usage ADD COLUMN released_at timestamptz;
-- Set once the released row's subjects (customer, merchant) had their counters dropped in Redis, so they
-- are rebuilt from the rows that still count. NULL after released_at: the reset is still owed (retried).
ALTER TABLE limit_usage ADD COLUMN counters_reset_at timestamptz;

-- The sweep walks rows by age: append-only inserts keep created_at in physical order, so a BRIN index
-- costs the hot path almost nothing.
CREATE INDEX limit_usage_created_brin ON limit_usage USING brin (created_at);
CREATE INDEX limit_usage_reset_owed ON limit_usage (released_at)
    WHERE released_at IS NOT NULL AND counters_reset_at IS NULL;

-- How far the sweep has looked: rows at or before (through_at, through_id) are settled (booked, released
-- or not the sweep's to judge). One row; its lock makes one sweeper at a time across processes.
CREATE TABLE limit_usage_sweep (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    through_at timestamptz NOT NULL,
    through_id text NOT NULL
);
INSERT INTO limit_usage_sweep (through_at, through_id) VALUES (now(), '');
