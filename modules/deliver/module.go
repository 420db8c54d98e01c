// Package deliver sends messages to endpoints as signed webhooks (Standard
// Webhooks), with retries on a schedule kept in Redis, a per-endpoint
// concurrency cap, rate limit and circuit breaker, an SSRF guard at dial
// time, and a row in delivery_history for every attempt.
//
// Flow: process inserts a messages row (pending) and XADDs a job to
// hook.Keys.DeliverJobs(). An endpoint's pending work waits in Postgres; the
// job only announces it. Intake (intake.go) reads jobs with a consumer group
// and claims their messages for their endpoints' lanes in one conditional
// UPDATE (claim.go: pending, due failed, or lease-expired delivering ->
// delivering, lease_owner = this process), so a duplicated job is harmless.
// A job whose lane is full is acknowledged and becomes a backlog hint: the
// lane (lane.go) pulls its endpoint's next messages from Postgres itself
// whenever it has room, so one busy endpoint is limited only by its
// concurrency, its latency and its rate limit. A FIFO endpoint's ordered
// messages are only pulled, in chain order, one in flight per ordering
// group (fifo.go). Whatever claims first
// reserves room in the process-wide holdings (holdings.go: MaxHeld,
// MaxHeldMiB), so under overload the backlog waits in Redis and Postgres,
// not in memory. Each lane sends under its endpoint's caps; decide
// (decide.go) turns each attempt into the message's next state; results are
// written in batches (writer.go: history, message state, usage); retries go
// to a Redis sorted set scored by due time, moved back to the job stream
// when due. A heartbeat renews this process's leases; a liveness key
// (liveness.go) lets the other processes retry the messages of one that was
// killed within seconds; a sweeper (sweeper.go), off the hot path, re-offers
// messages no live process holds, so killing every deliver process loses
// nothing.
package deliver

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/oklog/ulid/v2"
	"github.com/redis/rueidis"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/module"
	"github.com/ethhook/ethhook/internal/outage"
	"github.com/ethhook/ethhook/internal/streams"
	"github.com/ethhook/ethhook/modules/deliver/ssrf"
	"github.com/ethhook/ethhook/ops"
	"github.com/ethhook/ethhook/seal"
)

var (
	//go:embed gcra.lua
	gcraSrc string
	//go:embed promote.lua
	promoteSrc string

	gcraScript    = rueidis.NewLuaScript(gcraSrc)
	promoteScript = rueidis.NewLuaScript(promoteSrc)
)

// consumerGroup is the deliver consumer group on the jobs stream.
const consumerGroup = "deliver"

// intakes and writers: how many read-and-claim loops and result writers run.
// More than one of each measured slower on a 2-core machine (Postgres is the
// bottleneck there); raise them on bigger hosts.
const (
	intakes = 1
	writers = 1
)

// drainTimeout bounds how long Run waits for the writers on the way out.
const drainTimeout = 10 * time.Second

// Options are the deliver module's own settings beyond module.Deps (tests
// inject a clock and a jitter source); the zero value is production.
type Options struct {
	// Now replaces time.Now for every scheduling decision: retry due
	// times, leases, breaker cooldowns, signature timestamps, disable-after.
	Now func() time.Time
	// Rand replaces the jitter source (values in [0,1); 0.5 = no jitter).
	Rand func() float64

	rateRule rateRule // the rate-limit backlog's timing (tests shorten it)
}

// Module is the deliver module.
type Module struct {
	cfg       config.Delivery
	pool      *pgxpool.Pool
	rdb       rueidis.Client
	keys      hook.Keys
	box       *seal.Box
	log       *zap.Logger
	met       *metrics
	userAgent string
	owner     string
	now       func() time.Time
	rand      func() float64
	schedule  []time.Duration
	client    *http.Client
	follow    *http.Client
	sem       *semaphore.Weighted
	endpoints endpointCache
	ops       *ops.Emitter // operational webhooks: endpoint.disabled, breaker.opened, dead_letter.created, endpoint.rate_limited/_cleared

	hold  *holdings // process-wide caps on held messages
	lanes *lanes    // one per endpoint with work here

	results resultQueue
	sends   sync.WaitGroup // lanes, their sends and pulls
	ready   atomic.Bool

	// Outages of Redis and Postgres, as every loop sees them: two log
	// lines per outage, not one per failed attempt.
	redisOut, pgOut *outage.Tracker

	sending *sendingSet // attempts under way, listed for the liveness check

	rateRule rateRule // rate-limit backlog timing (ratebacklog.go); zero = the defaults

	// lostJobs asks the sweeper for a sweep now: Redis may have lost jobs
	// (sweeper.go).
	lostJobs chan struct{}
}

