//go:build browser

package ui

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/module"
	"github.com/ethhook/ethhook/internal/testenv"
	"github.com/ethhook/ethhook/modules/admin"
	"github.com/ethhook/ethhook/modules/deliver"
	"github.com/ethhook/ethhook/modules/devnet"
	"github.com/ethhook/ethhook/modules/ingest"
	"github.com/ethhook/ethhook/modules/process"
	"github.com/ethhook/ethhook/seal"
	"github.com/ethhook/ethhook/sign"
	"github.com/ethhook/ethhook/tenant"
)

// stack is the whole pipeline in-process, as `serve --all` runs it: a
// devnet node served over WebSocket, ingest, process and deliver, and the
// admin module with the UI mounted on its router on the real tenant,
// endpoint and message services. Webhooks go to a local receiver that
// verifies their signatures. Blocks are mined only while the test asks
// (startMining), a few logs each, to stay light on a 2-core machine.
type stack struct {
	t        *testing.T
	pool     *pgxpool.Pool
	rdb      rueidis.Client
	keys     hook.Keys
	store    *tenant.Store
	srv      *httptest.Server
	receiver *receiver
	eps      *endpoint.Service
	node     *devnet.Node

	miningMu   sync.Mutex
	stopMining func()
}

// receiver is the customer's webhook server. Once key is set it verifies
// every request's Standard Webhooks signature.
type receiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	key []byte
	got []received
	bad []string
}

type received struct {
	header http.Header
	typ    string
}

func (r *receiver) setKey(secret string) error {
	k, err := sign.Key(secret)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.key = k
	r.mu.Unlock()
	return nil
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	var p struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(body, &p)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.key != nil {
		if err := sign.Verify(r.key, req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp"),
			req.Header.Get("webhook-signature"), body, time.Now(), 5*time.Minute); err != nil {
			r.bad = append(r.bad, req.Header.Get("webhook-id")+": "+err.Error())
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
	}
	r.got = append(r.got, received{header: req.Header.Clone(), typ: p.Type})
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, "ok")
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

func (r *receiver) countType(typ string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, g := range r.got {
		if g.typ == typ {
			n++
		}
	}
	return n
}

func (r *receiver) rejected() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bad...)
}

// pipelineModule is what the stack runs: ingest, process, deliver.
type pipelineModule interface {
	Name() string
	Run(ctx context.Context) error
	Ready() bool
}

