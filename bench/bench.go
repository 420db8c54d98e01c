// Package bench is the end-to-end load run behind `ethhook bench`: in one
// process it runs the devnet (on its own loopback port), ingest, process
// and deliver against the configured Postgres and Redis, with K endpoints
// pointing at a built-in receiver that verifies every signature, mines at a
// target rate and measures what each stage actually did.
//
// Every figure is measured: throughput from the events stream's entry ids,
// process's counters and the receiver's 2xx count; latencies from the time
// each block was mined, each stream entry's id time (milliseconds, set by
// Redis), process's stream-entry -> queued histogram and the time each
// webhook reached the receiver; memory from VmHWM and CPU from getrusage.
//
// A run is isolated from real data: a fresh Redis prefix, a fresh chain id,
// a fresh application (on an unlimited "bench" plan); it deletes them at the
// end unless told to keep them.
package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/hook"
	mod "github.com/ethhook/ethhook/internal/module"
	"github.com/ethhook/ethhook/modules/deliver"
	"github.com/ethhook/ethhook/modules/devnet"
	"github.com/ethhook/ethhook/modules/ingest"
	"github.com/ethhook/ethhook/modules/process"
	"github.com/ethhook/ethhook/seal"
	"github.com/ethhook/ethhook/sign"
	"github.com/ethhook/ethhook/tenant"
)

// PlanID is the unlimited plan bench applications are created on (no
// quota, endpoint cap or rate limit to throttle the run). It is created on
// first use and left in place.
const PlanID = "bench-unlimited"

// Options choose the load.
type Options struct {
	Endpoints    int           // endpoints created, all pointing at the built-in receiver
	Share        float64       // share of the devnet's logs each endpoint matches (>= 1: every log)
	Rate         float64       // target events (logs) mined per second
	LogsPerBlock int           // logs in every block; the block interval is LogsPerBlock/Rate
	Warmup       time.Duration // mining before the measured window
	Duration     time.Duration // the measured window
	Drain        time.Duration // longest wait after mining for deliveries to finish
	Seed         int64         // devnet seed
	Keep         bool          // keep the application and Redis keys
	Ordering     string        // endpoints' delivery order: "" or parallel, or fifo
	FIFOKey      string        // with Ordering fifo: contract, topic1..topic3, or "" (one order per chain)
	Signature    string        // endpoints' signature scheme: "" or hmac, or ed25519
	CPUProfile   io.Writer     // CPU profile of the measured window, when set
	MemProfile   io.Writer     // heap profile at the end of the measured window, when set
	Log          *zap.Logger
}

// Deps are the shared connections and the base configuration (the
// ingest, process and delivery settings of the run come from it).
type Deps struct {
	Cfg   config.Config
	Pool  *pgxpool.Pool
	Redis rueidis.Client
	Box   *seal.Box // seals endpoint secrets; nil: an ephemeral key for this run
}

// Validate checks the options.
func (o Options) Validate() error {
	var errs []error
	if o.Endpoints < 1 {
		errs = append(errs, fmt.Errorf("--endpoints: must be at least 1, got %d", o.Endpoints))
	}
	if o.Share <= 0 {
		errs = append(errs, fmt.Errorf("--share: must be > 0, got %g", o.Share))
	}
	if o.Rate <= 0 {
		errs = append(errs, fmt.Errorf("--rate: must be > 0, got %g", o.Rate))
	}
	if o.LogsPerBlock < 1 || o.LogsPerBlock > 100_000 {
		errs = append(errs, fmt.Errorf("--logs-per-block: must be 1..100000, got %d", o.LogsPerBlock))
	}
	if o.Duration <= 0 {
		errs = append(errs, fmt.Errorf("--duration: must be > 0, got %s", o.Duration))
	}
	if o.Warmup < 0 || o.Drain < 0 {
		errs = append(errs, errors.New("--warmup and --drain must not be negative"))
	}
	if o.Ordering != "" && o.Ordering != hook.OrderingParallel && o.Ordering != hook.OrderingFIFO {
		errs = append(errs, fmt.Errorf("--ordering: must be %s or %s, got %q", hook.OrderingParallel, hook.OrderingFIFO, o.Ordering))
	}
	if o.FIFOKey != "" && o.Ordering != hook.OrderingFIFO {
		errs = append(errs, fmt.Errorf("--fifo-key: only applies with --ordering fifo"))
	}
	if o.FIFOKey != "" && !slices.Contains(hook.FIFOKeys, o.FIFOKey) {
		errs = append(errs, fmt.Errorf("--fifo-key: must be one of %s, got %q", strings.Join(hook.FIFOKeys, ", "), o.FIFOKey))
	}
	if o.Signature != "" && !slices.Contains(sign.Schemes, o.Signature) {
		errs = append(errs, fmt.Errorf("--signature: must be %s, got %q", strings.Join(sign.Schemes, " or "), o.Signature))
	}
	return errors.Join(errs...)
}

