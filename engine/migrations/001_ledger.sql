-- The double-entry ledger: chart of subjects, accounts, journal entries and their legs.
-- Balances are kept in the account's normal-side terms (a credit raises a credit-normal balance).

CREATE TABLE subjects (
    code        text PRIMARY KEY,
    name        text NOT NULL,
    category    text NOT NULL CHECK (category IN ('asset', 'liability', 'equity', 'income', 'expense')),
    normal_side char(1) NOT NULL CHECK (normal_side IN ('D', 'C'))
);

CREATE TABLE accounts (
    id              text PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('customer', 'merchant', 'internal')),
    owner_id        text NOT NULL,
    role            text NOT NULL,
    subject_code    text NOT NULL REFERENCES subjects (code),
    currency        char(3) NOT NULL,
    normal_side     char(1) NOT NULL CHECK (normal_side IN ('D', 'C')),
    balance         bigint NOT NULL DEFAULT 0,
    frozen          bigint NOT NULL DEFAULT 0 CHECK (frozen >= 0),
    overdraft_mode  text NOT NULL DEFAULT 'never' CHECK (overdraft_mode IN ('never', 'limit', 'unlimited')),
    overdraft_limit bigint NOT NULL DEFAULT 0 CHECK (overdraft_limit >= 0),
    hot             boolean NOT NULL DEFAULT false,
    parent_id       text REFERENCES accounts (id),
    sub_index       int,
    status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    last_seq        bigint NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- Last line of defence; the posting function checks first and names the account.
    CONSTRAINT accounts_overdraft_rule CHECK (
        overdraft_mode = 'unlimited'
        OR balance - frozen >= -(CASE WHEN overdraft_mode = 'limit' THEN overdraft_limit ELSE 0 END)
    ),
    CONSTRAINT accounts_sub_index CHECK ((parent_id IS NULL) = (sub_index IS NULL))
);
CREATE UNIQUE INDEX accounts_owner_role_currency ON accounts (owner_id, role, currency) WHERE parent_id IS NULL;
CREATE UNIQUE INDEX accounts_parent_sub ON accounts (parent_id, sub_index) WHERE parent_id IS NOT NULL;

