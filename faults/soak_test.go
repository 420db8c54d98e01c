//go:build faults && soak

package faults

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethhook/ethhook/internal/trend"
)

// TestSoak runs `serve --all` on a devnet process at a steady rate for a
// long time (make soak: SOAK_RATE events/s, default 1,000, for
// SOAK_DURATION, default 1 h), samples the serve process, Postgres and Redis
// every SOAK_SAMPLE (1 min), writes them to a CSV and a PNG plot, and fails
// if any of them keeps growing after SOAK_WARMUP (10 min; SOAK_ENDPOINTS
// below for the endpoints): see
// internal/trend for the rule and soakMetrics for each metric's floor.
//
// Retention: every ETHHOOK_RETENTION_* variable of the environment is
// passed to serve, and with none set the soak sets
// ETHHOOK_RETENTION_MESSAGES to SOAK_RETENTION (default 10m),
// ETHHOOK_RETENTION_PARTITION_WIDTH to SOAK_PARTITION_WIDTH (default 5m)
// and ETHHOOK_RETENTION_INTERVAL to 1m: the database holds between 10 and
// 15 minutes of messages (plus the partitions created ahead, empty) and
// levels off after about 15-20 minutes. ETHHOOK_PROCESS_HOLD_RETENTION
// (released holds) follows ETHHOOK_RETENTION_MESSAGES unless set. SOAK_REPLOT=<csv> only draws the
// plot of an earlier run again (with the same SOAK_* settings). The events stream is capped at two
// minutes of events (ETHHOOK_INGEST_STREAM_MAX_LEN, unless set).
func TestSoak(t *testing.T) {
	cfg := soakConfigFromEnv(t)
	t.Logf("soak: %s", cfg)
	if in := os.Getenv("SOAK_REPLOT"); in != "" {
		samples, err := readSoakCSV(in)
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(cfg.out, "soak.png")
		if err := plotSoak(out, samples, cfg); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("soak: plotted %d samples of %s to %s\n", len(samples), in, out)
		return
	}

	c := newCluster(t, options{all: true, privatePG: true, blockTime: cfg.blockTime, logsPerBlock: cfg.logsPerBlock,
		startAtHead: true, env: cfg.env})
	s := newSoakRecorder(c)
	c.recv.mu.Lock()
	c.recv.light, c.recv.onAck = true, s.ack
	c.recv.mu.Unlock()
	// One endpoint takes every log (the whole rate), three take a part:
	// matching, decoding and confirmations stay in the path. Without the
	// first (SOAK_ENDPOINTS=partial) an event makes about 0.8 webhooks, not
	// 1.8: a rate of events this machine can take in webhooks too.
	contract := devnetContracts()[3]
	eps := []*endpointSpec{
		{name: "transfers-c2", confirmations: 2, topic0: topicTransfer},
		{name: "contract-c1", confirmations: 1, address: contract},
		{name: "approvals-c6", confirmations: 6, topic0: topicApproval},
	}
	if cfg.endpoints == "all" {
		eps = append([]*endpointSpec{{name: "all-c0", confirmations: 0}}, eps...)
	}
	for _, e := range eps {
		c.createEndpoint(e)
	}
	c.startRoles()
	serve := c.roles["all"]

	start := time.Now()
	c.devnet.control("resume", "")
	var samples []soakSample
	tick := time.NewTicker(cfg.sample)
	defer tick.Stop()
	for i := 1; time.Since(start) < cfg.duration; i++ {
		<-tick.C
		smp := s.take(serve, time.Since(start))
		samples = append(samples, smp)
		fmt.Printf("soak: %s\n", smp)
		if !serve.running() && serve.unexpectedExits() > 0 {
			t.Logf("serve --all exited on its own %d time(s); log tail:\n%s", serve.unexpectedExits(), tail(serve.logPath, 20))
		}
	}
	c.devnet.control("pause", "")

	out := cfg.out
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	csvPath, pngPath := filepath.Join(out, "soak.csv"), filepath.Join(out, "soak.png")
	if err := writeSoakCSV(csvPath, samples); err != nil {
		t.Fatalf("write %s: %v", csvPath, err)
	}
	if err := plotSoak(pngPath, samples, cfg); err != nil {
		t.Fatalf("plot %s: %v", pngPath, err)
	}
	fmt.Printf("soak: wrote %s and %s\n", csvPath, pngPath)

	// The verdict: every metric over the samples after the warm-up.
	var post []soakSample
	for _, smp := range samples {
		if smp.elapsed > cfg.warmup {
			post = append(post, smp)
		}
	}
	failed := false
	for _, m := range soakMetrics(cfg) {
		x := make([]float64, len(post))
		y := make([]float64, len(post))
		for i, smp := range post {
			x[i], y[i] = smp.elapsed.Seconds(), m.get(smp)
		}
		v, err := trend.Growing(x, y, m.rule)
		if err != nil {
			t.Errorf("soak: %s: %v (SOAK_DURATION %s, SOAK_WARMUP %s, SOAK_SAMPLE %s)", m.name, err, cfg.duration, cfg.warmup, cfg.sample)
			failed = true
			continue
		}
		mark := "ok     "
		if v.Growing {
			mark, failed = "GROWING", true
		}
		fmt.Printf("soak: %s %-14s %s\n", mark, m.name, v.Reason)
		if v.Growing && m.name == "database_size" {
			fmt.Printf("soak:         (retention given: %s; a binary without retention settings ignores them and keeps every message)\n",
				strings.Join(cfg.retentionVariablesNames, " "))
		}
	}
	if exits := serve.unexpectedExits(); exits > 0 {
		t.Errorf("soak: serve --all exited on its own %d time(s)", exits)
		failed = true
	}
	if s.badSignatures() > 0 {
		t.Errorf("soak: %d webhooks with a bad signature", s.badSignatures())
		failed = true
	}
	fmt.Printf("soak: %d webhooks acknowledged, %d logs mined in %s (%s)\n", s.totalAcks(), c.minedLogs(), cfg.duration, cfg)
	if failed {
		t.Errorf("soak failed: see the lines above and %s", csvPath)
	}
}

