package process

import (
	"fmt"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/filter"
	"github.com/ethhook/ethhook/hook"
)

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

// routed is what one read's entries come to: the rows to write (commit.go)
// and what the read tells the safe-head tracker.
type routed struct {
	direct   []msgRow
	holds    []holdRow
	removals []removal
	maxBlock uint64      // the highest block of the read's logs
	below    hook.Cursor // the cursor ingest committed maxBlock on (from its parent hash)
	ackIDs   []string    // every entry of the read
	// The read's finality heads (and the id of its last finality entry)
	// and the orphaned blocks of its block.removed entries.
	fin           finalityHeads
	finLast       string
	blockRemovals []hook.Cursor
}

// route matches a read's entries against the endpoint index (under its
// read lock) and shapes their messages and holds; head is the chain's safe
// head (confirmations in payloads). It does no I/O: the rows' states are
// set by the caller (quota) before they are written.
func (m *Module) route(chainID uint64, entries []rueidis.XRangeEntry, head uint64) (routed, error) {
	chain, cid := m.chainLabels(chainID)
	now := time.Now() // one clock for every message id of these entries (hook.MessageID)
	out := routed{ackIDs: make([]string, 0, len(entries))}
	var cache filter.Cache
	type match struct {
		t *target
		r filter.Result
	}
	var matches []match
	var events []hook.Event
	// The read's payloads share large buffers (one allocation for many
	// bodies instead of several growing each): a body is capped at its
	// length, so nothing appends into its neighbour.
	var arena []byte
	var err error
	removalIDs := map[string]bool{}
	var specialErrs map[string]error
	out.fin, out.finLast, out.blockRemovals, specialErrs = specialEntries(entries)
	for _, e := range entries {
		out.ackIDs = append(out.ackIDs, e.ID)
		if e.FieldValues == nil {
			continue // deleted from the stream (trimmed) while pending
		}
		if t := e.FieldValues["type"]; t == hook.TypeFinality || t == hook.TypeBlockRemoved {
			if err := specialErrs[e.ID]; err != nil {
				m.met.badEntries.WithLabelValues(chain, cid).Inc()
				m.log.Error("unreadable stream entry skipped", zap.Uint64("chain", chainID), zap.String("entry", e.ID), zap.Error(err))
			}
			continue
		}
		ev, err := hook.ParseEntry(e.FieldValues)
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
	defer m.ix.mu.RUnlock()
	for i := range events {
		ev := &events[i]
		m.met.eventsIn.WithLabelValues(chain, cid, ev.Type).Inc()
		if ev.Type == hook.TypeLog {
			out.maxBlock = max(out.maxBlock, ev.Block.Number)
			if b := ev.Block; b.Number > 0 && b.ParentHash != "" && (!out.below.Set || b.Number-1 > out.below.Number) {
				out.below = hook.Cursor{Number: b.Number - 1, Hash: b.ParentHash, Set: true}
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
			if h := max(head, out.maxBlock); h > ev.Block.Number {
				conf = h - ev.Block.Number
			}
			typ := ev.Type
			if typ == hook.TypeLog && len(removalIDs) > 0 {
				logsRead[[2]string{t.ep.ID, ev.ID}] = true
			}
			if cap(arena)-len(arena) < 2048 {
				arena = make([]byte, 0, 64<<10)
			}
			start := len(arena)
			arena, err = encodePayload(arena, ev, typ, t.ep.ID, r, conf)
			if err != nil {
				return routed{}, fmt.Errorf("encode payload of %s for %s: %w", ev.ID, t.ep.ID, err)
			}
			body := arena[start:len(arena):len(arena)]
			row := msgRow{
				id: hook.MessageID(t.ep.ID, ev.ID, typ, time.Unix(int64(ev.Block.Timestamp), 0), now), appID: t.ep.AppID, endpointID: t.ep.ID, eventID: ev.ID, typ: typ,
				webhookID: hook.WebhookID(ev.ID, typ), chainID: int64(ev.Chain.ID), blockNumber: int64(ev.Block.Number),
				blockHash: ev.Block.Hash, txHash: ev.Transaction.Hash, payload: body,
			}
			row.order(&t.ep, &ev.Log)
			switch {
			case typ == hook.TypeLogRemoved:
				out.removals = append(out.removals, removal{endpointID: t.ep.ID, appID: t.ep.AppID, eventID: ev.ID,
					chainID: row.chainID, blockNumber: row.blockNumber, removedMsg: row,
					afterLog: logsRead[[2]string{t.ep.ID, ev.ID}]})
			case t.direct():
				out.direct = append(out.direct, row)
			default:
				if t.ep.TwoPhase {
					// The first phase at once; the hold makes the log.finalized.
					out.direct = append(out.direct, row)
				}
				out.holds = append(out.holds, newHold(t, ev, row, body))
			}
		}
	}
	return out, nil
}
