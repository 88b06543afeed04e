-- Accounting day: the open accounting date, day-end runs (a persisted state machine per date),
-- daily balance snapshots, and the fence that makes the day-end switch exact.

-- Exactly one row: the date new journal entries book to. Day-end moves it forward by one day.
CREATE TABLE accounting_calendar (
    id          boolean PRIMARY KEY DEFAULT true CHECK (id),
    open_date   date NOT NULL,
    switched_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO accounting_calendar (open_date) VALUES ((now() AT TIME ZONE 'UTC')::date);

-- One row per closing date. ``step`` is the next step to run (engine/dayend/steps.py); a crashed run
-- resumes there. ``status`` failed = the trial balance (or the drain) did not pass; the report names why.
CREATE TABLE day_ends (
    accounting_date date PRIMARY KEY,
    step            text NOT NULL CHECK (step IN ('switch', 'drain', 'balance', 'report', 'done')),
    status          text NOT NULL CHECK (status IN ('running', 'failed', 'done')),
    attempts        int NOT NULL DEFAULT 1,
    started_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    error           text,
    report          jsonb
);

-- Balances of every account at the end of a closed date, in normal-side terms.
-- closing is read from the live balance (minus later applied legs), opening from the previous
-- snapshot, so opening + net = closing is a real check, not an identity.
CREATE TABLE daily_balances (
    accounting_date date NOT NULL,
    account_id      text NOT NULL REFERENCES accounts (id),
    currency        char(3) NOT NULL,
    subject_code    text NOT NULL,
    normal_side     char(1) NOT NULL,
    opening         bigint NOT NULL,
    debits          bigint NOT NULL,
    credits         bigint NOT NULL,
    net             bigint NOT NULL,  -- Σ delta of the day's legs (normal-side effect)
    closing         bigint NOT NULL,
    legs            bigint NOT NULL,
    PRIMARY KEY (accounting_date, account_id)
);

-- The switch fence. Every journal entry insert takes this advisory lock SHARED until its transaction
-- ends and is stamped with the open date read under it; the day-end switch takes it EXCLUSIVE while it
-- moves the date. So entries already in flight when the switch starts keep (and commit) their date
-- before the switch completes, and every entry after it books to the new date, whatever date a
-- process's cache put on the draft. Key: "acct" in ASCII.
CREATE FUNCTION accounting_stamp_entry() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_open date;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(1633903476);
    SELECT open_date INTO v_open FROM accounting_calendar;
    IF v_open IS NOT NULL AND NEW.accounting_date IS DISTINCT FROM v_open THEN
        NEW.accounting_date := v_open;
    END IF;
    PERFORM set_config('payengine.entry_date', NEW.accounting_date::text, true);
    RETURN NEW;
END $$;

CREATE TRIGGER journal_entry_stamp BEFORE INSERT ON journal_entries
    FOR EACH ROW EXECUTE FUNCTION accounting_stamp_entry();

-- Legs carry their entry's date. Only a leg whose date differs from the entry just stamped (a stale
-- draft, about one per process per day) pays for the lookup; the WHEN test is a cheap GUC read.
CREATE FUNCTION accounting_stamp_leg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT e.accounting_date INTO NEW.accounting_date FROM journal_entries e WHERE e.txn_no = NEW.txn_no;
    RETURN NEW;
END $$;

CREATE TRIGGER journal_leg_stamp BEFORE INSERT ON journal_legs
    FOR EACH ROW
    WHEN (NEW.accounting_date::text IS DISTINCT FROM
          coalesce(nullif(current_setting('payengine.entry_date', true), ''), NEW.accounting_date::text))
    EXECUTE FUNCTION accounting_stamp_leg();
