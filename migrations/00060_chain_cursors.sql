-- +goose Up
-- The durable copy of each chain's ingest cursor, so that Redis losing its state
-- (a restart without persistence, FLUSHALL, a failover to a replica that lagged)
-- never skips a block. Written by process (package chaincursor), never ahead of
-- what it made durable: every stream entry of blocks up to block_number was handled.
-- Ingest resumes from it, with a backfill, when Redis has no cursor.
CREATE TABLE chain_cursors (
    chain_id        bigint PRIMARY KEY,
    block_number    bigint NOT NULL,
    block_hash      text NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE chain_cursors;
