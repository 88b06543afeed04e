-- journal_legs partitioned by accounting date (native RANGE partitions, one per day), converted in place:
-- the old table is renamed, the partitioned one created, every row copied, the old one dropped, and the
-- indexes, constraints and functions that touch legs are recreated, all in this one migration transaction.
--
-- What could not stay as it was, because PostgreSQL enforces a unique index on a partitioned table only
-- when it contains the partition key:
-- * primary key (id) -> (id, accounting_date). id still comes from the one sequence, so it stays unique.
-- * UNIQUE (txn_no, leg_no) -> (txn_no, leg_no, accounting_date). It is still globally unique: txn_no is
--   the primary key of journal_entries (not partitioned, unchanged), and the foreign key below makes every
--   leg carry its entry's date, so all legs of one entry live in one partition, where this index holds.
-- * UNIQUE (account_id, seq) -> (account_id, seq, accounting_date), i.e. unique per day only. A statement's
--   sequence stays unique per account because seq is handed out by the account row itself: the posting
--   function and buffer_apply_legs both take it from accounts.last_seq under that row's lock (UPDATE or
--   SELECT ... FOR UPDATE) and advance last_seq in the same transaction, so no two legs get one number.
-- * FK txn_no -> journal_entries(txn_no) becomes (txn_no, accounting_date) -> journal_entries(txn_no,
--   accounting_date): the database itself guarantees a leg's date is its entry's date.
-- * The BEFORE INSERT trigger that rewrote a stale leg date (050/053) cannot work on a partitioned table (a
--   BEFORE ROW trigger may not move a row to another partition). ledger_post_entry now copies the date the
--   entry was stamped with (INSERT ... RETURNING) onto its legs, still in one statement.
--
-- Partitions: one per accounting date, named journal_legs_YYYYMMDD, created ahead by day-end
-- (engine/dayend/partitions.py, through journal_legs_add_partition below); everything older than the day
-- before the open date at migration time goes to journal_legs_history; journal_legs_default catches any
-- date without a partition, so a posting never fails because day-end did not run. Day-end warns when the
-- default partition holds rows, and journal_legs_add_partition moves them out when their day is created.

-- The old table keeps its data until the copy is done; its index names are freed for the new table.
ALTER TABLE journal_legs RENAME TO journal_legs_unpartitioned;
ALTER INDEX journal_legs_pkey RENAME TO journal_legs_unpartitioned_pkey;
ALTER INDEX journal_legs_txn_no_leg_no_key RENAME TO journal_legs_unpartitioned_txn_no_leg_no_key;
ALTER INDEX journal_legs_account_seq RENAME TO journal_legs_unpartitioned_account_seq;
ALTER INDEX journal_legs_buffered RENAME TO journal_legs_unpartitioned_buffered;

CREATE TABLE journal_legs (
    id              bigint NOT NULL DEFAULT nextval('journal_legs_id_seq'),
    txn_no          char(32) NOT NULL,
    leg_no          smallint NOT NULL,
    account_id      text NOT NULL,
    side            char(1) NOT NULL CONSTRAINT journal_legs_side_check CHECK (side IN ('D', 'C')),
    amount          bigint NOT NULL CONSTRAINT journal_legs_amount_check CHECK (amount > 0),
    currency        char(3) NOT NULL,
    delta           bigint NOT NULL,
    status          text NOT NULL CONSTRAINT journal_legs_status_check CHECK (status IN ('buffered', 'applied')),
    seq             bigint,
    balance_after   bigint,
    accounting_date date NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    applied_at      timestamptz,
    CONSTRAINT journal_legs_applied_fields CHECK (
        (status = 'applied') = (seq IS NOT NULL AND balance_after IS NOT NULL AND applied_at IS NOT NULL)
    ),
    CONSTRAINT journal_legs_delta CHECK (delta = amount OR delta = -amount)
) PARTITION BY RANGE (accounting_date);
-- The sequence must follow the new table before the old one (its owner) is dropped.
ALTER SEQUENCE journal_legs_id_seq OWNED BY journal_legs.id;

