package ingest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/sleep"
	"github.com/ethhook/ethhook/modules/ingest/rpc"
)

// dial opens the historian's own node connection: the chain's HTTP URL
// when configured, else its first WebSocket URL.
func (h *historian) dial(ctx context.Context) (caller, error) {
	if h.conn != nil {
		if h.ws == nil {
			return h.conn, nil
		}
		select {
		case <-h.ws.Done():
			h.closeConn()
		default:
			return h.conn, nil
		}
	}
	if h.r.ch.HTTPURL != "" {
		h.conn = rpc.NewHTTP(h.r.ch.HTTPURL, h.r.rpcOptions(h.r.ch.HTTPURL))
		return h.conn, nil
	}
	var err error
	for _, u := range h.r.ch.WSURLs {
		var ws *rpc.WS
		if ws, err = rpc.DialWS(ctx, u, h.r.rpcOptions(u)); err == nil {
			h.ws, h.conn = ws, ws
			return ws, nil
		}
	}
	return nil, fmt.Errorf("dial node for history: %w", err)
}

func (h *historian) closeConn() {
	if h.ws != nil {
		_ = h.ws.Close()
	}
	h.ws, h.conn = nil, nil
}

// fetch publishes j's blocks j.next..j.to in span-sized eth_getLogs
// requests; a range the node refuses (-32005 and friends) is split.
func (h *historian) fetch(ctx context.Context, j *job, q map[string]any, log *zap.Logger) error {
	failures := 0
	for j.next <= j.to && ctx.Err() == nil {
		if err := h.waitRoom(ctx); err != nil {
			return err
		}
		conn, err := h.dial(ctx)
		if err != nil {
			return h.failure(ctx, &failures, err, log)
		}
		end := min(j.next+h.span.next()-1, j.to)
		tried := end - j.next + 1
		logs, bytes, err := h.getLogs(ctx, conn, q, j.next, end)
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, rpc.ErrTooLarge):
			h.span.tooLarge(tried, h.r.ing.MaxMessageBytes)
			log.Info("history eth_getLogs answer too large; shrinking", zap.Uint64("block", j.next), zap.Uint64("range", h.span.next()))
			continue
		case rpc.IsRangeError(err) && end > j.next:
			h.span.refused(tried)
			log.Info("history eth_getLogs range refused; splitting", zap.Uint64("block", j.next), zap.Uint64("tried", tried),
				zap.Uint64("range", h.span.next()), zap.Error(err))
			continue
		case isTimeout(err) && end > j.next:
			h.span.failed(tried)
			continue
		default:
			if err := h.failure(ctx, &failures, fmt.Errorf("eth_getLogs %d..%d: %w", j.next, end, err), log); err != nil {
				return err
			}
			continue
		}
		failures = 0
		h.span.observe(tried, bytes)
		if j.events+int64(len(logs)) > h.opt.MaxEvents {
			return failf("blocks %d..%d hold more than %d matching events (MaxHistoryEvents); narrow the filter or pick a later from_block",
				j.from, end, h.opt.MaxEvents)
		}
		evs, err := h.events(ctx, conn, logs)
		if err != nil {
			if err := h.failure(ctx, &failures, err, log); err != nil {
				return err
			}
			continue
		}
		if err := h.publish(ctx, j, evs, end, end == j.to); err != nil {
			return err
		}
		j.events += int64(len(evs))
		j.next = end + 1
	}
	if ctx.Err() == nil {
		log.Info("history published", zap.Uint64("from_block", j.from), zap.Uint64("to_block", j.to), zap.Int64("events", j.events))
	}
	return ctx.Err()
}

// failure counts a failed fetch: backoff, and after historyFailures in a
// row the history fails with err.
func (h *historian) failure(ctx context.Context, n *int, err error, log *zap.Logger) error {
	*n++
	if *n >= historyFailures {
		return failf("fetching from the node failed %d times in a row: %v", *n, err)
	}
	log.Warn("history fetch failed; retrying", zap.Int("try", *n), zap.Error(err))
	h.closeConn()
	if !sleep.For(ctx, time.Duration(*n)*200*time.Millisecond) {
		return ctx.Err()
	}
	return nil
}

