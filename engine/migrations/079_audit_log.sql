-- The append-only record of what operators did (exception desk, recon resolutions, held payouts, re-routed
-- refunds): who, when, which action on which object, and the details they gave. Rows are never changed or
-- removed: the triggers below refuse UPDATE, DELETE and TRUNCATE for every role the engine connects as.
CREATE TABLE audit_log (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    operator     text NOT NULL CHECK (operator <> '' AND length(operator) <= 64),
    action       text NOT NULL CHECK (action <> ''),
    subject_kind text NOT NULL CHECK (subject_kind <> ''),
    subject_id   text NOT NULL CHECK (subject_id <> ''),
    detail       jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_subject ON audit_log (subject_kind, subject_id, id);
CREATE INDEX audit_log_operator ON audit_log (operator, id);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
