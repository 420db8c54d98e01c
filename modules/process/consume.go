package process

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/oklog/ulid/v2"
	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/filter"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/backpressure"
	"github.com/ethhook/ethhook/internal/sleep"
)

// headTracker computes a chain's safe head: the highest block of any log
// whose stream entry, and every entry before it, is committed. Held events
// are released only up to it, so a removal published before the blocks
// that confirm an event is always committed first, whichever process (or
// dead consumer) read it.
//
// Each finished read leaves a mark (its last entry id, its highest log
// block). A mark becomes safe once no entry at or below its id is pending
// in the consumer group (XPENDING), across every process of the group:
// reads deliver entries in stream order, so every earlier entry was
// delivered, and an entry leaves the pending list only when its output is
// committed.
//
// The same marks give the chain's durable cursor (see cursor.go): a read's
// highest log block was committed by ingest on top of the cursor its
// parent names, so once the mark is safe every entry up to that cursor is
// handled.
type headTracker struct {
	mu     sync.Mutex
	marks  []readMark // finished reads not yet known to be safe
	head   uint64
	cursor hook.Cursor   // the highest cursor known to be fully handled
	fin    finalityHeads // the node's safe and finalized heads, applied (finality.go)
}

type readMark struct {
	last  streamID
	block uint64
	below hook.Cursor // the cursor ingest committed block on (unset: unknown)
	fin   finalityHeads
}

// maxMarks bounds the marks kept while an earlier entry stays pending (a
// dead consumer's, until it is reclaimed); beyond it neighbours are merged.
const maxMarks = 4096

func newHeadTracker() *headTracker { return &headTracker{} }

// finish records a committed read: its last entry id, highest log block
// and the cursor below that block. It reports whether the read may raise
// the head.
func (h *headTracker) finish(last streamID, maxBlock uint64, below hook.Cursor) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	raisesHead := maxBlock > h.head
	if !raisesHead && !above(below, h.cursor) {
		return false // can raise nothing
	}
	h.marks = append(h.marks, readMark{last: last, block: maxBlock, below: below})
	if len(h.marks) > maxMarks {
		h.marks = mergeMarks(h.marks)
	}
	return raisesHead
}

// mergeMarks halves marks by merging neighbours in id order into the later
// id with the higher block: it becomes safe only when both would have.
func mergeMarks(ms []readMark) []readMark {
	sort.Slice(ms, func(i, j int) bool { return ms[i].last.less(ms[j].last) })
	out := ms[:0]
	for i := 0; i < len(ms); i += 2 {
		m := ms[i]
		if i+1 < len(ms) {
			n := ms[i+1]
			if above(m.below, n.below) {
				n.below = m.below
			}
			fin := m.fin
			fin.raise(n.fin)
			m = readMark{n.last, max(m.block, n.block), n.below, fin}
		}
		out = append(out, m)
	}
	return out
}

// hasMarks reports whether finished reads wait to raise the head.
func (h *headTracker) hasMarks() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.marks) > 0
}

// settle raises the head over every mark below the group's lowest pending
// entry id (all of them when nothing is pending).
func (h *headTracker) settle(lowestPending streamID, nonePending bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	keep := h.marks[:0]
	for _, m := range h.marks {
		if nonePending || m.last.less(lowestPending) {
			h.head = max(h.head, m.block)
			h.fin.raise(m.fin)
			if above(m.below, h.cursor) {
				h.cursor = m.below
			}
		} else {
			keep = append(keep, m)
		}
	}
	h.marks = keep
}

func (h *headTracker) safeHead() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.head
}

func (h *headTracker) raise(n uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.head = max(h.head, n)
}

// streamID is a Redis stream entry id, "<ms>-<seq>".
type streamID struct{ ms, seq uint64 }

func parseStreamID(s string) (streamID, error) {
	a, b, ok := strings.Cut(s, "-")
	ms, err1 := strconv.ParseUint(a, 10, 64)
	seq, err2 := strconv.ParseUint(b, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return streamID{}, fmt.Errorf("bad stream entry id %q", s)
	}
	return streamID{ms, seq}, nil
}

