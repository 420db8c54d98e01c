package endpoint

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/chainstatus"
)

// Bounds on an endpoint's history (from_block). A history fetches every
// block from from_block to the live head and makes each matching event a
// message, so both are bounded: how far back, and how many events.
const (
	// MaxHistoryBlocks is the longest history: from_block at most this many
	// blocks behind the chain's committed head.
	MaxHistoryBlocks = 1_000_000
	// MaxHistoryEvents is the most events one history delivers; the
	// historian fails the history (state failed, error naming the bound)
	// when the range holds more.
	MaxHistoryEvents = 100_000
)

// checkFromBlock validates in.FromBlock against the endpoint's filter and
// the chain's committed head (read from Redis; unknown when Redis has no
// cursor, then only the historian's bounds apply). It adds to fields.
func (s *Service) checkFromBlock(ctx context.Context, from *uint64, f hook.Filter, fields map[string]string) {
	if from == nil {
		return
	}
	if len(f.Chains) != 1 {
		fields["from_block"] = fmt.Sprintf("needs exactly one chain in filter.chains (a block number names a block of one chain), got %d", len(f.Chains))
		return
	}
	head, ok := s.committedHead(ctx, f.Chains[0])
	if ok && head > *from && head-*from > MaxHistoryBlocks {
		fields["from_block"] = fmt.Sprintf("%d is %d blocks behind the head %d of chain %d; at most %d (MaxHistoryBlocks)",
			*from, head-*from, head, f.Chains[0], MaxHistoryBlocks)
	}
}

// committedHead is the chain's committed block per its Redis cursor.
func (s *Service) committedHead(ctx context.Context, chainID uint64) (uint64, bool) {
	if s.rdb == nil {
		return 0, false
	}
	c, err := chainstatus.New(s.rdb, s.keys).Cursor(ctx, chainID)
	if err != nil || !c.Set {
		return 0, false
	}
	return c.Number, true
}

// insertHistory records a new endpoint's history request inside its
// creating transaction, so the historian sees both or neither.
func insertHistory(ctx context.Context, tx pgx.Tx, e *hook.Endpoint, from *uint64) error {
	if from == nil {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO endpoint_history (endpoint_id, app_id, chain_id, from_block) VALUES ($1, $2, $3, $4)`,
		e.ID, e.AppID, int64(e.Filter.Chains[0]), int64(*from))
	if err != nil {
		return fmt.Errorf("record history of %s from block %d: %w", e.ID, *from, err)
	}
	e.History = &hook.History{FromBlock: *from, State: hook.HistoryPending, UpdatedAt: time.Now()}
	return nil
}

// LoadHistory returns the endpoint's history, nil when it has none.
func LoadHistory(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, endpointID string) (*hook.History, error) {
	var h hook.History
	var from int64
	var to, through *int64
	err := q.QueryRow(ctx, `SELECT from_block, to_block, handled_through, events, state, error, updated_at
		FROM endpoint_history WHERE endpoint_id = $1`, endpointID).Scan(&from, &to, &through, &h.Events, &h.State, &h.Error, &h.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load history of %s: %w", endpointID, err)
	}
	h.FromBlock = uint64(from)
	if to != nil {
		t := uint64(*to)
		h.ToBlock = &t
		if t >= h.FromBlock {
			h.BlocksTotal = t - h.FromBlock + 1
		}
	}
	if through != nil && *through >= from {
		h.BlocksDone = uint64(*through-from) + 1
	}
	return &h, nil
}
