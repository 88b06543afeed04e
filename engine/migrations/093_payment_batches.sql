-- Wallet payments booked in batches (engine/payments/batch_store.py): one statement, one transaction, one
-- commit for every payment the batcher gathered, with the outcome of each decided exactly as if they had
-- been booked one by one in arrival order (engine/payments/store.py insert_payment + ledger_post_entry).
--
-- How the serial guarantees are kept, set-wise:
-- * Locks in one fixed order, so batches of several API processes never deadlock: the payers' wallets
--   (FOR UPDATE, in id order), then the merchant order numbers (advisory transaction locks, in sorted
--   order; a second batch with the same number waits, then sees it taken), then the Idempotency-Keys
--   (try-locks, the same ones the serial path takes: a key held elsewhere is "taken", never a wait),
--   then the admissions' limit_usage rows (FOR KEY SHARE, as the serial claim), then the other
--   non-hot accounts that legs move (FOR UPDATE, in id order). Hot accounts are not locked: their legs
--   are written 'buffered', as ledger_post_entry writes them.
-- * The decisions are a walk over the items in arrival order on values held in memory (no per-item
--   statement, no subtransaction): the first refusal of an item, in the serial path's order of checks
--   (key taken, duplicate order, unknown customer, currency mismatch, admission released, then per leg
--   in (account, leg) order: unknown account, closed account, account currency, overdraft rule), refuses
--   it and leaves the running balances as they were; a later payment of the same payer sees only the
--   earlier payments that were booked.
-- * Then one INSERT per table and one UPDATE of the non-hot accounts: sequences continue each account's
--   last_seq in walk order and balance_after is the running balance, so balance = sum of applied legs and
--   the per-account sequence stay as ledger_post_entry leaves them. Entries are stamped by the same
--   BEFORE INSERT trigger (day-end fence, open accounting date) and the legs take the stamped date; the
--   ledger's statement-level checks (migration 089: legs balanced per entry, pointing at their entry and an
--   existing account, every entry with legs) run once for the whole batch, the accounts' overdraft CHECK per
--   row.
-- * Anything the walk could not foresee (an order number or key inserted meanwhile by a path that does
--   not take these locks) fails the statement with a unique violation; the caller splits the batch and
--   books the halves again.
-- Refusals are not written here: the caller stores the refusals of keyed items (their error body is made
-- in Python) in the same transaction.
--
-- Legs arrive flattened (l_item names the item, 1-based); a NULL l_account means the payer's wallet, which
-- only the customer row knows. Plans: no statement joins one array to another (lookups go by index probe or
-- through a jsonb map), so the one generic plan of each statement, made once per session, is right for any
-- batch size; planning every statement for every call (force_custom_plan) cost several ms per batch.

CREATE FUNCTION payment_batch_book(
    p_ids text[], p_merchants text[], p_order_nos text[], p_amounts bigint[], p_currencies text[],
    p_customers text[], p_statuses text[], p_fees bigint[], p_txn_nos text[], p_descriptions text[],
    p_metadata text[], p_expires timestamptz[], p_created timestamptz[], p_collections text[],
    p_from_status text, p_event text, p_event_ids text[], p_event_type text, p_bodies bytea[],
    p_keys text[], p_fingerprints bytea[], p_admissions text[], p_controls text[],
    p_txn_codes text[], p_dates date[],
    l_item int[], l_txn text[], l_leg_no int[], l_account text[], l_side text[], l_amount bigint[],
    l_currency text[]
) RETURNS TABLE (r_item int, r_outcome text, r_detail text, r_payer text, r_leg_no int, r_account text,
                 r_status text, r_seq bigint, r_balance bigint, r_delta bigint)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    n int := cardinality(p_ids);
    m int := coalesce(cardinality(l_item), 0);
    i int; g int; k int; pos int := 1;
    v_payer text[]; v_ccy text[]; v_existing text[]; v_key_free boolean[]; v_live jsonb; v_acc_map jsonb;
    v_date_min date; v_date_max date; v_dates jsonb;
    v_outcome text[]; v_detail text[];
    -- accounts touched, loaded once: a_* indexed by position in a_ids
    a_ids text[]; a_ccy text[]; a_side text[]; a_hot boolean[]; a_status text[]; a_bal bigint[];
    a_frozen bigint[]; a_mode text[]; a_limit bigint[]; a_seq bigint[]; a_locked boolean[];
    t_bal bigint[]; t_seq bigint[];
    -- per leg: resolved account, its index, and what the walk decided
    g_acc text[]; g_ai int[]; g_order int[]; g_delta bigint[]; g_status text[]; g_seq bigint[]; g_bal bigint[];
    v_item_legs int[]; v_refusal text; v_refusal_detail text; v_used_keys text[] := '{}';
    v_used_orders text[] := '{}'; v_used_order_ids text[] := '{}'; v_ord text; v_key text;
    v_now timestamptz := clock_timestamp();
    ok boolean[];
