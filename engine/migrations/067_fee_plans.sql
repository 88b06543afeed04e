-- Named fee plans and the merchant's fee-payable account.
--
-- A plan prices a payment (basis points and/or a fixed fee) and says how the fee is collected:
--   deducted  the fee is netted out at booking (merchant pending gets amount - fee), as before plans;
--   invoiced  the merchant pending account gets the whole amount and the fee is booked to the merchant's
--             fee-payable account: what the merchant owes us (a receivable in our books, debit-normal).
-- A merchant without a plan keeps its own fee_bps / fee_fixed, deducted: the behaviour before this file.

CREATE TABLE fee_plans (
    name       text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_]{0,63}$'),
    fee_bps    integer NOT NULL CHECK (fee_bps BETWEEN 0 AND 10000),
    fee_fixed  bigint NOT NULL CHECK (fee_fixed >= 0),
    collection text NOT NULL CHECK (collection IN ('deducted', 'invoiced')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE merchants ADD COLUMN fee_plan text REFERENCES fee_plans (name);

-- How the payment's fee was collected, fixed when the payment is made: its booking (also a channel payment's,
-- later), its refunds and its settlement follow it even if the merchant's plan changes meanwhile.
ALTER TABLE payments ADD COLUMN fee_collection text NOT NULL DEFAULT 'deducted'
    CHECK (fee_collection IN ('deducted', 'invoiced'));

INSERT INTO subjects (code, name, category, normal_side) VALUES
    ('1201', 'Fees receivable from merchants (merchant fee payable)', 'asset', 'D');

-- Every existing merchant gets its fee-payable account in each currency it has a pending account in,
-- not hot (new merchants get it from the onboarding template; a busy invoiced one can be split).
INSERT INTO accounts (id, kind, owner_id, role, subject_code, currency, normal_side, hot)
SELECT 'acct_' || substr(md5(p.owner_id || ' merchant_fee_payable ' || p.currency), 1, 24), 'merchant', p.owner_id,
       'merchant_fee_payable', '1201', p.currency, 'D', false
FROM accounts p
WHERE p.role = 'merchant_pending' AND p.parent_id IS NULL AND p.kind = 'merchant'
ON CONFLICT DO NOTHING;
