-- The payment rows' references checked once per statement instead of once per row (as 089 did for the
-- ledger). Each payment fired three foreign-key checks (its merchant, customer and payer's wallet) and its
-- outbox event one more (its merchant): an SPI query each, and a KEY SHARE on the merchant's row that every
-- concurrent payment to that merchant shares (MultiXacts on exactly the hot merchant's row). Issue 18's
-- prototype counted them with the per-row costs a batch statement should not pay N times.
--
-- The same guarantees:
-- * payments.merchant_id -> merchants, payments.customer_id -> customers, payments.payer_account_id ->
--   accounts, outbox_events.merchant_id -> merchants: every inserted row's references exist
--   (payments_checked, outbox_events_checked: AFTER INSERT FOR EACH STATEMENT over the new rows; 23503
--   foreign_key_violation, as the foreign keys raised), and those columns never change afterwards.
-- * nothing referenced disappears: merchants and customers are never deleted nor re-keyed (the engine
--   suspends merchants and never deletes customers); accounts already are not (089). Since no deletion can
--   happen at all, none can race an insert that no longer locks the referenced row.

ALTER TABLE payments DROP CONSTRAINT payments_merchant_id_fkey;
ALTER TABLE payments DROP CONSTRAINT payments_customer_id_fkey;
ALTER TABLE payments DROP CONSTRAINT payments_payer_account_id_fkey;
ALTER TABLE outbox_events DROP CONSTRAINT outbox_events_merchant_id_fkey;

CREATE FUNCTION payments_check_new() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_missing text;
BEGIN
    SELECT coalesce(
        (SELECT 'merchant ' || n.merchant_id FROM (SELECT DISTINCT merchant_id FROM new_payments) n
         WHERE NOT EXISTS (SELECT 1 FROM merchants m WHERE m.id = n.merchant_id) LIMIT 1),
        (SELECT 'customer ' || n.customer_id FROM new_payments n
         WHERE n.customer_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = n.customer_id)
         LIMIT 1),
        (SELECT 'account ' || n.payer_account_id FROM new_payments n
         WHERE n.payer_account_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = n.payer_account_id) LIMIT 1))
    INTO v_missing;
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'payment refers to an unknown %', v_missing
            USING ERRCODE = 'foreign_key_violation', DETAIL = v_missing;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER payments_checked AFTER INSERT ON payments
    REFERENCING NEW TABLE AS new_payments FOR EACH STATEMENT EXECUTE FUNCTION payments_check_new();

CREATE FUNCTION outbox_events_check_new() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_missing text;
BEGIN
    SELECT n.merchant_id INTO v_missing FROM (SELECT DISTINCT merchant_id FROM new_events) n
    WHERE NOT EXISTS (SELECT 1 FROM merchants m WHERE m.id = n.merchant_id) LIMIT 1;
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'outbox event of an unknown merchant %', v_missing
            USING ERRCODE = 'foreign_key_violation', DETAIL = v_missing;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER outbox_events_checked AFTER INSERT ON outbox_events
    REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION outbox_events_check_new();

-- ledger_refuse_change (089) raises 23503 naming the rule.
CREATE TRIGGER payments_references_fixed BEFORE UPDATE OF merchant_id, customer_id, payer_account_id ON payments
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change('a payment''s merchant, customer and payer never change');
CREATE TRIGGER outbox_events_merchant_fixed BEFORE UPDATE OF merchant_id ON outbox_events
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change('an event''s merchant never changes');
CREATE TRIGGER merchants_kept BEFORE DELETE OR UPDATE OF id ON merchants
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change('merchants are suspended, never deleted');
CREATE TRIGGER customers_kept BEFORE DELETE OR UPDATE OF id ON customers
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change('customers are never deleted');
