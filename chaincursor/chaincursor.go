// Package chaincursor owns the chain_cursors table: the durable copy of each
// chain's committed cursor, kept in Postgres so that a Redis that comes back
// empty (or from an old snapshot) never makes ingest skip blocks.
//
// What a stored cursor means: every entry of the chain's events stream up
// to and including its block was handled by process (its messages and
// holds are committed in Postgres). Process advances it; ingest reads it
// when Redis has no cursor and resumes from it with a backfill. Blocks
// after it are fetched again, and process drops what it already has (the
// messages and holds keys are unique), so it may lag, never lead.
package chaincursor

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ethhook/ethhook/hook"
)

// Store reads and advances durable cursors.
type Store struct{ pool *pgxpool.Pool }

// New returns the store on pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Load returns the chain's durable cursor; it is unset when none was stored.
func (s *Store) Load(ctx context.Context, chainID uint64) (hook.Cursor, error) {
	var c hook.Cursor
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT block_number, block_hash FROM chain_cursors WHERE chain_id = $1`, int64(chainID)).Scan(&n, &c.Hash)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return hook.Cursor{}, nil
	case err != nil:
		return hook.Cursor{}, fmt.Errorf("load durable cursor of chain %d: %w", chainID, err)
	}
	c.Number, c.Set = uint64(n), true
	return c, nil
}

// Advance stores c if it is above the stored cursor (by block number) and
// returns the cursor now stored. Several processes advance the same chain;
// the highest wins, so the cursor never moves back. A reorg may leave it on
// an orphaned block: ingest checks the hash against the node before it
// resumes from it.
func (s *Store) Advance(ctx context.Context, chainID uint64, c hook.Cursor) (hook.Cursor, error) {
	if !c.Set {
		return hook.Cursor{}, errors.New("advance durable cursor: unset cursor")
	}
	var out hook.Cursor
	var n int64
	err := s.pool.QueryRow(ctx, `INSERT INTO chain_cursors (chain_id, block_number, block_hash) VALUES ($1, $2, $3)
		ON CONFLICT (chain_id) DO UPDATE SET block_number = EXCLUDED.block_number, block_hash = EXCLUDED.block_hash, updated_at = now()
			WHERE chain_cursors.block_number < EXCLUDED.block_number
		RETURNING block_number, block_hash`, int64(chainID), int64(c.Number), c.Hash).Scan(&n, &out.Hash)
	if errors.Is(err, pgx.ErrNoRows) {
		// Not above the stored one: nothing changed.
		return s.Load(ctx, chainID)
	}
	if err != nil {
		return hook.Cursor{}, fmt.Errorf("advance durable cursor of chain %d to %s: %w", chainID, c, err)
	}
	out.Number, out.Set = uint64(n), true
	return out, nil
}

// Finalized returns the highest block ingest reported finalized for the
// chain; it is unset when none was recorded.
func (s *Store) Finalized(ctx context.Context, chainID uint64) (hook.Cursor, error) {
	var n *int64
	var h *string
	err := s.pool.QueryRow(ctx, `SELECT finalized_number, finalized_hash FROM chain_cursors WHERE chain_id = $1`, int64(chainID)).Scan(&n, &h)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return hook.Cursor{}, nil
	case err != nil:
		return hook.Cursor{}, fmt.Errorf("load finalized block of chain %d: %w", chainID, err)
	case n == nil || h == nil:
		return hook.Cursor{}, nil
	}
	return hook.Cursor{Number: uint64(*n), Hash: *h, Set: true}, nil
}

// RecordFinalized stores c as the chain's reported finalized block if it is
// above the stored one (it never moves back). It writes nothing while the
// chain has no cursor row yet (process creates it): a row made here would
// be a cursor that process never vouched for.
func (s *Store) RecordFinalized(ctx context.Context, chainID uint64, c hook.Cursor) error {
	if !c.Set {
		return errors.New("record finalized block: unset cursor")
	}
	_, err := s.pool.Exec(ctx, `UPDATE chain_cursors SET finalized_number = $2, finalized_hash = $3
		WHERE chain_id = $1 AND (finalized_number IS NULL OR finalized_number < $2)`, int64(chainID), int64(c.Number), c.Hash)
	if err != nil {
		return fmt.Errorf("record finalized block %s of chain %d: %w", c, chainID, err)
	}
	return nil
}
