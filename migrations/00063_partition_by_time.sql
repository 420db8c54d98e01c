-- +goose Up
-- messages, delivery_history and audit_log become range-partitioned by time,
-- so retention drops whole partitions (package retention) instead of
-- DELETE-scanning rows. Nothing is copied: each existing table is renamed to
-- <table>_legacy and attached, as is, as the first partition of a new
-- partitioned table, covering everything up to the end of tomorrow (UTC).
-- ATTACH only reads the old table once to check the bound. Later partitions
-- (one per UTC day) are created ahead by ethhook (retention.Ensure, run by
-- `ethhook migrate up` and by the retention module).
--
-- Partition keys:
-- * messages by id. Message ids are "msg_" + ULID, whose first 10
--   characters are the millisecond time, so a range of ids is a range of
--   time and id (the primary key, which every hot query uses) prunes to one
--   partition. Process derives the id deterministically from (endpoint,
--   event, type) and the block's timestamp (hook.MessageID), so the same
--   event inserted again lands on the same id in the same partition and
--   ON CONFLICT DO NOTHING still deduplicates: that replaces the global
--   UNIQUE (endpoint_id, event_id, type), which a partitioned table cannot
--   have without the partition key. The legacy partition keeps its own
--   unique constraint (its rows have random ids).
-- * delivery_history by message_id, with the same bounds as messages: the
--   attempts of a message live in the partition of the same day, and each
--   delivery_history partition has its foreign key to its own messages
--   partition (ON DELETE CASCADE). A foreign key to the partitioned parent
--   would make every DROP/DETACH of a messages partition scan the referencing
--   table; per-partition keys let retention drop the pair without looking.
--   Deliver still gets 23503 for an attempt of a deleted message (a
--   dropped day's ids fall in the default partition below, which has its own
--   foreign key, or in no partition: 23514).
-- * audit_log by at.
-- The ids use COLLATE "C" (00040), so the bounds compare bytewise, as the
-- Crockford base32 of a ULID sorts.

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION pg_temp.ulid_time(ts timestamptz) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    ms bigint := floor(extract(epoch FROM ts) * 1000)::bigint;
    alphabet constant text := '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
    out text := '';
BEGIN
    FOR i IN 1..10 LOOP
        out := substr(alphabet, (ms % 32)::int + 1, 1) || out;
        ms := ms / 32;
    END LOOP;
    RETURN out;
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION pg_temp.ulid_ms(id text) RETURNS timestamptz LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    alphabet constant text := '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
    ms bigint := 0;
BEGIN
    FOR i IN 1..10 LOOP
        ms := ms * 32 + position(substr(id, i, 1) IN alphabet) - 1;
    END LOOP;
    RETURN to_timestamp(ms / 1000.0);
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
DO $$
DECLARE
    tomorrow_end timestamptz := date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + interval '2 days';
    newest timestamptz;
    bound timestamptz;
    id_bound text;
