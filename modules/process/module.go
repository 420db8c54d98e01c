// Package process is the process module: it reads each chain's events
// stream through a consumer group, matches every log against an in-memory
// index of enabled endpoints, decodes it, holds it for confirmations or
// batching when the endpoint asks for that, and turns matches into
// messages rows plus delivery jobs.
//
// Exactly once: a stream entry is acknowledged only after the messages it
// produced are committed in Postgres and their jobs are on the delivery
// stream. A crash anywhere replays the entry; the replay finds the messages
// already there (UNIQUE (endpoint_id, event_id, type)) and only re-enqueues
// the jobs of those still pending.
//
// Reorgs: holds and removal tombstones live in process_holds, keyed by
// (endpoint, event); a log and its removal meet on that row whichever is
// processed first. Transactions that handle removals take a per-chain
// advisory lock exclusively and all others take it shared, so a removal
// never races with the log or the release it cancels. Holds are released
// only up to a safe head that counts a read once no earlier stream entry is
// pending anywhere in the consumer group (see headTracker), so a removal
// read by another process, even one that dies before committing it, is
// always applied before the blocks that would confirm the removed event.
package process

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/rueidis"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/ethhook/ethhook/chaincursor"
	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/filter"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/backpressure"
	"github.com/ethhook/ethhook/internal/module"
	"github.com/ethhook/ethhook/internal/outage"
	"github.com/ethhook/ethhook/internal/sleep"
	"github.com/ethhook/ethhook/internal/streams"
	"github.com/ethhook/ethhook/tenant"
)

// Group is the consumer group process reads every events stream with.
const Group = hook.EventsGroup

// Module is the process module.
type Module struct {
	cfg    config.Process
	pool   *pgxpool.Pool
	rdb    rueidis.Client
	keys   hook.Keys
	chains []config.Chain
	log    *zap.Logger
	met    *metrics
	quota  *tenant.Store
	// cursors stores the chain cursor up to which every entry is handled
	// (what ingest resumes from when Redis loses its state).
	cursors *chaincursor.Store

	ix      *index
	ready   atomic.Bool
	changed chan string // endpoint ids announced as changed

	delivery *backpressure.Gate // holds reading back while deliver is far behind

	// out turns Postgres and Redis outages into two log lines each, not
	// one per loop per failed try.
	out outage.Deps

	releaseMu sync.Mutex
	releaseCh map[uint64]chan struct{}
	heads     map[uint64]*headTracker
	hands     map[uint64]*inHand // per chain, the reads the workers are handling

	// liveBusy is when a live read last took a full batch (history waits).
	liveBusy atomic.Int64
	// historyRate caps history events/s per chain; 0 = DefaultHistoryRate.
	historyRate int
	xmet        *extraMetrics // history and dead letters

	// onQueued, when set (benchmarks), sees when each stream entry's output was queued.
	onQueued func(entryID string, queuedAt time.Time)
	// afterCommit, when set (tests), runs between a batch's commit and its queueing.
	afterCommit func(context.Context)
	// ignoreChanges (tests) makes this process deaf to endpoint change
	// announcements and periodic reloads: it loads a new endpoint only
	// through the history handover (syncIndex), as one whose NOTIFY is late.
	ignoreChanges bool
	// gens is, per chain, the endpoint generation the index was last loaded
	// at (syncIndex); genMu also serialises those reloads.
	genMu sync.Mutex
	gens  map[uint64]string
	// beforeHandle, when set (tests), runs between a read and its handling.
	beforeHandle func(context.Context, []rueidis.XRangeEntry)
	// afterLoad, when set (tests), runs between the first index load and
	// the start of listening for endpoint changes.
	afterLoad func()
}

// Options are the process module's own settings beyond module.Deps.
type Options struct {
	// Chains are the chains whose streams are read; empty means every
	// configured chain (d.Config.Chains), or the embedded devnet when none is.
	Chains []config.Chain
}

