-- +goose Up
-- Process: events held for an endpoint until they are deep enough (confirmations) or
-- until their batch fills, plus tombstones of removed (orphaned) events. A row is the
-- serialization point between a log and its removal: whichever is processed second sees
-- the first.
CREATE TABLE process_holds (
    endpoint_id     text NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    event_id        text NOT NULL,
    app_id          text NOT NULL,
    chain_id        bigint NOT NULL,
    block_number    bigint NOT NULL,
    release_block   bigint NOT NULL,           -- deliverable once the chain head reaches it
    state           text NOT NULL CHECK (state IN ('held', 'released', 'removed')),
    payload         json,                      -- the log payload; null for a tombstone
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (endpoint_id, event_id)
);
CREATE INDEX process_holds_due ON process_holds (chain_id, release_block) WHERE state = 'held';
CREATE INDEX process_holds_done ON process_holds (updated_at) WHERE state <> 'held';

-- The highest block number process has seen per chain (from the events stream and the
-- ingest cursor): held events are released against it.
CREATE TABLE process_heads (
    chain_id        bigint PRIMARY KEY,
    head            bigint NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE process_heads;
DROP TABLE process_holds;
