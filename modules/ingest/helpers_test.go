package ingest

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/rueidis"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/ethhook/ethhook/chaincursor"
	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/module"
	"github.com/ethhook/ethhook/internal/testenv"
	"github.com/ethhook/ethhook/modules/devnet"
)

const testChainID = 31337

type env struct {
	t      testing.TB
	node   *devnet.Node
	srv    *httptest.Server
	rdb    rueidis.Client
	prefix string
	cfg    config.Config
	chain  config.Chain
	// pool, when set (usePostgres), is the ingester's Postgres: cursors
	// is the durable cursor store on it.
	pool    *pgxpool.Pool
	cursors *chaincursor.Store
	log     *zap.Logger // when set, the logger of the ingesters started next
}

// usePostgres gives the ingesters started next pool, so they keep durable
// cursors there.
func (e *env) usePostgres(pool *pgxpool.Pool) {
	e.pool, e.cursors = pool, chaincursor.New(pool)
}

func newEnv(t testing.TB, dcfg devnet.Config) *env {
	t.Helper()
	if dcfg.ChainID == 0 {
		dcfg.ChainID = testChainID
	}
	n := devnet.New(dcfg)
	srv := httptest.NewServer(n.Handler())
	t.Cleanup(srv.Close)
	rdb, prefix := testenv.Redis(t)
	cfg := config.Defaults()
	cfg.Redis.Prefix = prefix
	cfg.Ingest.ReconnectMin = 50 * time.Millisecond
	cfg.Ingest.ReconnectMax = 500 * time.Millisecond
	cfg.Ingest.CallTimeout = 2 * time.Second
	cfg.Ingest.HeadPollInterval = 300 * time.Millisecond
	cfg.Ingest.LeaseTTL = time.Second
	cfg.Ingest.StreamMaxLen = 10_000_000
	zero := uint64(0)
	ch := config.Chain{
		Name: "devnet", ID: testChainID, WSURLs: []string{wsURL(srv)},
		ReorgDepth: 16, BlockTime: 50 * time.Millisecond, StartBlock: &zero,
	}
	return &env{t: t, node: n, srv: srv, rdb: rdb, prefix: prefix, cfg: cfg, chain: ch}
}

func wsURL(srv *httptest.Server) string { return "ws" + strings.TrimPrefix(srv.URL, "http") + "/" }

// runner is a started ingest module that can be stopped (cancelled).
type runner struct {
	m      *Module
	cancel context.CancelFunc
	done   chan struct{}
}