// New builds the module on d (Postgres and Redis are required;
// d.Config.Process are its settings).
func New(d module.Deps, o Options) (*Module, error) {
	cfg, pool, rdb := d.Config, d.Pool, d.Redis
	if pool == nil || rdb == nil {
		return nil, errors.New("process: needs Postgres and Redis")
	}
	chains := o.Chains
	if len(chains) == 0 {
		chains = cfg.Chains
	}
	if len(chains) == 0 {
		// As serve does with no chain configured: the embedded devnet.
		chains = []config.Chain{{Name: "devnet", ID: config.DevnetChainID}}
	}
	if err := cfg.Process.Validate(); err != nil {
		return nil, fmt.Errorf("process: %w", err)
	}
	reg := d.Metrics()
	met, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("process: register metrics: %w", err)
	}
	pcfg := cfg.Process
	pcfg.HoldRetention = holdRetention(cfg)
	m := &Module{
		cfg: pcfg, pool: pool, rdb: rdb, keys: d.Keys(), chains: chains,
		log: d.Logger(), met: met, quota: tenant.New(pool), cursors: chaincursor.New(pool),
		ix: newIndex(), changed: make(chan string, 1024), releaseCh: map[uint64]chan struct{}{},
		hands: map[uint64]*inHand{}, out: outage.NewDeps(d.Logger()),
	}
	for _, c := range chains {
		m.releaseCh[c.ID] = make(chan struct{}, 1)
		m.hands[c.ID] = newInHand()
	}
	m.delivery = m.newDeliveryGate()
	if m.xmet, err = newExtraMetrics(reg); err != nil {
		return nil, fmt.Errorf("process: register metrics: %w", err)
	}
	return m, nil
}

// Name is "process".
func (m *Module) Name() string { return "process" }

// Ready reports whether the endpoint index is loaded and the streams' consumer groups exist.
func (m *Module) Ready() bool { return m.ready.Load() }

// Run processes until ctx ends.
func (m *Module) Run(ctx context.Context) error {
	if err := m.reload(ctx); err != nil {
		return err
	}
	if m.afterLoad != nil {
		m.afterLoad()
	}
	for _, c := range m.chains {
		if err := m.ensureGroup(ctx, c.ID); err != nil {
			return err
		}
	}
	m.ready.Store(true)
	defer m.ready.Store(false)
	m.log.Info("process started", zap.Int("endpoints", m.ix.size()), zap.Int("chains", len(m.chains)), zap.String("consumer", m.cfg.Consumer))

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return m.listenPostgres(ctx) })
	g.Go(func() error { return m.listenRedis(ctx) })
	g.Go(func() error { return m.applyChanges(ctx) })
	g.Go(func() error { return m.cleanup(ctx) })
	for _, c := range m.chains {
		g.Go(func() error {
			// First finish this consumer's own unacknowledged entries (a
			// crash's leftovers), alone, so no reader takes them twice.
			if err := m.consume(ctx, c.ID, -1); err != nil || ctx.Err() != nil {
				return err
			}
			for w := 0; w < m.cfg.Workers; w++ {
				g.Go(func() error { return m.consume(ctx, c.ID, w) })
			}
			return nil
		})
		g.Go(func() error { return m.releaser(ctx, c.ID) })
		g.Go(func() error { return m.consumeHistory(ctx, c.ID) })
	}
	err := g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// ensureGroup creates the consumer group (from the stream's start, so
// nothing published before process first ran is skipped).
func (m *Module) ensureGroup(ctx context.Context, chainID uint64) error {
	return streams.EnsureGroup(ctx, m.rdb, m.keys.Events(chainID), Group)
}

// compile turns an endpoint into an index target.
func compile(ep hook.Endpoint) (*target, error) {
	mt, err := filter.Compile(ep.Filter)
	if err != nil {
		return nil, err
	}
	return &target{ep: ep, m: mt}, nil
}

// reload rebuilds the index from every enabled endpoint.
func (m *Module) reload(ctx context.Context) error {
	eps, err := endpoint.LoadEnabled(ctx, m.pool)
	if err != nil {
		return fmt.Errorf("process: %w", err)
	}
	fresh := newIndex()
	reuse := make(map[string]*target, len(eps))
	m.ix.mu.RLock()
	for _, ep := range eps {
		if t := m.ix.byID[ep.ID]; t != nil && t.ep.UpdatedAt.Equal(ep.UpdatedAt) {
			reuse[ep.ID] = t
		}
	}
	m.ix.mu.RUnlock()
	for _, ep := range eps {
		if len(ep.OpsEvents) > 0 {
			continue // an operational endpoint gets EthHook's own events, not logs
		}
		if t := reuse[ep.ID]; t != nil {
			fresh.put(t) // unchanged since it was compiled
			continue
		}
		t, err := compile(ep)
		if err != nil {
			// Saved filters were validated; one that no longer compiles (a
			// changed built-in, say) must not stop the others.
			m.log.Warn("endpoint filter does not compile; endpoint skipped", zap.String("endpoint", ep.ID), zap.Error(err))
			continue
		}
		fresh.put(t)
	}
	m.ix.mu.Lock()
	m.ix.byID, m.ix.chains = fresh.byID, fresh.chains
	m.ix.mu.Unlock()
	m.met.endpoints.Set(float64(len(fresh.byID)))
	return nil
}

