package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/backpressure"
	"github.com/ethhook/ethhook/internal/sleep"
	"github.com/ethhook/ethhook/modules/ingest/rpc"
)

// caller is what both transports offer.
type caller interface {
	Call(ctx context.Context, out any, method string, params ...any) error
	Batch(ctx context.Context, elems []rpc.BatchElem) error
}

var errWrongChain = errors.New("wrong chain id")

// headerBatch is how many headers one JSON-RPC batch asks for.
const headerBatch = 100

// chainRunner ingests one chain. Only its own goroutines touch its fields.
type chainRunner struct {
	m      *Module
	ch     config.Chain
	ing    config.Ingest
	log    *zap.Logger
	st     *store
	keep   uint64 // blocks whose entries are kept for log.removed (reorg_depth+1)
	deep   uint64 // window depth: hashes kept to find deep reorgs' ancestors (max_reorg_depth+1)
	eps    []*endpoint
	epIdx  int
	holder string
	ready  atomic.Bool

	span span // ranged eth_getLogs sizing (only the prefetcher touches it)

	// Per session.
	token int64
	url   string // the session's URL, redacted (for logs)
	ws    *rpc.WS
	bf    caller // backfill transport: HTTP when configured, else ws
	cur   cursor
	win   map[uint64]winEntry
	head  uint64

	commits uint64 // successful commits, ever

	fin finality // the node's safe and finalized blocks (finality.go)

	process *backpressure.Gate // holds commits back while process is far behind

	mHead, mCommitted, mLag, mLease prometheus.Gauge
	mHeldBack                       prometheus.Gauge
	mLogs, mRemoved, mBlocks, mBack prometheus.Counter
	mReconnects, mMalformed, mWrong prometheus.Counter
	mOversized, mRejected, mEmpty   prometheus.Counter
	mDropped, mInvalid              prometheus.Counter
	mLeaseLost, mLeaseRetaken       prometheus.Counter
	mRedisLost                      *prometheus.CounterVec
	mReorg                          prometheus.Observer
	mRPCErr, mHeadJumps, mRestarts  *prometheus.CounterVec
	mRPCLat                         prometheus.ObserverVec
	mFinality                       *prometheus.GaugeVec
	mFinalityRefused, mForeign      *prometheus.CounterVec
	mDeepReorgs                     prometheus.Counter
}

func newChainRunner(m *Module, ch config.Chain) *chainRunner {
	ing := m.cfg.Ingest
	maxRange := ing.MaxLogRange
	if ch.MaxLogRange > 0 {
		maxRange = ch.MaxLogRange
	}
	depth := ch.ReorgDepth
	if depth < 1 {
		depth = 64
	}
	r := &chainRunner{
		m: m, ch: ch, ing: ing,
		log:    m.log.With(zap.String("chain", ch.Name), zap.Uint64("chain_id", ch.ID)),
		st:     newStore(m.rdb, m.cfg.Redis.Prefix, ch.ID, ing.StreamMaxLen, m.cfg.DedupTTL()),
		keep:   uint64(depth) + 1,
		deep:   uint64(maxReorgDepth(depth, ch.MaxReorgDepth)) + 1,
		holder: holderID(),
		span:   newSpan(maxRange, answerBudget(ing.MaxMessageBytes)),
	}
	for _, u := range ch.WSURLs {
		r.eps = append(r.eps, &endpoint{url: u, redacted: config.RedactURL(u)})
	}
	mt, cl := m.met, chainLabelValues(ch.Name, ch.ID)
	r.mHead, r.mCommitted, r.mLag, r.mLease = mt.head.With(cl), mt.committed.With(cl), mt.lag.With(cl), mt.leaseHolder.With(cl)
	logs := mt.logs.MustCurryWith(cl)
	r.mLogs, r.mRemoved = logs.WithLabelValues(hook.TypeLog), logs.WithLabelValues(hook.TypeLogRemoved)
	r.mBlocks, r.mBack, r.mReconnects = mt.blocks.With(cl), mt.backfilled.With(cl), mt.reconnects.With(cl)
	r.mMalformed, r.mWrong, r.mOversized = mt.malformed.With(cl), mt.wrongChain.With(cl), mt.oversized.With(cl)
	r.mRejected, r.mEmpty = mt.rejectedLogs.With(cl), mt.emptyRefetch.With(cl)
	r.mLeaseLost, r.mLeaseRetaken = mt.leaseLost.With(cl), mt.leaseRetaken.With(cl)
	r.mReorg = mt.reorgs.With(cl)
	r.mHeldBack = mt.heldBack.With(cl)
	r.mDropped, r.mInvalid = mt.droppedHeads.With(cl), mt.invalid.With(cl)
	r.process = r.newProcessGate()
	r.mRPCErr = mt.rpcErrors.MustCurryWith(cl)
	r.mHeadJumps = mt.headJumps.MustCurryWith(cl)
	r.mRedisLost = mt.redisLost.MustCurryWith(cl)
	r.mRPCLat = mt.rpcLatency.MustCurryWith(cl)
	r.mRestarts = mt.restarts.MustCurryWith(cl)
	r.mFinality = mt.finality.MustCurryWith(cl)
	r.mFinalityRefused = mt.finalityRefused.MustCurryWith(cl)
	r.mForeign = mt.foreign.MustCurryWith(cl)
	r.mDeepReorgs = mt.deepReorgs.With(cl)
	return r
}

