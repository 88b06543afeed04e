-- actor: who made a change when a person did, not the engine (e.g. "li.lei via admin-api" resolving a held
-- payout). NULL for the engine's own transitions. Nullable without a default: adding it rewrites nothing.
ALTER TABLE transitions ADD COLUMN actor text;