// refreshOne reloads one endpoint after a change announcement.
func (m *Module) refreshOne(ctx context.Context, id string) error {
	ep, err := endpoint.LoadOne(ctx, m.pool, id)
	var t *target
	switch {
	case errors.Is(err, hook.ErrNotFound):
	case err != nil:
		return err
	case ep.Enabled && len(ep.OpsEvents) == 0: // an operational endpoint gets no logs
		if t, err = compile(ep); err != nil {
			m.log.Warn("endpoint filter does not compile; endpoint skipped", zap.String("endpoint", id), zap.Error(err))
			t = nil
		}
	}
	m.ix.mu.Lock()
	if t != nil {
		m.ix.put(t)
	} else {
		m.ix.remove(id)
	}
	n := len(m.ix.byID)
	m.ix.mu.Unlock()
	m.met.endpoints.Set(float64(n))
	return nil
}

// applyChanges applies announced changes and reloads everything periodically.
func (m *Module) applyChanges(ctx context.Context) error {
	tick := time.NewTicker(m.cfg.RefreshInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case id := <-m.changed:
			if m.ignoreChanges {
				continue
			}
			// Coalesce a burst of announcements.
			ids := map[string]bool{id: true}
			for more := true; more && len(ids) < 1000; {
				select {
				case id := <-m.changed:
					ids[id] = true
				default:
					more = false
				}
			}
			for id := range ids {
				if err := m.refreshOne(ctx, id); err != nil && ctx.Err() == nil {
					m.log.Warn("refresh endpoint", zap.String("endpoint", id), zap.Error(err))
				}
			}
		case <-tick.C:
			if m.ignoreChanges {
				continue
			}
			if err := m.reload(ctx); err != nil && ctx.Err() == nil {
				m.log.Warn("reload endpoints", zap.Error(err))
			}
		}
	}
}

func (m *Module) announce(id string) {
	select {
	case m.changed <- id:
	default: // full: the periodic reload catches up
	}
}

// backoff is the wait of process's retry loops after attempt+1 failures.
func backoff(attempt int) time.Duration {
	return sleep.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}.After(attempt)
}

// listenPostgres hears NOTIFY ethhook_endpoints.
func (m *Module) listenPostgres(ctx context.Context) error {
	for attempt := 0; ctx.Err() == nil; attempt++ {
		err := func() error {
			conn, err := m.pool.Acquire(ctx)
			if err != nil {
				return err
			}
			defer conn.Release()
			if _, err := conn.Exec(ctx, "LISTEN "+endpoint.NotifyChannel); err != nil {
				return err
			}
			m.out.Postgres.OK()
			// Changes committed while not listening: catch up. Also on the
			// first LISTEN: Run's load came before it, and a change committed
			// in between (the demo seeds its endpoint as process starts)
			// would otherwise wait for the periodic reload, its events unmatched.
			if err := m.reload(ctx); err != nil {
				return err
			}
			attempt = 0
			for {
				n, err := conn.Conn().WaitForNotification(ctx)
				if err != nil {
					conn.Conn().Close(context.Background()) // don't return a LISTENing connection to the pool
					return err
				}
				m.announce(n.Payload)
			}
		}()
		if ctx.Err() != nil {
			return nil
		}
		m.out.Postgres.Fail("listen for endpoint changes", err)
		sleep.For(ctx, backoff(attempt))
	}
	return nil
}

// listenRedis hears PUBLISH on the endpoints-changed channel.
func (m *Module) listenRedis(ctx context.Context) error {
	for attempt := 0; ctx.Err() == nil; attempt++ {
		err := m.rdb.Receive(ctx, m.rdb.B().Subscribe().Channel(m.keys.EndpointsChanged()).Build(), func(msg rueidis.PubSubMessage) {
			m.announce(msg.Message)
		})
		if ctx.Err() != nil {
			return nil
		}
		m.out.Redis.Fail("subscribe to endpoint changes", err)
		sleep.For(ctx, backoff(attempt))
	}
	return nil
}

var (
	//go:embed delconsumer.lua
	delIdleConsumerSrc string
	// delIdleConsumer deletes a consumer that has nothing pending.
	delIdleConsumer = rueidis.NewLuaScript(delIdleConsumerSrc)
)

