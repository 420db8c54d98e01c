package process

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/backpressure"
	"github.com/ethhook/ethhook/internal/sleep"
	"github.com/ethhook/ethhook/internal/streams"
)

// Reading a chain's events stream: the consumer loop, its backpressure,
// reclaiming a dead consumer's entries, and handle, which takes one read
// through route (route.go) and commit (commit.go) and acknowledges it.

// streamID is a Redis stream entry id, "<ms>-<seq>".
type streamID = streams.ID

func parseStreamID(s string) (streamID, error) { return streams.ParseID(s) }

// consume is one reader of a chain's stream.
func (m *Module) consume(ctx context.Context, chainID uint64, worker int) error {
	key := m.keys.Events(chainID)
	ht := m.tracker(chainID)
	log := m.log.With(zap.Uint64("chain", chainID), zap.Int("worker", worker))
	// Worker 0 also reclaims the entries of dead consumers.
	ownPending := worker < 0 // the startup pass: this consumer's own unacknowledged entries
	lastClaim := time.Time{}
	claimStart := "0-0"
	for attempt := 0; ctx.Err() == nil; {
		var entries []rueidis.XRangeEntry
		var err error
		switch {
		case ownPending:
			entries, err = m.read(ctx, key, "0", 0)
			if err == nil && len(entries) == 0 {
				return nil // drained: the readers take over
			}
		case worker == 0 && time.Since(lastClaim) >= m.cfg.ClaimIdle/2:
			var next string
			entries, next, err = m.autoclaim(ctx, key, claimStart)
			if err == nil {
				claimStart = next
				if next == "0-0" {
					lastClaim = time.Now()
				}
			}
		default:
			// Backpressure: while deliver is this far behind, new events
			// wait in the stream (entries already read are still handled).
			if !m.delivery.Wait(ctx) {
				return nil
			}
			entries, err = m.read(ctx, key, ">", m.cfg.BlockTimeout)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if streams.IsNoGroup(err) {
				_ = m.ensureGroup(ctx, chainID)
			}
			log.Warn("read events stream", zap.Error(err))
			sleep.For(ctx, backoff(attempt))
			attempt++
			continue
		}
		attempt = 0
		m.noteLiveRead(len(entries))
		if len(entries) == 0 {
			continue
		}
		// A history handed over since the index was loaded: load it first.
		if !m.syncIndex(ctx, chainID) {
			return nil
		}
		last, err := parseStreamID(entries[len(entries)-1].ID)
		if err != nil {
			return err // Redis made the id: it cannot be malformed
		}
		// The same entries are retried until they are handled (or an
		// entry is dead-lettered, see poison.go): while they are pending
		// no later read raises the safe head past them.
		maxBlock, below, held, ok := m.handleRead(ctx, chainID, entries, log)
		if !ok {
			return nil
		}
		// The releaser has work only when the head may rise or a hold was
		// added; its ticker covers batch timers.
		if ht.finish(last, maxBlock, below) || held {
			m.kickRelease(chainID)
		}
	}
	return nil
}

// newDeliveryGate holds reading back while the delivery jobs stream has
// process.max_queued_jobs or more jobs (deliver deletes each job once it has
// claimed its message, so its length is the unfinished backlog).
func (m *Module) newDeliveryGate() *backpressure.Gate {
	return &backpressure.Gate{
		Limit: m.cfg.MaxQueuedJobs,
		Read: func(ctx context.Context) (int64, bool) {
			n, err := m.rdb.Do(ctx, m.rdb.B().Xlen().Key(m.keys.DeliverJobs()).Build()).AsInt64()
			return n, err == nil
		},
		Changed: func(held bool, n int64) {
			if held {
				m.met.heldBack.Set(1)
				m.log.Warn("deliver is behind: reading no new events until its backlog shrinks", zap.Int64("jobs", n), zap.Int64("limit", m.cfg.MaxQueuedJobs))
				return
			}
			m.met.heldBack.Set(0)
			m.log.Info("deliver caught up; reading events again", zap.Int64("jobs", n))
		},
	}
}

// read is XREADGROUP of the events group from id ("0": own pending
// entries, ">": new ones).
func (m *Module) read(ctx context.Context, key, id string, block time.Duration) ([]rueidis.XRangeEntry, error) {
	return streams.Read(ctx, m.rdb, key, Group, m.cfg.Consumer, id, m.cfg.ReadCount, block)
}

// autoclaim takes over entries idle longer than ClaimIdle (a dead consumer's).
func (m *Module) autoclaim(ctx context.Context, key, start string) ([]rueidis.XRangeEntry, string, error) {
	entries, next, err := streams.Autoclaim(ctx, m.rdb, key, Group, m.cfg.Consumer, m.cfg.ClaimIdle, start, m.cfg.ReadCount)
	if err != nil {
		return nil, next, err
	}
	if len(entries) > 0 {
		m.log.Info("reclaimed stream entries of an idle consumer", zap.String("stream", key), zap.Int("entries", len(entries)))
	}
	return entries, next, nil
}

// msgRow is a messages row to insert.
// handle turns stream entries into durable output, queues the jobs and
// acknowledges the entries. It returns the highest block of their logs,
// the cursor ingest committed that block on (from its parent hash) and
// whether any event was held (confirmations or batching).
func (m *Module) handle(ctx context.Context, chainID uint64, entries []rueidis.XRangeEntry) (uint64, hook.Cursor, bool, error) {
	if m.beforeHandle != nil {
		m.beforeHandle(ctx, entries)
	}
	rt, err := m.route(chainID, entries, m.tracker(chainID).safeHead())
	if err != nil {
		return 0, hook.Cursor{}, false, err
	}
	m.setStates(ctx, &rt)
	queued, err := m.commit(ctx, chainID, &rt)
	if err != nil {
		return 0, hook.Cursor{}, false, err
	}
	if m.afterCommit != nil && len(rt.direct)+len(rt.holds)+len(rt.removals) > 0 {
		m.afterCommit(ctx)
	}
	if err := m.enqueue(ctx, queued); err != nil {
		return 0, hook.Cursor{}, false, err
	}
	if err := m.ack(ctx, chainID, rt.ackIDs); err != nil {
		return 0, hook.Cursor{}, false, err
	}
	if rt.fin != (finalityHeads{}) {
		if id, err := parseStreamID(rt.finLast); err == nil && m.tracker(chainID).finishFinality(id, rt.fin) {
			m.kickRelease(chainID)
		}
	}
	return rt.maxBlock, rt.below, len(rt.holds) > 0, nil
}

// ack acknowledges a handled read's entries (their output is queued) and
// observes each entry's latency from its stream id.
func (m *Module) ack(ctx context.Context, chainID uint64, ids []string) error {
	queuedAt := time.Now()
	if err := streams.Ack(ctx, m.rdb, m.keys.Events(chainID), Group, ids...); err != nil {
		return fmt.Errorf("acknowledge %d entries: %w", len(ids), err)
	}
	chain, cid := m.chainLabels(chainID)
	for _, id := range ids {
		if sid, err := streams.ParseID(id); err == nil {
			d := queuedAt.Sub(sid.Time())
			m.met.latency.WithLabelValues(chain, cid).Observe(d.Seconds())
			if m.onQueued != nil {
				m.onQueued(id, queuedAt)
			}
		}
	}
	return nil
}
