-- +goose Up
-- What changes about a message is kept apart from what never does (issue
-- 13, DESIGN "Storage"). Every delivery updated the wide messages row
-- (payload, hashes, ids) twice, the claim and the result, and neither
-- update was HOT (state is in the waiting indexes), so each wrote a whole
-- new copy of the row and an entry in every index of messages. The state,
-- the attempts, the retry schedule and the lease move to message_states,
-- one narrow row per message; messages is written once, at the insert,
-- and never updated again. The waiting indexes move with the state.
--
-- message_states also carries what the state transitions filter and order
-- by, so no transition reads messages: app_id (the quota release, tenant
-- conditions), endpoint_id, created_at (pending oldest first), and for
-- FIFO endpoints the ordering group and the chain order (fifo_key,
-- block_number, log_index, type; fifo_key is NULL for parallel endpoints).
--
-- It is partitioned exactly as messages (by id, paired partitions: every
-- messages_X has a message_states_X with the same bounds, created and
-- dropped together by package retention). It has no foreign key: the
-- check of one (to its messages partition or to endpoints) is a lookup and
-- a row lock per insert, a fifth of the Postgres time of a webhook
-- (msgstate BenchmarkLifecycle). Messages are deleted by whole partitions
-- (retention drops the pair), by retention's straggler delete (which
-- deletes the states too), and by the cascade of deleting an endpoint or an
-- application, after which endpoint.Delete and tenant's application delete
-- delete the states still waiting (by the waiting and held indexes); a
-- finished state left without its message is read by nothing (every reader
-- joins messages or selects by a live endpoint) and goes with its
-- partition. Existing rows are copied once; the moved columns are then
-- dropped from messages (a catalogue change: old rows keep their bytes
-- until rewritten, new ones store nothing for them).

CREATE TABLE message_states (
    id              text COLLATE "C" NOT NULL,
    app_id          text COLLATE "C" NOT NULL,
    endpoint_id     text COLLATE "C" NOT NULL,
    state           text COLLATE "C" NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    retry_base      integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    last_status     integer,
    last_error      text NOT NULL DEFAULT '',
    lease_owner     text,
    lease_until     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    fifo_key        text COLLATE "C",
    block_number    bigint NOT NULL DEFAULT 0,
    log_index       integer NOT NULL DEFAULT 0,
    type            text COLLATE "C" NOT NULL,
    PRIMARY KEY (id)
) PARTITION BY RANGE (id);

-- +goose StatementBegin
DO $$
DECLARE
    p record;
    name text;
BEGIN
    FOR p IN SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound
             FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'messages'::regclass LOOP
        name := 'message_states' || substr(p.relname, length('messages') + 1);
        EXECUTE format('CREATE TABLE %I PARTITION OF message_states %s', name, p.bound);
    END LOOP;

    INSERT INTO message_states (id, app_id, endpoint_id, state, attempts, retry_base, next_attempt_at, last_status,
            last_error, lease_owner, lease_until, created_at, updated_at, fifo_key, block_number, log_index, type)
        SELECT id, app_id, endpoint_id, state, attempts, retry_base, next_attempt_at, last_status,
            last_error, lease_owner, lease_until, created_at, updated_at, fifo_key, block_number, log_index, type
        FROM messages;
END $$;
-- +goose StatementEnd

-- The indexes of 00086 and 00070 over waiting messages, on the states.
CREATE INDEX message_states_waiting ON message_states (endpoint_id, state, created_at, id)
    WHERE state IN ('pending', 'delivering', 'failed');
CREATE INDEX message_states_failed ON message_states (endpoint_id, next_attempt_at) WHERE state = 'failed';
CREATE INDEX message_states_held ON message_states (app_id, created_at, id) WHERE state = 'quota_exceeded';
CREATE INDEX message_states_fifo ON message_states (endpoint_id, fifo_key, block_number, log_index, type, id)
    WHERE fifo_key IS NOT NULL AND state IN ('pending', 'delivering', 'failed');

-- Dropping the columns drops the partial indexes over them (messages_waiting,
-- messages_endpoint_failed, messages_held, messages_fifo).
ALTER TABLE messages
    DROP COLUMN state,
    DROP COLUMN attempts,
    DROP COLUMN retry_base,
    DROP COLUMN next_attempt_at,
    DROP COLUMN last_status,
    DROP COLUMN last_error,
    DROP COLUMN lease_owner,
    DROP COLUMN lease_until,
    DROP COLUMN updated_at;

-- +goose Down
-- The state columns back on messages, filled from message_states (every
-- message has its state row; one without would get 'dead').
ALTER TABLE messages
    ADD COLUMN state text COLLATE "C" NOT NULL DEFAULT 'dead',
    ADD COLUMN attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN next_attempt_at timestamptz,
    ADD COLUMN last_status integer,
    ADD COLUMN last_error text NOT NULL DEFAULT '',
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN lease_owner text,
    ADD COLUMN lease_until timestamptz,
    ADD COLUMN retry_base integer NOT NULL DEFAULT 0;
UPDATE messages m SET state = s.state, attempts = s.attempts, next_attempt_at = s.next_attempt_at,
       last_status = s.last_status, last_error = s.last_error, updated_at = s.updated_at,
       lease_owner = s.lease_owner, lease_until = s.lease_until, retry_base = s.retry_base
    FROM message_states s WHERE s.id = m.id;
ALTER TABLE messages ALTER COLUMN state DROP DEFAULT;
DROP TABLE message_states;
CREATE INDEX messages_endpoint_failed ON messages (endpoint_id, next_attempt_at) WHERE state = 'failed';
CREATE INDEX messages_fifo ON messages (endpoint_id, fifo_key, block_number, log_index, type, id)
    WHERE fifo_key IS NOT NULL AND state IN ('pending', 'delivering', 'failed');
CREATE INDEX messages_waiting ON messages (endpoint_id, state, created_at, id) WHERE state IN ('pending', 'delivering', 'failed');
CREATE INDEX messages_held ON messages (app_id, created_at, id) WHERE state = 'quota_exceeded';