BEGIN
    -- Rows stamped in the future (clock skew) must still fit the legacy range.
    -- The time in the newest id counts too (hook.MessageID takes the block's).
    SELECT greatest(max(created_at), max(updated_at)) INTO newest FROM messages;
    newest := greatest(newest, (SELECT pg_temp.ulid_ms(substr(max(id), 5)) FROM messages
        WHERE id ~ '^msg_[0-9A-HJKMNP-TV-Z]{26}$'));
    bound := greatest(tomorrow_end, date_trunc('day', coalesce(newest, now()) AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + interval '2 days');
    id_bound := 'msg_' || pg_temp.ulid_time(bound);

    -- messages
    ALTER TABLE messages RENAME TO messages_legacy;
    ALTER INDEX messages_pkey RENAME TO messages_legacy_pkey;
    ALTER INDEX messages_app_created RENAME TO messages_legacy_app_created;
    ALTER INDEX messages_endpoint_created RENAME TO messages_legacy_endpoint_created;
    ALTER INDEX messages_state RENAME TO messages_legacy_state;
    ALTER INDEX messages_tx RENAME TO messages_legacy_tx;
    ALTER INDEX messages_block RENAME TO messages_legacy_block;
    ALTER INDEX messages_endpoint_pending RENAME TO messages_legacy_endpoint_pending;
    ALTER INDEX messages_endpoint_failed RENAME TO messages_legacy_endpoint_failed;
    CREATE TABLE messages (LIKE messages_legacy INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)
        PARTITION BY RANGE (id);
    ALTER TABLE messages ADD CONSTRAINT messages_pkey PRIMARY KEY (id);
    ALTER TABLE messages ADD CONSTRAINT messages_endpoint_id_fkey
        FOREIGN KEY (endpoint_id) REFERENCES endpoints (id) ON DELETE CASCADE;
    CREATE INDEX messages_app_created ON messages (app_id, created_at DESC, id DESC);
    CREATE INDEX messages_endpoint_created ON messages (endpoint_id, created_at DESC, id DESC);
    CREATE INDEX messages_state ON messages (state, updated_at) WHERE state IN ('pending', 'delivering', 'failed', 'quota_exceeded');
    CREATE INDEX messages_tx ON messages (tx_hash);
    CREATE INDEX messages_block ON messages (endpoint_id, block_number);
    CREATE INDEX messages_endpoint_pending ON messages (endpoint_id, created_at, id) WHERE state = 'pending';
    CREATE INDEX messages_endpoint_failed ON messages (endpoint_id, next_attempt_at) WHERE state = 'failed';
    EXECUTE format('ALTER TABLE messages ATTACH PARTITION messages_legacy FOR VALUES FROM (MINVALUE) TO (%L)', id_bound);

    -- delivery_history: the legacy partition keeps its foreign key to
    -- messages_legacy (the same table, renamed) and its primary key (id).
    ALTER TABLE delivery_history RENAME TO delivery_history_legacy;
    ALTER INDEX delivery_history_pkey RENAME TO delivery_history_legacy_pkey;
    ALTER INDEX delivery_history_message RENAME TO delivery_history_legacy_message;
    ALTER INDEX delivery_history_endpoint RENAME TO delivery_history_legacy_endpoint;
    CREATE TABLE delivery_history (LIKE delivery_history_legacy INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)
        PARTITION BY RANGE (message_id);
    ALTER SEQUENCE delivery_history_id_seq OWNED BY delivery_history.id;
    CREATE INDEX delivery_history_message ON delivery_history (message_id, attempt);
    CREATE INDEX delivery_history_endpoint ON delivery_history (endpoint_id, created_at DESC);
    EXECUTE format('ALTER TABLE delivery_history ATTACH PARTITION delivery_history_legacy FOR VALUES FROM (MINVALUE) TO (%L)', id_bound);

    -- Ids that are not "msg_" and a ULID (hand-made ones in tests and
    -- scripts) fit no day: they go to a default partition, never dropped.
    -- Every id ethhook makes falls in a day's range, so it stays empty in
    -- production and creating a day's partition (which checks the default
    -- for rows of that range) stays instant.
    CREATE TABLE messages_default PARTITION OF messages DEFAULT;
    CREATE TABLE delivery_history_default PARTITION OF delivery_history DEFAULT;
    ALTER TABLE delivery_history_default ADD CONSTRAINT delivery_history_default_message_fkey
        FOREIGN KEY (message_id) REFERENCES messages_default (id) ON DELETE CASCADE;

    -- audit_log
    SELECT max(at) INTO newest FROM audit_log;
    bound := greatest(tomorrow_end, date_trunc('day', coalesce(newest, now()) AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + interval '2 days');
    ALTER TABLE audit_log RENAME TO audit_log_legacy;
    ALTER INDEX audit_log_pkey RENAME TO audit_log_legacy_pkey;
    ALTER INDEX audit_log_app RENAME TO audit_log_legacy_app;
    CREATE TABLE audit_log (LIKE audit_log_legacy INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)
        PARTITION BY RANGE (at);
    ALTER SEQUENCE audit_log_id_seq OWNED BY audit_log.id;
    CREATE INDEX audit_log_app ON audit_log (app_id, id DESC);
    EXECUTE format('ALTER TABLE audit_log ATTACH PARTITION audit_log_legacy FOR VALUES FROM (MINVALUE) TO (%L)', bound);
END $$;
-- +goose StatementEnd

-- +goose Down
-- Back to plain tables: every row is copied (every partition, the default
-- ones too), then the original constraints and indexes are rebuilt under
-- their original names. Fails on the UNIQUE (endpoint_id, event_id, type)
-- if a message was stored twice across the upgrade (see hook.MessageID).
-- +goose StatementBegin
DO $$ BEGIN
    CREATE TABLE messages_plain (LIKE messages INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE);
    INSERT INTO messages_plain SELECT * FROM messages;
    CREATE TABLE delivery_history_plain (LIKE delivery_history INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE);
    INSERT INTO delivery_history_plain SELECT * FROM delivery_history;
    CREATE TABLE audit_log_plain (LIKE audit_log INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE);
    INSERT INTO audit_log_plain SELECT * FROM audit_log;
    ALTER SEQUENCE delivery_history_id_seq OWNED BY delivery_history_plain.id;
    ALTER SEQUENCE audit_log_id_seq OWNED BY audit_log_plain.id;
    DROP TABLE delivery_history;
    DROP TABLE messages;
    DROP TABLE audit_log;

    ALTER TABLE messages_plain RENAME TO messages;
    ALTER TABLE messages ADD CONSTRAINT messages_pkey PRIMARY KEY (id);
    ALTER TABLE messages ADD CONSTRAINT messages_endpoint_id_event_id_type_key UNIQUE (endpoint_id, event_id, type);
    ALTER TABLE messages ADD CONSTRAINT messages_endpoint_id_fkey
        FOREIGN KEY (endpoint_id) REFERENCES endpoints (id) ON DELETE CASCADE;
    CREATE INDEX messages_app_created ON messages (app_id, created_at DESC, id DESC);
    CREATE INDEX messages_endpoint_created ON messages (endpoint_id, created_at DESC, id DESC);
    CREATE INDEX messages_state ON messages (state, updated_at) WHERE state IN ('pending', 'delivering', 'failed', 'quota_exceeded');
    CREATE INDEX messages_tx ON messages (tx_hash);
    CREATE INDEX messages_block ON messages (endpoint_id, block_number);
    CREATE INDEX messages_endpoint_pending ON messages (endpoint_id, created_at, id) WHERE state = 'pending';
    CREATE INDEX messages_endpoint_failed ON messages (endpoint_id, next_attempt_at) WHERE state = 'failed';

    ALTER TABLE delivery_history_plain RENAME TO delivery_history;
    ALTER TABLE delivery_history ADD CONSTRAINT delivery_history_pkey PRIMARY KEY (id);
    ALTER TABLE delivery_history ADD CONSTRAINT delivery_history_message_id_fkey
        FOREIGN KEY (message_id) REFERENCES messages (id) ON DELETE CASCADE;
    CREATE INDEX delivery_history_message ON delivery_history (message_id, attempt);
    CREATE INDEX delivery_history_endpoint ON delivery_history (endpoint_id, created_at DESC);

    ALTER TABLE audit_log_plain RENAME TO audit_log;
    ALTER TABLE audit_log ADD CONSTRAINT audit_log_pkey PRIMARY KEY (id);
    CREATE INDEX audit_log_app ON audit_log (app_id, id DESC);
END $$;
-- +goose StatementEnd
