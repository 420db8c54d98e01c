package ingest

// Quorum across providers (chain config `quorum: N`, N >= 2): the session
// follows its own provider (the primary), and before it commits block n it
// asks the chain's other providers for eth_getBlockByNumber(n). The block
// is committed only once N providers, the primary included, answer its
// hash. A provider that has no block n yet lags; one that answers another
// hash disagrees; either is reported unhealthy (log line per change,
// ethhook_ingest_provider_healthy, ethhook_ingest_provider_disagreements_total).
// Fewer than N: the block is held (nothing after it is fetched, so at most
// one chunk waits) and asked again; a primary that cannot reach N even
// with every lagging provider, or that lags behind N others, ends the
// session and the next URL is the primary.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/sleep"
	"github.com/ethhook/ethhook/modules/ingest/rpc"
)

// errQuorum ends a session whose provider the others outvote or outrun.
var errQuorum = errors.New("quorum")

const (
	// quorumOutvoted is how many rounds in a row the primary's block must
	// be outvoted before the session is given up (a reorg seen by the
	// others first passes in one or two).
	quorumOutvoted = 3
	// quorumRetryMax caps the pause between two rounds of a held block.
	quorumRetryMax = 2 * time.Second
	// quorumRedial is the least time between two dials of one provider.
	quorumRedial = time.Second
	// quorumLagPolls is how many quiet head polls in a row N others must
	// be ahead of the primary before it is taken for lagging.
	quorumLagPolls = 2
)

// Provider health as reported (log line, ethhook_ingest_provider_healthy).
const (
	provHealthy     = "healthy"
	provLagging     = "lagging"     // does not have the block the others agree on yet
	provDisagrees   = "disagrees"   // answers another hash at that number
	provUnreachable = "unreachable" // no connection or the call failed
	provWrongChain  = "wrong_chain" // eth_chainId is another chain
	provInvalid     = "invalid"     // an answer that breaks the spec
)

// quorum is the cross-check state of a chain with `quorum` set. Only the
// chain's goroutine touches it, but for conns[i] and dialed[i], which the
// goroutine asking provider i writes while the chain's goroutine waits.
type quorum struct {
	need     int
	state    []string    // reported health per r.eps index ("" = not yet known)
	badSince []time.Time // when provider i first failed to agree, zero while it agrees
	conns    []*rpc.WS   // the session's connections to the other providers
	dialed   []time.Time
	grace    time.Duration // how long lagging or disagreeing is tolerated before it is reported
	waiting  bool
	lagPolls int

	mHealthy  *prometheus.GaugeVec   // provider
	mDisagree *prometheus.CounterVec // provider
	mWaiting  prometheus.Gauge
}

func (r *chainRunner) newQuorum() *quorum {
	if r.ch.Quorum == nil || *r.ch.Quorum < 2 || len(r.eps) < 2 {
		return nil
	}
	n := len(r.eps)
	cl := chainLabelValues(r.ch.Name, r.ch.ID)
	return &quorum{
		need: *r.ch.Quorum, state: make([]string, n), badSince: make([]time.Time, n),
		conns: make([]*rpc.WS, n), dialed: make([]time.Time, n),
		grace:     min(max(3*r.ch.BlockTime, 2*time.Second), 30*time.Second),
		mHealthy:  r.m.met.providerHealthy.MustCurryWith(cl),
		mDisagree: r.m.met.providerDisagreements.MustCurryWith(cl),
		mWaiting:  r.m.met.quorumWaiting.With(cl),
	}
}

// endSession ends the session's connections to the other providers; a
// block that waited is fetched again by the next session.
func (q *quorum) endSession() {
	q.waiting, q.lagPolls = false, 0
	q.mWaiting.Set(0)
	for i, c := range q.conns {
		if c != nil {
			c.Close()
			q.conns[i] = nil
		}
	}
}

// setHealth records provider i's health, logging and counting a change.
func (r *chainRunner) setHealth(i int, state string, why error) {
	q := r.q
	ep := r.eps[i]
	old := q.state[i]
	if old == state {
		return
	}
	q.state[i] = state
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	r.m.rdb.Do(ctx, r.providersCmd()) // best effort: for the chains API
	cancel()
	h := 0.0
	if state == provHealthy {
		h = 1
	}
	q.mHealthy.WithLabelValues(ep.redacted).Set(h)
	log := r.log.With(zap.String("provider", ep.redacted), zap.String("health", state), zap.Uint64("block", r.cur.Number))
	switch {
	case state == provHealthy && old == "":
	case state == provHealthy:
		log.Info("provider agrees with the quorum again", zap.String("was", old))
	default:
		log.Warn("provider unhealthy: not counted towards the quorum", zap.Error(why))
	}
}

