-- Limit usage owed back by payments that ended without money (closed, expired, failed). The row goes in
-- with the payment's transition, in its statement, so the obligation commits with the state change or not
-- at all; it is deleted once the control gate gave the admission's usage back (engine/usage_release.py).
-- A row older than a few seconds means the process that ended the payment died or its release failed: the
-- release loop gives the usage back then. Rows live milliseconds: the table stays small.
-- (Numbered into the free 069 slot: applied by number, it depends on nothing after 068.)
CREATE TABLE usage_releases (
    payment_id   text PRIMARY KEY,
    admission_id text NOT NULL,
    owed_since   timestamptz NOT NULL DEFAULT now()
);