// soakConfig is the soak's knobs, read from SOAK_* variables.
type soakConfig struct {
	rate                    int
	endpoints               string // SOAK_ENDPOINTS: "all" (with the catch-all endpoint) or "partial"
	duration, warmup        time.Duration
	sample                  time.Duration
	blockTime               time.Duration
	logsPerBlock            int
	out                     string
	env                     map[string]string
	retentionVariablesNames []string
}

func (c soakConfig) String() string {
	return fmt.Sprintf("rate=%d/s (%d logs every %s) endpoints=%s duration=%s warmup=%s sample=%s retention=%s", c.rate, c.logsPerBlock,
		c.blockTime, c.endpoints, c.duration, c.warmup, c.sample, strings.Join(c.retentionVariablesNames, ","))
}

func soakConfigFromEnv(t *testing.T) soakConfig {
	t.Helper()
	dur := func(key string, def time.Duration) time.Duration {
		v := os.Getenv(key)
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("%s=%q: must be a positive duration like 15m", key, v)
		}
		return d
	}
	c := soakConfig{rate: 1000, duration: dur("SOAK_DURATION", time.Hour), warmup: dur("SOAK_WARMUP", 10*time.Minute),
		sample: dur("SOAK_SAMPLE", time.Minute), out: os.Getenv("SOAK_OUT"), env: map[string]string{}}
	if v := os.Getenv("SOAK_RATE"); v != "" {
		n, err := strconv.Atoi(v)
		// Bound: the devnet mines at most 100,000 logs per block; 20,000/s
		// is far past what one machine delivers.
		if err != nil || n < 5 || n > 20_000 {
			t.Fatalf("SOAK_RATE=%q: must be 5..20000 events/s", v)
		}
		c.rate = n
	}
	switch c.endpoints = os.Getenv("SOAK_ENDPOINTS"); c.endpoints {
	case "":
		c.endpoints = "all"
	case "all", "partial":
	default:
		t.Fatalf("SOAK_ENDPOINTS=%q: must be all (a catch-all endpoint and three that take a part) or partial (the three)", c.endpoints)
	}
	if c.out == "" {
		c.out = filepath.Join(os.TempDir(), "ethhook-soak")
	} else if !filepath.IsAbs(c.out) {
		// go test runs in faults/; a relative SOAK_OUT is the repository's.
		c.out = filepath.Join("..", c.out)
	}
	if c.warmup+6*c.sample > c.duration {
		t.Fatalf("SOAK_DURATION=%s: needs at least SOAK_WARMUP (%s) + 6 samples of SOAK_SAMPLE (%s) to judge a trend", c.duration, c.warmup, c.sample)
	}
	// Five blocks a second: the rate is exact (--fixed-logs).
	c.blockTime = 200 * time.Millisecond
	c.logsPerBlock = max(1, c.rate/5)
	for _, kv := range os.Environ() {
		if k, v, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "ETHHOOK_RETENTION_") {
			c.env[k] = v
		}
	}
	if len(c.env) == 0 {
		ret, width := os.Getenv("SOAK_RETENTION"), os.Getenv("SOAK_PARTITION_WIDTH")
		if ret == "" {
			ret = "10m"
		}
		if width == "" {
			width = "5m"
		}
		c.env["ETHHOOK_RETENTION_MESSAGES"] = ret
		c.env["ETHHOOK_RETENTION_PARTITION_WIDTH"] = width
		c.env["ETHHOOK_RETENTION_INTERVAL"] = "1m"
	}
	// Released holds (process_holds, payload included) are retention too:
	// kept process.hold_retention, 24h by default, they grow the database
	// at the rate of every endpoint with confirmations for a day (the
	// 1-hour soak of 2026-12-02 grew 308 MiB of them in 37 minutes while
	// the message partitions levelled off). They follow the messages.
	if v := os.Getenv("ETHHOOK_PROCESS_HOLD_RETENTION"); v != "" {
		c.env["ETHHOOK_PROCESS_HOLD_RETENTION"] = v
	} else if v := c.env["ETHHOOK_RETENTION_MESSAGES"]; v != "" {
		c.env["ETHHOOK_PROCESS_HOLD_RETENTION"] = v
	}
	// The events stream is retention too: by default it keeps 1,000,000
	// entries (about 1.1 KB each for the devnet's logs: 1.1 GB of Redis),
	// which at 100 events/s takes 3 hours to reach. Two minutes of events
	// (at least the binary's minimum, 1,000) reach it within the warm-up.
	if os.Getenv("ETHHOOK_INGEST_STREAM_MAX_LEN") == "" {
		c.env["ETHHOOK_INGEST_STREAM_MAX_LEN"] = strconv.Itoa(max(1000, 120*c.rate))
	} else {
		c.env["ETHHOOK_INGEST_STREAM_MAX_LEN"] = os.Getenv("ETHHOOK_INGEST_STREAM_MAX_LEN")
	}
	for k, v := range c.env {
		c.retentionVariablesNames = append(c.retentionVariablesNames, k+"="+v)
	}
	slices.Sort(c.retentionVariablesNames)
	// Real retries (the shipped schedule) and timeout: the receiver answers
	// 200, so none should be needed.
	c.env["ETHHOOK_DELIVERY_TIMEOUT"] = "10s"
	return c
}

