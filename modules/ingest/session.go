package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/internal/sleep"
	"github.com/ethhook/ethhook/modules/ingest/rpc"
)

// active keeps a session to one of the chain's URLs, reconnecting with
// backoff and failing over, until ctx is done or the lease is lost.
func (r *chainRunner) active(ctx context.Context) error {
	bo := sleep.Backoff{Min: r.ing.ReconnectMin, Max: r.ing.ReconnectMax, Jitter: true}
	first := true
	for ctx.Err() == nil {
		i := pick(r.eps, r.epIdx, time.Now())
		r.epIdx = i
		ep := r.eps[i]
		if !first {
			r.mReconnects.Inc()
		}
		first = false
		before := r.commits
		healthy, err := r.session(ctx, ep)
		healthy = healthy || r.commits != before // progress counts as health
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errFenced) {
			return err
		}
		var se storeError
		if errors.As(err, &se) {
			// EthHook's own storage failed, not the node: the URL keeps
			// its health and its turn, and the outage is logged once.
			r.out.Fail(se.op, se.err)
			if !sleep.For(ctx, bo.Next()) {
				return nil
			}
			continue
		}
		if errors.Is(err, errQuorum) {
			// The others outvoted or outran this provider (quorum.go).
			ep.failure(time.Now())
			r.epIdx = (i + 1) % len(r.eps)
		} else if errors.Is(err, errWrongChain) || errors.Is(err, errForeignNode) {
			// At session start, on a deep reorg, a head jump or the
			// periodic check (chainid.go), or a node that contradicts
			// the committed chain (foreign.go): nothing of it was committed.
			ep.refuse(time.Now(), wrongChainOpen)
			r.epIdx = (i + 1) % len(r.eps)
		} else if healthy {
			bo.Reset()
			ep.success()
		} else {
			ep.failure(time.Now())
			r.epIdx = (i + 1) % len(r.eps) // fail over
		}
		d := bo.Next()
		r.log.Warn("rpc session ended; reconnecting", zap.String("url", ep.redacted), zap.Uint64("block", r.cur.Number), zap.Error(err), zap.Duration("backoff", d))
		if !sleep.For(ctx, d) {
			return nil
		}
	}
	return nil
}

func (r *chainRunner) checkChainID(ctx context.Context, c caller, redacted string) error {
	var id quantity
	if err := r.retry(ctx, func() error { return c.Call(ctx, &id, "eth_chainId") }); err != nil {
		return fmt.Errorf("eth_chainId: %w", err)
	}
	if uint64(id) != r.ch.ID {
		r.mWrong.Inc()
		r.log.Error("node answers a wrong chain id; refusing this URL", zap.String("url", redacted),
			zap.Uint64("want", r.ch.ID), zap.Uint64("got", uint64(id)))
		return fmt.Errorf("%w: %s is chain %d, want %d", errWrongChain, redacted, uint64(id), r.ch.ID)
	}
	return nil
}

// storeError ends a session on a failure of EthHook's own storage (Redis's
// committed chain, Postgres's durable cursor) rather than of the node.
type storeError struct {
	op  string
	err error // marked outage.Postgres when it is Postgres's
}

func (e storeError) Error() string { return e.op + ": " + e.err.Error() }
func (e storeError) Unwrap() error { return e.err }

