package admin

import (
	"context"
	"errors"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/ethhook/ethhook/internal/chainstatus"
	"github.com/ethhook/ethhook/ops"
	"github.com/ethhook/ethhook/tenant"
)

// emit queues an operational event (see ops.Emitter.Notify).
func (m *Module) emit(ctx context.Context, ev ops.Event) { m.ops.Notify(ctx, m.log, ev) }

// emitQuotaReached reports an application at its monthly quota, once per
// application and month (NoteQuotaReached returns each once; the key
// makes a second admin process's report the same event).
func (m *Module) emitQuotaReached(ctx context.Context, r tenant.QuotaReached, now time.Time) {
	month := now.UTC().Format("2006-01")
	m.emit(ctx, ops.Event{Type: ops.QuotaReached, Key: r.AppID + ":" + month, At: now,
		Data: map[string]any{"app_id": r.AppID, "app_name": r.AppName, "plan": r.PlanID, "month": month,
			"deliveries": r.Deliveries, "monthly_quota": r.Quota}})
}

// stallWatch remembers, per chain, the committed cursor last seen in
// Redis and since when it has not moved.
type stallWatch struct {
	cursor   map[uint64]string
	since    map[uint64]time.Time
	reported map[uint64]bool
}

// checkStalls reads every chain's cursor (one GET each: the chains are the
// configured few) and reports a chain whose cursor has not moved for
// admin.ingest_stall_after, once per cursor position: it is reported
// again only after it moved and stalled again.
func (m *Module) checkStalls(ctx context.Context, now time.Time) {
	if m.cfg.IngestStallAfter <= 0 || m.rdb == nil {
		return
	}
	w := &m.stalls
	if w.cursor == nil {
		w.cursor, w.since, w.reported = map[uint64]string{}, map[uint64]time.Time{}, map[uint64]bool{}
	}
	for _, ch := range m.chains {
		c, err := m.status.Cursor(ctx, ch.ID)
		if err != nil && !errors.Is(err, chainstatus.ErrBadCursor) {
			if ctx.Err() == nil && !errors.Is(err, context.Canceled) {
				m.log.Debug("read chain cursor", zap.String("chain", ch.Name), zap.Error(err))
			}
			continue // Redis trouble is not a stalled chain
		}
		cur := c.String() // "" before the first commit
		if prev, seen := w.cursor[ch.ID]; !seen || prev != cur {
			w.cursor[ch.ID], w.since[ch.ID], w.reported[ch.ID] = cur, now, false
			continue
		}
		if w.reported[ch.ID] || now.Sub(w.since[ch.ID]) < m.cfg.IngestStallAfter {
			continue
		}
		w.reported[ch.ID] = true
		data := map[string]any{"chain": ch.Name, "chain_id": ch.ID, "since": w.since[ch.ID].UTC().Format(time.RFC3339),
			"stalled_seconds": int64(now.Sub(w.since[ch.ID]).Seconds())}
		key := strconv.FormatUint(ch.ID, 10) + ":none"
		if c.Set {
			data["block_number"], data["block_hash"] = c.Number, c.Hash
			key = strconv.FormatUint(ch.ID, 10) + ":" + c.String()
		}
		m.log.Warn("chain cursor has not moved: ingest stalled", zap.String("chain", ch.Name), zap.Uint64("chain_id", ch.ID),
			zap.String("cursor", cur), zap.Duration("for", now.Sub(w.since[ch.ID])))
		m.emit(ctx, ops.Event{Type: ops.IngestStalled, Key: key, At: now, Data: data})
	}
}