// BlockInterval is the time between mined blocks.
func (o Options) BlockInterval() time.Duration {
	return time.Duration(float64(o.LogsPerBlock) / o.Rate * float64(time.Second))
}

// devnetRetainLogs bounds the logs the bench's devnet keeps whole (about
// 1 KB each): 8 blocks of 1,000 logs, 0.8 s at 10,000 events/s.
const devnetRetainLogs = 8192

// Run performs one bench run and returns what it measured.
func Run(ctx context.Context, d Deps, o Options) (res Result, err error) {
	if err := o.Validate(); err != nil {
		return res, err
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	log := o.Log
	suffix := randHex(6)
	chainID := 900_000_000 + randUint(99_999_999)
	cfg := d.Cfg
	cfg.Redis.Prefix = "bench-" + suffix + ":"
	cfg.Process.Consumer = "bench-" + suffix
	cfg.Delivery.AllowCIDRs = append(append([]string{}, cfg.Delivery.AllowCIDRs...), "127.0.0.0/8")
	expected := int64(o.Rate*(o.Warmup+o.Duration).Seconds()) + int64(o.LogsPerBlock)
	if cfg.Ingest.StreamMaxLen < 2*expected {
		cfg.Ingest.StreamMaxLen = 2 * expected // the stream is read back after the run
	}
	keys := hook.Keys{Prefix: cfg.Redis.Prefix}
	box := d.Box
	if box == nil {
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			return res, err
		}
		if box, err = seal.New(k); err != nil {
			return res, err
		}
	}
	res = Result{
		Endpoints: o.Endpoints, ShareTarget: o.Share, RateTarget: o.Rate, LogsPerBlock: o.LogsPerBlock,
		BlockInterval: Millis(o.BlockInterval()), Warmup: Millis(o.Warmup), Duration: Millis(o.Duration),
		RedisPrefix: cfg.Redis.Prefix, ChainID: chainID, GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(),
	}

	// Cleanup runs whatever happens after this point.
	var appID string
	defer func() {
		if o.Keep {
			return
		}
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if cerr := cleanup(cctx, d, keys, appID, chainID); cerr != nil {
			log.Warn("bench cleanup", zap.Error(cerr))
			err = errors.Join(err, cerr)
		}
	}()

	// The devnet on its own loopback port; the bench mines, not the node.
	// It keeps the logs of its newest blocks only, at most 32 blocks and
	// devnetRetainLogs logs (ingest asks for older ones only when it lags
	// behind; they are rebuilt then, counted in the result), so its memory
	// stays small in the RSS figure.
	node := devnet.New(devnet.Config{ChainID: chainID, Seed: o.Seed, LogsPerBlock: o.LogsPerBlock, FixedLogs: true,
		RetainBlocks: 32, RetainLogs: devnetRetainLogs})
	nodeLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, fmt.Errorf("devnet listen: %w", err)
	}
	nodeSrv := &http.Server{Handler: node.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go nodeSrv.Serve(nodeLn)
	defer nodeSrv.Close()
	addr := nodeLn.Addr().String()
	chain := config.Chain{Name: "bench", ID: chainID, WSURLs: []string{"ws://" + addr + "/"}, HTTPURL: "http://" + addr + "/",
		BlockTime: o.BlockInterval(), ReorgDepth: 64}
	cfg.Chains = []config.Chain{chain}

	// The receiver.
	rcv := newReceiver()
	rcvLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, fmt.Errorf("receiver listen: %w", err)
	}
	rcvSrv := &http.Server{Handler: rcv, ReadHeaderTimeout: 10 * time.Second}
	go rcvSrv.Serve(rcvLn)
	defer rcvSrv.Close()

	// The application and its endpoints.
	apps := tenant.New(d.Pool)
	if _, err := apps.GetPlan(ctx, PlanID); errors.Is(err, hook.ErrNotFound) {
		if _, err := apps.CreatePlan(ctx, hook.Operator, tenant.Plan{ID: PlanID, Name: "Bench (unlimited)"}); err != nil {
			if _, gerr := apps.GetPlan(ctx, PlanID); gerr != nil { // a concurrent run may have created it
				return res, fmt.Errorf("create plan %s: %w", PlanID, err)
			}
		}
	} else if err != nil {
		return res, err
	}
	app, err := apps.CreateApplication(ctx, hook.Operator, "bench-"+suffix, PlanID)
	if err != nil {
		return res, fmt.Errorf("create application: %w", err)
	}
	appID = app.ID
	res.AppID = appID
	filters, nominal, err := endpointFilters(o, chainID)
	if err != nil {
		return res, err
	}
	res.ShareNominal = nominal
	eps := endpoint.New(d.Pool, box, d.Redis, keys, cfg.Chains)
	zero := 0
	for i := 0; i < o.Endpoints; i++ {
		ep, secret, err := eps.Create(ctx, hook.Operator, appID, endpoint.Input{
			URL:           fmt.Sprintf("http://%s/e/%d", rcvLn.Addr(), i),
			Description:   fmt.Sprintf("bench endpoint %d", i),
			Filter:        filters[i],
			Confirmations: &zero,
			Ordering:      o.Ordering,
			FIFOKey:       o.FIFOKey,
			Signature:     o.Signature,
		})
		if err != nil {
			return res, fmt.Errorf("create endpoint %d: %w", i, err)
		}
		// What the endpoints were created with, as stored (each the same).
		res.Ordering, res.FIFOKey, res.Signature = ep.Ordering, ep.FIFOKey, ep.Signature
		k, err := sign.NewVerifier(secret) // a whsec_, or the whpk_ of an ed25519 endpoint
		if err != nil {
			return res, err
		}
		rcv.keys = append(rcv.keys, k)
	}

	// The pipeline.
	reg := prometheus.NewRegistry()
	mlog := log.WithOptions(zap.IncreaseLevel(zap.WarnLevel))
	deps := func(name string) mod.Deps {
		return mod.Deps{Config: cfg, Pool: d.Pool, Redis: d.Redis, Box: box, Version: "bench",
			Log: mlog.With(zap.String("module", name)), Registerer: reg}
	}
	ing, err := ingest.New(deps("ingest"), ingest.Options{})
	if err != nil {
		return res, err
	}
	proc, err := process.New(deps("process"), process.Options{})
	if err != nil {
		return res, err
	}
	del, err := deliver.New(deps("deliver"), deliver.Options{})
	if err != nil {
		return res, err
	}
	mem := startMemSampler()
	defer mem.finish()
	mods := []module{ing, proc, del}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errc := make(chan error, len(mods))
	for _, m := range mods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.Run(runCtx); err != nil && runCtx.Err() == nil {
				errc <- fmt.Errorf("%s: %w", m.Name(), err)
			}
		}()
	}
	defer func() { stop(); wg.Wait() }()
	if err := waitReady(runCtx, errc, mods, 60*time.Second); err != nil {
		return res, err
	}
	log.Info("bench: pipeline ready; mining", zap.String("prefix", cfg.Redis.Prefix), zap.Uint64("chain_id", chainID),
		zap.Duration("block_interval", o.BlockInterval()))

	// Mine: warmup, then the measured window.
	mem.setPhase("warmup")
	t0 := time.Now()
	ws, we := t0.Add(o.Warmup), t0.Add(o.Warmup+o.Duration)
	rcv.setWindow(ws, we)
	var before, after snapshot
	mineErr := make(chan error, 1)
	go func() { mineErr <- mine(runCtx, node, rcv, t0, we, o.BlockInterval()) }()
	if err := sleepUntil(runCtx, errc, ws); err != nil {
		return res, err
	}
	before = takeSnapshot(reg)
	mem.setPhase("window")
	if o.CPUProfile != nil {
		if err := pprof.StartCPUProfile(o.CPUProfile); err != nil {
			return res, fmt.Errorf("cpu profile: %w", err)
		}
	}
	if err := sleepUntil(runCtx, errc, we); err != nil {
		pprof.StopCPUProfile()
		return res, err
	}
	after = takeSnapshot(reg)
	if o.CPUProfile != nil {
		pprof.StopCPUProfile()
	}
	if o.MemProfile != nil {
		if err := pprof.Lookup("heap").WriteTo(o.MemProfile, 0); err != nil {
			return res, fmt.Errorf("heap profile: %w", err)
		}
	}
	if err := <-mineErr; err != nil {
		return res, err
	}

	// Drain: wait until every queued message reached the receiver, or
	// progress stops, or --drain runs out.
	mem.setPhase("drain")
	drainStart := time.Now()
	last, lastMove := int64(-1), time.Now()
	for time.Since(drainStart) < o.Drain {
		queued := int64(counterSum(reg, "ethhook_process_messages_total"))
		got := rcv.ok.Load()
		if got >= queued && queued > 0 && time.Since(drainStart) > 500*time.Millisecond {
			break
		}
		if got != last {
			last, lastMove = got, time.Now()
		} else if time.Since(lastMove) > 5*time.Second {
			break
		}
		if err := sleepUntil(runCtx, errc, time.Now().Add(200*time.Millisecond)); err != nil {
			return res, err
		}
	}
	res.Drained = Millis(time.Since(drainStart))
	end := takeSnapshot(reg)
	mem.setPhase("end")
	stop()
	wg.Wait()

	// Figures.
	win := o.Duration.Seconds()
	res.Window = windowFigures(before, after, win)
	res.Host = hostFigures(before.host, after.host, after.at.Sub(before.at).Seconds())
	res.CPUSecondsTotal = end.cpu.Seconds()
	res.PeakRSSMB = end.hwmKB / 1024
	res.Mined = rcv.minedInWindow()
	res.MinedPerSec = float64(res.Mined) / win
	res.MessagesQueuedTotal = int64(end.messages)
	res.EventsProcessedTotal = int64(end.events)

	res.Received, res.Verified, res.Rejected = rcv.total.Load(), rcv.ok.Load(), rcv.bad.Load()
	res.DeliveredInWindow = rcv.okInWindow.Load()
	res.WebhooksPerSec = float64(res.DeliveredInWindow) / win
	res.MinedToReceived = summarize(rcv.latencies())

	stream, err := readStream(ctx, d.Redis, keys.Events(chainID), rcv, ws, we)
	if err != nil {
		return res, err
	}
	res.IngestedInWindow = stream.inWindow
	res.EventsPerSec = float64(stream.inWindow) / win
	res.MinedToStream = summarize(stream.lat)
	res.MinedToStream.Missing = res.Mined - int64(len(stream.lat))
	res.StreamToReceived = summarize(rcv.streamLatencies(stream.first))
	res.StreamToQueued = histQuantiles(before.queueHist, after.queueHist)
	if res.Window.Events > 0 {
		res.ShareMeasured = float64(res.Window.Messages) / float64(res.Window.Events) / float64(o.Endpoints)
	}

	states, err := messageStates(ctx, d.Pool, appID)
	if err != nil {
		return res, err
	}
	res.MessageStates = states
	res.Succeeded = states[hook.StateSucceeded]
	res.Memory = mem.finish()
	res.DevnetRebuilt = node.Stats().Rebuilt
	res.PeakRSSMB = procStatusKB("VmHWM") / 1024
	return res, nil
}
