package process

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/filter"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/sleep"
	"github.com/ethhook/ethhook/internal/streams"
)

// History: ingest's historian publishes the events of endpoints created
// with from_block to the chain's history stream (see
// modules/ingest/history.go); this reader makes them messages with the
// live path's matcher and payload builder, so a history message is the
// message the live path would have made, and records progress marks in
// endpoint_history.
//
// The live path stays first: a history read waits while the live stream's
// readers are taking full batches (a backlog) or deliver is behind, reads
// at most historyReadCount entries and paces itself to HistoryRate events/s.

// historyReadCount is how many history entries one read takes.
const historyReadCount = 200

// DefaultHistoryRate is the default ceiling of history events/s per chain
// (per process).
const DefaultHistoryRate = 2000

// liveBusyFor is how long a full live read keeps history waiting.
const liveBusyFor = 500 * time.Millisecond

// noteLiveRead records a live read of n entries (called by consume).
func (m *Module) noteLiveRead(n int) {
	if int64(n) >= m.cfg.ReadCount {
		m.liveBusy.Store(time.Now().UnixNano())
	}
}

func (m *Module) liveIsBusy() bool {
	return time.Since(time.Unix(0, m.liveBusy.Load())) < liveBusyFor
}

// consumeHistory reads the chain's history stream until ctx ends.
func (m *Module) consumeHistory(ctx context.Context, chainID uint64) error {
	key := m.keys.History(chainID)
	log := m.log.With(zap.Uint64("chain", chainID), zap.String("part", "history"))
	ensure := func() error { return streams.EnsureGroup(ctx, m.rdb, key, hook.HistoryGroup) }
	if err := ensure(); err != nil {
		return err
	}
	rate := m.historyRate
	if rate <= 0 {
		rate = DefaultHistoryRate
	}
	own := true // first this consumer's own unacknowledged entries
	lastClaim := time.Time{}
	for attempt := 0; ctx.Err() == nil; {
		if m.liveIsBusy() {
			sleep.For(ctx, 50*time.Millisecond)
			continue
		}
		if !m.delivery.Wait(ctx) {
			return nil
		}
		var entries []rueidis.XRangeEntry
		var err error
		switch {
		case own:
			entries, err = streams.Read(ctx, m.rdb, key, hook.HistoryGroup, m.cfg.Consumer, "0", historyReadCount, 0)
			if err == nil && len(entries) == 0 {
				own = false
				continue
			}
		case time.Since(lastClaim) >= m.cfg.ClaimIdle/2:
			// A dead process's entries (one pass; the rest on the next).
			lastClaim = time.Now()
			entries, _, err = streams.Autoclaim(ctx, m.rdb, key, hook.HistoryGroup, m.cfg.Consumer, m.cfg.ClaimIdle, "0-0", historyReadCount)
		default:
			entries, err = streams.Read(ctx, m.rdb, key, hook.HistoryGroup, m.cfg.Consumer, ">", historyReadCount, m.cfg.BlockTimeout)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if streams.IsNoGroup(err) {
				_ = ensure()
			}
			m.out.Redis.Fail("read history stream", err)
			sleep.For(ctx, backoff(attempt))
			attempt++
			continue
		}
		m.out.Redis.OK()
		attempt = 0
		if len(entries) == 0 {
			continue
		}
		start := time.Now()
		for try := 0; ; try++ {
			err := m.handleHistory(ctx, chainID, key, entries)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return nil
			}
			log.Warn("handle history entries; retrying", zap.Int("entries", len(entries)), zap.Int("try", try), zap.Error(err))
			sleep.For(ctx, backoff(try))
		}
		// Pace: len(entries) at rate events/s.
		sleep.For(ctx, time.Duration(len(entries))*time.Second/time.Duration(rate)-time.Since(start))
	}
	return nil
}

// historyMark is a progress mark of one endpoint's history.
type historyMark struct {
	through uint64
	final   bool
	events  int64
}

