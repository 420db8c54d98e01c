-- +goose Up
-- The highest block ingest reported finalized per chain (package chaincursor), kept
-- beside the cursor so that Redis losing its state never lets a branch that
-- contradicts it be published.
ALTER TABLE chain_cursors ADD COLUMN finalized_number bigint;
ALTER TABLE chain_cursors ADD COLUMN finalized_hash text;

-- +goose Down
ALTER TABLE chain_cursors DROP COLUMN finalized_hash;
ALTER TABLE chain_cursors DROP COLUMN finalized_number;
