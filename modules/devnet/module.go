package devnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/internal/module"
)

// Module runs a Node as a supervised module: it listens on the configured
// address, serves JSON-RPC and the control API, and mines.
type Module struct {
	cfg   config.Devnet
	log   *zap.Logger
	node  *Node
	ready atomic.Bool

	mu   sync.Mutex
	addr string
}

// ConfigFrom turns the config section into a node Config.
func ConfigFrom(c config.Devnet) Config {
	return Config{
		ChainID:        c.ChainID,
		Seed:           c.Seed,
		BlockTime:      c.BlockTime,
		LogsPerBlock:   c.LogsPerBlock,
		FixedLogs:      c.FixedLogs,
		MaxLogRange:    c.MaxLogRange,
		MaxLogResults:  c.MaxLogResults,
		FinalizedDepth: c.FinalizedDepth,
		SafeDepth:      c.SafeDepth,
		RetainBlocks:   c.RetainBlocks,
		RetainLogs:     c.RetainLogs,
		ReorgEvery:     c.ReorgEvery,
		ReorgDepth:     c.ReorgDepth,
		SkipEvery:      c.SkipEvery,
		SkipCount:      c.SkipCount,
		DropEvery:      c.DropEvery,
		StallEvery:     c.StallEvery,
		StallFor:       c.StallFor,
		MalformedEvery: c.MalformedEvery,
		RateLimitEvery: c.RateLimitEvery,
		EmptyLogsEvery: c.EmptyLogsEvery,
	}
}

// Options are the devnet module's own settings beyond module.Deps; it has
// none today (its settings are d.Config.Devnet).
type Options struct{}

// NewModule builds the devnet module on d.Config.Devnet; nothing listens
// until Run. d.Log is used as given (the app tags it with module=devnet).
// (New is the Node's constructor, hence the name.)
func NewModule(d module.Deps, _ Options) *Module {
	cfg := d.Config.Devnet
	return &Module{cfg: cfg, log: d.Logger(), node: New(ConfigFrom(cfg)), addr: cfg.Addr}
}

// FastForward mines at once up to block n, before Run serves anything, and
// returns how many blocks it mined. The devnet starts from genesis on every
// start while what ingest committed persists in Redis; the chain is the same
// for the same seed, so ingest goes on where it stopped instead of waiting
// for the devnet to reach its cursor again.
func (m *Module) FastForward(n uint64) int {
	h := m.node.Head().Number
	if n <= h {
		return 0
	}
	k := int(n - h)
	m.node.Mine(k)
	return k
}

// Name is the module's name for the supervisor.
func (m *Module) Name() string { return "devnet" }

// Node is the simulated chain, for fault injection from code.
func (m *Module) Node() *Node { return m.node }

// Ready reports whether the listener is open.
func (m *Module) Ready() bool { return m.ready.Load() }

// Addr is the address actually listened on (useful with port 0) once ready,
// the configured one before.
func (m *Module) Addr() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.addr
}

// URL is the WebSocket JSON-RPC URL, e.g. ws://127.0.0.1:8545/.
func (m *Module) URL() string { return "ws://" + m.Addr() + "/" }

// HTTPURL is the HTTP JSON-RPC URL, e.g. http://127.0.0.1:8545/.
func (m *Module) HTTPURL() string { return "http://" + m.Addr() + "/" }

// Run listens, serves and mines until ctx is done, then shuts down: new
// requests are refused, WebSocket clients get a close frame.
func (m *Module) Run(ctx context.Context) error {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", m.cfg.Addr)
	if err != nil {
		return fmt.Errorf("devnet listen on %s: %w", m.cfg.Addr, err)
	}
	m.mu.Lock()
	m.addr = ln.Addr().String()
	m.mu.Unlock()
	srv := &http.Server{Handler: m.node.Handler(), ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	m.ready.Store(true)
	m.log.Info("devnet listening", zap.String("ws_url", m.URL()), zap.String("http_url", m.HTTPURL()),
		zap.Uint64("chain_id", m.node.ChainID()), zap.Int64("seed", m.cfg.Seed), zap.Duration("block_time", m.cfg.BlockTime),
		zap.Int("logs_per_block", m.cfg.LogsPerBlock))

	mineCtx, stopMining := context.WithCancel(ctx)
	mined := make(chan error, 1)
	go func() { mined <- m.node.Run(mineCtx) }()

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		runErr = fmt.Errorf("devnet serve: %w", err)
	}
	m.ready.Store(false)
	stopMining()
	<-mined
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m.node.closeAll()
	if err := srv.Shutdown(shutCtx); err != nil && !errors.Is(err, http.ErrServerClosed) && runErr == nil {
		runErr = fmt.Errorf("devnet shutdown: %w", err)
	}
	m.log.Info("devnet stopped", zap.Uint64("head", m.node.Head().Number))
	return runErr
}
