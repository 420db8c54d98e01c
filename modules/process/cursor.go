package process

import (
	"context"
	"time"

	"github.com/ethhook/ethhook/hook"
)

// The durable chain cursor (package chaincursor) is what ingest resumes
// from when Redis loses its state, and the stream entries not yet handled
// are lost with it. So it must never run ahead of what process made
// durable: it names a cursor ingest once committed, with every stream
// entry up to it handled. Two sources give one:
//   - a safe read mark (see headTracker): the highest log block of a read
//     was committed on top of the cursor its parent hash names;
//   - the Redis cursor itself, read while the group has nothing unread or
//     pending (cursorHead), which covers blocks without logs.
// Both are raised in memory and stored by the releaser, monotonic by
// block number (an older read settling late never moves it back).

// cursorEvery is how often at most the releaser stores the durable cursor:
// a cursor a little behind only means a few more blocks fetched again
// after Redis lost state, and it keeps the write off every read.
const cursorEvery = time.Second

// above reports whether cursor a is set and higher than b.
func above(a, b hook.Cursor) bool { return a.Set && (!b.Set || a.Number > b.Number) }

// raiseCursor records c as fully handled.
func (h *headTracker) raiseCursor(c hook.Cursor) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if above(c, h.cursor) {
		h.cursor = c
	}
}

func (h *headTracker) handledCursor() hook.Cursor {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cursor
}

// storeCursor advances the chain's durable cursor to the tracker's, when it
// is above stored (the one stored last); it returns the cursor now stored
// and whether it wrote.
func (m *Module) storeCursor(ctx context.Context, chainID uint64, ht *headTracker, stored hook.Cursor) (hook.Cursor, bool) {
	c := ht.handledCursor()
	if !above(c, stored) {
		return stored, false
	}
	got, err := m.cursors.Advance(ctx, chainID, c)
	if ctx.Err() == nil {
		m.out.Postgres.Report("store durable chain cursor", err)
	}
	if err != nil {
		return stored, false
	}
	return got, true
}
