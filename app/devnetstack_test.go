package app

import (
	"context"
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
	"github.com/ethhook/ethhook/internal/chainstatus"
	"github.com/ethhook/ethhook/internal/module"
	"github.com/ethhook/ethhook/internal/testenv"
	"github.com/ethhook/ethhook/modules/devnet"
	"github.com/ethhook/ethhook/modules/ingest"
	"github.com/ethhook/ethhook/modules/process"
	"github.com/ethhook/ethhook/seal"
	"github.com/ethhook/ethhook/tenant"
)

// stackConfig is what differs between the tests that run ingest and
// process against a devnet (finality, history, Redis loss).
type stackConfig struct {
	// name names the application, its unlimited plan and process's consumer.
	name string
	// chain is the devnet chain as ingest sees it: Name, ID and BlockTime
	// default to the devnet's; WSURLs is the node's server.
	chain config.Chain
	// handler serves the node's JSON-RPC; nil: the node's own handler.
	handler http.Handler
	// redis and prefix: a Redis of the test's own; nil: a prefix of the
	// shared one (testenv.Redis).
	redis  rueidis.Client
	prefix string
	// tune changes the shared settings below.
	tune func(*config.Config)
}

// devnetStack is a devnet node over a real WebSocket, a fresh database, a
// Redis key prefix and an application on an unlimited plan with the
// endpoint service to give it endpoints; newIngest and newProcess build
// the modules on it and run runs them until the test ends.
type devnetStack struct {
	t      testing.TB
	node   *devnet.Node
	rdb    rueidis.Client
	keys   hook.Keys
	pool   *pgxpool.Pool
	cfg    config.Config
	chains []config.Chain
	svc    *endpoint.Service
	appID  string
	log    *zap.Logger
}

func newDevnetStack(t testing.TB, node *devnet.Node, sc stackConfig) *devnetStack {
	t.Helper()
	s := &devnetStack{t: t, node: node, pool: testenv.PG(t), rdb: sc.redis, keys: hook.Keys{Prefix: sc.prefix}}
	if s.rdb == nil {
		s.rdb, s.keys.Prefix = testenv.Redis(t)
	}
	h := sc.handler
	if h == nil {
		h = node.Handler()
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	s.cfg = config.Defaults()
	s.cfg.Redis.Prefix = s.keys.Prefix
	s.cfg.Ingest.ReconnectMin = 50 * time.Millisecond
	s.cfg.Ingest.ReconnectMax = 500 * time.Millisecond
	s.cfg.Ingest.CallTimeout = 2 * time.Second
	s.cfg.Ingest.HeadPollInterval = 300 * time.Millisecond
	s.cfg.Ingest.LeaseTTL = time.Second
	s.cfg.Process.Consumer = sc.name
	s.cfg.Process.ClaimIdle = time.Second
	s.cfg.Process.BlockTimeout = 100 * time.Millisecond
	s.cfg.Process.ReleaseInterval = 50 * time.Millisecond
	if sc.tune != nil {
		sc.tune(&s.cfg)
	}
	ch := sc.chain
	if ch.Name == "" {
		ch.Name = "devnet"
	}
	if ch.ID == 0 {
		ch.ID = config.DevnetChainID
	}
	if ch.BlockTime == 0 {
		ch.BlockTime = 50 * time.Millisecond
	}
	ch.WSURLs = []string{"ws" + strings.TrimPrefix(srv.URL, "http") + "/"}
	s.chains = []config.Chain{ch}

	ctx := context.Background()
	a, err := tenant.New(s.pool).CreateApplication(ctx, hook.Operator, sc.name, "")
	if err != nil {
		t.Fatal(err)
	}
	plan := "unlimited-" + sc.name
	if _, err := s.pool.Exec(ctx, `INSERT INTO plans (id, name, monthly_quota, max_endpoints) VALUES ($1, 'U', 0, 0)`, plan); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `UPDATE applications SET plan_id = $1 WHERE id = $2`, plan, a.ID); err != nil {
		t.Fatal(err)
	}
	s.appID = a.ID
	box, err := seal.New([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	s.svc = endpoint.New(s.pool, box, s.rdb, s.keys, nil)

	s.log = zap.NewNop()
	if testing.Verbose() {
		s.log = zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
	}
	return s
}

// deps is what a module named name is built on here; reg nil: a registry
// of its own.
func (s *devnetStack) deps(name string, reg prometheus.Registerer) module.Deps {
	return module.Deps{Config: s.cfg, Pool: s.pool, Redis: s.rdb, Log: s.log.With(zap.String("module", name)), Registerer: reg}
}

// newIngest builds an ingest module (a new process: nothing in memory) for
// the stack's chain.
func (s *devnetStack) newIngest(reg prometheus.Registerer, o ingest.Options) *ingest.Module {
	s.t.Helper()
	o.Chains = s.chains
	m, err := ingest.New(s.deps("ingest", reg), o)
	if err != nil {
		s.t.Fatal(err)
	}
	return m
}

// newProcess builds a process module for the stack's chain.
func (s *devnetStack) newProcess() *process.Module {
	s.t.Helper()
	m, err := process.New(s.deps("process", nil), process.Options{Chains: s.chains})
	if err != nil {
		s.t.Fatal(err)
	}
	return m
}

// run runs m until the test ends or the returned stop is called.
func (s *devnetStack) run(m Module) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := m.Run(ctx); err != nil {
			s.t.Errorf("%s: %v", m.Name(), err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	s.t.Cleanup(stop)
	return stop
}

// cursor is ingest's committed cursor (unset while it has none, or while
// Redis is away).
func (s *devnetStack) cursor() hook.Cursor {
	c, _ := chainstatus.New(s.rdb, s.keys).Cursor(context.Background(), config.DevnetChainID)
	return c
}
