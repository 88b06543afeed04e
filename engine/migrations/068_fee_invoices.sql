-- Invoices for invoiced fees, and how they are paid.
--
-- An invoiced fee is booked to the merchant's fee-payable account (067): what the merchant owes us. An
-- invoice bills what is owed and not billed yet (the account's applied balance less the open invoices);
-- paying it books the money in and credits fee payable:
--   FEE_INVOICE_PAID      from the merchant's available balance (merchant_available D, fee payable C);
--   FEE_INVOICE_RECEIVED  money the merchant sent to our bank (bank_deposits D, fee payable C).
-- The invoice turns paid in the transaction that books the entry, with a compare-and-set on its status,
-- so an invoice is paid once at most.
--
-- A refund of an invoiced-fee payment after its invoice was paid credits fee payable below zero: the fee
-- is owed back to the merchant (a credit the next invoice nets). So fee payable has no overdraft floor.

CREATE TABLE fee_invoices (
    id           text PRIMARY KEY,
    merchant_id  text NOT NULL REFERENCES merchants (id),
    currency     char(3) NOT NULL,
    amount       bigint NOT NULL CHECK (amount > 0),
    status       text NOT NULL CHECK (status IN ('open', 'paid')),
    paid_from    text CHECK (paid_from IN ('available', 'external')),
    paid_txn_no  char(32) UNIQUE,
    reference    text CHECK (length(reference) <= 128),  -- e.g. the bank transfer's reference
    issued_at    timestamptz NOT NULL,
    paid_at      timestamptz,
    CONSTRAINT fee_invoices_paid_fields CHECK (
        (status = 'paid') = (paid_from IS NOT NULL AND paid_txn_no IS NOT NULL AND paid_at IS NOT NULL))
);

CREATE INDEX fee_invoices_merchant ON fee_invoices (merchant_id, issued_at DESC, id DESC);
CREATE INDEX fee_invoices_open ON fee_invoices (merchant_id, currency) WHERE status = 'open';

UPDATE accounts SET overdraft_mode = 'unlimited', overdraft_limit = 0 WHERE role = 'merchant_fee_payable';
