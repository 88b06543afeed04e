-- journal_legs_add_partition for a date that lies inside an existing partition's range (journal_legs_history
-- covers every date before the day before migration 070 ran) returns false instead of failing the caller:
-- that date's legs already have a partition. Seen when day-end catches up from an open date older than the
-- history bound (a calendar set back, or a test database made the day before): "would overlap partition
-- journal_legs_history" failed the whole day-end step. The exception block rolls back the table it made.
CREATE OR REPLACE FUNCTION journal_legs_add_partition(p_day date) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_name text := 'journal_legs_' || to_char(p_day, 'YYYYMMDD');
BEGIN
    IF to_regclass(v_name) IS NOT NULL THEN
        RETURN false;
    END IF;
    BEGIN
        EXECUTE format('CREATE TABLE %I (LIKE journal_legs INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', v_name);
        EXECUTE format('WITH moved AS (DELETE FROM journal_legs_default WHERE accounting_date = %L RETURNING *)'
                       ' INSERT INTO %I SELECT * FROM moved', p_day, v_name);
        EXECUTE format('ALTER TABLE journal_legs ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       v_name, p_day, p_day + 1);
    EXCEPTION WHEN invalid_object_definition THEN  -- "would overlap partition ...": covered already
        RETURN false;
    END;
    RETURN true;
END $$;
