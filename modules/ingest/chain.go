package ingest

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/internal/backpressure"
	"github.com/ethhook/ethhook/internal/outage"
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
	q       *quorum            // cross-checks with the other providers when the chain's quorum is set (quorum.go)

	chainMetrics // this chain's series (metrics.go)

	// out turns a Postgres or Redis outage into two log lines, not one
	// per failed try of each loop.
	out outage.Deps
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
	r.chainMetrics = newChainMetrics(m.met, ch)
	r.out = outage.NewDeps(r.log)
	r.process = r.newProcessGate()
	r.q = r.newQuorum()
	return r
}

// supervise runs the chain until ctx is done, restarting it with backoff
// after an error or a panic.
func (r *chainRunner) supervise(ctx context.Context) {
	bo := sleep.Backoff{Min: r.ing.ReconnectMin, Max: r.ing.ReconnectMax, Jitter: true}
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
		d := bo.Next()
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

// retry runs f again on rate limits and call timeouts (a lost response),
// a few times with a growing pause.
func (r *chainRunner) retry(ctx context.Context, f func() error) error {
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil || ctx.Err() != nil {
			return err
		}
		retryable := rpc.IsRateLimit(err) || (isTimeout(err) && !errors.Is(err, rpc.ErrClosed))
		if !retryable || attempt >= 5 {
			return err
		}
		if !sleep.For(ctx, callPause.After(attempt-1)) {
			return ctx.Err()
		}
	}
}

// retryRateLimit runs f again on rate limits only.
func (r *chainRunner) retryRateLimit(ctx context.Context, f func() error) error {
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil || ctx.Err() != nil || !rpc.IsRateLimit(err) || attempt >= 5 {
			return err
		}
		if !sleep.For(ctx, callPause.After(attempt-1)) {
			return ctx.Err()
		}
	}
}