func (a streamID) less(b streamID) bool { return a.ms < b.ms || (a.ms == b.ms && a.seq < b.seq) }

// settleHead asks the group for its lowest pending entry and raises the
// chain's safe head over the reads below it.
func (m *Module) settleHead(ctx context.Context, chainID uint64, ht *headTracker) error {
	if !ht.hasMarks() {
		return nil
	}
	res, err := m.rdb.Do(ctx, m.rdb.B().Xpending().Key(m.keys.Events(chainID)).Group(Group).Build()).ToArray()
	if err != nil {
		return fmt.Errorf("XPENDING: %w", err)
	}
	if len(res) < 2 {
		return fmt.Errorf("XPENDING: unexpected reply of %d elements", len(res))
	}
	n, err := res[0].AsInt64()
	if err != nil {
		return fmt.Errorf("XPENDING count: %w", err)
	}
	if n == 0 {
		ht.settle(streamID{}, true)
		return nil
	}
	low, err := res[1].ToString()
	if err != nil {
		return fmt.Errorf("XPENDING lowest id: %w", err)
	}
	id, err := parseStreamID(low)
	if err != nil {
		return err
	}
	ht.settle(id, false)
	return nil
}

func (m *Module) tracker(chainID uint64) *headTracker {
	m.releaseMu.Lock()
	defer m.releaseMu.Unlock()
	if m.heads == nil {
		m.heads = map[uint64]*headTracker{}
	}
	t := m.heads[chainID]
	if t == nil {
		t = newHeadTracker()
		m.heads[chainID] = t
	}
	return t
}

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
			if strings.Contains(err.Error(), "NOGROUP") {
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

// read is XREADGROUP from id ("0": own pending entries, ">": new ones).
func (m *Module) read(ctx context.Context, key, id string, block time.Duration) ([]rueidis.XRangeEntry, error) {
	b := m.rdb.B().Xreadgroup().Group(Group, m.cfg.Consumer).Count(m.cfg.ReadCount)
	var cmd rueidis.Completed
	if block > 0 {
		cmd = b.Block(block.Milliseconds()).Streams().Key(key).Id(id).Build()
	} else {
		cmd = b.Streams().Key(key).Id(id).Build()
	}
	res, err := m.rdb.Do(ctx, cmd).AsXRead()
	if rueidis.IsRedisNil(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return res[key], nil
}

// autoclaim takes over entries idle longer than ClaimIdle (a dead consumer's).
func (m *Module) autoclaim(ctx context.Context, key, start string) ([]rueidis.XRangeEntry, string, error) {
	arr, err := m.rdb.Do(ctx, m.rdb.B().Xautoclaim().Key(key).Group(Group).Consumer(m.cfg.Consumer).
		MinIdleTime(strconv.FormatInt(m.cfg.ClaimIdle.Milliseconds(), 10)).Start(start).Count(m.cfg.ReadCount).Build()).ToArray()
	if err != nil {
		return nil, start, err
	}
	if len(arr) < 2 {
		return nil, "0-0", fmt.Errorf("XAUTOCLAIM: unexpected reply of %d elements", len(arr))
	}
	next, err := arr[0].ToString()
	if err != nil {
		return nil, start, err
	}
	entries, err := arr[1].AsXRange()
	if err != nil {
		return nil, start, err
	}
	if len(entries) > 0 {
		m.log.Info("reclaimed stream entries of an idle consumer", zap.String("stream", key), zap.Int("entries", len(entries)))
	}
	return entries, next, nil
}

// msgRow is a messages row to insert.
type msgRow struct {
	id, appID, endpointID, eventID, typ, webhookID string
	chainID, blockNumber                           int64
	blockHash, txHash                              string
	payload                                        []byte
	state                                          string
	// For FIFO endpoints (deliver orders by them): the log's index in its
	// block and its ordering group (hook.FIFOGroup); fifoKey is "" for
	// parallel endpoints and stored as NULL.
	logIndex int32
	fifoKey  string
}

// order sets the FIFO columns of r for endpoint ep and log lg.
func (r *msgRow) order(ep *hook.Endpoint, lg *hook.Log) {
	r.logIndex = int32(lg.Index)
	if ep != nil && ep.FIFO() {
		r.fifoKey = hook.FIFOGroup(uint64(r.chainID), ep.FIFOKey, lg.Address, lg.Topics)
	}
}

// holdRow is a process_holds row to insert.
type holdRow struct {
	endpointID, eventID, appID        string
	chainID, blockNumber, releaseBlok int64
	payload                           []byte
	stage                             int16  // stageCount, stageSafe, stageFinalized
	releaseType                       string // the released message's type: log, or log.finalized (two-phase)
}

// removal is a log.removed event for one endpoint.
type removal struct {
	endpointID, appID, eventID string
	chainID, blockNumber       int64
	removedMsg                 msgRow // the log.removed message, if one is due
	// afterLog: the log it removes is earlier in the same read. Otherwise
	// the removal is applied before the read's logs are written, as if
	// it had been read alone: a log that follows it is then suppressed.
	afterLog bool
}

func newMessageID() string { return "msg_" + ulid.Make().String() }

// handle turns stream entries into durable output, queues the jobs and
// acknowledges the entries. It returns the highest block of their logs,
// the cursor ingest committed that block on (from its parent hash) and
// whether any event was held (confirmations or batching).
func (m *Module) handle(ctx context.Context, chainID uint64, entries []rueidis.XRangeEntry) (uint64, hook.Cursor, bool, error) {
	if m.beforeHandle != nil {
		m.beforeHandle(ctx, entries)
	}
	chain, cid := m.chainLabels(chainID)
	now := time.Now() // one clock for every message id of these entries (hook.MessageID)
	var (
		direct   []msgRow
		holds    []holdRow
		removals []removal
		maxBlock uint64
		below    hook.Cursor
		ackIDs   = make([]string, 0, len(entries))
		cache    filter.Cache
		quota    = map[string]string{}
	)
	head := m.tracker(chainID).safeHead()
	state := func(appID string) string {
		if s, ok := quota[appID]; ok {
			return s
		}
		s := hook.StatePending
		if over, err := m.quota.QuotaExceeded(ctx, appID); err != nil {
			m.log.Warn("quota check failed; message stays pending", zap.String("app", appID), zap.Error(err))
		} else if over {
			s = hook.StateQuotaExceeded
		}
		quota[appID] = s
		return s
	}
	type match struct {
		t *target
		r filter.Result
	}
	var matches []match
	var events []hook.Event
	removalIDs := map[string]bool{}
	fin, finLast, blockRemovals, specialErrs := specialEntries(entries)
	for _, e := range entries {
		ackIDs = append(ackIDs, e.ID)
		if e.FieldValues == nil {
			continue // deleted from the stream (trimmed) while pending
		}
		if t := e.FieldValues["type"]; t == hook.TypeFinality || t == hook.TypeBlockRemoved {
			if err := specialErrs[e.ID]; err != nil {
				m.met.badEntries.WithLabelValues(chain).Inc()
				m.log.Error("unreadable stream entry skipped", zap.Uint64("chain", chainID), zap.String("entry", e.ID), zap.Error(err))
			}
			continue
		}
		ev, err := parseEntry(e.FieldValues)
		if err != nil {
			m.met.badEntries.WithLabelValues(chain, cid).Inc()
			m.log.Error("unreadable stream entry skipped", zap.Uint64("chain", chainID), zap.String("entry", e.ID), zap.Error(err))
			continue
		}
		events = append(events, ev)
		if ev.Type == hook.TypeLogRemoved {
			removalIDs[ev.ID] = true
		}
	}
	// Which (endpoint, event) logs come before a removal of the same event
	// in this read: only those are retracted after being written (see
	// removal.afterLog). Only kept when the read has removals.
	logsRead := map[[2]string]bool{}
	m.ix.mu.RLock()
	for i := range events {
		ev := &events[i]
		m.met.eventsIn.WithLabelValues(chain, cid, ev.Type).Inc()
		if ev.Type == hook.TypeLog {
			maxBlock = max(maxBlock, ev.Block.Number)
			if b := ev.Block; b.Number > 0 && b.ParentHash != "" && (!below.Set || b.Number-1 > below.Number) {
				below = hook.Cursor{Number: b.Number - 1, Hash: b.ParentHash, Set: true}
			}
		}
		cache.Reset()
		matches = matches[:0]
		m.ix.candidates(ev, func(t *target) {
			if r, ok := t.m.Match(ev, &cache); ok {
				matches = append(matches, match{t, r})
			}
		})
		for _, mt := range matches {
			t, r := mt.t, mt.r
			if ev.Type == hook.TypeLog {
				m.met.matches.WithLabelValues(chain, cid).Inc()
				if r.DecodeErr != nil {
					m.met.decodeErrors.WithLabelValues(chain, cid).Inc()
				}
			}
			var conf uint64
			if h := max(head, maxBlock); h > ev.Block.Number {
				conf = h - ev.Block.Number
			}
			typ := ev.Type
			if typ == hook.TypeLog && len(removalIDs) > 0 {
				logsRead[[2]string{t.ep.ID, ev.ID}] = true
			}
			body, err := json.Marshal(newPayload(ev, typ, t.ep.ID, r, conf))
			if err != nil {
				m.ix.mu.RUnlock()
				return 0, hook.Cursor{}, false, fmt.Errorf("encode payload of %s for %s: %w", ev.ID, t.ep.ID, err)
			}
			row := msgRow{
				id: hook.MessageID(t.ep.ID, ev.ID, typ, time.Unix(int64(ev.Block.Timestamp), 0), now), appID: t.ep.AppID, endpointID: t.ep.ID, eventID: ev.ID, typ: typ,
				webhookID: hook.WebhookID(ev.ID, typ), chainID: int64(ev.Chain.ID), blockNumber: int64(ev.Block.Number),
				blockHash: ev.Block.Hash, txHash: ev.Transaction.Hash, payload: body,
			}
			row.order(&t.ep, &ev.Log)
			switch {
			case typ == hook.TypeLogRemoved:
				row.state = state(t.ep.AppID)
				removals = append(removals, removal{endpointID: t.ep.ID, appID: t.ep.AppID, eventID: ev.ID,
					chainID: row.chainID, blockNumber: row.blockNumber, removedMsg: row,
					afterLog: logsRead[[2]string{t.ep.ID, ev.ID}]})
			case t.direct():
				row.state = state(t.ep.AppID)
				direct = append(direct, row)
			default:
				if t.ep.TwoPhase {
					// The first phase at once; the hold makes the log.finalized.
					row.state = state(t.ep.AppID)
					direct = append(direct, row)
				}
				holds = append(holds, newHold(t, ev, row, body))
			}
		}
	}
	m.ix.mu.RUnlock()

	var queued []msgRow
	var err error
	switch {
	case len(removals) > 0:
		queued, err = m.writeWithRemovals(ctx, chainID, direct, holds, removals)
	case len(direct)+len(holds) > 0:
		queued, err = m.writeBatch(ctx, chainID, direct, holds)
	}
	if err == nil && len(blockRemovals) > 0 {
		// After the read's logs: every log of an orphaned block precedes
		// its block.removed in the stream.
		var q []msgRow
		q, err = m.applyBlockRemovals(ctx, chainID, blockRemovals)
		queued = append(queued, q...)
	}
	if err != nil {
		return 0, hook.Cursor{}, false, err
	}
	if m.afterCommit != nil && len(direct)+len(holds)+len(removals) > 0 {
		m.afterCommit(ctx)
	}
	if err := m.enqueue(ctx, queued); err != nil {
		return 0, hook.Cursor{}, false, err
	}
	queuedAt := time.Now()
	if err := m.rdb.Do(ctx, m.rdb.B().Xack().Key(m.keys.Events(chainID)).Group(Group).Id(ackIDs...).Build()).Error(); err != nil {
		return 0, hook.Cursor{}, false, fmt.Errorf("acknowledge %d entries: %w", len(ackIDs), err)
	}
	for _, id := range ackIDs {
		if ms, _, ok := strings.Cut(id, "-"); ok {
			if n, err := strconv.ParseInt(ms, 10, 64); err == nil {
				d := queuedAt.Sub(time.UnixMilli(n))
				m.met.latency.WithLabelValues(chain, cid).Observe(d.Seconds())
				if m.onQueued != nil {
					m.onQueued(id, queuedAt)
				}
			}
		}
	}
	if fin != (finalityHeads{}) {
		if id, err := parseStreamID(finLast); err == nil && m.tracker(chainID).finishFinality(id, fin) {
			m.kickRelease(chainID)
		}
	}
	return maxBlock, below, len(holds) > 0, nil
}

// lockChain takes the chain's advisory lock: exclusive for transactions
// that handle removals, shared for all others.
func lockChain(ctx context.Context, tx pgx.Tx, chainID uint64, exclusive bool) error {
	if _, err := tx.Exec(ctx, lockSQL(exclusive), chainLockKey(chainID)); err != nil {
		return fmt.Errorf("lock chain %d: %w", chainID, err)
	}
	return nil
}

func chainLockKey(chainID uint64) int64 { return int64(0x70726f63)<<32 | int64(chainID&0xffffffff) }

func lockSQL(exclusive bool) string {
	if exclusive {
		return `SELECT pg_advisory_xact_lock($1)`
	}
	return `SELECT pg_advisory_xact_lock_shared($1)`
}

// insertMessagesSQL inserts rows given as parallel arrays, skipping those
// that exist already (the same id, hook.MessageID, or in the legacy
// partition of migration 00063 the same endpoint, event and type: without a
// conflict target every unique index of the partition is an arbiter) and, with tombstones ($13), those whose event was
// removed before it was queued. It returns the ids it inserted.
const insertMessagesSQL = `INSERT INTO messages (id, app_id, endpoint_id, event_id, type, webhook_id, chain_id, block_number,
		block_hash, tx_hash, payload, state, log_index, fifo_key)
	SELECT t.id, t.app_id, t.endpoint_id, t.event_id, t.type, t.webhook_id, t.chain_id, t.block_number,
		t.block_hash, t.tx_hash, t.payload::json, t.state, t.log_index, NULLIF(t.fifo_key, '')
	FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int8[], $8::int8[],
		$9::text[], $10::text[], $11::text[], $12::text[], $14::int4[], $15::text[])
		AS t(id, app_id, endpoint_id, event_id, type, webhook_id, chain_id, block_number, block_hash, tx_hash, payload, state,
			log_index, fifo_key)
	WHERE EXISTS (SELECT 1 FROM endpoints e WHERE e.id = t.endpoint_id)
	  AND (NOT $13 OR NOT EXISTS (SELECT 1 FROM process_holds h
			WHERE h.endpoint_id = t.endpoint_id AND h.event_id = t.event_id AND h.state = 'removed'))
	ON CONFLICT DO NOTHING
	RETURNING id`

func insertMessagesArgs(rows []msgRow, tombstones bool) []any {
	n := len(rows)
	ids, apps, eps, evs, typs, whs := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	chains, blocks := make([]int64, n), make([]int64, n)
	bhs, txs, pls, sts := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	lis, fks := make([]int32, n), make([]string, n)
	for i, r := range rows {
		ids[i], apps[i], eps[i], evs[i], typs[i], whs[i] = r.id, r.appID, r.endpointID, r.eventID, r.typ, r.webhookID
		chains[i], blocks[i], bhs[i], txs[i], pls[i], sts[i] = r.chainID, r.blockNumber, r.blockHash, r.txHash, string(r.payload), r.state
		lis[i], fks[i] = r.logIndex, r.fifoKey
	}
	return []any{ids, apps, eps, evs, typs, whs, chains, blocks, bhs, txs, pls, sts, tombstones, lis, fks}
}

// readInserted collects the ids insertMessagesSQL returned.
func readInserted(got pgx.Rows, n int) (map[string]bool, error) {
	defer got.Close()
	inserted := make(map[string]bool, n)
	for got.Next() {
		var id string
		if err := got.Scan(&id); err != nil {
			return nil, fmt.Errorf("insert messages: %w", err)
		}
		inserted[id] = true
	}
	if err := got.Err(); err != nil {
		return nil, fmt.Errorf("insert %d messages: %w", n, err)
	}
	return inserted, nil
}

// insertMessages inserts rows (one statement) and returns what must be
// queued (see toQueue).
func (m *Module) insertMessages(ctx context.Context, tx pgx.Tx, rows []msgRow, tombstones bool) ([]msgRow, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	got, err := tx.Query(ctx, insertMessagesSQL, insertMessagesArgs(rows, tombstones)...)
	if err != nil {
		return nil, fmt.Errorf("insert %d messages: %w", len(rows), err)
	}
	inserted, err := readInserted(got, len(rows))
	if err != nil {
		return nil, err
	}
	return m.toQueue(ctx, tx, rows, inserted)
}

// toQueue returns the rows that were inserted plus existing ones still
// pending (a replay after a crash between commit and queueing): their jobs
// may be missing. q may be the inserting transaction or, after its commit,
// the pool.
func (m *Module) toQueue(ctx context.Context, q querier, rows []msgRow, inserted map[string]bool) ([]msgRow, error) {
	out := make([]msgRow, 0, len(rows))
	var missEP, missEv, missTyp []string
	var missBlock []int64
	for _, r := range rows {
		if inserted[r.id] {
			m.met.messages.WithLabelValues(r.typ).Inc()
			out = append(out, r)
		} else {
			missEP, missEv, missTyp = append(missEP, r.endpointID), append(missEv, r.eventID), append(missTyp, r.typ)
			missBlock = append(missBlock, r.blockNumber)
		}
	}
	if len(missEP) == 0 {
		return out, nil
	}
	// By endpoint and block (messages_block), not by id: a row of the
	// legacy partition (migration 00063) has another id than hook.MessageID.
	pend, err := q.Query(ctx, `SELECT m.id, m.endpoint_id, m.state FROM messages m
		JOIN unnest($1::text[], $2::text[], $3::text[], $4::int8[]) AS t(endpoint_id, event_id, type, block_number)
		  ON m.endpoint_id = t.endpoint_id AND m.block_number = t.block_number AND m.event_id = t.event_id AND m.type = t.type
		WHERE m.state = 'pending'`, missEP, missEv, missTyp, missBlock)
	if err != nil {
		return nil, fmt.Errorf("find pending messages to re-enqueue: %w", err)
	}
	defer pend.Close()
	for pend.Next() {
		var r msgRow
		if err := pend.Scan(&r.id, &r.endpointID, &r.state); err != nil {
			return nil, fmt.Errorf("find pending messages: %w", err)
		}
		out = append(out, r)
	}
	if err := pend.Err(); err != nil {
		return nil, fmt.Errorf("find pending messages to re-enqueue: %w", err)
	}
	return out, nil
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// writeWithRemovals writes a batch that has removals: each removal reads
// the state it cancels, under the chain's exclusive lock. The outcome is
// the one of handling the entries one by one in stream order, whatever
// the batching: a removal is applied before the batch's logs unless the
// log it removes came before it (then after, and it retracts the log).
// Removals and logs of different events do not touch each other's rows.
func (m *Module) writeWithRemovals(ctx context.Context, chainID uint64, direct []msgRow, holds []holdRow, removals []removal) ([]msgRow, error) {
	var queued []msgRow
	apply := func(tx pgx.Tx, afterLog bool) error {
		for _, rm := range removals {
			if rm.afterLog != afterLog {
				continue
			}
			q, err := m.applyRemoval(ctx, tx, rm)
			if err != nil {
				return err
			}
			queued = append(queued, q...)
		}
		return nil
	}
	err := pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error {
		queued = queued[:0]
		if err := lockChain(ctx, tx, chainID, true); err != nil {
			return err
		}
		if err := apply(tx, false); err != nil {
			return err
		}
		// The tombstones just written suppress the logs they precede.
		q, err := m.insertMessages(ctx, tx, direct, true)
		if err != nil {
			return err
		}
		queued = append(queued, q...)
		if err := insertHolds(ctx, tx, holds); err != nil {
			return err
		}
		return apply(tx, true)
	})
	return queued, err
}

// writeBatch commits direct messages and holds in one round trip: the
// queued statements run as one implicit transaction under the chain's
// shared lock. Batches with removals take the interactive path (handle).
func (m *Module) writeBatch(ctx context.Context, chainID uint64, direct []msgRow, holds []holdRow) ([]msgRow, error) {
	b := &pgx.Batch{}
	b.Queue(lockSQL(false), chainLockKey(chainID))
	if len(direct) > 0 {
		b.Queue(insertMessagesSQL, insertMessagesArgs(direct, true)...)
	}
	if len(holds) > 0 {
		b.Queue(insertHoldsSQL, insertHoldsArgs(holds)...)
	}
	br := m.pool.SendBatch(ctx, b)
	inserted, err := func() (map[string]bool, error) {
		if _, err := br.Exec(); err != nil {
			return nil, fmt.Errorf("lock chain %d: %w", chainID, err)
		}
		var inserted map[string]bool
		if len(direct) > 0 {
			got, err := br.Query()
			if err != nil {
				return nil, fmt.Errorf("insert %d messages: %w", len(direct), err)
			}
			if inserted, err = readInserted(got, len(direct)); err != nil {
				return nil, err
			}
		}
		if len(holds) > 0 {
			if _, err := br.Exec(); err != nil {
				return nil, fmt.Errorf("hold %d events: %w", len(holds), err)
			}
		}
		return inserted, nil
	}()
	// Close reads up to the end of the implicit transaction: its error is
	// the commit's.
	if cerr := br.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("commit %d messages and %d holds: %w", len(direct), len(holds), cerr)
	}
	if err != nil || len(direct) == 0 {
		return nil, err
	}
	return m.toQueue(ctx, m.pool, direct, inserted)
}

const insertHoldsSQL = `INSERT INTO process_holds (endpoint_id, event_id, app_id, chain_id, block_number, release_block, state, payload,
		stage, release_type)
	SELECT t.endpoint_id, t.event_id, t.app_id, t.chain_id, t.block_number, t.release_block, 'held', t.payload::json,
		t.stage, t.release_type
	FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[], $6::int8[], $7::text[], $8::int2[], $9::text[])
		AS t(endpoint_id, event_id, app_id, chain_id, block_number, release_block, payload, stage, release_type)
	WHERE EXISTS (SELECT 1 FROM endpoints e WHERE e.id = t.endpoint_id)
	ON CONFLICT (endpoint_id, event_id) DO NOTHING`

func insertHoldsArgs(rows []holdRow) []any {
	n := len(rows)
	eps, evs, apps := make([]string, n), make([]string, n), make([]string, n)
	chains, blocks, rel := make([]int64, n), make([]int64, n), make([]int64, n)
	pls, stages, types := make([]string, n), make([]int16, n), make([]string, n)
	for i, r := range rows {
		eps[i], evs[i], apps[i], chains[i], blocks[i], rel[i], pls[i] = r.endpointID, r.eventID, r.appID, r.chainID, r.blockNumber, r.releaseBlok, string(r.payload)
		stages[i], types[i] = r.stage, r.releaseType
		if types[i] == "" {
			types[i] = hook.TypeLog
		}
	}
	return []any{eps, evs, apps, chains, blocks, rel, pls, stages, types}
}

func insertHolds(ctx context.Context, tx pgx.Tx, rows []holdRow) error {
	if len(rows) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, insertHoldsSQL, insertHoldsArgs(rows)...); err != nil {
		return fmt.Errorf("hold %d events: %w", len(rows), err)
	}
	return nil
}