// holdRetention is process.hold_retention capped at retention.messages: a
// released hold outliving its message answers nothing (the partition
// holding the message is dropped), and with a short message retention the
// holds, payloads and all, would take most of the disk (the soak found
// process_holds growing 13 MiB/min at 24h beside 10m messages).
func holdRetention(cfg config.Config) time.Duration {
	return min(cfg.Process.HoldRetention, max(cfg.Retention.Messages, time.Minute))
}

// consumerRetention is how long a consumer with nothing pending may stay
// idle in a group before it is deleted (processes that are gone for good:
// renamed hosts, rescheduled pods). A live one is recreated by its next read.
const consumerRetention = time.Hour

// cleanup deletes released holds and tombstones past retention, and
// consumers of the groups that left for good.
func (m *Module) cleanup(ctx context.Context) error {
	for sleep.For(ctx, min(m.cfg.HoldRetention/10, 10*time.Minute)) {
		_, err := m.pool.Exec(ctx, `DELETE FROM process_holds WHERE state <> 'held' AND updated_at < now() - make_interval(secs => $1)`,
			m.cfg.HoldRetention.Seconds())
		if err != nil && ctx.Err() == nil {
			m.log.Warn("clean up old holds", zap.Error(err))
		}
		for _, c := range m.chains {
			if _, err := m.dropIdleConsumers(ctx, c.ID, consumerRetention); err != nil && ctx.Err() == nil {
				m.log.Warn("delete idle consumers", zap.Uint64("chain", c.ID), zap.Error(err))
			}
		}
	}
	return nil
}

// dropIdleConsumers deletes the chain group's consumers that have nothing
// pending and were idle longer than idle (never this process's own); it
// returns their names. A consumer with pending entries is kept: XAUTOCLAIM
// moves them first.
func (m *Module) dropIdleConsumers(ctx context.Context, chainID uint64, idle time.Duration) ([]string, error) {
	key := m.keys.Events(chainID)
	list, err := m.rdb.Do(ctx, m.rdb.B().XinfoConsumers().Key(key).Group(Group).Build()).ToArray()
	if err != nil {
		return nil, fmt.Errorf("XINFO CONSUMERS %s: %w", key, err)
	}
	var dropped []string
	for _, c := range list {
		info, err := c.AsMap()
		if err != nil {
			return dropped, fmt.Errorf("XINFO CONSUMERS %s: %w", key, err)
		}
		nameMsg, pendMsg, idleMsg := info["name"], info["pending"], info["idle"]
		name, err1 := nameMsg.ToString()
		pending, err2 := pendMsg.AsInt64()
		idleMS, err3 := idleMsg.AsInt64()
		if err := errors.Join(err1, err2, err3); err != nil {
			return dropped, fmt.Errorf("XINFO CONSUMERS %s: %w", key, err)
		}
		if name == m.cfg.Consumer || pending > 0 || time.Duration(idleMS)*time.Millisecond < idle {
			continue
		}
		// DELCONSUMER would drop pending entries with the consumer (lost for
		// good), and it may have read some since XINFO: the script checks
		// and deletes atomically.
		n, err := delIdleConsumer.Exec(ctx, m.rdb, []string{key}, []string{Group, name}).AsInt64()
		if err != nil {
			return dropped, fmt.Errorf("delete consumer %s of %s: %w", name, key, err)
		}
		if n == 1 {
			m.log.Info("deleted idle stream consumer", zap.String("stream", key), zap.String("consumer", name))
			dropped = append(dropped, name)
		}
	}
	return dropped, nil
}

// syncIndex reloads the endpoint index when the chain's endpoint
// generation is not the one it was loaded at (chaincursor.Handover: an
// endpoint's history ended at the cursor read with the new generation, so
// every entry read after it must be matched against an index that has the
// endpoint). It runs after each read of the events stream; false when ctx
// ended first.
func (m *Module) syncIndex(ctx context.Context, chainID uint64) bool {
	for attempt := 0; ; attempt++ {
		g, err := chaincursor.Generation(ctx, m.rdb, m.keys, chainID)
		if err == nil {
			m.genMu.Lock()
			loaded, ok := m.gens[chainID]
			if !ok || loaded != g {
				if err = m.reload(ctx); err == nil {
					if m.gens == nil {
						m.gens = map[uint64]string{}
					}
					m.gens[chainID] = g
				}
			}
			m.genMu.Unlock()
			if err == nil {
				return true
			}
		}
		if ctx.Err() != nil {
			return false
		}
		m.log.Warn("check the endpoint generation; retrying before matching", zap.Uint64("chain", chainID), zap.Error(err))
		if !sleep.For(ctx, backoff(attempt)) {
			return false
		}
	}
}
