-- +goose Up
-- History for a new subscription (an endpoint created with from_block): one
-- row per endpoint, the durable progress of fetching its matching events from
-- from_block up to to_block, where the live path took over. Ingest's
-- historian (modules/ingest/history.go) fetches and publishes; process marks
-- progress (handled_through) as it makes the events durable as messages, so
-- a restart resumes after the last block whose events are committed.
CREATE TABLE endpoint_history (
    endpoint_id     text PRIMARY KEY REFERENCES endpoints (id) ON DELETE CASCADE,
    app_id          text NOT NULL,
    chain_id        bigint NOT NULL,
    from_block      bigint NOT NULL,
    -- the live head when the history started; NULL until then
    to_block        bigint,
    -- every event of blocks from_block..handled_through is a message (or held)
    handled_through bigint,
    events          bigint NOT NULL DEFAULT 0,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'running', 'done', 'failed')),
    error           text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX endpoint_history_todo ON endpoint_history (chain_id, created_at) WHERE state IN ('pending', 'running');

-- +goose Down
DROP TABLE endpoint_history;
