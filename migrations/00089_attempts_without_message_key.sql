-- +goose Up
-- delivery_history loses its foreign keys to messages (one per partition
-- pair since 00063; retention.Ensure added one to each new pair). The key
-- made every attempt row a check that read its message and locked it
-- (SELECT ... FOR KEY SHARE: a write to the wide messages row's heap page,
-- with its WAL, for every webhook delivered). What the key did is now done
-- where it is needed:
--   - deleting an endpoint or an application deletes their attempts in the
--     same transaction (msgstate.Forget, after their states);
--   - retention deletes the attempts of the moved messages it deletes once
--     they finished (partitions are dropped in pairs, as before);
--   - deliver's writer finds a result whose message is gone by the state
--     row its Finish did not update (it found it by the key's 23503), and
--     drops it, counted.
-- An attempt written for a message deleted at the same moment by hand
-- (not through ethhook) stays until its partition is dropped; nothing reads
-- attempts without their message.
-- +goose StatementBegin
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT c.conrelid::regclass AS tbl, c.conname
             FROM pg_constraint c JOIN pg_inherits i ON i.inhrelid = c.conrelid
             WHERE i.inhparent = 'delivery_history'::regclass AND c.contype = 'f' LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', r.tbl, r.conname);
    END LOOP;
END $$;
-- +goose StatementEnd

-- +goose Down
-- Each partition references its messages twin again, named as 00063 and
-- retention.Ensure named them; attempts whose message is gone are deleted
-- first (the key would have deleted them).
-- +goose StatementBegin
DO $$
DECLARE
    p record;
    twin text;
BEGIN
    FOR p IN SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'delivery_history'::regclass LOOP
        twin := 'messages' || substr(p.relname, length('delivery_history') + 1);
        EXECUTE format('DELETE FROM %I h WHERE NOT EXISTS (SELECT 1 FROM %I m WHERE m.id = h.message_id)', p.relname, twin);
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I FOREIGN KEY (message_id) REFERENCES %I (id) ON DELETE CASCADE',
            p.relname, CASE WHEN p.relname = 'delivery_history_legacy' THEN 'delivery_history_message_id_fkey'
                            ELSE p.relname || '_message_fkey' END, twin);
    END LOOP;
END $$;
-- +goose StatementEnd
