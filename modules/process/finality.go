package process

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/rueidis"

	"github.com/ethhook/ethhook/hook"
)

// Finality stages. Ingest publishes the node's safe and finalized blocks as
// finality entries in the events stream, only at blocks it committed and
// never backwards (modules/ingest/finality.go). Process takes them in
// stream order, like the logs: a finality entry counts once no earlier
// entry is pending in the group (the same marks as the safe head, see
// headTracker), so every removal published before it, whichever process
// read it, is applied before an event is released at that stage. An
// endpoint at safe or finalized therefore never gets an orphaned log.

// Hold stages (process_holds.stage).
const (
	stageCount     = 0 // release_block against the confirmations head
	stageSafe      = 1
	stageFinalized = 2
)

func holdStage(stage string) int16 {
	switch stage {
	case hook.StageSafe:
		return stageSafe
	case hook.StageFinalized:
		return stageFinalized
	}
	return stageCount
}

// finalityHeads is what a read saw of the node's tags (0: nothing).
type finalityHeads struct{ safe, final uint64 }

func (f *finalityHeads) raise(o finalityHeads) {
	f.safe, f.final = max(f.safe, o.safe), max(f.final, o.final)
}

// finalityOf reads a finality entry; ok is false for any other entry.
func finalityOf(fields map[string]string) (finalityHeads, bool, error) {
	if fields["type"] != hook.TypeFinality {
		return finalityHeads{}, false, nil
	}
	f, err := hook.ParseFinalityEntry(fields)
	if err != nil {
		return finalityHeads{}, true, err
	}
	var out finalityHeads
	if f.Safe.Set {
		out.safe = f.Safe.Number
	}
	if f.Finalized.Set {
		out.final = f.Finalized.Number
	}
	// What ingest publishes is never finalized above safe; do not trust it.
	out.safe = max(out.safe, out.final)
	return out, true, nil
}

// blockRemovalsOf reads a block.removed entry; ok is false for any other.
func blockRemovalsOf(fields map[string]string) (hook.Cursor, bool, error) {
	if fields["type"] != hook.TypeBlockRemoved {
		return hook.Cursor{}, false, nil
	}
	b, err := hook.ParseBlockRemoved(fields)
	return b.Block, true, err
}

// applyBlockRemovals retracts whole orphaned blocks (a deep reorg: ingest no
// longer had their entries): every log message of the block hash gets its
// log.removed, every held event of it is suppressed. Under the chain's
// exclusive lock, like every removal, and idempotent (a replay inserts
// nothing twice).
func (m *Module) applyBlockRemovals(ctx context.Context, chainID uint64, blocks []hook.Cursor) ([]msgRow, error) {
	var queued []msgRow
	err := pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error {
		queued = queued[:0]
		if err := lockChain(ctx, tx, chainID, true); err != nil {
			return err
		}
		for _, b := range blocks {
			prefix := strconv.FormatUint(chainID, 10) + ":" + b.Hash + ":"
			if _, err := tx.Exec(ctx, `UPDATE process_holds SET state = 'removed', updated_at = now()
				WHERE chain_id = $1 AND block_number = $2 AND state = 'held' AND starts_with(event_id, $3)`,
				int64(chainID), int64(b.Number), prefix); err != nil {
				return fmt.Errorf("suppress held events of orphaned block %s: %w", b, err)
			}
			// Driven from endpoints: one probe of messages_block (endpoint_id,
			// block_number) per endpoint and partition. By block alone the
			// planner walks all of messages_block (measured: 260-580 ms for
			// 300,000 messages, against 1.8 ms for 100 endpoints), and an
			// index by block would cost every insert on the hot path.
			rows, err := tx.Query(ctx, `SELECT m.id, m.app_id, m.endpoint_id, m.event_id, m.tx_hash, m.payload::text
				FROM endpoints e CROSS JOIN LATERAL (SELECT * FROM messages m WHERE m.endpoint_id = e.id AND m.block_number = $1
					AND m.chain_id = $2 AND m.block_hash = $3 AND m.type = 'log') m`,
				int64(b.Number), int64(chainID), b.Hash)
			if err != nil {
				return fmt.Errorf("find messages of orphaned block %s: %w", b, err)
			}
			var out []msgRow
			for rows.Next() {
				var r msgRow
				var logID, payload string
				if err := rows.Scan(&logID, &r.appID, &r.endpointID, &r.eventID, &r.txHash, &payload); err != nil {
					rows.Close()
					return fmt.Errorf("read messages of orphaned block %s: %w", b, err)
				}
				body, err := retype(payload, hook.TypeLogRemoved)
				if err != nil {
					rows.Close()
					return fmt.Errorf("message %s of %s: %w", r.eventID, r.endpointID, err)
				}
				// The retraction's id takes its time from the log's message, so
				// a second pass over the same block makes the same id (and
				// ON CONFLICT skips it) in the same partition.
				logTime, ok := hook.MessageTime(logID)
				if !ok {
					logTime = time.Now()
				}
				r.id = hook.MessageID(r.endpointID, r.eventID, hook.TypeLogRemoved, logTime, time.Now())
				r.typ, r.webhookID = hook.TypeLogRemoved, hook.WebhookID(r.eventID, hook.TypeLogRemoved)
				r.chainID, r.blockNumber, r.blockHash, r.payload = int64(chainID), int64(b.Number), b.Hash, body
				out = append(out, r)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("read messages of orphaned block %s: %w", b, err)
			}
			// Events released into batch messages have no log message of
			// their own: as in the reorg window (applyRemoval), each gets
			// its log.removed, found by its released hold.
			batched, err := m.batchedRemovals(ctx, tx, chainID, b, prefix, out)
			if err != nil {
				return err
			}
			out = append(out, batched...)
			state := m.quotaStates(ctx)
			for i := range out {
				out[i].state = state(out[i].appID)
			}
			q, err := m.insertMessages(ctx, tx, out, false)
			if err != nil {
				return err
			}
			queued = append(queued, q...)
		}
		return nil
	})
	return queued, err
}