// handleHistory makes the entries' events messages (or holds), records
// their marks and acknowledges and deletes the entries (the stream's
// length is then the backlog the historian waits on).
func (m *Module) handleHistory(ctx context.Context, chainID uint64, key string, entries []rueidis.XRangeEntry) error {
	var (
		direct []msgRow
		holds  []holdRow
		ids    = make([]string, 0, len(entries))
		marks  = map[string]*historyMark{}
		order  []string
		cache  filter.Cache
		ours   = map[string]string{} // generated message id -> endpoint
	)
	mark := func(ep string) *historyMark {
		mk := marks[ep]
		if mk == nil {
			mk = &historyMark{}
			marks[ep] = mk
			order = append(order, ep)
		}
		return mk
	}
	head := m.tracker(chainID).safeHead()
	state := m.quotaStates(ctx)
	m.ix.mu.RLock()
	for _, e := range entries {
		ids = append(ids, e.ID)
		if e.FieldValues == nil {
			continue
		}
		he, err := hook.ParseHistoryEntry(e.FieldValues)
		if err != nil {
			m.log.Error("unreadable history entry skipped", zap.Uint64("chain", chainID), zap.String("entry", e.ID), zap.Error(err))
			continue
		}
		if he.Event == nil {
			mk := mark(he.EndpointID)
			mk.through, mk.final = max(mk.through, he.Through), mk.final || he.Final
			continue
		}
		t := m.ix.byID[he.EndpointID]
		ev := he.Event
		if t == nil || ev.Type != hook.TypeLog || ev.Chain.ID != chainID {
			continue // disabled or deleted since: like the live path, nothing for it
		}
		cache.Reset()
		r, ok := t.m.Match(ev, &cache)
		if !ok {
			continue // conditions on decoded arguments (the node filtered addresses and topics)
		}
		var conf uint64
		if head > ev.Block.Number {
			conf = head - ev.Block.Number
		}
		body, err := encodePayload(nil, ev, hook.TypeLog, t.ep.ID, r, conf)
		if err != nil {
			m.ix.mu.RUnlock()
			return fmt.Errorf("encode payload of %s for %s: %w", ev.ID, t.ep.ID, err)
		}
		row := msgRow{
			// The live path's id for the same event (hook.MessageID), so
			// where history and live meet the second insert is skipped.
			id:    hook.MessageID(t.ep.ID, ev.ID, hook.TypeLog, time.Unix(int64(ev.Block.Timestamp), 0), time.Now()),
			appID: t.ep.AppID, endpointID: t.ep.ID, eventID: ev.ID, typ: hook.TypeLog,
			webhookID: hook.WebhookID(ev.ID, hook.TypeLog), chainID: int64(ev.Chain.ID), blockNumber: int64(ev.Block.Number),
			blockHash: ev.Block.Hash, txHash: ev.Transaction.Hash, payload: body,
		}
		if t.direct() {
			row.state = state(t.ep.AppID)
			direct = append(direct, row)
			ours[row.id] = t.ep.ID
		} else {
			holds = append(holds, holdRow{endpointID: t.ep.ID, eventID: ev.ID, appID: t.ep.AppID, chainID: row.chainID,
				blockNumber: row.blockNumber, releaseBlok: row.blockNumber + int64(t.ep.Confirmations), payload: body})
			mark(t.ep.ID).events++
		}
	}
	m.ix.mu.RUnlock()
	if len(direct)+len(holds) > 0 {
		queued, err := m.writeBatch(ctx, chainID, direct, holds)
		if err != nil {
			return err
		}
		for _, q := range queued {
			if ep, ok := ours[q.id]; ok {
				mark(ep).events++
			}
		}
		if err := m.enqueue(ctx, queued); err != nil {
			return err
		}
		if len(holds) > 0 {
			m.kickRelease(chainID)
		}
		m.xmet.historyEvents.Add(float64(len(direct) + len(holds)))
	}
	for _, ep := range order {
		mk := marks[ep]
		// through stays unset (NULL) for a batch with events but no mark:
		// only a mark says every event up to it was published.
		_, err := m.pool.Exec(ctx, `UPDATE endpoint_history SET
				events = events + $2,
				handled_through = CASE WHEN $3 THEN GREATEST(COALESCE(handled_through, -1), $4) ELSE handled_through END,
				state = CASE WHEN $5 THEN 'done' ELSE state END, updated_at = now()
			WHERE endpoint_id = $1 AND state IN ('pending', 'running')`,
			ep, mk.events, mk.through > 0 || mk.final, int64(mk.through), mk.final)
		if err != nil {
			return fmt.Errorf("record history progress of %s: %w", ep, err)
		}
		if mk.final {
			m.log.Info("history done", zap.String("endpoint", ep), zap.Uint64("to_block", mk.through))
		}
	}
	if err := streams.AckDelete(ctx, m.rdb, key, hook.HistoryGroup, ids...); err != nil {
		return fmt.Errorf("acknowledge %d history entries: %w", len(ids), err)
	}
	return nil
}

// SetHistoryRate sets the ceiling of history events/s per chain (tests and
// benchmarks slow or speed history with it); call it before Run.
func (m *Module) SetHistoryRate(n int) { m.historyRate = n }
