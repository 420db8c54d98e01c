-- +goose Up
-- Deleting an endpoint or an application no longer deletes its history in
-- the same transaction. The foreign key from messages to endpoints deleted
-- every message of the endpoint by cascade, in the API request, holding the
-- endpoint's row the whole time: 1,000,000 messages took 3.5 s
-- (BenchmarkDeleteEndpointWithHistory), and 30 days of a busy endpoint
-- would take minutes to hours. Worse, process's insert of a block's
-- messages checks the key of every endpoint it matched, so a batch holding
-- one message for the endpoint being deleted waited for the whole delete,
-- every tenant's messages with it, and then failed (23503).
--
-- Now the delete is short (the endpoint's row, its waiting states: what
-- deliver must not send) and records the endpoint here;
-- retention.PurgeDeleted, run by the retention role, deletes its messages,
-- their states and attempts, and its holds, a batch at a time in short
-- transactions, and drops the entry once a pass after deleted_at + its
-- grace finds nothing (an insert racing the delete lands before that).
-- Reads of messages show only those of endpoints that exist.
CREATE TABLE endpoint_purges (
    endpoint_id text        PRIMARY KEY,
    app_id      text        NOT NULL,
    deleted_at  timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE messages DROP CONSTRAINT messages_endpoint_id_fkey;
-- The same for the holds of endpoints waiting for finality
-- (process.hold_retention of released ones, 24 h by default): process's
-- insert of holds checked that key too.
ALTER TABLE process_holds DROP CONSTRAINT process_holds_endpoint_id_fkey;

-- +goose Down
-- The keys again (messages' on the parent, and so on every partition);
-- the messages, states, attempts and holds of endpoints that are gone are
-- deleted first, as the purge would have.
DELETE FROM message_states s WHERE NOT EXISTS (SELECT 1 FROM endpoints e WHERE e.id = s.endpoint_id COLLATE "default");
DELETE FROM delivery_history h WHERE NOT EXISTS (SELECT 1 FROM endpoints e WHERE e.id = h.endpoint_id);
DELETE FROM messages m WHERE NOT EXISTS (SELECT 1 FROM endpoints e WHERE e.id = m.endpoint_id COLLATE "default");
DELETE FROM process_holds h WHERE NOT EXISTS (SELECT 1 FROM endpoints e WHERE e.id = h.endpoint_id);
ALTER TABLE messages ADD CONSTRAINT messages_endpoint_id_fkey
    FOREIGN KEY (endpoint_id) REFERENCES endpoints (id) ON DELETE CASCADE;
ALTER TABLE process_holds ADD CONSTRAINT process_holds_endpoint_id_fkey
    FOREIGN KEY (endpoint_id) REFERENCES endpoints (id) ON DELETE CASCADE;
DROP TABLE endpoint_purges;