// supervise runs the chain until ctx is done, restarting it with backoff
// after an error or a panic.
func (r *chainRunner) supervise(ctx context.Context) {
	bo := backoff{min: r.ing.ReconnectMin, max: r.ing.ReconnectMax}
	for {
		err := r.safeRun(ctx)
		if ctx.Err() != nil {
			return
		}
		reason := "error"
		var p panicError
		if errors.As(err, &p) {
			reason = "panic"
		}
		r.mRestarts.WithLabelValues(reason).Inc()
		d := bo.next()
		r.log.Error("chain ingester stopped; restarting", zap.String("reason", reason), zap.Error(err), zap.Duration("backoff", d))
		if !sleep.For(ctx, d) {
			return
		}
	}
}

type panicError struct {
	v     any
	stack string
}

func (p panicError) Error() string { return fmt.Sprintf("panic: %v\n%s", p.v, p.stack) }

func (r *chainRunner) safeRun(ctx context.Context) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = panicError{v: v, stack: string(debug.Stack())}
		}
	}()
	return r.runLeased(ctx)
}

// runLeased waits for the chain's lease (standby), then ingests while it
// holds it. It returns only when ctx is done or on an error.
func (r *chainRunner) runLeased(ctx context.Context) error {
	ttl := r.ing.LeaseTTL
	standbyLogged := false
	for {
		token, err := r.st.acquire(ctx, r.holder, ttl)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if token == 0 {
			if !standbyLogged {
				r.log.Info("standby: another ingester holds the chain's lease")
				standbyLogged = true
			}
			r.mLease.Set(0)
			r.ready.Store(true)
			if !sleep.For(ctx, ttl/6) {
				return nil
			}
			continue
		}
		standbyLogged = false
		r.log.Info("lease acquired", zap.Int64("fence", token))
		err = r.holdLease(ctx, token)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && !errors.Is(err, errLeaseLost) && !errors.Is(err, errFenced) {
			return err
		}
		r.mLeaseLost.Inc()
		r.log.Warn("lease lost; back to standby", zap.Error(err))
	}
}

// holdLease renews the lease in the background and ingests until the lease
// is lost or ctx is done.
func (r *chainRunner) holdLease(ctx context.Context, token int64) error {
	lctx, cancel := context.WithCancelCause(ctx)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		r.keepLease(lctx, cancel, token)
	}()
	r.mLease.Set(1)
	r.token = token
	defer func() {
		cancel(nil)
		<-renewed
		r.mLease.Set(0)
		r.ready.Store(false)
		if !r.m.noRelease {
			rctx, c := context.WithTimeout(context.Background(), 2*time.Second)
			_ = r.st.release(rctx, r.holder)
			c()
		}
	}()
	err := r.active(lctx)
	if cause := context.Cause(lctx); cause != nil && ctx.Err() == nil && errors.Is(cause, errLeaseLost) {
		return cause
	}
	return err
}

// keepLease renews the lease every quarter TTL until ctx is done, on its
// own goroutine and its own dedicated Redis connection, so that neither
// the fetch/commit path nor a large pipelined commit can delay it. It
// cancels with errLeaseLost only when the lease is definitely another's
// (renewal answers "not yours"): a renewal that fails is retried, because
// commits are fenced, a writer that cannot reach Redis can do no harm. A
// lease that lapsed anyway and that nobody took is taken again with the
// same fencing token (see lease.lua).
func (r *chainRunner) keepLease(ctx context.Context, cancel context.CancelCauseFunc, token int64) {
	ttl := r.ing.LeaseTTL
	every := ttl / 4
	var dc rueidis.DedicatedClient
	release := func() {}
	defer func() { release() }()
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if dc == nil {
			dc, release = r.m.rdb.Dedicate()
		}
		rctx, c := context.WithTimeout(ctx, every)
		res, err := r.st.renew(rctx, dc, r.holder, ttl, token)
		c()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if !failing {
				r.log.Warn("lease renewal failed; retrying", zap.Error(err))
			}
			failing = true
			release() // a fresh connection for the next attempt
			dc, release = nil, func() {}
			continue
		case res == leaseRetaken:
			r.mLeaseRetaken.Inc()
			r.log.Warn("lease had lapsed (not renewed in time); taken again with the same fencing token", zap.Int64("fence", token))
		case res == leaseGone:
			cancel(errLeaseLost)
			return
		}
		if failing {
			r.log.Info("lease renewal works again")
			failing = false
		}
	}
}