CREATE TABLE journal_entries (
    txn_no          char(32) PRIMARY KEY,
    txn_code        text NOT NULL,
    accounting_date date NOT NULL,
    ref             text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX journal_entries_date ON journal_entries (accounting_date);
CREATE INDEX journal_entries_ref ON journal_entries (ref) WHERE ref IS NOT NULL;

CREATE TABLE journal_legs (
    id              bigserial PRIMARY KEY,
    txn_no          char(32) NOT NULL REFERENCES journal_entries (txn_no),
    leg_no          smallint NOT NULL,
    account_id      text NOT NULL REFERENCES accounts (id),
    side            char(1) NOT NULL CHECK (side IN ('D', 'C')),
    amount          bigint NOT NULL CHECK (amount > 0),
    currency        char(3) NOT NULL,
    delta           bigint NOT NULL,
    status          text NOT NULL CHECK (status IN ('buffered', 'applied')),
    seq             bigint,
    balance_after   bigint,
    accounting_date date NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    applied_at      timestamptz,
    UNIQUE (txn_no, leg_no),
    -- An applied leg has its place in the account's sequence and the balance it left behind.
    CONSTRAINT journal_legs_applied_fields CHECK (
        (status = 'applied') = (seq IS NOT NULL AND balance_after IS NOT NULL AND applied_at IS NOT NULL)
    ),
    CONSTRAINT journal_legs_delta CHECK (delta = amount OR delta = -amount)
);
CREATE UNIQUE INDEX journal_legs_account_seq ON journal_legs (account_id, seq) WHERE seq IS NOT NULL;
CREATE INDEX journal_legs_buffered ON journal_legs (account_id, id) WHERE status = 'buffered';

-- Σ debits = Σ credits per currency and at least two legs, checked once per entry at commit.
CREATE FUNCTION ledger_check_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_legs int;
    v_bad text;
BEGIN
    SELECT count(*) INTO v_legs FROM journal_legs WHERE txn_no = NEW.txn_no;
    IF v_legs < 2 THEN
        RAISE EXCEPTION 'journal entry % has % legs', NEW.txn_no, v_legs
            USING ERRCODE = 'PE005', DETAIL = NEW.txn_no;
    END IF;
    SELECT currency INTO v_bad FROM journal_legs WHERE txn_no = NEW.txn_no
        GROUP BY currency HAVING sum(CASE side WHEN 'D' THEN amount ELSE -amount END) <> 0 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'journal entry % does not balance in %', NEW.txn_no, v_bad
            USING ERRCODE = 'PE005', DETAIL = NEW.txn_no;
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER journal_entry_balanced AFTER INSERT ON journal_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_entry_balanced();

-- Post one entry: insert it and its legs; a leg on a normal account moves the balance in the same
-- UPDATE that checks the overdraft rule (no read-then-write race); a leg on a hot account is written
-- 'buffered' and leaves the account row alone (the buffer applies it later). Accounts are touched in
-- id order so concurrent entries cannot deadlock. Any failure raises and the caller's transaction
-- rolls back whole. SQLSTATEs: PE001 insufficient funds, PE002 unknown account, PE003 currency
-- mismatch, PE004 account closed, PE005 unbalanced; DETAIL carries the account id or txn.
CREATE FUNCTION ledger_post_entry(
    p_txn_no text, p_txn_code text, p_date date, p_ref text,
    p_accounts text[], p_sides text[], p_amounts bigint[], p_currencies text[]
) RETURNS TABLE (r_leg_no int, r_account_id text, r_status text, r_seq bigint, r_balance_after bigint,
                 r_delta bigint)
LANGUAGE plpgsql AS $$
DECLARE
    i int;
    acc record;
    v_delta bigint;
    v_balance bigint;
    v_seq bigint;
    v_now timestamptz := clock_timestamp();
BEGIN
    INSERT INTO journal_entries (txn_no, txn_code, accounting_date, ref)
        VALUES (p_txn_no, p_txn_code, p_date, p_ref);
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
            INSERT INTO journal_legs (txn_no, leg_no, account_id, side, amount, currency, delta, status,
                                      accounting_date, created_at)
                VALUES (p_txn_no, i, p_accounts[i], p_sides[i], p_amounts[i], p_currencies[i], v_delta,
                        'buffered', p_date, v_now);
            r_status := 'buffered'; r_seq := NULL; r_balance_after := NULL;
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
            INSERT INTO journal_legs (txn_no, leg_no, account_id, side, amount, currency, delta, status, seq,
                                      balance_after, accounting_date, created_at, applied_at)
                VALUES (p_txn_no, i, p_accounts[i], p_sides[i], p_amounts[i], p_currencies[i], v_delta,
                        'applied', v_seq, v_balance, p_date, v_now, v_now);
            r_status := 'applied'; r_seq := v_seq; r_balance_after := v_balance;
        END IF;
        r_leg_no := i; r_account_id := p_accounts[i]; r_delta := v_delta;
        RETURN NEXT;
    END LOOP;
END $$;

-- Leases for transaction-number node ids: a process holds one id while it renews the lease.
CREATE TABLE node_leases (
    node_id    int PRIMARY KEY CHECK (node_id BETWEEN 0 AND 9999),
    holder     text NOT NULL,
    expires_at timestamptz NOT NULL
);

INSERT INTO subjects (code, name, category, normal_side) VALUES
    ('1001', 'Receivable from payment channels', 'asset', 'D'),
    ('1002', 'Bank deposits', 'asset', 'D'),
    ('2001', 'Customer wallets', 'liability', 'C'),
    ('2002', 'Merchant pending settlement', 'liability', 'C'),
    ('2003', 'Merchant available balance', 'liability', 'C'),
    ('2101', 'Gateway transit (clearing)', 'liability', 'C'),
    ('2201', 'Payouts in flight', 'liability', 'C'),
    ('3001', 'Owner equity', 'equity', 'C'),
    ('6001', 'Fee income', 'income', 'C'),
    ('6401', 'Channel cost', 'expense', 'D'),
    ('6901', 'Operational losses and adjustments', 'expense', 'D');
