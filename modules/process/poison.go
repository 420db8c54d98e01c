package process

import (
	"context"
	"errors"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/deadletter"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/sleep"
)

// Poison entries: a read whose handling fails with an error of its own
// data (see entryError) counts a try for each of its entries in the
// chain's try counts (package deadletter: Redis, shared by every process
// of the group and kept across restarts). Once an entry of the read has
// failed process.poison_tries times, the read's entries are handled one by
// one, and an entry that fails alone with its count there goes to the
// chain's dead-letter stream with its error, acknowledged in the same
// step. Later entries then progress and the safe head (confirmations) is
// no longer held back. Outages (Postgres or Redis unreachable, deadlocks,
// resource errors) are retried for as long as they last: they say nothing
// about the entry and count no try.

// entryError reports whether err may come from the entries' data: a
// Postgres error outside the classes of connection trouble, transaction
// rollback, resources, lock waits, operator intervention and system errors.
func entryError(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || len(pe.Code) < 2 {
		return false
	}
	switch pe.Code[:2] {
	case "08", "40", "53", "55", "57", "58", "XX":
		return false
	}
	return true
}

func (m *Module) poisonTries() int { return max(1, m.cfg.PoisonTries) }

// handleRead handles entries until they are done (or dead-lettered); ok
// is false when ctx ended first.
func (m *Module) handleRead(ctx context.Context, chainID uint64, entries []rueidis.XRangeEntry, log *zap.Logger) (maxBlock uint64, below hook.Cursor, held, ok bool) {
	tries := m.poisonTries()
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = e.ID
	}
	counted := false
	for try := 0; ; try++ {
		mb, b, h, err := m.handle(ctx, chainID, entries)
		if err == nil {
			m.out.OK()
			if counted {
				if err := deadletter.Forget(ctx, m.rdb, m.keys, chainID, ids); err != nil {
					log.Warn("forget try counts (they expire)", zap.Error(err))
				}
			}
			return mb, b, h, true
		}
		failed, ofData := 0, entryError(err)
		if ofData {
			// Counted even when ctx ended meanwhile: the try was made.
			n, ferr := deadletter.Fail(context.WithoutCancel(ctx), m.rdb, m.keys, chainID, ids)
			if ferr != nil {
				log.Warn("count a failed try", zap.Error(ferr))
			}
			counted, failed = true, max(n, try+1)
		}
		if ctx.Err() != nil {
			return 0, hook.Cursor{}, false, false
		}
		if ofData {
			log.Warn("handle stream entries; retrying", zap.Int("entries", len(entries)), zap.Int("try", try), zap.Int("tries", failed), zap.Error(err))
		} else {
			m.out.Fail("handle stream entries", err) // an outage: logged once
		}
		if failed >= tries {
			if len(entries) > 1 {
				return m.isolate(ctx, chainID, entries, log)
			}
			if m.deadLetter(ctx, chainID, entries[0], err, tries, log) {
				return 0, hook.Cursor{}, false, true
			}
		}
		if !sleep.For(ctx, backoff(try)) {
			return 0, hook.Cursor{}, false, false
		}
	}
}

// isolate handles a failing read's entries one at a time.
func (m *Module) isolate(ctx context.Context, chainID uint64, entries []rueidis.XRangeEntry, log *zap.Logger) (maxBlock uint64, below hook.Cursor, held, ok bool) {
	log.Warn("a read keeps failing on its data; handling its entries one by one", zap.Int("entries", len(entries)))
	for _, e := range entries {
		mb, b, h, ok := m.handleRead(ctx, chainID, []rueidis.XRangeEntry{e}, log)
		if !ok {
			return 0, hook.Cursor{}, false, false
		}
		maxBlock, held = max(maxBlock, mb), held || h
		if above(b, below) {
			below = b
		}
	}
	return maxBlock, below, held, true
}

// deadLetter moves one entry to the dead-letter stream; false when Redis
// failed (the entry stays pending and is tried again).
func (m *Module) deadLetter(ctx context.Context, chainID uint64, e rueidis.XRangeEntry, cause error, tries int, log *zap.Logger) bool {
	if err := deadletter.Move(ctx, m.rdb, m.keys, chainID, e, cause, tries); err != nil {
		log.Warn("dead-letter stream entry", zap.String("entry", e.ID), zap.Error(err))
		return false
	}
	m.xmet.deadLetters.WithLabelValues(chainIDLabel(chainID)).Inc()
	log.Error("stream entry dead-lettered after failing every try; later entries go on",
		zap.String("entry", e.ID), zap.String("event", e.FieldValues["id"]), zap.Int("tries", tries), zap.Error(cause))
	return true
}

func chainIDLabel(id uint64) string { return strconv.FormatUint(id, 10) }