// batchedRemovals returns the log.removed messages of the events of
// orphaned block b that were released from a hold and have no log message
// (those of batching endpoints); have are the retractions found from log
// messages. The id takes its time from the hold's, so a second pass makes
// the same id.
func (m *Module) batchedRemovals(ctx context.Context, tx pgx.Tx, chainID uint64, b hook.Cursor, prefix string, have []msgRow) ([]msgRow, error) {
	rows, err := tx.Query(ctx, `SELECT h.app_id, h.endpoint_id, h.event_id, h.payload::text FROM process_holds h
		JOIN endpoints e ON e.id = h.endpoint_id
		WHERE h.chain_id = $1 AND h.block_number = $2 AND h.state = 'released' AND starts_with(h.event_id, $3)
		  AND h.payload IS NOT NULL`, int64(chainID), int64(b.Number), prefix)
	if err != nil {
		return nil, fmt.Errorf("find released holds of orphaned block %s: %w", b, err)
	}
	defer rows.Close()
	seen := make(map[[2]string]bool, len(have))
	for _, r := range have {
		seen[[2]string{r.endpointID, r.eventID}] = true
	}
	var out []msgRow
	for rows.Next() {
		var r msgRow
		var payload string
		if err := rows.Scan(&r.appID, &r.endpointID, &r.eventID, &payload); err != nil {
			return nil, fmt.Errorf("read released holds of orphaned block %s: %w", b, err)
		}
		if seen[[2]string{r.endpointID, r.eventID}] {
			continue // a log message of its own (confirmations, two-phase): retracted above
		}
		body, err := retype(payload, hook.TypeLogRemoved)
		if err != nil {
			return nil, fmt.Errorf("hold %s of %s: %w", r.eventID, r.endpointID, err)
		}
		var p Payload
		if err := json.Unmarshal(body, &p); err != nil {
			return nil, fmt.Errorf("hold %s of %s: %w", r.eventID, r.endpointID, err)
		}
		r.txHash = p.Transaction.Hash
		var ep *hook.Endpoint
		if t := m.ix.get(r.endpointID); t != nil {
			ep = &t.ep
		}
		r.order(ep, &p.Log)
		// The id of the window's retraction (route: the block's time), so
		// whichever path retracts first, the other inserts nothing.
		r.id = hook.MessageID(r.endpointID, r.eventID, hook.TypeLogRemoved, time.Unix(int64(p.Block.Timestamp), 0), time.Now())
		r.typ, r.webhookID = hook.TypeLogRemoved, hook.WebhookID(r.eventID, hook.TypeLogRemoved)
		r.chainID, r.blockNumber, r.blockHash, r.payload = int64(chainID), int64(b.Number), b.Hash, body
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read released holds of orphaned block %s: %w", b, err)
	}
	return out, nil
}

// retype rewrites a payload's type (a log's body as its log.removed).
func retype(payload, typ string) ([]byte, error) {
	var p Payload
	if err := json.Unmarshal([]byte(payload), &p); err != nil {
		return nil, fmt.Errorf("decode payload: %w", err)
	}
	p.Type = typ
	return json.Marshal(&p)
}

// specialEntries pulls the finality and block.removed entries out of a
// read (they carry no event). It reports an unreadable one with its error.
func specialEntries(entries []rueidis.XRangeEntry) (fin finalityHeads, last string, blocks []hook.Cursor, errs map[string]error) {
	for _, e := range entries {
		if e.FieldValues == nil {
			continue
		}
		f, ok, err := finalityOf(e.FieldValues)
		if !ok {
			var b hook.Cursor
			if b, ok, err = blockRemovalsOf(e.FieldValues); ok && err == nil {
				blocks = append(blocks, b)
			}
		} else if err == nil {
			fin.raise(f)
			last = e.ID
		}
		if ok && err != nil {
			if errs == nil {
				errs = map[string]error{}
			}
			errs[e.ID] = err
		}
	}
	return fin, last, blocks, errs
}

// newHold is the hold of ev for an endpoint that waits (confirmations, a
// finality stage or a batch). A two-phase endpoint's hold makes the
// log.finalized of a log already sent.
func newHold(t *target, ev *hook.Event, row msgRow, body []byte) holdRow {
	h := holdRow{endpointID: t.ep.ID, eventID: ev.ID, appID: t.ep.AppID, chainID: row.chainID,
		blockNumber: row.blockNumber, releaseBlok: row.blockNumber + int64(t.ep.Confirmations), payload: body,
		stage: holdStage(t.ep.Stage), releaseType: hook.TypeLog}
	if t.ep.TwoPhase {
		h.releaseType = hook.TypeLogFinalized
	}
	return h
}
