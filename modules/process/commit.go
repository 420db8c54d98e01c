package process

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/streams"
	"github.com/ethhook/ethhook/msgstate"
)

// Committing a routed read: its messages, holds and removals written to
// Postgres under the chain's advisory lock, then its delivery jobs queued.

// setStates gives every message of a read its state: pending, or
// quota_exceeded for an application over its quota (one check per
// application and read).
func (m *Module) setStates(ctx context.Context, rt *routed) {
	quota := map[string]string{}
	state := func(appID string) string {
		if s, ok := quota[appID]; ok {
			return s
		}
		s := hook.StatePending
		if over, err := m.quota.QuotaExceeded(ctx, appID); err != nil {
			// An outage, logged once with the read's other failures; the
			// message stays pending rather than being held back.
			if ctx.Err() == nil {
				m.out.Postgres.Fail("quota check", err)
			}
		} else if over {
			s = hook.StateQuotaExceeded
		}
		quota[appID] = s
		return s
	}
	for i := range rt.direct {
		rt.direct[i].state = state(rt.direct[i].appID)
	}
	for i := range rt.removals {
		rt.removals[i].removedMsg.state = state(rt.removals[i].appID)
	}
}

// commit writes a routed read and returns the messages to queue.
func (m *Module) commit(ctx context.Context, chainID uint64, rt *routed) ([]msgRow, error) {
	var queued []msgRow
	var err error
	switch {
	case len(rt.removals) > 0:
		queued, err = m.writeWithRemovals(ctx, chainID, rt.direct, rt.holds, rt.removals)
	case len(rt.direct)+len(rt.holds) > 0:
		queued, err = m.writeBatch(ctx, chainID, rt.direct, rt.holds)
	}
	if err == nil && len(rt.blockRemovals) > 0 {
		// After the read's logs: every log of an orphaned block precedes
		// its block.removed in the stream.
		var q []msgRow
		q, err = m.applyBlockRemovals(ctx, chainID, rt.blockRemovals)
		queued = append(queued, q...)
	}
	return queued, err
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

// messageRows gives rows to msgstate.Insert, which inserts them skipping
// those that exist already and, with tombstones, those whose event was
// removed before it was queued. They go in endpoint order (stable, so each
// endpoint's rows keep their chain order): the inserts then touch each
// endpoint's index pages together instead of every endpoint's pages in
// turn, as a read's rows in stream order do.
func messageRows(rows []msgRow) *msgstate.Rows {
	order := make([]int32, len(rows))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortStableFunc(order, func(a, b int32) int { return strings.Compare(rows[a].endpointID, rows[b].endpointID) })
	out := msgstate.MakeRows(len(rows))
	for i, at := range order {
		r := &rows[at]
		out.IDs[i], out.AppIDs[i], out.EndpointIDs[i], out.EventIDs[i], out.Types[i], out.WebhookIDs[i] =
			r.id, r.appID, r.endpointID, r.eventID, r.typ, r.webhookID
		out.ChainIDs[i], out.BlockNumbers[i], out.BlockHashes[i], out.TxHashes[i], out.Payloads[i], out.States[i] =
			r.chainID, r.blockNumber, r.blockHash, r.txHash, string(r.payload), r.state
		out.LogIndexes[i], out.FIFOKeys[i] = r.logIndex, r.fifoKey
	}
	return &out
}

// readInserted collects the ids msgstate.Insert returned.
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
	got, err := msgstate.Insert(ctx, tx, messageRows(rows), tombstones)
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
	pend, err := q.Query(ctx, `SELECT m.id, m.endpoint_id, s.state FROM messages m
		JOIN unnest($1::text[], $2::text[], $3::text[], $4::int8[]) AS t(endpoint_id, event_id, type, block_number)
		  ON m.endpoint_id = t.endpoint_id AND m.block_number = t.block_number AND m.event_id = t.event_id AND m.type = t.type
		JOIN message_states s ON s.id = m.id AND s.app_id = m.app_id
		WHERE s.state = 'pending'`, missEP, missEv, missTyp, missBlock)
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
		msgstate.QueueInsert(b, messageRows(direct), true)
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

// enqueue offers a delivery job per pending message (pipelined).
func (m *Module) enqueue(ctx context.Context, rows []msgRow) error {
	jobs := make([]hook.Job, 0, len(rows))
	for _, r := range rows {
		if r.state != hook.StatePending {
			continue // quota_exceeded: released by the quota loop, not queued now
		}
		jobs = append(jobs, hook.Job{MessageID: r.id, EndpointID: r.endpointID})
	}
	if err := streams.Offer(ctx, m.rdb, m.keys, jobs...); err != nil {
		return fmt.Errorf("queue delivery jobs: %w", err)
	}
	return nil
}