func (e *env) start(chains []config.Chain, opts ...func(*Module)) *runner {
	e.t.Helper()
	if chains == nil {
		chains = []config.Chain{e.chain}
	}
	log := zap.NewNop()
	switch {
	case e.log != nil:
		log = e.log
	case testing.Verbose():
		log = zaptest.NewLogger(e.t, zaptest.Level(zap.InfoLevel))
	}
	m, err := New(module.Deps{Config: e.cfg, Pool: e.pool, Redis: e.rdb, Log: log, Registerer: prometheus.NewRegistry()}, Options{Chains: chains})
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	for _, o := range opts {
		o(m)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{m: m, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		if err := m.Run(ctx); err != nil {
			e.t.Errorf("Run: %v", err)
		}
	}()
	e.t.Cleanup(r.stop)
	return r
}

func (r *runner) stop() {
	r.cancel()
	<-r.done
}

// eventually polls cond up to d.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fence is the chain's fencing token in Redis.
func (e *env) fence() string {
	s, _ := e.rdb.Do(context.Background(), e.rdb.B().Get().Key(hook.Keys{Prefix: e.prefix}.Chain(testChainID, "fence")).Build()).ToString()
	return s
}

// fenceAtAcquire waits until r holds the chain's lease and returns the
// fencing token it got.
func (e *env) fenceAtAcquire(r *runner) string {
	e.t.Helper()
	eventually(e.t, 10*time.Second, "the lease to be acquired", func() bool {
		return testutil.ToFloat64(r.m.met.leaseHolder.With(chainLabelValues(e.chain.Name, e.chain.ID))) == 1
	})
	return e.fence()
}

func (e *env) cursor() string {
	s, _ := e.rdb.Do(context.Background(), e.rdb.B().Get().Key(hook.Keys{Prefix: e.prefix}.Chain(testChainID, "cursor")).Build()).ToString()
	return s
}

// waitCaughtUp waits until the committed cursor is the devnet's head.
func (e *env) waitCaughtUp() {
	e.t.Helper()
	eventually(e.t, 30*time.Second, "ingester to reach the devnet head", func() bool {
		h := e.node.Head()
		return e.cursor() == fmt.Sprintf("%d:%s", h.Number, strings.ToLower(h.Hash.Hex()))
	})
}

type entry struct {
	ID, Type, Event string
}

func (e *env) stream() []entry {
	e.t.Helper()
	key := hook.Keys{Prefix: e.prefix}.Events(testChainID)
	var out []entry
	start := "-"
	for {
		es, err := e.rdb.Do(context.Background(), e.rdb.B().Xrange().Key(key).Start(start).End("+").Count(10000).Build()).AsXRange()
		if err != nil {
			e.t.Fatalf("xrange: %v", err)
		}
		for _, x := range es {
			if t := x.FieldValues["type"]; t == hook.TypeFinality {
				continue // the node's safe/finalized blocks (finality.go), no event
			}
			out = append(out, entry{ID: x.FieldValues["id"], Type: x.FieldValues["type"], Event: x.FieldValues["event"]})
		}
		if len(es) < 10000 {
			return out
		}
		start = "(" + es[len(es)-1].ID
	}
}

// verify checks the stream against the devnet: each id is published at
// most once, a removal follows its log and carries the same body, the
// live ids (log minus removed) are exactly the canonical chain's, in
// chain order. It returns the number of removals.
func (e *env) verify() (logs, removed int) {
	e.t.Helper()
	entries := e.stream()
	state := map[string]int{} // 1 live, 2 removed
	body := map[string]string{}
	for _, x := range entries {
		ev, err := hook.ParseEntry(map[string]string{"id": x.ID, "type": x.Type, "event": x.Event})
		if err != nil {
			e.t.Fatalf("bad entry: %v", err)
		}
		if ev.Type != x.Type || ev.ID != x.ID {
			e.t.Fatalf("entry %s: body says %s/%s", x.ID, ev.ID, ev.Type)
		}
		switch x.Type {
		case hook.TypeLog:
			if state[x.ID] != 0 {
				e.t.Fatalf("id %s published twice", x.ID)
			}
			state[x.ID], body[x.ID] = 1, x.Event
			logs++
		case hook.TypeLogRemoved:
			if state[x.ID] != 1 {
				e.t.Fatalf("removal of %s without a live log before it", x.ID)
			}
			want := strings.Replace(body[x.ID], `"type":"log"`, `"type":"log.removed"`, 1)
			if x.Event != want {
				e.t.Fatalf("removal of %s has body %s, want %s", x.ID, x.Event, want)
			}
			state[x.ID] = 2
			removed++
		}
	}
	var live []string
	for _, x := range entries {
		if x.Type == hook.TypeLog && state[x.ID] == 1 {
			live = append(live, x.ID)
		}
	}
	head := e.node.Head().Number
	canon := e.node.CanonicalLogs(0, head)
	if len(live) != len(canon) {
		e.t.Fatalf("live ids: %d, canonical logs: %d (head %d)", len(live), len(canon), head)
	}
	for i, l := range canon {
		want := hook.EventID(testChainID, l.BlockHash.Hex(), l.Index)
		if live[i] != want {
			e.t.Fatalf("live id #%d = %s, want %s", i, live[i], want)
		}
	}
	// Every orphaned log that was published was retracted.
	for _, b := range e.node.Orphaned() {
		for _, l := range b.Logs {
			if id := hook.EventID(testChainID, l.BlockHash.Hex(), l.Index); state[id] == 1 {
				e.t.Fatalf("orphaned log %s is still live", id)
			}
		}
	}
	return logs, removed
}

// miner mines a block every d until stopped.
func miner(n *devnet.Node, d time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				n.Mine(1)
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}