// session runs one connection: verify, load state, subscribe, catch up,
// then follow heads. healthy is true once it caught up with the head.
func (r *chainRunner) session(ctx context.Context, ep *endpoint) (healthy bool, err error) {
	ws, err := rpc.DialWS(ctx, ep.url, r.rpcOptions(ep.url))
	if err != nil {
		return false, fmt.Errorf("connect %s: %w", ep.redacted, err)
	}
	defer ws.Close()
	if err := r.checkChainID(ctx, ws, ep.redacted); err != nil {
		return false, err
	}
	r.ws, r.bf, r.url = ws, ws, ep.redacted
	defer func() { r.ws, r.bf = nil, nil }()
	if r.q != nil {
		defer r.q.endSession()
	}
	if r.ch.HTTPURL != "" {
		h := rpc.NewHTTP(r.ch.HTTPURL, r.rpcOptions(r.ch.HTTPURL))
		if err := r.checkChainID(ctx, h, config.RedactURL(r.ch.HTTPURL)); err != nil {
			r.log.Warn("http_url unusable; backfilling over WebSocket", zap.Error(err))
		} else {
			r.bf = h
		}
	}
	prev := r.cur
	if r.cur, r.win, err = r.st.load(ctx); err != nil {
		return false, storeError{"load the committed chain", err}
	}
	r.out.Redis.OK()
	if err := r.resume(ctx, prev); err != nil {
		return false, err
	}
	if r.cur.Set {
		r.mCommitted.Set(float64(r.cur.Number))
	}
	sub, err := ws.Subscribe(ctx, "newHeads")
	if err != nil {
		return false, fmt.Errorf("subscribe newHeads: %w", err)
	}
	head, err := r.latest(ctx)
	if err != nil {
		return false, err
	}
	if err := r.syncTo(ctx, head); err != nil {
		return false, err
	}
	r.fin.next, r.fin.unsupported, r.fin.loaded = time.Time{}, [2]bool{}, false // a new node: ask it
	if err := r.pollFinality(ctx); err != nil {
		return false, err
	}
	r.ready.Store(true)
	r.log.Info("live", zap.String("url", ep.redacted), zap.Uint64("block", r.cur.Number))
	var dropped uint64 // sub.Dropped already counted
	poll := r.pollInterval()
	timer := time.NewTimer(poll)
	defer timer.Stop()
	recheck := time.NewTicker(r.ing.ChainIDCheckInterval)
	defer recheck.Stop()
	for {
		select {
		case <-ctx.Done():
			return true, nil
		case <-recheck.C:
			if err := r.recheckChainID(ctx); err != nil {
				return true, err
			}
			continue
		case <-ws.Done():
			return true, ws.Err()
		case _, ok := <-sub.C:
			if !ok {
				return true, ws.Err()
			}
			// A head is a hint: only the newest matters. Heads the queue
			// dropped to stay within its byte budget are not missed: the
			// next head (or the poll below) backfills from the cursor.
			var raw []byte
			for more, ok := sub.Next(); ok; more, ok = sub.Next() {
				raw = more
			}
			if d := sub.Dropped.Load(); d > dropped {
				r.mDropped.Add(float64(d - dropped))
				dropped = d
			}
			if raw == nil {
				continue
			}
			var h header
			if err := json.Unmarshal(raw, &h); err != nil {
				r.mMalformed.Inc()
				r.log.Warn("malformed newHeads notification", zap.String("url", ep.redacted), zap.Error(err))
				continue
			}
			if err := h.normalize(); err != nil {
				r.invalid("newHeads", err)
				continue
			}
			err = r.syncTo(ctx, h)
		case <-timer.C:
			var h header
			if h, err = r.latest(ctx); err == nil {
				err = r.syncTo(ctx, h)
			}
			if err == nil && r.q != nil {
				err = r.checkPrimaryLag(ctx)
			}
		}
		if err == nil {
			err = r.pollFinality(ctx)
		}
		if err != nil {
			return true, err
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(poll)
	}
}

func (r *chainRunner) pollInterval() time.Duration {
	if r.ing.HeadPollInterval > 0 {
		return r.ing.HeadPollInterval
	}
	return min(max(2*r.ch.BlockTime, time.Second), 30*time.Second)
}

func (r *chainRunner) getHeader(ctx context.Context, method string, arg any) (header, error) {
	var h *header
	err := r.retry(ctx, func() error { h = nil; return r.ws.Call(ctx, &h, method, arg, false) })
	if err != nil {
		return header{}, err
	}
	if h == nil {
		return header{}, fmt.Errorf("%s(%v): block not found", method, arg)
	}
	if err := h.normalize(); err != nil {
		r.invalid(method, err)
		return header{}, fmt.Errorf("%s(%v): %w", method, arg, err)
	}
	return *h, nil
}

func (r *chainRunner) latest(ctx context.Context) (header, error) {
	return r.getHeader(ctx, "eth_getBlockByNumber", "latest")
}

// headerByHash fetches a block header by hash, waiting briefly for a
// lagging node that does not know it yet.
func (r *chainRunner) headerByHash(ctx context.Context, hash string) (header, error) {
	var err error
	for attempt := 0; attempt < 4; attempt++ {
		var h header
		if h, err = r.getHeader(ctx, "eth_getBlockByHash", hash); err == nil {
			return h, nil
		}
		if !sleep.For(ctx, callPause.After(attempt)) {
			return header{}, ctx.Err()
		}
	}
	return header{}, fmt.Errorf("fetch block %s: %w", hash, err)
}