// active keeps a session to one of the chain's URLs, reconnecting with
// backoff and failing over, until ctx is done or the lease is lost.
func (r *chainRunner) active(ctx context.Context) error {
	bo := backoff{min: r.ing.ReconnectMin, max: r.ing.ReconnectMax}
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
		if errors.Is(err, errWrongChain) || errors.Is(err, errForeignNode) {
			// At session start, on a deep reorg, a head jump or the
			// periodic check (chainid.go), or a node that contradicts
			// the committed chain (foreign.go): nothing of it was committed.
			ep.refuse(time.Now(), wrongChainOpen)
			r.epIdx = (i + 1) % len(r.eps)
		} else if healthy {
			bo.reset()
			ep.success()
		} else {
			ep.failure(time.Now())
			r.epIdx = (i + 1) % len(r.eps) // fail over
		}
		d := bo.next()
		r.log.Warn("rpc session ended; reconnecting", zap.String("url", ep.redacted), zap.Uint64("block", r.cur.Number), zap.Error(err), zap.Duration("backoff", d))
		if !sleep.For(ctx, d) {
			return nil
		}
	}
	return nil
}

func (r *chainRunner) rpcOptions(url string) rpc.Options {
	redacted := config.RedactURL(url)
	return rpc.Options{
		CallTimeout:  r.ing.CallTimeout,
		ReadLimit:    r.ing.MaxMessageBytes,
		PingInterval: r.ing.PingInterval,
		// The newHeads queue: bounded in bytes, not only in count (see
		// rpc.DefaultSubBufferBytes).
		SubBufferBytes: r.ing.NotificationQueueBytes,
		Observe: func(method string, d time.Duration, err error) {
			r.mRPCLat.WithLabelValues(method).Observe(d.Seconds())
			if err == nil || errors.Is(err, context.Canceled) {
				return
			}
			code := errorCode(err)
			r.mRPCErr.WithLabelValues(code).Inc()
			if errors.Is(err, rpc.ErrTooLarge) {
				r.mOversized.Inc()
			}
			r.log.Warn("json-rpc call failed", zap.String("method", method), zap.String("code", code),
				zap.String("url", redacted), zap.Uint64("block", r.curNumber()), zap.Error(err))
		},
		Malformed: func(err error) {
			r.mMalformed.Inc()
			r.log.Warn("malformed frame from node", zap.String("url", redacted), zap.Error(err))
		},
	}
}

// invalid counts and logs an answer refused by validateHeader or
// validateLog.
func (r *chainRunner) invalid(method string, err error) {
	r.mInvalid.Inc()
	r.log.Warn("refused an answer that breaks the JSON-RPC spec or a bound", zap.String("method", method),
		zap.String("url", r.url), zap.Uint64("block", r.curNumber()), zap.Error(err))
}

// curNumber is for logs from transport goroutines: racy by design but a
// plain uint64 read of a value only this chain's goroutine writes.
func (r *chainRunner) curNumber() uint64 { return atomic.LoadUint64(&r.cur.Number) }

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
		return false, err
	}
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

// retry runs f again on rate limits and call timeouts (a lost response),
// a few times with a growing pause.
func (r *chainRunner) retry(ctx context.Context, f func() error) error {
	delay := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil || ctx.Err() != nil {
			return err
		}
		retryable := rpc.IsRateLimit(err) || (isTimeout(err) && !errors.Is(err, rpc.ErrClosed))
		if !retryable || attempt >= 5 {
			return err
		}
		if !sleep.For(ctx, delay) {
			return ctx.Err()
		}
		delay *= 2
	}
}

// retryRateLimit runs f again on rate limits only.
func (r *chainRunner) retryRateLimit(ctx context.Context, f func() error) error {
	delay := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil || ctx.Err() != nil || !rpc.IsRateLimit(err) || attempt >= 5 {
			return err
		}
		if !sleep.For(ctx, delay) {
			return ctx.Err()
		}
		delay *= 2
	}
}

func (r *chainRunner) noteHead(n uint64) {
	if n > r.head {
		r.head = n
		r.mHead.Set(float64(n))
		// The chain's head for operators (API and UI show head and lag):
		// `<prefix>{<chain>}:head` = decimal block number. Best effort, it
		// expires when no ingester watches the chain any more.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		rdb := r.m.rdb
		rdb.Do(ctx, rdb.B().Set().Key(hook.Keys{Prefix: r.m.cfg.Redis.Prefix}.Chain(r.ch.ID, "head")).Value(strconv.FormatUint(n, 10)).Ex(10*time.Minute).Build())
		cancel()
	}
	if r.cur.Set && r.head >= r.cur.Number {
		r.mLag.Set(float64(r.head - r.cur.Number))
	}
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
		if !sleep.For(ctx, time.Duration(100<<attempt)*time.Millisecond) {
			return header{}, ctx.Err()
		}
	}
	return header{}, fmt.Errorf("fetch block %s: %w", hash, err)
}