CREATE TABLE journal_legs_default PARTITION OF journal_legs DEFAULT;

-- Add the partition for one accounting date if it does not exist yet; true when it was created here.
-- Made as a plain table and ATTACHed, which locks journal_legs only SHARE UPDATE EXCLUSIVE (postings go
-- on; CREATE TABLE ... PARTITION OF would take ACCESS EXCLUSIVE). Legs of that date that landed in the
-- default partition meanwhile are moved into it first, so the attach cannot fail on them.
CREATE FUNCTION journal_legs_add_partition(p_day date) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_name text := 'journal_legs_' || to_char(p_day, 'YYYYMMDD');
BEGIN
    IF to_regclass(v_name) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE journal_legs INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', v_name);
    EXECUTE format('WITH moved AS (DELETE FROM journal_legs_default WHERE accounting_date = %L RETURNING *)'
                   ' INSERT INTO %I SELECT * FROM moved', p_day, v_name);
    EXECUTE format('ALTER TABLE journal_legs ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                   v_name, p_day, p_day + 1);
    RETURN true;
END $$;

-- History (everything before yesterday) in one partition, then one partition per day from yesterday
-- (a closing day may still be draining) to a week ahead; day-end keeps extending that.
DO $$
DECLARE
    v_open date := coalesce((SELECT open_date FROM accounting_calendar), (now() AT TIME ZONE 'UTC')::date);
    d date;
BEGIN
    EXECUTE format('CREATE TABLE journal_legs_history PARTITION OF journal_legs FOR VALUES FROM (MINVALUE) TO (%L)',
                   v_open - 1);
    FOR d IN SELECT generate_series(v_open - 1, v_open + 7, interval '1 day')::date LOOP
        PERFORM journal_legs_add_partition(d);
    END LOOP;
END $$;

INSERT INTO journal_legs (id, txn_no, leg_no, account_id, side, amount, currency, delta, status, seq,
                          balance_after, accounting_date, created_at, applied_at)
SELECT id, txn_no, leg_no, account_id, side, amount, currency, delta, status, seq,
       balance_after, accounting_date, created_at, applied_at
FROM journal_legs_unpartitioned;

DROP TABLE journal_legs_unpartitioned;
DROP FUNCTION accounting_stamp_leg();

-- Indexes are built after the copy (faster than maintaining them row by row).
ALTER TABLE journal_legs ADD CONSTRAINT journal_legs_pkey PRIMARY KEY (id, accounting_date);
ALTER TABLE journal_legs ADD CONSTRAINT journal_legs_txn_no_leg_no_key UNIQUE (txn_no, leg_no, accounting_date);
CREATE UNIQUE INDEX journal_legs_account_seq ON journal_legs (account_id, seq, accounting_date)
    WHERE seq IS NOT NULL;
CREATE INDEX journal_legs_buffered ON journal_legs (account_id, id) WHERE status = 'buffered';

-- The entry's (txn_no, accounting_date) as a key for the legs' foreign key; it also serves every
-- "entries of a date" query, which the plain date index did (071 drops that one).
CREATE UNIQUE INDEX journal_entries_date_txn ON journal_entries (accounting_date, txn_no);
ALTER TABLE journal_legs ADD CONSTRAINT journal_legs_account_id_fkey
    FOREIGN KEY (account_id) REFERENCES accounts (id);
ALTER TABLE journal_legs ADD CONSTRAINT journal_legs_entry_fkey
    FOREIGN KEY (accounting_date, txn_no) REFERENCES journal_entries (accounting_date, txn_no);

-- Σ debits = Σ credits per currency and at least two legs, at commit: the entry's date names the one
-- partition to read, and both checks are one query. The generic plan is forced: a custom plan would be
-- re-planned over every partition on each commit (measured ~300 µs per entry instead of ~60 µs).
CREATE OR REPLACE FUNCTION ledger_check_entry_balanced() RETURNS trigger LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_legs bigint;
    v_bad text;
BEGIN
    SELECT coalesce(sum(t.n), 0), min(t.currency) FILTER (WHERE t.net <> 0) INTO v_legs, v_bad
    FROM (SELECT l.currency, count(*) AS n, sum(CASE l.side WHEN 'D' THEN l.amount ELSE -l.amount END) AS net
          FROM journal_legs l WHERE l.accounting_date = NEW.accounting_date AND l.txn_no = NEW.txn_no
          GROUP BY l.currency) t;
    IF v_legs < 2 THEN
        RAISE EXCEPTION 'journal entry % has % legs', NEW.txn_no, v_legs
            USING ERRCODE = 'PE005', DETAIL = NEW.txn_no;
    END IF;
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'journal entry % does not balance in %', NEW.txn_no, v_bad
            USING ERRCODE = 'PE005', DETAIL = NEW.txn_no;
    END IF;
    RETURN NULL;
END $$;

-- As in 001, except that (a) the legs take the date the entry was actually stamped with (the day-end
-- fence may have moved a stale draft's date), which is also what the foreign key above demands, and
-- (b) all legs go in with one INSERT after the loop: routing a row into a partition costs a setup per
-- INSERT statement, so one INSERT per leg made a posting ~40% dearer (measured); one per entry does not.
-- Still one statement for the caller; any failure raises and the whole entry rolls back.
CREATE OR REPLACE FUNCTION ledger_post_entry(
    p_txn_no text, p_txn_code text, p_date date, p_ref text,
    p_accounts text[], p_sides text[], p_amounts bigint[], p_currencies text[]
) RETURNS TABLE (r_leg_no int, r_account_id text, r_status text, r_seq bigint, r_balance_after bigint,
                 r_delta bigint)
LANGUAGE plpgsql AS $$
DECLARE
    i int;
    n int := 0;
    acc record;
    v_delta bigint;
    v_balance bigint;
    v_seq bigint;
    v_date date;
    v_now timestamptz := clock_timestamp();
    v_leg_nos int[];
    v_deltas bigint[];
    v_statuses text[];
    v_seqs bigint[];
    v_balances bigint[];
BEGIN
    INSERT INTO journal_entries (txn_no, txn_code, accounting_date, ref)
        VALUES (p_txn_no, p_txn_code, p_date, p_ref) RETURNING accounting_date INTO v_date;
    FOR i IN SELECT g FROM generate_subscripts(p_accounts, 1) AS g ORDER BY p_accounts[g], g LOOP
        SELECT a.currency, a.normal_side, a.hot, a.status INTO acc FROM accounts a WHERE a.id = p_accounts[i];
        IF NOT FOUND THEN
            RAISE EXCEPTION 'unknown account %', p_accounts[i] USING ERRCODE = 'PE002', DETAIL = p_accounts[i];
        END IF;
        IF acc.status <> 'open' THEN
            RAISE EXCEPTION 'account % is closed', p_accounts[i] USING ERRCODE = 'PE004', DETAIL = p_accounts[i];
        END IF;
        IF acc.currency <> p_currencies[i] THEN
            RAISE EXCEPTION 'currency % on account % in %', p_currencies[i], p_accounts[i], acc.currency
                USING ERRCODE = 'PE003', DETAIL = p_accounts[i];
        END IF;
        v_delta := CASE WHEN p_sides[i] = acc.normal_side THEN p_amounts[i] ELSE -p_amounts[i] END;
        IF acc.hot THEN
            v_seq := NULL; v_balance := NULL;
            r_status := 'buffered';
        ELSE
            UPDATE accounts a SET balance = a.balance + v_delta, last_seq = a.last_seq + 1
                WHERE a.id = p_accounts[i]
                  AND (v_delta >= 0 OR a.overdraft_mode = 'unlimited'
                       OR a.balance - a.frozen + v_delta
                          >= -(CASE WHEN a.overdraft_mode = 'limit' THEN a.overdraft_limit ELSE 0 END))
                RETURNING a.balance, a.last_seq INTO v_balance, v_seq;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'insufficient funds on account %', p_accounts[i]
                    USING ERRCODE = 'PE001', DETAIL = p_accounts[i];
            END IF;
            r_status := 'applied';
        END IF;
        n := n + 1;
        v_leg_nos[n] := i; v_deltas[n] := v_delta; v_statuses[n] := r_status; v_seqs[n] := v_seq;
        v_balances[n] := v_balance;
        r_leg_no := i; r_account_id := p_accounts[i]; r_delta := v_delta; r_seq := v_seq; r_balance_after := v_balance;
        RETURN NEXT;
    END LOOP;
    INSERT INTO journal_legs (txn_no, leg_no, account_id, side, amount, currency, delta, status, seq, balance_after,
                              accounting_date, created_at, applied_at)
    SELECT p_txn_no, t.leg_no, p_accounts[t.leg_no], p_sides[t.leg_no], p_amounts[t.leg_no], p_currencies[t.leg_no],
           t.delta, t.status, t.seq, t.balance, v_date, v_now, CASE WHEN t.status = 'applied' THEN v_now END
    FROM unnest(v_leg_nos, v_deltas, v_statuses, v_seqs, v_balances) AS t(leg_no, delta, status, seq, balance);
END $$;

-- As in 010, except that each leg is found through its entry's date, so every probe and the UPDATE touch
-- one partition (run-time pruning in the nested loop) instead of one index probe per partition.
CREATE OR REPLACE FUNCTION buffer_apply_legs(p_account text, p_txn_nos text[], p_leg_nos int[])
RETURNS TABLE (r_applied int, r_net bigint, r_balance bigint, r_last_seq bigint, r_min_balance bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_balance bigint;
    v_seq bigint;
    v_now timestamptz := clock_timestamp();
BEGIN
    SELECT a.balance, a.last_seq INTO v_balance, v_seq FROM accounts a WHERE a.id = p_account FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown account %', p_account USING ERRCODE = 'PE002', DETAIL = p_account;
    END IF;
    WITH input AS (
        SELECT t.txn_no::char(32) AS txn_no, t.leg_no::smallint AS leg_no, t.ord
        FROM unnest(p_txn_nos, p_leg_nos) WITH ORDINALITY AS t(txn_no, leg_no, ord)
    ), todo AS (
        SELECT l.id, l.accounting_date, l.delta, i.ord
        FROM input i
        JOIN journal_entries e ON e.txn_no = i.txn_no
        JOIN journal_legs l ON l.accounting_date = e.accounting_date AND l.txn_no = i.txn_no AND l.leg_no = i.leg_no
        WHERE l.account_id = p_account AND l.status = 'buffered'
    ), numbered AS (
        SELECT id, accounting_date, row_number() OVER w AS rn, sum(delta) OVER w AS run
        FROM todo WINDOW w AS (ORDER BY ord ROWS UNBOUNDED PRECEDING)
    ), upd AS (
        UPDATE journal_legs l SET status = 'applied', seq = v_seq + n.rn, balance_after = v_balance + n.run,
                                  applied_at = v_now
        FROM numbered n WHERE l.accounting_date = n.accounting_date AND l.id = n.id AND l.status = 'buffered'
        RETURNING l.delta, l.balance_after
    )
    SELECT count(*)::int, coalesce(sum(u.delta), 0)::bigint, coalesce(min(u.balance_after), v_balance)
        INTO r_applied, r_net, r_min_balance FROM upd u;
    IF r_applied > 0 THEN
        UPDATE accounts a SET balance = a.balance + r_net, last_seq = a.last_seq + r_applied
            WHERE a.id = p_account RETURNING a.balance, a.last_seq INTO r_balance, r_last_seq;
    ELSE
        r_balance := v_balance;
        r_last_seq := v_seq;
    END IF;
    RETURN NEXT;
END $$;