// providersCmd sets the chain's providers key (hook.ProviderHealth).
func (r *chainRunner) providersCmd() rueidis.Completed {
	ps := make([]hook.ProviderHealth, len(r.eps))
	for i, ep := range r.eps {
		ps[i] = hook.ProviderHealth{Provider: ep.redacted, Health: r.q.state[i]}
	}
	return r.m.rdb.B().Set().Key(r.st.keys.Chain(r.ch.ID, "providers")).Value(hook.EncodeProviders(ps)).Ex(10 * time.Minute).Build()
}

// peerConn is the session's connection to provider i, dialed (and its
// chain id checked) when there is none, at most once per quorumRedial.
func (r *chainRunner) peerConn(ctx context.Context, i int) (*rpc.WS, error) {
	q := r.q
	if c := q.conns[i]; c != nil {
		select {
		case <-c.Done():
			c.Close()
			q.conns[i] = nil
		default:
			return c, nil
		}
	}
	if wait := quorumRedial - time.Since(q.dialed[i]); wait > 0 && !sleep.For(ctx, wait) {
		return nil, ctx.Err()
	}
	q.dialed[i] = time.Now()
	ep := r.eps[i]
	opt := r.rpcOptions(ep.url)
	observe := opt.Observe
	opt.Observe = func(method string, d time.Duration, _ error) {
		observe(method, d, nil) // a failure is logged once, as the provider's health
	}
	ws, err := rpc.DialWS(ctx, ep.url, opt)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", ep.redacted, err)
	}
	if err := r.checkChainID(ctx, ws, ep.redacted); err != nil {
		ws.Close()
		return nil, err
	}
	q.conns[i] = ws
	return ws, nil
}

// hashAt is a block the primary gave: its number and hash.
type hashAt struct {
	n    uint64
	hash string
}

func hashesOf(blocks []*block) []hashAt {
	out := make([]hashAt, len(blocks))
	for i, b := range blocks {
		out[i] = hashAt{uint64(b.Number), b.Hash}
	}
	return out
}

// peerAnswer is what one other provider said about want.
type peerAnswer struct {
	matched int    // leading blocks of want it answers with the same hash
	state   string // provHealthy when it matched all of want
	err     error  // why not
}

// askPeer asks provider i for the headers at want's numbers (one batch, one
// attempt within the call timeout) and compares their hashes.
func (r *chainRunner) askPeer(ctx context.Context, i int, want []hashAt) peerAnswer {
	ws, err := r.peerConn(ctx, i)
	if err != nil {
		if errors.Is(err, errWrongChain) {
			return peerAnswer{state: provWrongChain, err: err}
		}
		return peerAnswer{state: provUnreachable, err: err}
	}
	ptrs := make([]*header, len(want))
	elems := make([]rpc.BatchElem, len(want))
	for j, w := range want {
		elems[j] = rpc.BatchElem{Method: "eth_getBlockByNumber", Params: []any{hexNum(w.n), false}, Result: &ptrs[j]}
	}
	cctx, cancel := context.WithTimeout(ctx, r.ing.CallTimeout)
	err = ws.Batch(cctx, elems)
	cancel()
	if err == nil {
		for _, e := range elems {
			if e.Error != nil {
				err = e.Error
				break
			}
		}
	}
	if err != nil {
		return peerAnswer{state: provUnreachable, err: fmt.Errorf("eth_getBlockByNumber %d..%d: %w", want[0].n, want[len(want)-1].n, err)}
	}
	for j, p := range ptrs {
		w := want[j]
		if p == nil {
			return peerAnswer{matched: j, state: provLagging, err: fmt.Errorf("has no block %d yet", w.n)}
		}
		if err := p.normalize(); err != nil {
			r.invalid("eth_getBlockByNumber", err)
			return peerAnswer{matched: j, state: provInvalid, err: err}
		}
		if uint64(p.Number) != w.n {
			return peerAnswer{matched: j, state: provInvalid, err: fmt.Errorf("eth_getBlockByNumber(%d) answers block %d", w.n, uint64(p.Number))}
		}
		if !strings.EqualFold(p.Hash, w.hash) {
			return peerAnswer{matched: j, state: provDisagrees, err: fmt.Errorf("block %d is %s there, %s here", w.n, p.Hash, w.hash)}
		}
	}
	return peerAnswer{matched: len(want), state: provHealthy}
}

