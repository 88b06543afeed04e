-- The ledger's integrity checks once per statement instead of once per row.
--
-- Until now every journal leg fired two foreign-key checks (its account, its entry): an SPI query each,
-- taking KEY SHARE on the account and entry rows, ten per wallet payment, and on hot accounts a KEY SHARE
-- that every other payment shares (MultiXacts); and every entry queued a deferred trigger that read its
-- legs back at commit to check Σ debits = Σ credits. Measured in the batching prototype of issue 18 as
-- ~45% of PostgreSQL's CPU per payment. The same guarantees, checked once per statement over the
-- statement's transition table (a batch of N payments pays once, not 10N times):
--
-- * legs -> entries (was journal_legs_entry_fkey): every inserted leg's (accounting_date, txn_no) is an
--   entry; a leg's key columns never change afterwards; entries are never deleted, nor their key changed.
-- * legs -> accounts (was journal_legs_account_id_fkey): every inserted leg's account exists; accounts
--   are never deleted (they are closed: status), nor their id changed. Without the KEY SHARE lock a
--   deletion could race an insert; since no deletion can happen at all, none can race.
-- * balanced (was the deferred journal_entry_balanced, which read every entry's legs back at commit): the
--   legs each statement inserts for an entry number at least two and balance per currency (every
--   statement's part balancing, the whole does), checked per statement; and every entry has legs at commit
--   (journal_entry_has_legs, still deferred per entry, now a single index probe). ledger_post_entry also
--   checks its own arrays first (PE005 before any row is written) and inserts an entry with its legs in one
--   statement.
--
-- Errors: a missing entry or account is SQLSTATE 23503 (foreign_key_violation, as the foreign keys raised),
-- an unbalanced statement PE005, a forbidden change 23503 (keys) or 55000 (object_not_in_prerequisite_state).

ALTER TABLE journal_legs DROP CONSTRAINT journal_legs_account_id_fkey;
ALTER TABLE journal_legs DROP CONSTRAINT journal_legs_entry_fkey;
DROP TRIGGER journal_entry_balanced ON journal_entries;
DROP FUNCTION ledger_check_entry_balanced();

CREATE FUNCTION ledger_check_new_legs() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_orphan text;
    v_account text;
    v_unbalanced text;
BEGIN
    SELECT (SELECT n.txn_no FROM new_legs n
            WHERE NOT EXISTS (SELECT 1 FROM journal_entries e
                              WHERE e.accounting_date = n.accounting_date AND e.txn_no = n.txn_no) LIMIT 1),
           (SELECT n.account_id FROM (SELECT DISTINCT account_id FROM new_legs) n
            WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = n.account_id) LIMIT 1),
           (SELECT t.txn_no FROM (SELECT txn_no, count(*) AS legs,
                                         sum(CASE side WHEN 'D' THEN amount ELSE -amount END) AS net
                                  FROM new_legs GROUP BY txn_no, currency) t
            GROUP BY t.txn_no HAVING sum(t.legs) < 2 OR bool_or(t.net <> 0) LIMIT 1)
    INTO v_orphan, v_account, v_unbalanced;
    IF v_orphan IS NOT NULL THEN
        RAISE EXCEPTION 'journal legs of % have no journal entry of their date', v_orphan
            USING ERRCODE = 'foreign_key_violation', DETAIL = v_orphan;
    END IF;
    IF v_account IS NOT NULL THEN
        RAISE EXCEPTION 'unknown account %', v_account USING ERRCODE = 'foreign_key_violation', DETAIL = v_account;
    END IF;
    IF v_unbalanced IS NOT NULL THEN
        RAISE EXCEPTION 'journal entry % does not balance or has fewer than two legs', v_unbalanced
            USING ERRCODE = 'PE005', DETAIL = v_unbalanced;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER journal_legs_checked AFTER INSERT ON journal_legs
    REFERENCING NEW TABLE AS new_legs FOR EACH STATEMENT EXECUTE FUNCTION ledger_check_new_legs();

-- Every entry has legs by the time its transaction commits: a deferred check per entry, as before, but now
-- one index probe (the legs' balance is checked per statement above, not re-read here). Deferred rather than
-- at the end of the entry's statement so that a writer may insert a batch's entries and then their legs in
-- two statements (the batch statement of 093 does).
CREATE FUNCTION ledger_check_entry_has_legs() RETURNS trigger LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    PERFORM 1 FROM journal_legs l WHERE l.accounting_date = NEW.accounting_date AND l.txn_no = NEW.txn_no LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'journal entry % has no legs', NEW.txn_no USING ERRCODE = 'PE005', DETAIL = NEW.txn_no;
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER journal_entry_has_legs AFTER INSERT ON journal_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_entry_has_legs();

-- What the foreign keys also refused: changing what a leg points at or says, deleting (or re-keying) an
-- entry or an account. Statement-level with column lists: the flusher's UPDATE (status, seq,
-- balance_after, applied_at) never fires them.
CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% of % is not allowed: %', TG_OP, TG_TABLE_NAME, TG_ARGV[0]
        USING ERRCODE = 'foreign_key_violation', DETAIL = TG_TABLE_NAME;
END $$;

CREATE TRIGGER journal_legs_fixed BEFORE UPDATE OF txn_no, leg_no, account_id, side, amount, currency, delta,
    accounting_date ON journal_legs
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change('a leg''s entry, account and amount never change');
CREATE TRIGGER journal_entries_kept BEFORE DELETE OR UPDATE OF txn_no, accounting_date ON journal_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change('journal entries are kept as booked');
CREATE TRIGGER accounts_kept BEFORE DELETE OR UPDATE OF id ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change('accounts are closed, never deleted');

-- As in 070, except that (a) the entry's legs are checked here first (at least two, balanced per
-- currency: PE005, nothing written), and (b) the entry and its legs go in with ONE statement after the
-- accounts loop (the entry's date, stamped by its BEFORE trigger, flows to the legs through RETURNING), so
-- the statement-level checks above see them together. Same signature, same results.
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
    v_now timestamptz := clock_timestamp();
    v_bad text;
    v_leg_nos int[];
    v_deltas bigint[];
    v_statuses text[];
    v_seqs bigint[];
    v_balances bigint[];
BEGIN
    SELECT min(t.currency) FILTER (WHERE t.net <> 0) INTO v_bad
    FROM (SELECT c AS currency, sum(CASE s WHEN 'D' THEN a ELSE -a END) AS net
          FROM unnest(p_currencies, p_sides, p_amounts) AS u(c, s, a) GROUP BY c) t;
    IF coalesce(cardinality(p_accounts), 0) < 2 OR v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'journal entry % does not balance (in %) or has fewer than two legs', p_txn_no, v_bad
            USING ERRCODE = 'PE005', DETAIL = p_txn_no;
    END IF;
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
    WITH e AS (
        INSERT INTO journal_entries (txn_no, txn_code, accounting_date, ref)
        VALUES (p_txn_no, p_txn_code, p_date, p_ref) RETURNING accounting_date
    )
    INSERT INTO journal_legs (txn_no, leg_no, account_id, side, amount, currency, delta, status, seq, balance_after,
                              accounting_date, created_at, applied_at)
    SELECT p_txn_no, t.leg_no, p_accounts[t.leg_no], p_sides[t.leg_no], p_amounts[t.leg_no], p_currencies[t.leg_no],
           t.delta, t.status, t.seq, t.balance, e.accounting_date, v_now,
           CASE WHEN t.status = 'applied' THEN v_now END
    FROM e, unnest(v_leg_nos, v_deltas, v_statuses, v_seqs, v_balances) AS t(leg_no, delta, status, seq, balance);
END $$;
