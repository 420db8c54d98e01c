// Package ingest turns EVM chain heads into a gap-free, reorg-aware,
// idempotent stream of log events in Redis (`<prefix>{<chain_id>}:events`).
//
// Per chain: a writer lease with a fencing token (hot standby), a JSON-RPC
// WebSocket session with failover (rpc subpackage), newHeads as hints, one
// eth_getLogs({blockHash}) per head, ranged backfill for gaps, a window of
// recent canonical blocks to detect and unwind reorgs, and one Lua script
// per commit that checks the fence, the cursor and the per-block dedup key
// before it appends the entries and moves the cursor.
package ingest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/chaincursor"
	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/internal/module"
)

// Module is the ingest role: one isolated goroutine tree per chain.
type Module struct {
	cfg     config.Config
	rdb     rueidis.Client
	log     *zap.Logger
	met     *metrics
	cursors *chaincursor.Store // durable chain cursors; nil: Redis only
	runners []*chainRunner
	started atomic.Bool

	// histPool, when set (Options.History), runs a historian per chain.
	histPool *pgxpool.Pool
	histOpt  HistoryOptions

	// noRelease keeps the lease on stop, as a crash would (tests).
	noRelease bool
	// testHook, when set, is called at named steps (tests inject crashes
	// and panics there).
	testHook func(chain, step string)
}

func (m *Module) step(chain, name string) {
	if m.testHook != nil {
		m.testHook(chain, name)
	}
}

// Options are the ingest module's own settings beyond module.Deps.
type Options struct {
	// Chains are the chains to watch: the subset named by `ethhook ingest
	// --chains=`; empty means every configured chain (d.Config.Chains).
	Chains []config.Chain
	// History, when set, runs a historian per chain for the endpoints
	// created with from_block (needs d.Pool).
	History *HistoryOptions
}

// New builds the ingest module. d.Config supplies Redis.Prefix, DedupTTL()
// and the Ingest settings; d.Redis is required. d.Pool, when set, holds
// the durable copy of the chain cursors that a session resumes from when
// Redis lost its state (see durable.go); without it Redis is the only
// record, and a Redis that comes back empty makes ingest start again at the
// head.
func New(d module.Deps, o Options) (*Module, error) {
	cfg, rdb := d.Config, d.Redis
	chains := o.Chains
	if len(chains) == 0 {
		chains = cfg.Chains
	}
	if rdb == nil {
		return nil, errors.New("ingest: nil redis client")
	}
	if len(chains) == 0 {
		return nil, errors.New("ingest: no chains to watch (set chains: or ETHEREUM_WS_URL and friends)")
	}
	if err := cfg.Ingest.Validate(); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	if cfg.DedupTTL() <= 0 {
		return nil, fmt.Errorf("ingest: dedup_ttl_seconds must be positive, got %d", cfg.DedupTTLSeconds)
	}
	if o.History != nil && d.Pool == nil {
		return nil, errors.New("ingest: history needs Postgres")
	}
	var cursors *chaincursor.Store
	if d.Pool != nil {
		cursors = chaincursor.New(d.Pool)
	}
	met, err := newMetrics(d.Metrics())
	if err != nil {
		return nil, fmt.Errorf("ingest: register metrics: %w", err)
	}
	m := &Module{cfg: cfg, rdb: rdb, cursors: cursors, log: d.Logger(), met: met}
	if o.History != nil {
		m.histPool, m.histOpt = d.Pool, o.History.withDefaults()
	}
	seen := map[uint64]string{}
	for i, ch := range chains {
		switch {
		case ch.Name == "":
			return nil, fmt.Errorf("ingest: chains[%d]: name is empty", i)
		case ch.ID == 0:
			return nil, fmt.Errorf("ingest: chains[%s].id: must be set", ch.Name)
		case len(ch.WSURLs) == 0:
			return nil, fmt.Errorf("ingest: chains[%s].ws_urls: at least one WebSocket URL is needed", ch.Name)
		case seen[ch.ID] != "":
			return nil, fmt.Errorf("ingest: chains[%s].id: %d is also chain %s", ch.Name, ch.ID, seen[ch.ID])
		}
		seen[ch.ID] = ch.Name
		m.runners = append(m.runners, newChainRunner(m, ch))
	}
	return m, nil
}

// Name is the module's name for the supervisor.
func (m *Module) Name() string { return "ingest" }

// Ready reports whether every chain is either live (caught up once with
// its head) or a healthy standby.
func (m *Module) Ready() bool {
	if !m.started.Load() {
		return false
	}
	for _, r := range m.runners {
		if !r.ready.Load() {
			return false
		}
	}
	return true
}

// Run ingests every chain until ctx is done, then returns nil. A chain that
// fails (or panics) is restarted with backoff; it never stops another.
func (m *Module) Run(ctx context.Context) error {
	m.started.Store(true)
	var wg sync.WaitGroup
	for _, r := range m.runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.supervise(ctx)
		}()
		if m.histPool != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				newHistorian(r, m.histPool, m.histOpt).run(ctx)
			}()
		}
	}
	wg.Wait()
	return nil
}

func holderID() string {
	host, _ := os.Hostname()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))
}
