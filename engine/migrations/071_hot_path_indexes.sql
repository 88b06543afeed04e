-- Index review of the hot paths (docs/SCALING.md, "PostgreSQL at scale"): indexes that every write pays
-- for and no query needs, because another index starts with the same columns.

-- Every posting inserts a journal entry. 070 added the unique (accounting_date, txn_no) for the legs'
-- foreign key; it serves "entries of a date" (day-end entry count, reconciliation, settlement) as well
-- as the plain date index did, so that one is only a second btree insert per posting.
DROP INDEX journal_entries_date;

-- Every refund inserts a row; UNIQUE (payment_id, merchant_refund_no) already starts with payment_id and
-- serves the lookups of a payment's refunds.
DROP INDEX refunds_payment;
