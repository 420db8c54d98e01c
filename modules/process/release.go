package process

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/oklog/ulid/v2"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/chainstatus"
	"github.com/ethhook/ethhook/internal/streams"
)

const releaseLimit = 5000

func (m *Module) kickRelease(chainID uint64) {
	if ch := m.releaseCh[chainID]; ch != nil {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// releaser turns held events into messages once they are deep enough, and
// batches into batch messages once full or old enough.
func (m *Module) releaser(ctx context.Context, chainID uint64) error {
	log := m.log.With(zap.Uint64("chain", chainID))
	ht := m.tracker(chainID)
	// Start from the head stored by earlier runs and other processes.
	var stored, storedSafe, storedFinal int64
	if err := m.pool.QueryRow(ctx, `SELECT head, safe_head, finalized_head FROM process_heads WHERE chain_id = $1`, int64(chainID)).Scan(&stored, &storedSafe, &storedFinal); err == nil {
		ht.raise(uint64(stored), finalityHeads{safe: uint64(storedSafe), final: uint64(storedFinal)})
	}
	_, persistedFin := ht.heads()
	tick := time.NewTicker(m.cfg.ReleaseInterval)
	defer tick.Stop()
	var persisted uint64
	var lastCursor time.Time
	durable, err := m.cursors.Load(ctx, chainID)
	if err != nil && ctx.Err() == nil {
		log.Warn("load durable chain cursor", zap.Error(err))
	}
	lastGauge := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			// The ingest cursor moves on blocks without logs; it is safe to use
			// once every entry published before it was read and acknowledged.
			if c, ok := m.cursorHead(ctx, chainID); ok {
				ht.raise(c.Number, finalityHeads{})
				ht.raiseCursor(c)
			}
		case <-m.releaseCh[chainID]:
		}
		err := m.settleHead(ctx, chainID, ht)
		if ctx.Err() == nil {
			m.out.Redis.Report("settle chain head", err)
		}
		if time.Since(lastCursor) >= cursorEvery {
			var wrote bool
			if durable, wrote = m.storeCursor(ctx, chainID, ht, durable); wrote {
				lastCursor = time.Now()
			}
		}
		head, fin := ht.heads()
		if head > persisted || fin != persistedFin {
			var h, hs, hf int64
			err := m.pool.QueryRow(ctx, `INSERT INTO process_heads (chain_id, head, safe_head, finalized_head) VALUES ($1, $2, $3, $4)
				ON CONFLICT (chain_id) DO UPDATE SET head = GREATEST(process_heads.head, EXCLUDED.head),
					safe_head = GREATEST(process_heads.safe_head, EXCLUDED.safe_head),
					finalized_head = GREATEST(process_heads.finalized_head, EXCLUDED.finalized_head), updated_at = now()
				RETURNING head, safe_head, finalized_head`, int64(chainID), int64(head), int64(fin.safe), int64(fin.final)).Scan(&h, &hs, &hf)
			if err == nil {
				persisted = uint64(h)
				ht.raise(uint64(h), finalityHeads{safe: uint64(hs), final: uint64(hf)})
				head = max(head, uint64(h))
				_, fin = ht.heads()
				persistedFin = fin
			}
			if ctx.Err() == nil {
				m.out.Postgres.Report("store chain head", err)
			}
		}
		for {
			// Not cancelled by shutdown: a commit whose outcome we did not
			// see would leave released messages without jobs.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			n, err := m.release(rctx, chainID, head, fin)
			cancel()
			if ctx.Err() == nil {
				m.out.Report("release held events", err)
			}
			if err != nil {
				break
			}
			if n < releaseLimit {
				break
			}
		}
		if time.Since(lastGauge) > 5*time.Second {
			var held int64
			if err := m.pool.QueryRow(ctx, `SELECT count(*) FROM process_holds WHERE chain_id = $1 AND state = 'held'`, int64(chainID)).Scan(&held); err == nil {
				m.met.held.WithLabelValues(m.chainLabels(chainID)).Set(float64(held))
			}
			lastGauge = time.Now()
		}
	}
}

// cursorHead reads the ingest cursor and returns it if the group has
// nothing unread or unacknowledged. The cursor is read first: every entry
// of its blocks was added before, so a group found caught up after has
// handled them all.
func (m *Module) cursorHead(ctx context.Context, chainID uint64) (hook.Cursor, bool) {
	c, err := chainstatus.New(m.rdb, m.keys).Cursor(ctx, chainID)
	if err != nil || !c.Set {
		return hook.Cursor{}, false
	}
	g, found, err := streams.Info(ctx, m.rdb, m.keys.Events(chainID), Group)
	if err != nil || !found || !g.Caught() {
		return hook.Cursor{}, false
	}
	return c, true
}

type heldRow struct {
	endpointID, eventID, appID string
	blockNumber                int64
	payload                    []byte
	createdAt                  time.Time
	releaseType                string // log, or log.finalized (two-phase)
}

