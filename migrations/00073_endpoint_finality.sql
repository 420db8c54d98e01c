-- +goose Up
-- An endpoint's finality stage beside its confirmations count: '' delivers after
-- `confirmations` blocks (0 = latest), 'safe' and 'finalized' once the node's tag of
-- that name reaches the block. two_phase also delivers each log at once and then a
-- log.finalized (same event id) at the stage.
ALTER TABLE endpoints ADD COLUMN finality text NOT NULL DEFAULT '' CHECK (finality IN ('', 'safe', 'finalized'));
ALTER TABLE endpoints ADD COLUMN two_phase boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE endpoints DROP COLUMN two_phase;
ALTER TABLE endpoints DROP COLUMN finality;