// waitRoom holds the historian back while the history stream has
// MaxQueued entries process has not handled: history never grows Redis
// without bound, and process (which favours the live stream) sets the pace.
func (h *historian) waitRoom(ctx context.Context) error {
	rdb := h.r.st.rdb
	for {
		n, err := rdb.Do(ctx, rdb.B().Xlen().Key(h.key).Build()).AsInt64()
		if err != nil {
			return fmt.Errorf("XLEN %s: %w", h.key, err)
		}
		if n < h.opt.MaxQueued {
			return nil
		}
		if !sleep.For(ctx, 50*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// getLogs is one filtered ranged eth_getLogs, validated and in chain order.
func (h *historian) getLogs(ctx context.Context, conn caller, q map[string]any, from, to uint64) ([]ethLog, int64, error) {
	p := make(map[string]any, len(q)+2)
	for k, v := range q {
		p[k] = v
	}
	p["fromBlock"], p["toBlock"] = hexNum(from), hexNum(to)
	var logs []ethLog
	err := h.r.retryRateLimit(ctx, func() error {
		logs = nil
		return conn.Call(ctx, &logs, "eth_getLogs", p)
	})
	if err != nil {
		return nil, 0, err
	}
	if err := validateLogs(logs); err != nil {
		h.r.invalid("eth_getLogs", err)
		return nil, 0, err
	}
	for i := range logs {
		if n := uint64(logs[i].BlockNumber); n < from || n > to {
			return nil, 0, fmt.Errorf("eth_getLogs %d..%d returned a log of block %d", from, to, n)
		}
	}
	sort.SliceStable(logs, func(a, b int) bool {
		if logs[a].BlockNumber != logs[b].BlockNumber {
			return logs[a].BlockNumber < logs[b].BlockNumber
		}
		return logs[a].LogIndex < logs[b].LogIndex
	})
	return logs, estimateBytes(logs), nil
}

// events turns logs into stream entry fields with the live path's encoder
// (appendEventJSON), fetching the headers of their blocks (timestamps).
func (h *historian) events(ctx context.Context, conn caller, logs []ethLog) ([]map[string]string, error) {
	var hashes []string
	seen := map[string]bool{}
	for i := range logs {
		if bh := logs[i].BlockHash; !seen[bh] {
			seen[bh] = true
			hashes = append(hashes, bh)
		}
	}
	headers := make(map[string]*header, len(hashes))
	for i := 0; i < len(hashes); i += headerBatch {
		part := hashes[i:min(i+headerBatch, len(hashes))]
		ptrs := make([]*header, len(part))
		elems := make([]rpc.BatchElem, len(part))
		for k, bh := range part {
			elems[k] = rpc.BatchElem{Method: "eth_getBlockByHash", Params: []any{bh, false}, Result: &ptrs[k]}
		}
		if err := h.r.retry(ctx, func() error { return conn.Batch(ctx, elems) }); err != nil {
			return nil, fmt.Errorf("fetch %d headers: %w", len(part), err)
		}
		for k, p := range ptrs {
			if elems[k].Error != nil {
				return nil, fmt.Errorf("fetch header %s: %w", part[k], elems[k].Error)
			}
			if p == nil {
				return nil, fmt.Errorf("block %s not available (reorged?)", part[k])
			}
			if err := p.normalize(); err != nil {
				h.r.invalid("eth_getBlockByHash", err)
				return nil, err
			}
			headers[part[k]] = p
		}
	}
	out := make([]map[string]string, 0, len(logs))
	var buf []byte
	for i := range logs {
		l := &logs[i]
		if l.Removed {
			continue
		}
		hd := headers[l.BlockHash]
		if hd == nil || uint64(hd.Number) != uint64(l.BlockNumber) {
			return nil, fmt.Errorf("log %d of block %d does not belong to its header", uint64(l.LogIndex), uint64(l.BlockNumber))
		}
		id := hook.EventID(h.r.ch.ID, hd.Hash, uint(l.LogIndex))
		buf = appendEventJSON(buf[:0], id, hook.TypeLog, h.r.ch.ID, h.r.ch.Name, hd, l)
		out = append(out, map[string]string{"id": id, "type": hook.TypeLog, "event": string(buf)})
	}
	return out, nil
}

// publish appends evs (entry fields) for j and a mark through block
// through, in one pipeline, in order.
func (h *historian) publish(ctx context.Context, j *job, evs []map[string]string, through uint64, final bool) error {
	rdb := h.r.st.rdb
	cmds := make(rueidis.Commands, 0, len(evs)+1)
	for _, f := range evs {
		cmds = append(cmds, rdb.B().Xadd().Key(h.key).Id("*").FieldValue().
			FieldValue("endpoint", j.endpointID).FieldValue("id", f["id"]).FieldValue("type", f["type"]).FieldValue("event", f["event"]).Build())
	}
	cmds = append(cmds, rdb.B().Xadd().Key(h.key).Id("*").FieldValue().FieldValue("endpoint", j.endpointID).
		FieldValue("through", strconv.FormatUint(through, 10)).FieldValue("final", strconv.FormatBool(final)).Build())
	for _, res := range rdb.DoMulti(ctx, cmds...) {
		if err := res.Error(); err != nil {
			return fmt.Errorf("publish history of %s: %w", j.endpointID, err)
		}
	}
	return nil
}