// New builds the deliver module on d (Postgres, Redis and the secret box are
// required; d.Config.Delivery are its settings).
func New(d module.Deps, o Options) (*Module, error) {
	dc := d.Config.Delivery
	if err := dc.Validate(); err != nil {
		return nil, err
	}
	if d.Pool == nil || d.Redis == nil {
		return nil, errors.New("deliver: needs Postgres and Redis")
	}
	if d.Box == nil {
		return nil, fmt.Errorf("deliver: %w", seal.ErrNoKey)
	}
	sched, _ := dc.Schedule()
	allow, exact, _ := dc.Allowed()
	met, err := newMetrics(d.Metrics())
	if err != nil {
		return nil, fmt.Errorf("deliver metrics: %w", err)
	}
	host, _ := os.Hostname()
	m := &Module{
		cfg:       dc,
		pool:      d.Pool,
		rdb:       d.Redis,
		keys:      d.Keys(),
		box:       d.Box,
		log:       d.Logger(),
		met:       met,
		userAgent: "ethhook/" + d.AppVersion(),
		owner:     fmt.Sprintf("%s-%d-%s", host, os.Getpid(), ulid.Make().String()),
		now:       time.Now,
		schedule:  sched,
		sem:       semaphore.NewWeighted(int64(dc.MaxInFlight)),
		hold:      newHoldings(dc.MaxHeld, dc.MaxHeldMiB, met.held),
		results:   newResultQueue(),
		sending:   &sendingSet{ids: map[string]struct{}{}},
	}
	m.ops = ops.New(m.pool, m.rdb, m.keys)
	m.lanes = &lanes{m: m, by: map[string]*lane{}}
	m.lostJobs = make(chan struct{}, 1)
	m.redisOut, m.pgOut = outage.New(m.log, "redis"), outage.New(m.log, "postgres")
	// A Redis that went away may come back without the last jobs it
	// acknowledged: a failover to a replica that had not had them yet
	// (replication is asynchronous), a restart from a snapshot. Their
	// messages wait with no job; sweep for them as soon as the outage is
	// over, not after three sweep intervals. An outage ends after
	// outage.Calm without a failure, so intake has been reading again for
	// that long (and the sweep leaves what the group has not read yet to
	// it); a job process is still re-adding only makes a second offer,
	// which a claim makes harmless.
	m.redisOut.OnEnd(m.sweepLostJobs)
	m.endpoints = endpointCache{m: m, by: map[string]*endpoint{}, loading: map[string]*endpointLoad{}}
	if o.Now != nil {
		m.now = o.Now
	}
	if o.Rand != nil {
		m.rand = o.Rand
	}
	m.rateRule = o.rateRule
	m.client, m.follow = newClients(ssrf.New(allow, exact...), dc.ConnectTimeout, dc.MaxInFlight)
	return m, nil
}

// Name is the module name.
func (m *Module) Name() string { return "deliver" }

// Ready reports whether the module consumes jobs.
func (m *Module) Ready() bool { return m.ready.Load() }

// retriesKey is the sorted set of scheduled retries (member "<message id> <endpoint id>").
func (m *Module) retriesKey() string { return m.keys.Prefix + "{deliver}:retries" }

// Run delivers until ctx ends. On the way out it stops taking jobs, aborts
// requests in flight (their messages are delivered again later), writes the
// results it has and hands its unsent messages back as pending.
func (m *Module) Run(ctx context.Context) error {
	if err := m.ensureGroup(ctx); err != nil {
		return err
	}
	m.log.Info("deliver started", zap.String("owner", m.owner))
	writerCtx, stopWriter := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWriter()
	writerDone := make(chan error, writers)
	for range writers {
		go func() { writerDone <- m.writer(writerCtx) }()
	}

	g, gctx := errgroup.WithContext(ctx)
	m.lanes.ctx = gctx
	for i := range intakes {
		g.Go(func() error { return m.intake(gctx, fmt.Sprintf("%s-%d", m.owner, i)) })
	}
	g.Go(func() error { return m.promoter(gctx) })
	g.Go(func() error { return m.sweeper(gctx) })
	g.Go(func() error { return m.metricsLoop(gctx) })
	g.Go(func() error { return m.heartbeat(gctx) })
	g.Go(func() error { return m.liveness(gctx) })
	g.Go(func() error { return m.listenChanges(gctx) })
	g.Go(func() error { return m.rateBacklogLoop(gctx) })
	m.ready.Store(true)
	err := g.Wait()
	m.ready.Store(false)

	// Lanes stop with gctx; wait for the last sends to report. The
	// writers drain what is left, for at most drainTimeout: with Postgres
	// away they would retry forever, and what they could not write is
	// repaired anyway (the leases run out and the sweeper offers the
	// messages again).
	m.sends.Wait()
	m.results.close()
	drain := time.AfterFunc(drainTimeout, stopWriter)
	defer drain.Stop()
	var werr error
	for range writers {
		if err := <-writerDone; err != nil {
			werr = err
		}
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if n, rerr := m.handBack(rctx, nil, true); rerr != nil {
		m.log.Warn("hand back held messages", zap.Error(rerr))
	} else if n > 0 {
		m.log.Info("handed back held messages", zap.Int("messages", n))
	}
	m.endLiveness(rctx)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		err = nil
	}
	if err == nil && werr != nil {
		err = werr
	}
	return err
}

func (m *Module) ensureGroup(ctx context.Context) error {
	return streams.EnsureGroup(ctx, m.rdb, m.keys.DeliverJobs(), consumerGroup)
}

func zapEndpoint(id string) zap.Field { return zap.String("endpoint", id) }
func zapErr(err error) zap.Field      { return zap.Error(err) }