// checkLogs verifies an answer for one block: every log carries the block's
// hash and number, none is removed, indexes are unique; sorts by index.
func checkLogs(h *header, logs []ethLog) error {
	for i := range logs {
		l := &logs[i]
		if !strings.EqualFold(l.BlockHash, h.Hash) || uint64(l.BlockNumber) != uint64(h.Number) || l.Removed {
			return fmt.Errorf("log %d carries block %d %s, want %d %s", uint64(l.LogIndex), uint64(l.BlockNumber), l.BlockHash, uint64(h.Number), h.Hash)
		}
	}
	if !sort.SliceIsSorted(logs, func(i, j int) bool { return logs[i].LogIndex < logs[j].LogIndex }) {
		sort.Slice(logs, func(i, j int) bool { return logs[i].LogIndex < logs[j].LogIndex })
	}
	for i := 1; i < len(logs); i++ {
		if logs[i].LogIndex == logs[i-1].LogIndex {
			return fmt.Errorf("duplicate log index %d", uint64(logs[i].LogIndex))
		}
	}
	return nil
}

// logsByHash is the one eth_getLogs({blockHash}) of a head, checked
// against the header and fetched again when the answer is wrong or empty
// despite a non-empty logsBloom.
func (r *chainRunner) logsByHash(ctx context.Context, h *header) ([]ethLog, error) {
	delay := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		var logs []ethLog
		err := r.retry(ctx, func() error {
			logs = nil
			return r.ws.Call(ctx, &logs, "eth_getLogs", map[string]any{"blockHash": h.Hash})
		})
		if err != nil {
			return nil, fmt.Errorf("fetch logs for block %d: %w", uint64(h.Number), err)
		}
		problem := validateLogs(logs)
		if problem != nil {
			r.invalid("eth_getLogs", problem)
		} else {
			problem = checkLogs(h, logs)
		}
		if problem == nil && (len(logs) > 0 || h.bloomEmpty()) {
			return logs, nil
		}
		if errors.Is(problem, errInvalidAnswer) {
			r.log.Warn("invalid eth_getLogs answer; fetching again", zap.Uint64("block", uint64(h.Number)), zap.String("hash", h.Hash))
		} else if problem != nil {
			r.mRejected.Inc()
			r.log.Warn("rejected eth_getLogs answer; fetching again", zap.Uint64("block", uint64(h.Number)), zap.Error(problem))
		} else {
			r.mEmpty.Inc()
			r.log.Info("eth_getLogs answered [] for a block whose logsBloom is not empty; fetching again",
				zap.Uint64("block", uint64(h.Number)), zap.Int("attempt", attempt+1))
		}
		if attempt >= r.ing.EmptyLogsRetries {
			if problem == nil {
				problem = errors.New("no logs despite a non-empty logsBloom")
			}
			return nil, fmt.Errorf("fetch logs for block %d %s: not accepted after %d attempts: %w", uint64(h.Number), h.Hash, attempt+1, problem)
		}
		if !sleep.For(ctx, delay) {
			return nil, ctx.Err()
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// syncTo brings the stream up to target: backfill a gap, commit the next
// block, or unwind a reorg.
func (r *chainRunner) syncTo(ctx context.Context, target header) error {
	if err := r.checkHead(ctx, target); err != nil {
		return err
	}
	r.noteHead(uint64(target.Number))
	tn := uint64(target.Number)
	if !r.cur.Set {
		start := tn
		if sb := r.ch.StartBlock; sb != nil {
			if *sb > tn {
				return nil // not there yet
			}
			start = *sb
		}
		if start == tn {
			return r.commitHead(ctx, &target)
		}
		if err := r.backfill(ctx, start, tn-1, tn); err != nil {
			return err
		}
	}
	for step := 0; step < 16; step++ {
		if e, ok := r.win[tn]; ok && e.Hash == target.Hash {
			return nil // already have it
		}
		switch {
		case tn > r.cur.Number+1:
			if err := r.backfill(ctx, r.cur.Number+1, tn-1, tn); err != nil {
				return err
			}
			continue
		case tn == r.cur.Number+1 && target.ParentHash == r.cur.Hash:
			return r.commitHead(ctx, &target)
		}
		// A head that does not extend the cursor is a reorg only if the
		// node still says it is canonical: a head that went stale while we
		// backfilled (or a late notification) must not lead us onto an
		// orphaned branch. Follow the node's current head instead.
		canon, err := r.getHeader(ctx, "eth_getBlockByNumber", hexNum(tn))
		if err != nil {
			return err
		}
		if canon.Hash != target.Hash {
			latest, err := r.latest(ctx)
			if err != nil {
				return err
			}
			if latest.Hash == target.Hash {
				return nil
			}
			if err := r.checkHead(ctx, latest); err != nil {
				return err
			}
			target, tn = latest, uint64(latest.Number)
			r.noteHead(tn)
			continue
		}
		return r.reorg(ctx, target)
	}
	return nil // the chain keeps moving; the next head continues
}

// commitHead fetches a head's logs and commits it on top of the cursor.
func (r *chainRunner) commitHead(ctx context.Context, h *header) error {
	logs, err := r.logsByHash(ctx, h)
	if err != nil {
		return err
	}
	return r.commit(ctx, []*block{{header: *h, logs: logs}}, 0)
}

// commit runs the commit script for blocks and updates the local view.
func (r *chainRunner) commit(ctx context.Context, blocks []*block, storeFrom uint64) error {
	inBatch := make(map[uint64]string, len(blocks))
	for _, b := range blocks {
		inBatch[uint64(b.Number)] = b.Hash
	}
	trim := func(n uint64) (uint64, string, bool) {
		if n < r.keep {
			return 0, "", false
		}
		t := n - r.keep
		if h, ok := inBatch[t]; ok {
			return t, h, true
		}
		if e, ok := r.win[t]; ok {
			return t, e.Hash, true
		}
		return 0, "", false
	}
	trimWindow := func(n uint64) (uint64, bool) {
		if n < r.deep {
			return 0, false
		}
		return n - r.deep, true
	}
	if !r.process.Wait(ctx) {
		return ctx.Err()
	}
	r.m.step(r.ch.Name, "commit")
	pub, skipped, err := r.st.commit(ctx, commitReq{
		token: r.token, expect: r.cur, blocks: blocks, storeFrom: storeFrom, trim: trim, trimWindow: trimWindow, chainName: r.ch.Name,
	})
	if err != nil {
		return fmt.Errorf("commit blocks %d..%d: %w", uint64(blocks[0].Number), uint64(blocks[len(blocks)-1].Number), err)
	}
	for _, b := range blocks {
		n := uint64(b.Number)
		if t, ok := trimWindow(n); ok {
			delete(r.win, t)
		}
		r.win[n] = winEntry{Hash: b.Hash, Parent: b.ParentHash}
	}
	r.commits++
	r.process.Added(pub) // unacknowledged now
	last := blocks[len(blocks)-1]
	atomic.StoreUint64(&r.cur.Number, uint64(last.Number))
	r.cur.Hash, r.cur.Set = last.Hash, true
	r.mLogs.Add(float64(pub))
	r.mBlocks.Add(float64(len(blocks)))
	r.mCommitted.Set(float64(r.cur.Number))
	r.noteHead(r.cur.Number)
	r.m.step(r.ch.Name, "committed")
	if skipped > 0 {
		r.log.Info("blocks already published (dedup key present); cursor advanced", zap.Int64("skipped", skipped), zap.Uint64("block", r.cur.Number))
	}
	return nil
}

// newProcessGate holds commits back while process has
// ingest.stream_max_len or more entries of this chain unread or
// unacknowledged. The stream is never trimmed below them (trim.lua), so
// committing on would only grow Redis while process is down or behind; the
// blocks stay on the chain and are fetched from the cursor once it catches up.
func (r *chainRunner) newProcessGate() *backpressure.Gate {
	return &backpressure.Gate{
		Limit: r.ing.StreamMaxLen,
		Read: func(ctx context.Context) (int64, bool) {
			n, ok, err := r.st.backlog(ctx)
			return n, ok && err == nil
		},
		Changed: func(held bool, n int64) {
			if held {
				r.mHeldBack.Set(1)
				r.log.Warn("process is behind: new blocks wait until it acknowledges more entries",
					zap.Int64("unacknowledged", n), zap.Int64("limit", r.ing.StreamMaxLen))
				return
			}
			r.mHeldBack.Set(0)
			r.log.Info("process caught up; committing again", zap.Int64("unacknowledged", n))
		},
	}
}

// reorg walks back from target to the common ancestor with the window,
// publishes log.removed for every orphaned log, then ingests the branch.
func (r *chainRunner) reorg(ctx context.Context, target header) error {
	branch := []header{target}
	h := target
	var minWin uint64 = ^uint64(0)
	for n := range r.win {
		minWin = min(minWin, n)
	}
	var anc cursor
	deepChecked := false
	for {
		if h.Number == 0 {
			return fmt.Errorf("reorg at block %d: no common ancestor down to genesis", uint64(target.Number))
		}
		pn := uint64(h.Number) - 1
		if e, ok := r.win[pn]; ok && e.Hash == h.ParentHash {
			anc = cursor{Number: pn, Hash: h.ParentHash, Set: true}
			break
		}
		if len(r.win) == 0 {
			r.log.Error("reorg with an empty window (Redis lost state); logs of older orphaned blocks cannot be retracted",
				zap.Uint64("block", uint64(target.Number)))
			anc = cursor{Number: pn, Hash: h.ParentHash, Set: true}
			break
		}
		if pn < minWin {
			if !r.windowFull(minWin) {
				// The window is still filling (Redis lost state, see
				// durable.go): nothing tells a deep reorg from a foreign
				// node below it but the finalized block (checkAncestor).
				r.log.Error("reorg deeper than the window, which is still refilling after Redis lost state; logs of older orphaned blocks cannot be retracted",
					zap.Uint64("block", uint64(target.Number)), zap.Uint64("window_start", minWin))
				anc = cursor{Number: pn, Hash: h.ParentHash, Set: true}
				break
			}
			return r.foreign(ctx, "deeper_than_bound", fmt.Sprintf("reorg at block %d reaches below the window's block %d", uint64(target.Number), minWin))
		}
		if !deepChecked && pn+r.keep <= r.cur.Number+1 {
			deepChecked = true
			if err := r.checkDeep(ctx, uint64(target.Number)); err != nil {
				return err
			}
		}
		p, err := r.headerByHash(ctx, h.ParentHash)
		if err != nil {
			return fmt.Errorf("reorg walk back from block %d: %w", uint64(h.Number), err)
		}
		if p.Number != h.Number-1 || p.Hash != h.ParentHash {
			return fmt.Errorf("reorg walk back: block %s is number %d, want %d", h.ParentHash, uint64(p.Number), uint64(h.Number)-1)
		}
		branch = append(branch, p)
		h = p
	}
	if r.cur.Number > anc.Number+deepReorg {
		// A node that switched chains looks like a deep reorg: make sure
		// it did not before unwinding anything.
		if err := r.recheckChainID(ctx); err != nil {
			return fmt.Errorf("reorg of %d blocks at block %d: %w", r.cur.Number-anc.Number, uint64(target.Number), err)
		}
	}
	if err := r.checkAncestor(ctx, anc, uint64(target.Number)); err != nil {
		return err
	}
	var orphans []orphan
	for n := r.cur.Number; n > anc.Number; n-- {
		if e, ok := r.win[n]; ok {
			orphans = append(orphans, orphan{Number: n, Hash: e.Hash})
		}
	}
	removals, err := r.st.removals(ctx, orphans)
	if err != nil {
		return err
	}
	deep := r.blockRemovals(orphans)
	r.m.step(r.ch.Name, "rewind")
	if err := r.st.rewind(ctx, r.token, r.cur, anc, orphans, removals, deep); err != nil {
		return fmt.Errorf("unwind %d orphaned blocks to %d: %w", len(orphans), anc.Number, err)
	}
	for n := range r.win {
		if n > anc.Number {
			delete(r.win, n)
		}
	}
	old := r.cur
	atomic.StoreUint64(&r.cur.Number, anc.Number)
	r.cur.Hash = anc.Hash
	r.mReorg.Observe(float64(len(orphans)))
	r.mRemoved.Add(float64(len(removals) / 2))
	r.mCommitted.Set(float64(anc.Number))
	r.log.Warn("reorg: orphaned blocks unwound", zap.Uint64("block", uint64(target.Number)), zap.Int("depth", len(orphans)),
		zap.Uint64("ancestor", anc.Number), zap.Uint64("old_head", old.Number), zap.Int("removed_logs", len(removals)/2))
	for i := len(branch) - 1; i >= 0; i-- {
		b := branch[i]
		if uint64(b.Number) <= anc.Number {
			continue
		}
		if err := r.commitHead(ctx, &b); err != nil {
			return err
		}
	}
	return nil
}

// backfill commits blocks from..to with ranged eth_getLogs in chunks sized
// by the chain's log density (see span). head is the head being synced to:
// blocks within the window of it keep their entries for reorg removal.
// Fetching runs ahead of committing (prefetch) so the node and Redis work
// at the same time, bounded by bytes in flight, not only by chunks.
func (r *chainRunner) backfill(ctx context.Context, from, to, head uint64) error {
	var storeFrom uint64
	if head+1 > r.keep {
		storeFrom = head + 1 - r.keep
	}
	if to >= from {
		r.log.Info("backfill", zap.Uint64("from", from), zap.Uint64("to", to))
	}
	for from <= to {
		next, err := r.backfillRun(ctx, from, to, storeFrom)
		if err != nil {
			return err
		}
		from = next
	}
	return nil
}

type chunk struct {
	blocks []*block
	bytes  int64 // estimated answer bytes (in-flight accounting)
	err    error
}

// inflight bounds the estimated bytes of fetched, not yet committed chunks.
type inflight struct {
	limit int64
	mu    sync.Mutex
	n     int64
	freed chan struct{}
}

func newInflight(limit int64) *inflight { return &inflight{limit: limit, freed: make(chan struct{})} }

// wait blocks until fewer than limit bytes are in flight.
func (f *inflight) wait(ctx context.Context) bool {
	for {
		f.mu.Lock()
		if f.n < f.limit {
			f.mu.Unlock()
			return true
		}
		ch := f.freed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

func (f *inflight) add(n int64) {
	f.mu.Lock()
	f.n += n
	f.mu.Unlock()
}

func (f *inflight) done(n int64) {
	f.mu.Lock()
	f.n -= n
	close(f.freed)
	f.freed = make(chan struct{})
	f.mu.Unlock()
}

// backfillRun commits prefetched chunks until to, or until the chain
// below a chunk changed (then it unwinds and returns where to go on).
func (r *chainRunner) backfillRun(ctx context.Context, from, to, storeFrom uint64) (uint64, error) {
	pctx, cancel := context.WithCancel(ctx)
	chunks := make(chan chunk, 1)
	// At most two answers' worth fetched ahead of the commit; the fetch of
	// a third starts only once the commit in progress is done.
	fl := newInflight(2 * answerBudget(r.ing.MaxMessageBytes))
	go r.prefetch(pctx, from, to, chunks, fl)
	defer func() {
		cancel()
		for range chunks { // wait for the prefetcher to finish
		}
	}()
	for c := range chunks {
		if c.err != nil {
			return 0, c.err
		}
		if r.cur.Set && c.blocks[0].ParentHash != r.cur.Hash {
			// The chain below this chunk changed: stop prefetching, unwind.
			cancel()
			for range chunks {
			}
			if err := r.reorg(ctx, c.blocks[0].header); err != nil {
				return 0, err
			}
			return r.cur.Number + 1, nil
		}
		err := r.commit(ctx, c.blocks, storeFrom)
		fl.done(c.bytes)
		if err != nil {
			return 0, err
		}
		r.mBack.Add(float64(len(c.blocks)))
	}
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	return to + 1, nil
}

// maxWeightFailures is how many timeouts in a row a shrinking backfill
// tolerates before it gives the session up.
const maxWeightFailures = 6

// prefetch fetches from..to in density-sized chunks into out, closing it
// at the end; a failure is sent as the last chunk.
func (r *chainRunner) prefetch(ctx context.Context, from, to uint64, out chan<- chunk, fl *inflight) {
	defer close(out)
	inconsistent, timeouts := 0, 0
	for from <= to && ctx.Err() == nil {
		if !fl.wait(ctx) {
			return
		}
		end := min(from+r.span.next()-1, to)
		blocks, bytes, err := r.fetchRange(ctx, from, end)
		tried := end - from + 1
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return
		case errors.Is(err, rpc.ErrTooLarge):
			r.span.tooLarge(tried, r.ing.MaxMessageBytes)
			r.log.Warn("eth_getLogs answer above max_message_bytes; shrinking", zap.Uint64("block", from),
				zap.Uint64("tried", tried), zap.Uint64("range", r.span.next()), zap.Error(err))
			if r.bf == caller(r.ws) {
				out <- chunk{err: err} // the socket is gone with the oversized frame
				return
			}
			continue
		case rpc.IsRangeError(err) && end > from:
			r.span.refused(tried)
			r.log.Info("eth_getLogs range too large; shrinking", zap.Uint64("block", from), zap.Uint64("range", r.span.next()), zap.Error(err))
			continue
		case isTimeout(err) && !errors.Is(err, rpc.ErrClosed) && end > from && timeouts < maxWeightFailures:
			timeouts++
			r.span.failed(tried)
			r.log.Info("eth_getLogs timed out; shrinking", zap.Uint64("block", from), zap.Uint64("range", r.span.next()), zap.Error(err))
			continue
		case errors.Is(err, errNotCanonical) && inconsistent < 5:
			inconsistent++
			r.log.Info("chain moved during backfill; fetching again", zap.Uint64("block", from), zap.Error(err))
			if !sleep.For(ctx, time.Duration(inconsistent)*100*time.Millisecond) {
				return
			}
			continue
		default:
			out <- chunk{err: fmt.Errorf("backfill blocks %d..%d: %w", from, end, err)}
			return
		}
		timeouts = 0
		r.span.observe(tried, bytes)
		fl.add(bytes)
		select {
		case out <- chunk{blocks: blocks, bytes: bytes}:
		case <-ctx.Done():
			return
		}
		from = end + 1
	}
}

// fetchRange fetches headers (batched) and logs (one ranged eth_getLogs)
// of blocks from..end and checks them against each other. bytes is the
// estimated size of the eth_getLogs answer.
func (r *chainRunner) fetchRange(ctx context.Context, from, end uint64) (blocks []*block, bytes int64, err error) {
	n := int(end - from + 1)
	blocks = make([]*block, n)
	for i := 0; i < n; i += headerBatch {
		k := min(headerBatch, n-i)
		ptrs := make([]*header, k)
		elems := make([]rpc.BatchElem, k)
		for j := range elems {
			elems[j] = rpc.BatchElem{Method: "eth_getBlockByNumber", Params: []any{hexNum(from + uint64(i+j)), false}, Result: &ptrs[j]}
		}
		err := r.retry(ctx, func() error {
			if err := r.bf.Batch(ctx, elems); err != nil {
				return err
			}
			for _, e := range elems {
				if e.Error != nil {
					return e.Error
				}
			}
			return nil
		})
		if err != nil {
			return nil, 0, fmt.Errorf("fetch headers %d..%d: %w", from+uint64(i), from+uint64(i+k-1), err)
		}
		for j, p := range ptrs {
			num := from + uint64(i+j)
			if p == nil {
				return nil, 0, fmt.Errorf("%w: block %d not available", errNotCanonical, num)
			}
			if err := p.normalize(); err != nil {
				r.invalid("eth_getBlockByNumber", err)
				return nil, 0, fmt.Errorf("fetch headers %d..%d: %w", from, end, err)
			}
			if uint64(p.Number) != num {
				return nil, 0, fmt.Errorf("header for block %d has number %d", num, uint64(p.Number))
			}
			blocks[i+j] = &block{header: *p}
		}
	}
	for i := 1; i < n; i++ {
		if blocks[i].ParentHash != blocks[i-1].Hash {
			return nil, 0, fmt.Errorf("%w: block %d does not link to %d", errNotCanonical, from+uint64(i), from+uint64(i-1))
		}
	}
	var logs []ethLog
	get := func() error {
		logs = nil
		return r.bf.Call(ctx, &logs, "eth_getLogs", map[string]any{"fromBlock": hexNum(from), "toBlock": hexNum(end)})
	}
	if n == 1 {
		err = r.retry(ctx, get)
	} else {
		// A timeout of a multi-block request may be its weight: the caller
		// shrinks rather than asking the same again.
		err = r.retryRateLimit(ctx, get)
	}
	if err != nil {
		if rpc.IsRangeError(err) && n == 1 && !errors.Is(err, rpc.ErrTooLarge) {
			// One block is over the provider's limit: by hash has none.
			if blocks[0].logs, err = r.logsByHash(ctx, &blocks[0].header); err != nil {
				return nil, 0, err
			}
			return blocks, estimateBytes(blocks[0].logs), nil
		}
		return nil, 0, fmt.Errorf("eth_getLogs %d..%d: %w", from, end, err)
	}
	if err := validateLogs(logs); err != nil {
		r.invalid("eth_getLogs", err)
		return nil, 0, fmt.Errorf("eth_getLogs %d..%d: %w", from, end, err)
	}
	bytes = estimateBytes(logs)
	// Split per block by slicing the answer (no copy); answers are in chain
	// order, but do not rely on it.
	for i := range logs {
		num := uint64(logs[i].BlockNumber)
		if num < from || num > end {
			return nil, 0, fmt.Errorf("%w: eth_getLogs %d..%d returned a log of block %d", errNotCanonical, from, end, num)
		}
	}
	byBlock := func(i, j int) bool { return logs[i].BlockNumber < logs[j].BlockNumber }
	if !sort.SliceIsSorted(logs, byBlock) {
		sort.SliceStable(logs, byBlock)
	}
	for i := 0; i < len(logs); {
		j := i + 1
		for j < len(logs) && logs[j].BlockNumber == logs[i].BlockNumber {
			j++
		}
		blocks[uint64(logs[i].BlockNumber)-from].logs = logs[i:j:j]
		i = j
	}
	for _, b := range blocks {
		if err := checkLogs(&b.header, b.logs); err != nil {
			r.mRejected.Inc()
			return nil, 0, fmt.Errorf("%w: %v", errNotCanonical, err)
		}
		if len(b.logs) == 0 && !b.bloomEmpty() {
			r.mEmpty.Inc()
			if b.logs, err = r.logsByHash(ctx, &b.header); err != nil {
				return nil, 0, err
			}
		}
	}
	return blocks, bytes, nil
}

func estimateBytes(logs []ethLog) int64 {
	n := int64(2)
	for i := range logs {
		n += int64(logs[i].approxJSONBytes()) + 1
	}
	return n
}
