-- +goose Up
-- Ordered delivery, opt-in per endpoint. ordering 'fifo' delivers an
-- endpoint's webhooks in chain order, one at a time per ordering group;
-- fifo_key (optional) splits that order by a field of the log so one slow
-- key does not hold back the others.
ALTER TABLE endpoints
    ADD COLUMN ordering text NOT NULL DEFAULT 'parallel' CHECK (ordering IN ('parallel', 'fifo')),
    ADD COLUMN fifo_key text NOT NULL DEFAULT '' CHECK (fifo_key IN ('', 'contract', 'topic1', 'topic2', 'topic3'));

-- What a FIFO lane needs to know at claim time, written by process with the
-- message: the log's index in its block (block_number is there already) and
-- its ordering group: "<chain id>" or "<chain id>/<key value>". fifo_key is
-- NULL for messages of parallel endpoints, so the index below holds only
-- messages of FIFO endpoints that still wait: the parallel path pays
-- nothing but the predicate check.
ALTER TABLE messages
    ADD COLUMN log_index integer NOT NULL DEFAULT 0,
    ADD COLUMN fifo_key text COLLATE "C";
CREATE INDEX messages_fifo ON messages (endpoint_id, fifo_key, block_number, log_index, type, id)
    WHERE fifo_key IS NOT NULL AND state IN ('pending', 'delivering', 'failed');

-- +goose Down
DROP INDEX messages_fifo;
ALTER TABLE messages DROP COLUMN fifo_key, DROP COLUMN log_index;
ALTER TABLE endpoints DROP COLUMN fifo_key, DROP COLUMN ordering;