// soakMetric is one column the verdict judges, with its noise floor.
type soakMetric struct {
	name string
	get  func(soakSample) float64
	rule trend.Rule
}

// soakMetrics: growth over the post-warm-up window must exceed both 10% of
// the metric's mean and its floor (its ordinary wobble on this machine)
// before a significant slope counts as growth.
func soakMetrics(c soakConfig) []soakMetric {
	const mib = 1 << 20
	return []soakMetric{
		{"rss", func(s soakSample) float64 { return s.rss }, trend.Rule{Rel: 0.10, Floor: 32 * mib}},
		{"goroutines", func(s soakSample) float64 { return s.goroutines }, trend.Rule{Rel: 0.10, Floor: 25}},
		{"database_size", func(s soakSample) float64 { return s.dbSize }, trend.Rule{Rel: 0.10, Floor: 32 * mib}},
		{"redis_memory", func(s soakSample) float64 { return s.redisMem }, trend.Rule{Rel: 0.10, Floor: 16 * mib}},
		// A second of events queued is no backlog at this rate.
		{"backlog", func(s soakSample) float64 { return s.backlog }, trend.Rule{Rel: 0.10, Floor: float64(c.rate)}},
		{"p99_latency", func(s soakSample) float64 { return s.p99.Seconds() }, trend.Rule{Rel: 0.10, Floor: 1}},
	}
}