func newStack(t *testing.T) *stack {
	t.Helper()
	s := &stack{t: t, pool: testenv.PG(t)}
	s.rdb, s.keys.Prefix = testenv.Redis(t)
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))

	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	box, err := seal.New(key)
	if err != nil {
		t.Fatal(err)
	}

	// The devnet: mined by the test, a few logs per block.
	s.node = devnet.New(devnet.Config{ChainID: config.DevnetChainID, Seed: 1, LogsPerBlock: 3, RetainBlocks: 1024})
	nodeSrv := httptest.NewServer(s.node.Handler())
	t.Cleanup(nodeSrv.Close)
	chain := config.Chain{Name: "devnet", ID: config.DevnetChainID, WSURLs: []string{"ws" + strings.TrimPrefix(nodeSrv.URL, "http") + "/"},
		HTTPURL: nodeSrv.URL + "/", ReorgDepth: 64, BlockTime: 300 * time.Millisecond}
	chains := []config.Chain{chain}

	cfg := config.Defaults()
	cfg.Redis.Prefix = s.keys.Prefix
	cfg.Chains = chains
	cfg.Ingest.LeaseTTL = 2 * time.Second
	cfg.Process.Consumer = "browser-" + randomHex(4)
	cfg.Process.BlockTimeout = 200 * time.Millisecond
	cfg.Process.ReleaseInterval = 200 * time.Millisecond
	cfg.Delivery.AllowCIDRs = []string{"127.0.0.0/8"}
	cfg.Delivery.SweepInterval = 500 * time.Millisecond

	// The admin module with the UI on its router, as app/ui.go mounts it.
	ac := config.DefaultAdmin()
	ac.JWTSecret = strings.Repeat("s", 40)
	am, err := admin.New(module.Deps{Config: config.Config{Admin: ac, Redis: cfg.Redis, Chains: chains}, Pool: s.pool, Redis: s.rdb, Box: box,
		Log: log, Registerer: prometheus.NewRegistry()}, admin.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.store, s.eps = am.Store(), am.Endpoints()
	u, err := New(module.Deps{Config: config.Config{Redis: cfg.Redis, Chains: chains}, Pool: s.pool, Redis: s.rdb, Log: log}, Options{
		Tenant: am.Store(), Endpoints: am.Endpoints(), Messages: am.Messages(), SendTest: am.SendTest, RotateOverlap: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	u.Routes(am.Echo())
	s.srv = httptest.NewServer(am.Handler())
	t.Cleanup(s.srv.Close)

	// The pipeline.
	reg := prometheus.NewRegistry()
	ing, err := ingest.New(module.Deps{Config: cfg, Pool: s.pool, Redis: s.rdb, Log: log.With(zap.String("module", "ingest")), Registerer: reg}, ingest.Options{Chains: chains})
	if err != nil {
		t.Fatal(err)
	}
	proc, err := process.New(module.Deps{Config: cfg, Pool: s.pool, Redis: s.rdb, Log: log.With(zap.String("module", "process")), Registerer: reg}, process.Options{Chains: chains})
	if err != nil {
		t.Fatal(err)
	}
	del, err := deliver.New(module.Deps{Config: cfg, Pool: s.pool, Redis: s.rdb, Box: box, Version: "browser-test", Log: log.With(zap.String("module", "deliver")), Registerer: reg}, deliver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.run([]pipelineModule{ing, proc, del})
	// A first block, so the chain has a committed cursor (no endpoint yet:
	// its logs match nothing).
	s.node.Mine(1)
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := s.rdb.Do(context.Background(), s.rdb.B().Get().Key(s.keys.Chain(config.DevnetChainID, "cursor")).Build()).Error()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ingest committed no block within 30s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	s.receiver = &receiver{}
	s.receiver.srv = httptest.NewServer(s.receiver)
	t.Cleanup(s.receiver.srv.Close)
	return s
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// run starts the modules, waits until each is ready and stops them (in
// reverse) at cleanup.
func (s *stack) run(mods []pipelineModule) {
	s.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		name string
		err  error
	}
	done := make(chan result, len(mods))
	for _, m := range mods {
		go func() { done <- result{m.Name(), m.Run(ctx)} }()
	}
	s.t.Cleanup(func() {
		s.stopMiningNow()
		cancel()
		deadline := time.After(30 * time.Second)
		for range mods {
			select {
			case r := <-done:
				if r.err != nil && !errors.Is(r.err, context.Canceled) {
					s.t.Errorf("%s: %v", r.name, r.err)
				}
			case <-deadline:
				s.t.Error("the pipeline did not stop within 30s")
				return
			}
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for _, m := range mods {
		for !m.Ready() {
			select {
			case r := <-done:
				s.t.Fatalf("%s stopped before it was ready: %v", r.name, r.err)
			default:
			}
			if time.Now().After(deadline) {
				s.t.Fatalf("%s not ready within 60s", m.Name())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// startMining mines a devnet block every 300ms until stopMiningNow.
func (s *stack) startMining() {
	s.miningMu.Lock()
	defer s.miningMu.Unlock()
	if s.stopMining != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(300 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.node.Mine(1)
			}
		}
	}()
	s.stopMining = func() { cancel(); <-done }
}

func (s *stack) stopMiningNow() {
	s.miningMu.Lock()
	defer s.miningMu.Unlock()
	if s.stopMining != nil {
		s.stopMining()
		s.stopMining = nil
	}
}

// settle waits until no message of the endpoint is pending or being
// delivered and the receiver's count has stopped moving.
func (s *stack) settle(epID string) {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	last, stableSince := -1, time.Now()
	for {
		var open int
		if err := s.pool.QueryRow(context.Background(), `SELECT count(*) FROM message_states WHERE endpoint_id = $1 AND state IN ('pending', 'delivering')`,
			epID).Scan(&open); err != nil {
			s.t.Fatal(err)
		}
		n := s.receiver.count()
		if n != last {
			last, stableSince = n, time.Now()
		}
		if open == 0 && time.Since(stableSince) > time.Second {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("endpoint %s: %d messages still open after 60s", epID, open)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// messageCounts counts the endpoint's messages by state.
func (s *stack) messageCounts(epID string) map[string]int {
	s.t.Helper()
	rows, err := s.pool.Query(context.Background(), `SELECT state, count(*) FROM message_states WHERE endpoint_id = $1 GROUP BY state`, epID)
	if err != nil {
		s.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			s.t.Fatal(err)
		}
		out[st] = n
	}
	return out
}
