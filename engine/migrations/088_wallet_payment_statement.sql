-- A wallet payment booked by ONE statement: its rows (payment, transition, outbox event, idempotency key
-- with the stored response, the gate's record with the claim of its admission) and its PAY_WALLET posting.
-- Called on its own, the statement is its own implicit transaction: no BEGIN and COMMIT round trips, and
-- any refusal raises, so nothing of a refused payment is ever committed (the key row included).
--
-- Only what a wallet payment writes: no voucher, no job (engine/payments/store.py keeps the general
-- statement for channel payments). The posting's legs come as ledger_post_entry takes them, the payer's
-- wallet leg with a NULL account: the wallet is the customer's, found here with the customer check.
--
-- Refusals (SQLSTATE, DETAIL), translated by engine/payments/store.py, in the order the general statement
-- decides them: PE011 Idempotency-Key held by another request (key); PE012 duplicate merchant order
-- number (the existing payment's id); PE015 the admission was released by the orphan sweep (admission id);
-- PE013 unknown customer; PE014 the customer's wallet is in another currency (its currency). The
-- posting's own (PE001-PE005, a duplicate transaction number) pass through.
CREATE FUNCTION payment_book_wallet(
    p_id text, p_merchant_id text, p_order_no text, p_amount bigint, p_currency text, p_customer_id text,
    p_status text, p_fee bigint, p_txn_no text, p_description text, p_metadata jsonb, p_expires_at timestamptz,
    p_now timestamptz, p_fee_collection text, p_from_status text, p_event text,
    p_event_id text, p_event_type text, p_event_payload jsonb,
    p_key text, p_status_code int, p_body bytea, p_fingerprint bytea,
    p_controls jsonb, p_admission_id text,
    p_txn_code text, p_date date, p_accounts text[], p_sides text[], p_amounts bigint[], p_currencies text[]
) RETURNS TABLE (r_leg_no int, r_account_id text, r_status text, r_seq bigint, r_balance_after bigint,
                 r_delta bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_wallet text;
    v_customer_currency text;
    v_existing text;
BEGIN
    IF p_fingerprint IS NOT NULL THEN
        -- The folded claim: the key goes in with its response. The try-lock keeps "another request with
        -- this key is running" a refusal, not a wait on the holder's uncommitted row.
        IF NOT pg_try_advisory_xact_lock(hashtextextended(p_merchant_id || ':' || p_key, 0)) THEN
            RAISE EXCEPTION 'idempotency key held' USING ERRCODE = 'PE011', DETAIL = p_key;
        END IF;
        INSERT INTO idempotency_keys (merchant_id, key, fingerprint, status_code, response_body, locked_until)
        VALUES (p_merchant_id, p_key, p_fingerprint, p_status_code, p_body, p_now)
        ON CONFLICT (merchant_id, key) DO NOTHING;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'idempotency key held' USING ERRCODE = 'PE011', DETAIL = p_key;
        END IF;
    END IF;
    SELECT c.wallet_account_id, c.currency INTO v_wallet, v_customer_currency
    FROM customers c WHERE c.id = p_customer_id AND c.merchant_id = p_merchant_id;
    IF v_wallet IS NOT NULL AND v_customer_currency = p_currency THEN
        INSERT INTO payments (id, merchant_id, merchant_order_no, amount, currency, method, customer_id,
                              payer_account_id, status, fee, txn_no, description, metadata, expires_at,
                              created_at, updated_at, fee_collection, controls)
        VALUES (p_id, p_merchant_id, p_order_no, p_amount, p_currency, 'wallet', p_customer_id, v_wallet,
                p_status, p_fee, p_txn_no, p_description, p_metadata, p_expires_at, p_now, p_now,
                p_fee_collection, p_controls)
        ON CONFLICT ON CONSTRAINT payments_merchant_order_no DO NOTHING;
        IF FOUND THEN
            IF p_admission_id IS NOT NULL THEN
                -- The admission's usage row, claimed for this booking: the orphan sweep locks it FOR UPDATE
                -- before judging it, so it waits for this transaction or has released it already.
                PERFORM 1 FROM limit_usage WHERE id = p_admission_id AND released_at IS NULL FOR KEY SHARE;
                IF NOT FOUND THEN
                    RAISE EXCEPTION 'admission % released', p_admission_id
                        USING ERRCODE = 'PE015', DETAIL = p_admission_id;
                END IF;
            END IF;
            INSERT INTO transitions (object_id, from_status, to_status, event, at)
            VALUES (p_id, p_from_status, p_status, p_event, p_now);
            IF p_event_id IS NOT NULL THEN
                INSERT INTO outbox_events (id, merchant_id, type, object_id, payload, created_at)
                VALUES (p_event_id, p_merchant_id, p_event_type, p_id, p_event_payload, p_now);
            END IF;
            IF p_fingerprint IS NULL AND p_key IS NOT NULL THEN  -- a key claimed before: its response now
                UPDATE idempotency_keys SET status_code = p_status_code, response_body = p_body
                WHERE merchant_id = p_merchant_id AND key = p_key;
            END IF;
            RETURN QUERY SELECT * FROM ledger_post_entry(
                p_txn_no, p_txn_code, p_date, p_id, array_replace(p_accounts, NULL, v_wallet), p_sides, p_amounts,
                p_currencies);
            RETURN;
        END IF;
    END IF;
    SELECT id INTO v_existing FROM payments WHERE merchant_id = p_merchant_id AND merchant_order_no = p_order_no;
    IF FOUND THEN
        RAISE EXCEPTION 'duplicate order %', p_order_no USING ERRCODE = 'PE012', DETAIL = v_existing;
    END IF;
    IF v_wallet IS NULL THEN
        RAISE EXCEPTION 'unknown customer %', p_customer_id USING ERRCODE = 'PE013', DETAIL = p_customer_id;
    END IF;
    RAISE EXCEPTION 'customer in %', v_customer_currency USING ERRCODE = 'PE014', DETAIL = v_customer_currency;
END $$;
