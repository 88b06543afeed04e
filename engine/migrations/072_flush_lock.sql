-- The flusher locks a hot account's row FOR NO KEY UPDATE instead of FOR UPDATE.
--
-- Every booking that writes a leg on an account takes FOR KEY SHARE on the account's row (the foreign key
-- journal_legs -> accounts) until it commits. FOR UPDATE conflicts with KEY SHARE, so each flush of a hot
-- account waited for every booking in flight that had a leg on it: under the Locust mixed load (200 users,
-- requests holding their transaction while the API's event loop was saturated) one flush round took 1.5 s,
-- the buffer's oldest leg passed max_lag_ms (5 s) and postings were refused with back-pressure. The flusher
-- changes only balance and last_seq, never the key: NO KEY UPDATE is the lock the UPDATE below takes anyway,
-- still excludes every other writer of the row (another flusher, a synchronous posting while the account is
-- not hot, a split), and lets bookings keep referencing the account meanwhile.
CREATE OR REPLACE FUNCTION buffer_apply_legs(p_account text, p_txn_nos text[], p_leg_nos int[])
RETURNS TABLE (r_applied int, r_net bigint, r_balance bigint, r_last_seq bigint, r_min_balance bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_balance bigint;
    v_seq bigint;
    v_now timestamptz := clock_timestamp();
BEGIN
    SELECT a.balance, a.last_seq INTO v_balance, v_seq FROM accounts a WHERE a.id = p_account FOR NO KEY UPDATE;
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