// release releases due holds of one chain: those counted in blocks against
// head, those at a finality stage against the node's heads fin. It returns
// how many rows it read.
func (m *Module) release(ctx context.Context, chainID uint64, head uint64, fin finalityHeads) (int, error) {
	var read int
	var queued []msgRow
	err := pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error {
		queued, read = queued[:0], 0
		if err := lockChain(ctx, tx, chainID, false); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT endpoint_id, event_id, app_id, block_number, payload, created_at, release_type FROM process_holds
			WHERE chain_id = $1 AND state = 'held' AND ((stage = 0 AND release_block <= $2)
				OR (stage = 1 AND block_number <= $4) OR (stage = 2 AND block_number <= $5))
			ORDER BY endpoint_id, block_number, event_id LIMIT $3 FOR UPDATE SKIP LOCKED`,
			int64(chainID), int64(head), releaseLimit, int64(fin.safe), int64(fin.final))
		if err != nil {
			return fmt.Errorf("read due holds: %w", err)
		}
		var due []heldRow
		for rows.Next() {
			var h heldRow
			if err := rows.Scan(&h.endpointID, &h.eventID, &h.appID, &h.blockNumber, &h.payload, &h.createdAt, &h.releaseType); err != nil {
				rows.Close()
				return fmt.Errorf("read due holds: %w", err)
			}
			due = append(due, h)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read due holds: %w", err)
		}
		read = len(due)
		if len(due) == 0 {
			return nil
		}
		var msgs []msgRow
		var relEP, relEv []string
		state := m.quotaStates(ctx)
		now := time.Now()
		for start := 0; start < len(due); {
			end := start
			for end < len(due) && due[end].endpointID == due[start].endpointID {
				end++
			}
			group := due[start:end]
			start = end
			t := m.ix.get(group[0].endpointID)
			if t != nil && t.ep.Batching() {
				k := t.ep.BatchMax
				wait := time.Duration(t.ep.BatchWaitMS) * time.Millisecond
				oldest := group[0].createdAt
				for _, h := range group {
					if h.createdAt.Before(oldest) {
						oldest = h.createdAt
					}
				}
				for len(group) > 0 {
					n := min(k, len(group))
					if n < k && now.Sub(oldest) < wait {
						break // a partial batch waits for more events or for its time
					}
					msg, err := batchMessage(chainID, &t.ep, group[:n], head)
					if err != nil {
						return err
					}
					msg.state = state(group[0].appID)
					msgs = append(msgs, msg)
					for _, h := range group[:n] {
						relEP, relEv = append(relEP, h.endpointID), append(relEv, h.eventID)
					}
					group = group[n:]
				}
				continue
			}
			var ep *hook.Endpoint
			if t != nil {
				ep = &t.ep
			}
			for _, h := range group {
				msg, err := singleMessage(chainID, ep, h, head)
				if err != nil {
					return err
				}
				msg.state = state(h.appID)
				msgs = append(msgs, msg)
				relEP, relEv = append(relEP, h.endpointID), append(relEv, h.eventID)
			}
		}
		if len(msgs) == 0 {
			return nil
		}
		q, err := m.insertMessages(ctx, tx, msgs, false)
		if err != nil {
			return err
		}
		queued = q
		_, err = tx.Exec(ctx, `UPDATE process_holds h SET state = 'released', updated_at = now()
			FROM unnest($1::text[], $2::text[]) AS t(endpoint_id, event_id)
			WHERE h.endpoint_id = t.endpoint_id AND h.event_id = t.event_id`, relEP, relEv)
		if err != nil {
			return fmt.Errorf("mark %d holds released: %w", len(relEP), err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	// After a real crash here deliver's sweep of pending messages finds them.
	if err := m.enqueue(ctx, queued); err != nil {
		// The messages are committed and pending: deliver's sweep finds them.
		return read, fmt.Errorf("queue released messages (deliver's sweep will pick them up): %w", err)
	}
	return read, nil
}

func setConfirmations(payload []byte, head uint64, block int64) (*Payload, error) {
	var p Payload
	if err := json.Unmarshal(payload, &p); err != nil {
		return nil, fmt.Errorf("decode held payload: %w", err)
	}
	p.Confirmations = 0
	if head > uint64(block) {
		p.Confirmations = head - uint64(block)
	}
	return &p, nil
}

func singleMessage(chainID uint64, ep *hook.Endpoint, h heldRow, head uint64) (msgRow, error) {
	p, err := setConfirmations(h.payload, head, h.blockNumber)
	if err != nil {
		return msgRow{}, err
	}
	typ := hook.TypeLog
	if h.releaseType == hook.TypeLogFinalized {
		typ = hook.TypeLogFinalized
	}
	p.Type = typ
	body, err := json.Marshal(p)
	if err != nil {
		return msgRow{}, err
	}
	id := hook.MessageID(h.endpointID, h.eventID, typ, time.Unix(int64(p.Block.Timestamp), 0), time.Now())
	r := msgRow{id: id, appID: h.appID, endpointID: h.endpointID, eventID: h.eventID, typ: typ,
		webhookID: hook.WebhookID(h.eventID, typ), chainID: int64(chainID), blockNumber: h.blockNumber,
		blockHash: p.Block.Hash, txHash: p.Transaction.Hash, payload: body}
	r.order(ep, &p.Log)
	return r, nil
}

// batchMessage makes one message of held events; a FIFO endpoint orders
// it by its last event (endpoint validation refuses a fifo_key with batching).
func batchMessage(chainID uint64, ep *hook.Endpoint, hs []heldRow, head uint64) (msgRow, error) {
	endpointID := ep.ID
	id := "batch_" + ulid.Make().String()
	bp := BatchPayload{ID: id, Type: hook.TypeBatch, APIVersion: APIVersion, EndpointID: endpointID}
	var top int64
	var last hook.Log
	for _, h := range hs {
		p, err := setConfirmations(h.payload, head, h.blockNumber)
		if err != nil {
			return msgRow{}, err
		}
		if h.blockNumber >= top {
			last = p.Log
		}
		b, err := json.Marshal(p)
		if err != nil {
			return msgRow{}, err
		}
		bp.Events = append(bp.Events, b)
		top = max(top, h.blockNumber)
	}
	body, err := json.Marshal(bp)
	if err != nil {
		return msgRow{}, err
	}
	r := msgRow{id: newMessageID(), appID: hs[0].appID, endpointID: endpointID, eventID: id, typ: hook.TypeBatch,
		webhookID: id, chainID: int64(chainID), blockNumber: top, payload: body}
	r.order(ep, &last)
	return r, nil
}
