-- The day-end fence's date stamp (050/053) once per transaction instead of once per entry.
--
-- journal_entry_stamp ran for every journal entry: the shared fence lock and a read of the open date. A
-- batch statement of N payments paid it N times. The lock is a transaction lock: once this transaction
-- holds it, the day-end switch (which takes it exclusively) cannot move the open date before this
-- transaction ends, so the open date read under it stays the open date for every later entry of the
-- transaction. The stamp therefore remembers it (a transaction-local setting) and the trigger's WHEN skips
-- every later entry already carrying that date; an entry with another date (a stale draft) still runs it
-- and is rewritten. Same guarantees as 050/053: every entry is stamped with the open date read under the
-- fence, and no entry of the closing date commits after the switch.

CREATE OR REPLACE FUNCTION accounting_stamp_entry() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_open date;
BEGIN
    SELECT c.open_date INTO v_open FROM pg_advisory_xact_lock_shared(1633903476) AS fence, accounting_calendar c;
    IF v_open IS NOT NULL AND NEW.accounting_date IS DISTINCT FROM v_open THEN
        NEW.accounting_date := v_open;
        -- From here on in this transaction, legs look their date up from their entry.
        PERFORM set_config('payengine.date_rewritten', 'yes', true);
    END IF;
    -- The fence is held until this transaction ends: entries dated v_open need no second look.
    PERFORM set_config('payengine.fenced_open_date', coalesce(v_open::text, ''), true);
    RETURN NEW;
END $$;

DROP TRIGGER journal_entry_stamp ON journal_entries;
CREATE TRIGGER journal_entry_stamp BEFORE INSERT ON journal_entries
    FOR EACH ROW
    WHEN (NEW.accounting_date::text IS DISTINCT FROM
          nullif(current_setting('payengine.fenced_open_date', true), ''))
    EXECUTE FUNCTION accounting_stamp_entry();
