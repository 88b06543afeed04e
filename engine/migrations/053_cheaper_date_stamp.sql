-- The entry date stamp of 050 on the booking path, cheaper: the fence lock and the open-date read are
-- one statement, and the transaction-local marker for the legs is only written when an entry's date
-- was actually rewritten (a stale draft), not for every entry. Same guarantees as 050.

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
    RETURN NEW;
END $$;

DROP TRIGGER journal_leg_stamp ON journal_legs;
CREATE TRIGGER journal_leg_stamp BEFORE INSERT ON journal_legs
    FOR EACH ROW
    WHEN (current_setting('payengine.date_rewritten', true) = 'yes')
    EXECUTE FUNCTION accounting_stamp_leg();