// vote asks every other provider about want at once. k is how many leading
// blocks of want N providers agree on; possible is false when want[0]
// cannot reach N even if every provider that lags or failed agreed.
func (r *chainRunner) vote(ctx context.Context, want []hashAt) (k int, possible bool) {
	q := r.q
	answers := make([]peerAnswer, len(r.eps))
	r.eachPeer(func(i int) { answers[i] = r.askPeer(ctx, i, want) })
	now := time.Now()
	mayAgree := 1
	k = len(want)
	for j := range want {
		votes := 1
		for i, a := range answers {
			if i != r.epIdx && a.matched > j {
				votes++
			}
		}
		if votes < q.need {
			k = j
			break
		}
	}
	for i, a := range answers {
		if i == r.epIdx || ctx.Err() != nil {
			continue
		}
		if a.matched > 0 || a.state == provLagging || a.state == provUnreachable {
			mayAgree++
		}
		if a.state == provDisagrees {
			q.mDisagree.WithLabelValues(r.eps[i].redacted).Inc()
		}
		switch {
		case a.state == provHealthy:
			q.badSince[i] = time.Time{}
			r.setHealth(i, provHealthy, nil)
		case a.state == provLagging || a.state == provDisagrees:
			// A block or two behind, or a reorg seen in another order, is
			// normal for a moment: reported once it lasts.
			if q.badSince[i].IsZero() {
				q.badSince[i] = now
			}
			if now.Sub(q.badSince[i]) >= q.grace || q.state[i] == "" {
				r.setHealth(i, a.state, a.err)
			}
		default:
			r.setHealth(i, a.state, a.err)
		}
	}
	return k, mayAgree >= q.need
}

// awaitQuorum returns how many leading blocks of want (at most one header
// batch) N providers agree on, asking again with a growing pause until it
// is at least one. It gives the session up (errQuorum) when the others
// outvote the primary's first block quorumOutvoted rounds in a row.
func (r *chainRunner) awaitQuorum(ctx context.Context, want []hashAt) (int, error) {
	q := r.q
	if len(want) > headerBatch {
		want = want[:headerBatch]
	}
	delay := 100 * time.Millisecond
	outvoted := 0
	for {
		k, possible := r.vote(ctx, want)
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if k > 0 {
			r.setHealth(r.epIdx, provHealthy, nil)
			if q.waiting {
				q.waiting = false
				q.mWaiting.Set(0)
				r.log.Info("quorum reached; publishing again", zap.Uint64("block", want[0].n), zap.Int("quorum", q.need))
			}
			return k, nil
		}
		if !possible {
			if outvoted++; outvoted >= quorumOutvoted {
				err := fmt.Errorf("%w: block %d %s of %s is not confirmed by %d providers and cannot be", errQuorum, want[0].n, want[0].hash, r.url, q.need)
				r.setHealth(r.epIdx, provDisagrees, err)
				q.mDisagree.WithLabelValues(r.eps[r.epIdx].redacted).Inc()
				return 0, err
			}
		} else if outvoted = 0; !q.waiting {
			q.waiting = true
			q.mWaiting.Set(1)
			r.log.Warn("block waits for the quorum: fewer providers agree on it than required; not publishing", zap.Uint64("block", want[0].n),
				zap.String("hash", want[0].hash), zap.Int("quorum", q.need))
		}
		if !sleep.For(ctx, delay) {
			return 0, ctx.Err()
		}
		delay = min(2*delay, quorumRetryMax)
	}
}

// eachPeer runs fn for every provider but the followed one, all at once,
// and returns when every call has.
func (r *chainRunner) eachPeer(fn func(i int)) {
	var wg sync.WaitGroup
	for i := range r.eps {
		if i != r.epIdx {
			wg.Add(1)
			go func() { defer wg.Done(); fn(i) }()
		}
	}
	wg.Wait()
}

// checkPrimaryLag runs when the primary sent no head for a poll interval:
// when N other providers are past the primary's head on quorumLagPolls
// polls in a row, the primary lags and the session is given up.
func (r *chainRunner) checkPrimaryLag(ctx context.Context) error {
	q := r.q
	heads := make([]uint64, len(r.eps))
	r.eachPeer(func(i int) {
		ws, err := r.peerConn(ctx, i)
		if err != nil {
			return
		}
		var bn quantity
		cctx, cancel := context.WithTimeout(ctx, r.ing.CallTimeout)
		defer cancel()
		if err := ws.Call(cctx, &bn, "eth_blockNumber"); err == nil && uint64(bn) <= maxBlockNumber {
			heads[i] = uint64(bn)
		}
	})
	ahead := 0
	for i, h := range heads {
		if i != r.epIdx && h > r.head {
			ahead++
		}
	}
	if ahead < q.need {
		q.lagPolls = 0
		return nil
	}
	if q.lagPolls++; q.lagPolls < quorumLagPolls {
		return nil
	}
	q.lagPolls = 0
	err := fmt.Errorf("%w: %d providers are past %s's head %d", errQuorum, ahead, r.url, r.head)
	r.setHealth(r.epIdx, provLagging, err)
	return err
}
