-- An admission let through while Redis could not count it (no counted rule bound it at the time): its row
-- counts in PostgreSQL, but in no process's Redis counters. Its subjects' counters are dropped and rebuilt
-- from PostgreSQL by the loop that makes the resets owed for released rows (engine/controls/orphans.py), and
-- its usage is only ever given back by such a reset, never by a decrement of counters that may not hold it.
-- A nullable column without a default: no table rewrite.
ALTER TABLE limit_usage ADD COLUMN uncounted_at timestamptz;
CREATE INDEX limit_usage_uncounted_reset_owed ON limit_usage (uncounted_at)
    WHERE uncounted_at IS NOT NULL AND counters_reset_at IS NULL;