// applyRemoval handles one removed event for one endpoint (under the
// chain's exclusive lock): a held event is suppressed; a queued or
// delivered one gets a log.removed message; one never seen gets a tombstone
// so that a late replay of the log is suppressed.
func (m *Module) applyRemoval(ctx context.Context, tx pgx.Tx, rm removal) ([]msgRow, error) {
	var st string
	err := tx.QueryRow(ctx, `SELECT state FROM process_holds WHERE endpoint_id = $1 AND event_id = $2 FOR UPDATE`,
		rm.endpointID, rm.eventID).Scan(&st)
	if err != nil && err != pgx.ErrNoRows {
		return nil, fmt.Errorf("read hold of %s for %s: %w", rm.eventID, rm.endpointID, err)
	}
	if st == "held" {
		_, err := tx.Exec(ctx, `UPDATE process_holds SET state = 'removed', updated_at = now() WHERE endpoint_id = $1 AND event_id = $2`,
			rm.endpointID, rm.eventID)
		if err != nil {
			return nil, fmt.Errorf("suppress held %s for %s: %w", rm.eventID, rm.endpointID, err)
		}
		// A two-phase endpoint got the log at once: it gets the removal
		// too (the check below finds the log message).
	}
	var queued bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM messages WHERE endpoint_id = $1 AND block_number = $3 AND event_id = $2 AND type = 'log')`,
		rm.endpointID, rm.eventID, rm.blockNumber).Scan(&queued); err != nil {
		return nil, fmt.Errorf("look for message of %s for %s: %w", rm.eventID, rm.endpointID, err)
	}
	if queued || st == "released" { // queued covers a two-phase endpoint's first phase
		return m.insertMessages(ctx, tx, []msgRow{rm.removedMsg}, false)
	}
	if st == "" {
		_, err := tx.Exec(ctx, `INSERT INTO process_holds (endpoint_id, event_id, app_id, chain_id, block_number, release_block, state)
			SELECT $1, $2, $3, $4, $5, $5, 'removed' WHERE EXISTS (SELECT 1 FROM endpoints WHERE id = $1)
			ON CONFLICT (endpoint_id, event_id) DO NOTHING`, rm.endpointID, rm.eventID, rm.appID, rm.chainID, rm.blockNumber)
		if err != nil {
			return nil, fmt.Errorf("tombstone %s for %s: %w", rm.eventID, rm.endpointID, err)
		}
	}
	return nil, nil
}

// enqueue XADDs a delivery job per pending message (pipelined).
func (m *Module) enqueue(ctx context.Context, rows []msgRow) error {
	if len(rows) == 0 {
		return nil
	}
	cmds := make(rueidis.Commands, 0, len(rows))
	key := m.keys.DeliverJobs()
	for _, r := range rows {
		if r.state != hook.StatePending {
			continue // quota_exceeded: released by the quota loop, not queued now
		}
		cmds = append(cmds, m.rdb.B().Xadd().Key(key).Id("*").FieldValue().
			FieldValue("message_id", r.id).FieldValue("endpoint_id", r.endpointID).Build())
	}
	for _, res := range m.rdb.DoMulti(ctx, cmds...) {
		if err := res.Error(); err != nil {
			return fmt.Errorf("queue delivery jobs: %w", err)
		}
	}
	return nil
}
