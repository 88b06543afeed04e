-- Re-reconciling a date: a new run of the same channel and statement date supersedes the old one (a corrected or
-- supplementary statement). Both are kept; the old names its successor. At most one run per channel and date is
-- live (not superseded), and a run is superseded at most once, so a difference is never counted in two live runs.
ALTER TABLE recon_runs ADD COLUMN generation int NOT NULL DEFAULT 1 CHECK (generation >= 1);
ALTER TABLE recon_runs ADD COLUMN supersedes text UNIQUE REFERENCES recon_runs (id);
-- Deferred: the transaction that creates the new run marks the old one first (the live index allows one).
ALTER TABLE recon_runs ADD COLUMN superseded_by text UNIQUE REFERENCES recon_runs (id) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE recon_runs ADD COLUMN superseded_at timestamptz;
ALTER TABLE recon_runs ADD COLUMN operator text;  -- who asked for a re-run (NULL: a first run)
ALTER TABLE recon_runs ADD CONSTRAINT recon_runs_superseded_fields
    CHECK ((superseded_by IS NULL) = (superseded_at IS NULL));
ALTER TABLE recon_runs ADD CONSTRAINT recon_runs_rerun_fields
    CHECK ((supersedes IS NULL) = (generation = 1) AND (supersedes IS NULL) = (operator IS NULL));
ALTER TABLE recon_runs DROP CONSTRAINT recon_runs_channel_date;
ALTER TABLE recon_runs ADD CONSTRAINT recon_runs_channel_date_generation UNIQUE (channel, statement_date, generation);
CREATE UNIQUE INDEX recon_runs_live ON recon_runs (channel, statement_date) WHERE superseded_by IS NULL;
CREATE INDEX recon_runs_listing ON recon_runs (statement_date DESC, channel, generation DESC);

-- An item still open when its run is superseded closes: state 'resolved', resolution 'superseded' (the exception
-- desk's migration 080 adds the same columns; whichever runs first adds them, the other finds them there). The new
-- run's comparison of the same transaction names it (carried_from), once: an old item carries into at most one.
ALTER TABLE recon_items ADD COLUMN IF NOT EXISTS resolution text
    CHECK (resolution IN ('adjust', 'reverse', 'explain', 'superseded'));
ALTER TABLE recon_items ADD COLUMN IF NOT EXISTS resolved_by text;
ALTER TABLE recon_items ADD COLUMN IF NOT EXISTS resolved_at timestamptz;
ALTER TABLE recon_items ADD COLUMN carried_from bigint UNIQUE REFERENCES recon_items (id);
