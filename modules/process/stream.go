package process

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/backpressure"
	"github.com/ethhook/ethhook/internal/outage"
	"github.com/ethhook/ethhook/internal/sleep"
	"github.com/ethhook/ethhook/internal/streams"
)

// Reading a chain's events stream: the consumer loop, its backpressure,
// reclaiming a dead consumer's entries and a lost read's, and handle, which
// takes one read through route (route.go) and commit (commit.go) and
// acknowledges it.

// streamID is a Redis stream entry id, "<ms>-<seq>".
type streamID = streams.ID

func parseStreamID(s string) (streamID, error) { return streams.ParseID(s) }

// consume is one reader of a chain's stream.
//
// A read Redis carried out but whose answer never arrived (the connection
// dropped after the command ran; in a cluster, the master died after its
// replica had the read) leaves entries in this consumer's pending list that
// no worker saw, and a read of new entries (">") never returns them again:
// worker 0's reclaim of idle entries would find them only after ClaimIdle
// (events up to 45 s late, and every release of the chain held back, since
// the safe head stays below a pending entry). So after a failed read (or
// claim) the worker, once lostReadIdle has passed, claims what claimLost
// finds until it finds nothing. Unlike deliver's intake it cannot read its
// own pending entries ("0"): the workers share the consumer name, so that
// would return the reads its siblings are handling. Per-worker consumer
// names would allow it, but the startup pass and the idle-consumer cleanup
// would then have to know every name this process ever used (Workers may
// change between runs).
func (m *Module) consume(ctx context.Context, chainID uint64, worker int) error {
	key := m.keys.Events(chainID)
	ht := m.tracker(chainID)
	hands := m.hands[chainID]
	log := m.log.With(zap.Uint64("chain", chainID), zap.Int("worker", worker))
	// Worker 0 also reclaims the entries of dead consumers.
	ownPending := worker < 0 // the startup pass: this consumer's own unacknowledged entries
	lastClaim := time.Time{}
	claimStart := "0-0"
	lostCheck := time.Time{} // when to look for a lost read's entries; zero: no read failed
	for attempt := 0; ctx.Err() == nil; {
		var entries []rueidis.XRangeEntry
		var err error
		switch {
		case ownPending:
			entries, err = m.read(ctx, key, "0", 0)
			if err == nil && len(entries) == 0 {
				return nil // drained: the readers take over
			}
		case !lostCheck.IsZero() && !time.Now().Before(lostCheck):
			entries, err = m.claimLost(ctx, key, hands)
			if err == nil && len(entries) == 0 {
				lostCheck = time.Time{}
			}
		case worker == 0 && time.Since(lastClaim) >= m.cfg.ClaimIdle/2:
			var next string
			entries, next, err = m.reclaimIdle(ctx, key, claimStart, hands)
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
			// Redis may have carried out what failed: its entries have
			// been idle lostReadIdle by then.
			lostCheck = time.Now().Add(lostReadIdle)
			m.out.Redis.Fail("read events stream", err)
			sleep.For(ctx, backoff(attempt))
			attempt++
			continue
		}
		m.out.Redis.OK()
		attempt = 0
		m.noteLiveRead(len(entries))
		if len(entries) == 0 {
			continue
		}
		hands.set(worker, entries)
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
		hands.set(worker, nil) // acknowledged
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

// reclaimIdle takes over entries idle longer than ClaimIdle (a dead
// consumer's), from start, and returns those no worker of this process has
// in hand. The workers share this process's consumer name, so XAUTOCLAIM
// also returns a sibling's read whose handling has taken longer than
// ClaimIdle (Postgres down, the same entries retried): handling it here
// too would only do the work twice, so it is left to its worker. The
// sibling's reads are taken before the claim: one read after it has been
// idle for no time, so XAUTOCLAIM does not return it.
func (m *Module) reclaimIdle(ctx context.Context, key, start string, hands *inHand) ([]rueidis.XRangeEntry, string, error) {
	held := hands.ids()
	entries, next, err := streams.Autoclaim(ctx, m.rdb, key, Group, m.cfg.Consumer, m.cfg.ClaimIdle, start, m.cfg.ReadCount)
	if err != nil {
		return nil, next, err
	}
	kept := entries[:0]
	for _, en := range entries {
		if !held[en.ID] {
			kept = append(kept, en)
		}
	}
	entries = kept
	if len(entries) > 0 {
		m.log.Info("reclaimed stream entries of an idle consumer", zap.String("stream", key), zap.Int("entries", len(entries)))
	}
	return entries, next, nil
}

// lostReadIdle is how long an entry of this consumer's pending list must
// have been idle for claimLost to take it: far longer than an answer takes
// to arrive, so a read whose answer is on its way to a sibling worker (not
// yet in its hands) is not taken as well.
const lostReadIdle = 2 * time.Second

// claimLost claims (XCLAIM) up to ReadCount entries of this consumer's
// pending list that were idle lostReadIdle and that no worker of this
// process has in hand: those of a read whose answer was lost. A sibling's
// read is not taken however long its handling takes (a Postgres outage), so
// nothing is handled twice unless an answer took lostReadIdle to arrive,
// and then only that read (handling is idempotent: deterministic message
// ids, inserts that skip existing rows). XCLAIM checks the idle time again,
// so of two workers claiming at once only one gets an entry. Another
// process's entries are left to worker 0's reclaim after ClaimIdle.
func (m *Module) claimLost(ctx context.Context, key string, hands *inHand) ([]rueidis.XRangeEntry, error) {
	var ids []string
	// The siblings hold at most a read each: a few pages at most.
	for start := "-"; int64(len(ids)) < m.cfg.ReadCount; {
		page, err := streams.PendingIdle(ctx, m.rdb, key, Group, m.cfg.Consumer, lostReadIdle, start, m.cfg.ReadCount)
		if err != nil {
			return nil, err
		}
		// Taken after XPENDING: a read handled and acknowledged meanwhile
		// is no longer pending, and XCLAIM skips it.
		held := hands.ids()
		for _, id := range page {
			if !held[id] {
				ids = append(ids, id)
			}
		}
		if int64(len(page)) < m.cfg.ReadCount {
			break
		}
		start = "(" + page[len(page)-1]
	}
	if len(ids) == 0 {
		return nil, nil
	}
	entries, err := streams.Claim(ctx, m.rdb, key, Group, m.cfg.Consumer, lostReadIdle, ids[:min(int64(len(ids)), m.cfg.ReadCount)]...)
	if err != nil {
		return nil, err
	}
	if len(entries) > 0 {
		m.log.Info("claimed stream entries of a read whose answer was lost", zap.String("stream", key), zap.Int("entries", len(entries)))
	}
	return entries, nil
}

// inHand is the read each worker of a chain is handling, from the read to
// its acknowledgement (see claimLost).
type inHand struct {
	mu    sync.Mutex
	reads map[int][]rueidis.XRangeEntry
}

func newInHand() *inHand { return &inHand{reads: map[int][]rueidis.XRangeEntry{}} }

func (h *inHand) set(worker int, entries []rueidis.XRangeEntry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reads[worker] = entries
}

// ids returns the ids of every entry in hand.
func (h *inHand) ids() map[string]bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]bool{}
	for _, entries := range h.reads {
		for _, e := range entries {
			out[e.ID] = true
		}
	}
	return out
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
		return 0, hook.Cursor{}, false, outage.Postgres(err) // all of commit is Postgres's
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
