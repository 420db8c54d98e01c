-- +goose Up
-- Cheaper message inserts (process writes one row per endpoint and event).
-- Identifiers and hashes compare bytewise: "C" collation lets every btree
-- compare them with memcmp instead of the locale's strcoll.
ALTER TABLE messages
    ALTER COLUMN id TYPE text COLLATE "C",
    ALTER COLUMN app_id TYPE text COLLATE "C",
    ALTER COLUMN endpoint_id TYPE text COLLATE "C",
    ALTER COLUMN event_id TYPE text COLLATE "C",
    ALTER COLUMN type TYPE text COLLATE "C",
    ALTER COLUMN tx_hash TYPE text COLLATE "C",
    ALTER COLUMN state TYPE text COLLATE "C";
ALTER TABLE delivery_history ALTER COLUMN message_id TYPE text COLLATE "C";
-- The app_id reference is implied by endpoint_id's (an endpoint belongs to its
-- application and deleting either cascades); checking it locked the one
-- applications row of every insert (FOR KEY SHARE) from every writer.
ALTER TABLE messages DROP CONSTRAINT messages_app_id_fkey;

-- +goose Down
ALTER TABLE messages ADD CONSTRAINT messages_app_id_fkey FOREIGN KEY (app_id) REFERENCES applications (id) ON DELETE CASCADE;
ALTER TABLE delivery_history ALTER COLUMN message_id TYPE text COLLATE "default";
ALTER TABLE messages
    ALTER COLUMN id TYPE text COLLATE "default",
    ALTER COLUMN app_id TYPE text COLLATE "default",
    ALTER COLUMN endpoint_id TYPE text COLLATE "default",
    ALTER COLUMN event_id TYPE text COLLATE "default",
    ALTER COLUMN type TYPE text COLLATE "default",
    ALTER COLUMN tx_hash TYPE text COLLATE "default",
    ALTER COLUMN state TYPE text COLLATE "default";
