-- Hot-account buffer: live flush settings and the batch-apply function the flusher calls.

-- One row (or none: then every process uses its PAYENGINE_BUFFER_* defaults). Flushers re-read it
-- at least once a second, so a change here is live without a restart.
CREATE TABLE buffer_settings (
    id                     boolean PRIMARY KEY DEFAULT true CHECK (id),
    batch_size             int NOT NULL CHECK (batch_size BETWEEN 1 AND 100000),
    flush_interval_ms      int NOT NULL CHECK (flush_interval_ms BETWEEN 1 AND 60000),
    max_lag_ms             int NOT NULL CHECK (max_lag_ms BETWEEN 1 AND 3600000),
    max_depth              int NOT NULL CHECK (max_depth BETWEEN 1 AND 100000000),
    flusher_concurrency    int NOT NULL CHECK (flusher_concurrency BETWEEN 1 AND 64),
    backpressure_wait_ms   int NOT NULL DEFAULT 0 CHECK (backpressure_wait_ms BETWEEN 0 AND 60000),
    updated_at             timestamptz NOT NULL DEFAULT now()
);

-- Apply one ordered batch of buffered legs of one account in one statement (so one transaction).
-- The array order is the buffer's sequence order; each leg that is still 'buffered' gets the next
-- account sequence number and its running balance, and the account moves by the net of exactly
-- those legs. A leg already applied (a re-delivery, or a batch re-taken after a flusher died between
-- commit and Redis removal) is skipped by the status = 'buffered' guard and changes nothing.
-- The account row is locked first, so this serialises with anything else that moves the balance;
-- the overdraft CHECK on accounts stays the last line of defence.
CREATE FUNCTION buffer_apply_legs(p_account text, p_txn_nos text[], p_leg_nos int[])
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
        SELECT l.id, l.delta, i.ord
        FROM input i JOIN journal_legs l ON l.txn_no = i.txn_no AND l.leg_no = i.leg_no
        WHERE l.account_id = p_account AND l.status = 'buffered'
    ), numbered AS (
        SELECT id, row_number() OVER w AS rn, sum(delta) OVER w AS run
        FROM todo WINDOW w AS (ORDER BY ord ROWS UNBOUNDED PRECEDING)
    ), upd AS (
        UPDATE journal_legs l SET status = 'applied', seq = v_seq + n.rn, balance_after = v_balance + n.run,
                                  applied_at = v_now
        FROM numbered n WHERE l.id = n.id AND l.status = 'buffered'
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
