-- The exception desk (engine/desk/): adjustments (调账) and reversals (冲正) proposed by one operator and
-- approved by another before anything is booked, the link of each reversal to the entry it mirrors, and
-- reconciliation differences closed by what happens to their money.

-- Money that arrived and belongs to nobody we know yet (a channel's long): owed until attributed.
INSERT INTO subjects (code, name, category, normal_side)
VALUES ('2901', 'Suspense (funds not yet attributed)', 'liability', 'C') ON CONFLICT (code) DO NOTHING;

-- One row per proposal. Four eyes are a rule of the table, not only of the code: whoever decides is not
-- whoever proposed. 'approved' means booked: the status change, the entry and its audit row commit together.
CREATE TABLE desk_proposals (
    id              text PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('adjustment', 'reversal')),
    status          text NOT NULL CHECK (status IN ('proposed', 'approved', 'rejected', 'expired')),
    code            text NOT NULL,          -- the adjustment code (engine/desk/codes.py); reversals: the original's
    currency        char(3) NOT NULL,
    amount          bigint NOT NULL CHECK (amount > 0),
    accounts        jsonb NOT NULL DEFAULT '{}'::jsonb,  -- role -> account id (adjustments)
    original_txn_no char(32),               -- reversals: the entry to mirror
    reason          text NOT NULL CHECK (reason <> ''),
    evidence        text,
    proposed_by     text NOT NULL CHECK (proposed_by <> ''),
    proposed_at     timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    decided_by      text,
    decided_at      timestamptz,
    decision_note   text,
    txn_no          char(32) UNIQUE,        -- the entry booked on approval
    recon_item_id   bigint REFERENCES recon_items (id),  -- the reconciliation difference this resolves
    CONSTRAINT desk_proposals_four_eyes CHECK (decided_by IS NULL OR decided_by <> proposed_by),
    CONSTRAINT desk_proposals_decided CHECK ((status = 'proposed') = (decided_at IS NULL)),
    CONSTRAINT desk_proposals_booked CHECK ((status = 'approved') = (txn_no IS NOT NULL)),
    CONSTRAINT desk_proposals_shape CHECK ((kind = 'reversal') = (original_txn_no IS NOT NULL))
);
CREATE INDEX desk_proposals_open ON desk_proposals (kind, proposed_at) WHERE status = 'proposed';
CREATE INDEX desk_proposals_listing ON desk_proposals (kind, proposed_at DESC, id DESC);
CREATE INDEX desk_proposals_recon_item ON desk_proposals (recon_item_id) WHERE recon_item_id IS NOT NULL;
-- One live reversal proposal per entry: a second proposal while one is open (or booked) is refused.
CREATE UNIQUE INDEX desk_proposals_one_reversal ON desk_proposals (original_txn_no)
    WHERE kind = 'reversal' AND status IN ('proposed', 'approved');

-- The mirror of each reversed entry. An entry is reversed at most once (primary key), and a mirror is never
-- reversed itself (the desk checks reversal_txn_no before proposing and again when booking).
CREATE TABLE journal_reversals (
    original_txn_no char(32) PRIMARY KEY,
    reversal_txn_no char(32) NOT NULL UNIQUE,
    proposal_id     text NOT NULL REFERENCES desk_proposals (id),
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Reconciliation differences closed by an action on their money: 'resolving' while its adjustment or
-- reversal awaits approval (it closes in the transaction that books it; a rejected or expired proposal
-- reopens it). resolution names how it closed: adjust, reverse, explain, superseded (a later run's file).
ALTER TABLE recon_items DROP CONSTRAINT recon_items_state_check;
ALTER TABLE recon_items ADD CONSTRAINT recon_items_state_check
    CHECK (state IN ('ok', 'open', 'resolving', 'resolved', 'cleared'));
ALTER TABLE recon_items ADD COLUMN resolution text
    CHECK (resolution IN ('adjust', 'reverse', 'explain', 'superseded'));
ALTER TABLE recon_items ADD COLUMN resolved_by text;
ALTER TABLE recon_items ADD COLUMN resolved_at timestamptz;
CREATE INDEX recon_items_unresolved ON recon_items (updated_at) WHERE state IN ('open', 'resolving');
