-- +goose Up
-- Holds released by the node's safe or finalized head instead of a block count
-- (stage 1 = safe, 2 = finalized; 0 = release_block against the confirmations head),
-- and the type of the message a release makes (log, or log.finalized for the second
-- phase of a two-phase endpoint).
ALTER TABLE process_holds ADD COLUMN stage smallint NOT NULL DEFAULT 0;
ALTER TABLE process_holds ADD COLUMN release_type text NOT NULL DEFAULT 'log';
CREATE INDEX process_holds_due_stage ON process_holds (chain_id, stage, block_number) WHERE state = 'held' AND stage > 0;

-- The node's safe and finalized heads as process applied them from the stream
-- (finality entries), so a restart releases against them at once.
ALTER TABLE process_heads ADD COLUMN safe_head bigint NOT NULL DEFAULT 0;
ALTER TABLE process_heads ADD COLUMN finalized_head bigint NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE process_heads DROP COLUMN finalized_head;
ALTER TABLE process_heads DROP COLUMN safe_head;
DROP INDEX process_holds_due_stage;
ALTER TABLE process_holds DROP COLUMN release_type;
ALTER TABLE process_holds DROP COLUMN stage;