BEGIN
    IF n = 0 THEN
        RETURN;
    END IF;
    -- The customers (no lock: the serial path reads them in its INSERT ... SELECT the same way).
    SELECT array_agg(c.wallet_account_id ORDER BY t.i), array_agg(rtrim(c.currency) ORDER BY t.i)
        INTO v_payer, v_ccy
    FROM unnest(p_customers, p_merchants) WITH ORDINALITY AS t(cid, mid, i)
    LEFT JOIN customers c ON c.id = t.cid AND c.merchant_id = t.mid;

    -- Legs: the payer's wallet filled in; the walk visits each item's legs in (account, leg) order.
    SELECT array_agg(coalesce(t.acc, v_payer[t.item]) ORDER BY t.g) INTO g_acc
    FROM unnest(l_item, l_account) WITH ORDINALITY AS t(item, acc, g);
    SELECT array_agg(t.g::int ORDER BY t.item, t.acc, t.leg, t.g) INTO g_order
    FROM unnest(l_item, g_acc, l_leg_no) WITH ORDINALITY AS t(item, acc, leg, g);

    -- 1. The payers' wallets, locked in id order.
    SELECT array_agg(a.id ORDER BY a.id), array_agg(rtrim(a.currency) ORDER BY a.id),
           array_agg(a.normal_side::text ORDER BY a.id), array_agg(a.hot ORDER BY a.id),
           array_agg(a.status ORDER BY a.id), array_agg(a.balance ORDER BY a.id), array_agg(a.frozen ORDER BY a.id),
           array_agg(a.overdraft_mode ORDER BY a.id), array_agg(a.overdraft_limit ORDER BY a.id),
           array_agg(a.last_seq ORDER BY a.id), array_agg(true ORDER BY a.id)
        INTO a_ids, a_ccy, a_side, a_hot, a_status, a_bal, a_frozen, a_mode, a_limit, a_seq, a_locked
    FROM (SELECT a.* FROM accounts a WHERE a.id IN (SELECT DISTINCT unnest(v_payer)) ORDER BY a.id FOR UPDATE) a;

    -- 2. Order numbers, in sorted order; then which are already used.
    PERFORM pg_advisory_xact_lock(hashtextextended('payment_order:' || t.mid || ':' || t.ord, 0))
    FROM (SELECT DISTINCT mid, ord FROM unnest(p_merchants, p_order_nos) AS u(mid, ord) ORDER BY mid, ord) t;
    -- (Scalar subqueries: one index probe per item; a join would hash the whole table.)
    SELECT array_agg((SELECT p.id FROM payments p WHERE p.merchant_id = t.mid AND p.merchant_order_no = t.ord)
                     ORDER BY t.i) INTO v_existing
    FROM unnest(p_merchants, p_order_nos) WITH ORDINALITY AS t(mid, ord, i);

    -- 3. Idempotency-Keys: the serial path's try-lock (it never waits, so no order is needed) and no row yet.
    SELECT array_agg(t.key IS NOT NULL
                     AND pg_try_advisory_xact_lock(hashtextextended(t.mid || ':' || t.key, 0))
                     AND (SELECT 1 FROM idempotency_keys ik WHERE ik.merchant_id = t.mid AND ik.key = t.key
                          LIMIT 1) IS NULL ORDER BY t.i) INTO v_key_free
    FROM unnest(p_merchants, p_keys) WITH ORDINALITY AS t(mid, key, i);

    -- 4. The admissions still live (the serial path's claim), kept from release until commit.
    SELECT coalesce(jsonb_object_agg(u.id, true), '{}') INTO v_live
    FROM (SELECT lu.id FROM limit_usage lu WHERE lu.id = ANY(p_admissions) AND lu.released_at IS NULL
          ORDER BY lu.id FOR KEY SHARE) u;

    -- 5. Every other account the legs name: non-hot ones locked in id order, hot ones only read.
    WITH o AS (
        SELECT a.id, rtrim(a.currency) AS ccy, a.normal_side::text AS side, a.hot, a.status, a.balance, a.frozen,
               a.overdraft_mode, a.overdraft_limit, a.last_seq, false AS locked
        FROM accounts a WHERE a.id IN (SELECT DISTINCT unnest(g_acc)) AND a.hot
          AND NOT a.id = ANY(coalesce(a_ids, '{}'))
        UNION ALL
        SELECT b.id, rtrim(b.currency), b.normal_side::text, b.hot, b.status, b.balance, b.frozen,
               b.overdraft_mode, b.overdraft_limit, b.last_seq, true
        FROM (SELECT * FROM accounts b WHERE b.id IN (SELECT DISTINCT unnest(g_acc)) AND NOT b.hot
                AND NOT b.id = ANY(coalesce(a_ids, '{}')) ORDER BY b.id FOR UPDATE) b
    )
    SELECT coalesce(a_ids, '{}') || coalesce(array_agg(o.id ORDER BY o.id), '{}'),
           coalesce(a_ccy, '{}') || coalesce(array_agg(o.ccy ORDER BY o.id), '{}'),
           coalesce(a_side, '{}') || coalesce(array_agg(o.side ORDER BY o.id), '{}'),
           coalesce(a_hot, '{}') || coalesce(array_agg(o.hot ORDER BY o.id), '{}'),
           coalesce(a_status, '{}') || coalesce(array_agg(o.status ORDER BY o.id), '{}'),
           coalesce(a_bal, '{}') || coalesce(array_agg(o.balance ORDER BY o.id), '{}'),
           coalesce(a_frozen, '{}') || coalesce(array_agg(o.frozen ORDER BY o.id), '{}'),
           coalesce(a_mode, '{}') || coalesce(array_agg(o.overdraft_mode ORDER BY o.id), '{}'),
           coalesce(a_limit, '{}') || coalesce(array_agg(o.overdraft_limit ORDER BY o.id), '{}'),
           coalesce(a_seq, '{}') || coalesce(array_agg(o.last_seq ORDER BY o.id), '{}'),
           coalesce(a_locked, '{}') || coalesce(array_agg(o.locked ORDER BY o.id), '{}')
        INTO a_ids, a_ccy, a_side, a_hot, a_status, a_bal, a_frozen, a_mode, a_limit, a_seq, a_locked
    FROM o;
    SELECT coalesce(jsonb_object_agg(a.id, a.k), '{}') INTO v_acc_map FROM unnest(a_ids) WITH ORDINALITY AS a(id, k);
    SELECT array_agg((v_acc_map ->> t.acc)::int ORDER BY t.g) INTO g_ai FROM unnest(g_acc) WITH ORDINALITY AS t(acc, g);

    -- The walk, in arrival order.
    t_bal := a_bal; t_seq := a_seq;
    g_delta := array_fill(NULL::bigint, ARRAY[m]); g_status := array_fill(NULL::text, ARRAY[m]);
    g_seq := array_fill(NULL::bigint, ARRAY[m]); g_bal := array_fill(NULL::bigint, ARRAY[m]);
    v_outcome := array_fill(NULL::text, ARRAY[n]); v_detail := array_fill(NULL::text, ARRAY[n]);
    FOR i IN 1..n LOOP
        v_refusal := NULL; v_refusal_detail := NULL;
        v_key := CASE WHEN p_keys[i] IS NOT NULL THEN p_merchants[i] || ':' || p_keys[i] END;
        v_ord := p_merchants[i] || ':' || p_order_nos[i];
        v_item_legs := '{}';
        WHILE pos <= m AND l_item[g_order[pos]] = i LOOP
            v_item_legs := v_item_legs || g_order[pos];
            pos := pos + 1;
        END LOOP;
        IF v_key IS NOT NULL AND (NOT v_key_free[i] OR v_key = ANY(v_used_keys)) THEN
            v_refusal := 'key_taken';
        ELSIF v_existing[i] IS NOT NULL THEN
            v_refusal := 'duplicate_order'; v_refusal_detail := v_existing[i];
        ELSIF v_ord = ANY(v_used_orders) THEN
            v_refusal := 'duplicate_order';
            v_refusal_detail := v_used_order_ids[array_position(v_used_orders, v_ord)];
        ELSIF v_payer[i] IS NULL THEN
            v_refusal := 'unknown_customer';
        ELSIF v_ccy[i] <> p_currencies[i] THEN
            v_refusal := 'currency_mismatch'; v_refusal_detail := v_ccy[i];
        ELSIF p_admissions[i] IS NOT NULL AND NOT (v_live ? p_admissions[i]) THEN
            v_refusal := 'admission_released'; v_refusal_detail := p_admissions[i];
        ELSE
            -- The ledger's checks leg by leg on running balances; nothing kept unless every leg passes.
            a_bal := t_bal; a_seq := t_seq;
            FOREACH g IN ARRAY v_item_legs LOOP
                k := g_ai[g];
                IF k IS NULL THEN
                    v_refusal := 'unknown_account'; v_refusal_detail := g_acc[g]; EXIT;
                ELSIF a_status[k] <> 'open' THEN
                    v_refusal := 'account_closed'; v_refusal_detail := g_acc[g]; EXIT;
                ELSIF a_ccy[k] <> l_currency[g] THEN
                    v_refusal := 'account_currency'; v_refusal_detail := g_acc[g]; EXIT;
                END IF;
                g_delta[g] := CASE WHEN l_side[g] = a_side[k] THEN l_amount[g] ELSE -l_amount[g] END;
                IF a_hot[k] THEN
                    g_status[g] := 'buffered'; g_seq[g] := NULL; g_bal[g] := NULL;
                ELSE
                    IF NOT (g_delta[g] >= 0 OR a_mode[k] = 'unlimited'
                            OR a_bal[k] - a_frozen[k] + g_delta[g]
                               >= -(CASE WHEN a_mode[k] = 'limit' THEN a_limit[k] ELSE 0 END)) THEN
                        v_refusal := 'insufficient_funds'; v_refusal_detail := g_acc[g]; EXIT;
                    END IF;
                    a_bal[k] := a_bal[k] + g_delta[g]; a_seq[k] := a_seq[k] + 1;
                    g_status[g] := 'applied'; g_seq[g] := a_seq[k]; g_bal[g] := a_bal[k];
                END IF;
            END LOOP;
            IF v_refusal IS NOT NULL THEN
                FOREACH g IN ARRAY v_item_legs LOOP
                    g_status[g] := NULL;
                END LOOP;
            ELSE
                t_bal := a_bal; t_seq := a_seq;
                v_used_orders := v_used_orders || v_ord; v_used_order_ids := v_used_order_ids || p_ids[i];
            END IF;
        END IF;
        v_outcome[i] := coalesce(v_refusal, 'ok'); v_detail[i] := v_refusal_detail;
        -- A key answers from now on with what this item stored: its payment or its (4xx) refusal.
        IF v_key IS NOT NULL AND v_outcome[i] NOT IN ('key_taken', 'admission_released', 'unknown_account') THEN
            v_used_keys := v_used_keys || v_key;
        END IF;
    END LOOP;
    a_bal := t_bal; a_seq := t_seq;
    ok := ARRAY(SELECT o = 'ok' FROM unnest(v_outcome) AS o);

    IF true = ANY(ok) THEN
        INSERT INTO idempotency_keys (merchant_id, key, fingerprint, status_code, response_body, locked_until)
        SELECT t.mid, t.key, t.fp, 201, t.body, t.at
        FROM unnest(p_merchants, p_keys, p_fingerprints, p_bodies, p_created, ok) AS t(mid, key, fp, body, at, ok)
        WHERE t.ok AND t.key IS NOT NULL;

        INSERT INTO payments (id, merchant_id, merchant_order_no, amount, currency, method, channel, customer_id,
                              payer_account_id, status, fee, txn_no, description, metadata, expires_at, created_at,
                              updated_at, fee_collection, controls)
        SELECT t.id, t.mid, t.ord, t.amount, t.ccy, 'wallet', NULL, t.cid, t.payer, t.status, t.fee, t.txn_no,
               t.descr, t.meta::jsonb, t.exp, t.at, t.at, t.coll, t.ctl::jsonb
        FROM unnest(p_ids, p_merchants, p_order_nos, p_amounts, p_currencies, p_customers, v_payer, p_statuses,
                    p_fees, p_txn_nos, p_descriptions, p_metadata, p_expires, p_created, p_collections, p_controls, ok)
             AS t(id, mid, ord, amount, ccy, cid, payer, status, fee, txn_no, descr, meta, exp, at, coll, ctl, ok)
        WHERE t.ok ORDER BY t.mid, t.ord;

        INSERT INTO transitions (object_id, from_status, to_status, event, reason, at)
        SELECT t.id, p_from_status, t.status, p_event, NULL, t.at
        FROM unnest(p_ids, p_statuses, p_created, ok) AS t(id, status, at, ok) WHERE t.ok;

        INSERT INTO outbox_events (id, merchant_id, type, object_id, payload, created_at)
        SELECT t.eid, t.mid, p_event_type, t.id, convert_from(t.body, 'UTF8')::jsonb, t.at
        FROM unnest(p_event_ids, p_merchants, p_ids, p_bodies, p_created, ok) AS t(eid, mid, id, body, at, ok)
        WHERE t.ok;

        -- The entries, stamped by their trigger (the day-end fence, held shared until commit, so one date for
        -- all of them unless there is no calendar row and the drafts' dates differ); the legs take it.
        WITH e AS (
            INSERT INTO journal_entries (txn_no, txn_code, accounting_date, ref)
            SELECT t.txn_no, t.code, t.d, t.id
            FROM unnest(p_txn_nos, p_txn_codes, p_dates, p_ids, ok) AS t(txn_no, code, d, id, ok) WHERE t.ok
            RETURNING txn_no, accounting_date
        )
        SELECT min(e.accounting_date), max(e.accounting_date) INTO v_date_min, v_date_max FROM e;
        IF v_date_min <> v_date_max THEN
            SELECT jsonb_object_agg(rtrim(e.txn_no), e.accounting_date) INTO v_dates
            FROM journal_entries e WHERE e.txn_no = ANY(p_txn_nos::char(32)[]);
        END IF;
        INSERT INTO journal_legs (txn_no, leg_no, account_id, side, amount, currency, delta, status, seq,
                                  balance_after, accounting_date, created_at, applied_at)
        SELECT l.txn, l.leg, l.acc, l.side, l.amount, l.ccy, l.delta, l.status, l.seq, l.bal,
               CASE WHEN v_dates IS NULL THEN v_date_max ELSE (v_dates ->> l.txn)::date END,
               v_now, CASE WHEN l.status = 'applied' THEN v_now END
        FROM unnest(l_txn, l_leg_no, g_acc, l_side, l_amount, l_currency, g_delta, g_status, g_seq, g_bal)
             AS l(txn, leg, acc, side, amount, ccy, delta, status, seq, bal)
        WHERE l.status IS NOT NULL;

        UPDATE accounts a SET balance = t.bal, last_seq = t.seq
        FROM unnest(a_ids, a_bal, a_seq, a_locked) AS t(id, bal, seq, locked)
        WHERE a.id = t.id AND t.locked AND a.last_seq <> t.seq;
    END IF;

    -- One row per item (its outcome), then one row per leg of a booked item (no per-item arrays to build).
    RETURN QUERY
    SELECT t.i::int, t.outcome, t.detail, t.payer, NULL::int, NULL::text, NULL::text, NULL::bigint, NULL::bigint,
           NULL::bigint
    FROM unnest(v_outcome, v_detail, v_payer) WITH ORDINALITY AS t(outcome, detail, payer, i)
    UNION ALL
    SELECT l.item, NULL, NULL, NULL, l.leg, l.acc, l.status, l.seq, l.bal, l.delta
    FROM unnest(l_item, l_leg_no, g_acc, g_status, g_seq, g_bal, g_delta) AS l(item, leg, acc, status, seq, bal, delta)
    WHERE l.status IS NOT NULL;
END $$;
