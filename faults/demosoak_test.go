//go:build faults && soak

package faults

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/rueidis"

	"github.com/ethhook/ethhook/internal/testenv"
	"github.com/ethhook/ethhook/internal/trend"
)

// TestDemoSoak runs the demo exactly as `make run` does, for DEMO_DURATION
// (default 1h), and fails on a stall (make demo-soak).
//
// As `make run`: `ethhook secrets init --file`, `ethhook migrate up` on a
// new empty database, then `ethhook serve --all` with ETHHOOK_LOG_FORMAT=console,
// no chain configured (so the built-in devnet at its default rate, a block a
// second), the demo application and endpoint it seeds (the operator's default
// plan, 2 confirmations) and its built-in receiver. Nothing else is set: no
// config file, no ETHHOOK_* variable of the caller's environment. Only the
// places differ, so that it never meets a `make run` on this machine: its own
// database (ethhook_demosoak_*, on the configured Postgres, dropped at the
// end), its own Redis key prefix (deleted at the end), and free ports for the
// UI/API, /metrics, the devnet and the demo receiver.
//
// Every DEMO_SAMPLE (1m) it records the devnet's head, the webhooks the demo
// receiver logged (`webhook received`) and those it rejected, the backlog
// (messages pending, delivering or awaiting a retry), the messages held at
// quota (quota_exceeded), the p99 lateness (from the block's mining, seen by
// polling the devnet every 50 ms, to the recorded 2xx attempt), RSS and
// goroutines. It fails on a stall: an interval in which blocks were mined and
// the receiver got nothing; any quota_exceeded message; a rejected signature;
// serve exiting; a backlog that keeps growing after DEMO_WARMUP (5m; the rule
// of internal/trend, floor DEMO_BACKLOG_FLOOR 60 messages, 5 s of the demo's
// events). The table goes to DEMO_OUT/demo-soak.csv (default a temp dir),
// rewritten after every sample, and serve's log to DEMO_OUT/serve.log.
func TestDemoSoak(t *testing.T) {
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
	duration, sample, warmup := dur("DEMO_DURATION", time.Hour), dur("DEMO_SAMPLE", time.Minute), dur("DEMO_WARMUP", 5*time.Minute)
	if warmup+6*sample > duration {
		t.Fatalf("DEMO_DURATION=%s: needs at least DEMO_WARMUP (%s) + 6 samples of DEMO_SAMPLE (%s) to judge the backlog's trend", duration, warmup, sample)
	}
	backlogFloor := 60.0
	if v := os.Getenv("DEMO_BACKLOG_FLOOR"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 {
			t.Fatalf("DEMO_BACKLOG_FLOOR=%q: must be a number of messages", v)
		}
		backlogFloor = f
	}
	out := os.Getenv("DEMO_OUT")
	if out == "" {
		out = filepath.Join(os.TempDir(), "ethhook-demo-soak")
	} else if !filepath.IsAbs(out) {
		out = filepath.Join("..", out) // go test runs in faults/
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	suffix := randomHex(4)

	// Its own database, empty, as `make run` creates one (services.sh --create-db).
	dbName := "ethhook_demosoak_" + suffix
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, testenv.PGAdminURL())
	if err != nil {
		t.Fatalf("connect to postgres at %s: %v", testenv.PGAdminURL(), err)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{dbName}.Sanitize()); err != nil {
		t.Fatalf("create database %s: %v", dbName, err)
	}
	admin.Close(ctx)
	t.Cleanup(func() {
		a, err := pgx.Connect(context.Background(), testenv.PGAdminURL())
		if err != nil {
			t.Logf("drop database %s: %v", dbName, err)
			return
		}
		defer a.Close(context.Background())
		if _, err := a.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{dbName}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", dbName, err)
		}
	})
	dbURL := dbURLWithName(t, testenv.PGAdminURL(), dbName)

	// Its own Redis key prefix on the configured Redis, as `make run` uses it.
	prefix := "ethhook-demosoak-" + suffix + ":"
	ropt, err := rueidis.ParseURL(testenv.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	ropt.DisableCache = true
	rdb, err := rueidis.NewClient(ropt)
	if err != nil {
		t.Fatalf("connect to redis at %s: %v", testenv.RedisURL(), err)
	}
	t.Cleanup(func() {
		testenv.DeleteKeys(context.Background(), rdb, prefix)
		rdb.Close()
	})

	httpPort, metricsPort, devnetPort, demoPort := freePort(t), freePort(t), freePort(t), freePort(t)
	devnetAddr := "127.0.0.1:" + strconv.Itoa(devnetPort)
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + dir,
		"ETHHOOK_LOG_FORMAT=console", // make run's RUN_ENV
		"ETHHOOK_DATABASE_URL=" + dbURL,
		"ETHHOOK_REDIS_URL=" + testenv.RedisURL(),
		"ETHHOOK_REDIS_PREFIX=" + prefix,
		"ETHHOOK_HTTP_ADDR=127.0.0.1:" + strconv.Itoa(httpPort),
		"ETHHOOK_METRICS_PORT=" + strconv.Itoa(metricsPort),
		"ETHHOOK_DEVNET_ADDR=" + devnetAddr,
		"ETHHOOK_DEVNET_DEMO_ADDR=127.0.0.1:" + strconv.Itoa(demoPort),
	}
	// DEMO_SET (KEY=VALUE,...) changes the demo's settings: only to show the
	// check fails on a stall (DEMO_SET=ETHHOOK_ADMIN_DEFAULT_PLAN=free, the
	// old default, rate-limits the demo below its rate).
	if set := os.Getenv("DEMO_SET"); set != "" {
		for _, kv := range strings.Split(set, ",") {
			if k, _, ok := strings.Cut(kv, "="); !ok || !strings.HasPrefix(k, "ETHHOOK_") {
				t.Fatalf("DEMO_SET=%q: must be ETHHOOK_NAME=value[,...]", set)
			}
			env = append(env, kv)
		}
		fmt.Printf("demo-soak: NOT the demo as shipped: DEMO_SET=%s\n", set)
	}
	// make run: secrets init --file, then the file's variables.
	secrets := filepath.Join(dir, "secrets.env")
	run(t, env, dir, "secrets", "init", "--file", secrets)
	b, err := os.ReadFile(secrets)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, _, ok := strings.Cut(l, "="); ok && strings.HasPrefix(k, "ETHHOOK_") {
			env = append(env, strings.TrimSpace(l))
		}
	}
	run(t, env, dir, "migrate", "up")

	serve := &proc{t: t, name: "serve-all", path: binPath, args: []string{"serve", "--all"}, env: env, dir: dir,
		logPath: filepath.Join(dir, "serve.log"), restart: true,
		httpAddr: "127.0.0.1:" + strconv.Itoa(httpPort), metricsPort: metricsPort}
	t.Cleanup(func() {
		serve.kill()
		// The serve log is kept beside the table.
		if b, err := os.ReadFile(serve.logPath); err == nil {
			_ = os.WriteFile(filepath.Join(out, "serve.log"), b, 0o644)
		}
		if t.Failed() {
			t.Logf("serve log tail:\n%s", tail(serve.logPath, 30))
		}
	})
	serve.start()
	serve.waitReady(2 * time.Minute)
	devnet := newDevnetClient(t, "http://"+devnetAddr)
	devnet.watch()

	pcfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	pcfg.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)

	// The demo's application and endpoint, once seeded.
	var appID, epID, planID string
	var quota int64
	if err := poll(time.Minute, 200*time.Millisecond, func() bool {
		err := pool.QueryRow(ctx, `SELECT a.id, e.id, p.id, p.monthly_quota FROM applications a JOIN endpoints e ON e.app_id = a.id
			JOIN plans p ON p.id = a.plan_id WHERE a.name = 'demo'`).Scan(&appID, &epID, &planID, &quota)
		return err == nil
	}); err != nil {
		t.Fatalf("the demo application and endpoint were not seeded within a minute:\n%s", tail(serve.logPath, 30))
	}
	fmt.Printf("demo-soak: %s for %s, a sample every %s (warm-up %s); app %s on plan %q (monthly quota %d), endpoint %s; out %s\n",
		"serve --all on the built-in devnet", duration, sample, warmup, appID, planID, quota, epID, out)

	rec := &demoRecorder{pool: pool, devnet: devnet, serve: serve, epID: epID, logPath: serve.logPath}
	rec.take(0) // the starting point: the log and the head so far
	var rows []demoSample
	start := time.Now()
	tick := time.NewTicker(sample)
	defer tick.Stop()
	for time.Since(start) < duration {
		<-tick.C
		s := rec.take(time.Since(start))
		rows = append(rows, s)
		fmt.Printf("demo-soak: %s\n", s)
		if err := writeDemoCSV(filepath.Join(out, "demo-soak.csv"), rows); err != nil {
			t.Fatalf("write csv: %v", err)
		}
	}

	// The verdict.
	failed := func(format string, args ...any) {
		t.Helper()
		t.Errorf("demo-soak: "+format, args...)
	}
	for _, s := range rows {
		if s.blocks > 0 && s.received == 0 {
			failed("stall at t=%s: %d blocks mined in the interval and the demo receiver got no webhook", s.elapsed.Round(time.Second), s.blocks)
		}
		if s.blocks == 0 {
			failed("the devnet mined no block in the interval ending at t=%s", s.elapsed.Round(time.Second))
		}
		if s.quotaExceeded > 0 {
			failed("at t=%s %d messages are held at quota (quota_exceeded)", s.elapsed.Round(time.Second), s.quotaExceeded)
		}
		if s.rejected > 0 {
			failed("at t=%s the demo receiver rejected %d webhooks (signature)", s.elapsed.Round(time.Second), s.rejected)
		}
	}
	var x, y []float64
	for _, s := range rows {
		if s.elapsed > warmup {
			x, y = append(x, s.elapsed.Seconds()), append(y, s.backlog)
		}
	}
	v, err := trend.Growing(x, y, trend.Rule{Rel: 0.10, Floor: backlogFloor})
	switch {
	case err != nil:
		failed("backlog trend: %v", err)
	case v.Growing:
		failed("the backlog keeps growing: %s", v.Reason)
	default:
		fmt.Printf("demo-soak: ok      backlog %s\n", v.Reason)
	}
	if n := serve.unexpectedExits(); n > 0 {
		failed("serve --all exited on its own %d time(s)", n)
	}
	if lines := rec.quotaLogLines(); len(lines) > 0 {
		failed("serve logged about the quota or rate limit %d time(s), first: %s", len(lines), lines[0])
	}
	total, blocks := 0, 0
	var worst time.Duration
	for _, s := range rows {
		total += s.received
		blocks += s.blocks
		worst = max(worst, s.p99)
	}
	fmt.Printf("demo-soak: %d webhooks received by the demo receiver in %s (%.1f/s), %d blocks mined, worst minute's p99 lateness %s, peak backlog %.0f\n",
		total, duration.Round(time.Second), float64(total)/duration.Seconds(), blocks, worst.Round(time.Millisecond), slices.Max(append(y, 0)))
	fmt.Printf("demo-soak: wrote %s\n", filepath.Join(out, "demo-soak.csv"))
}

// dbURLWithName is raw with its database replaced by db.
func dbURLWithName(t *testing.T, raw, db string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("database url: %v", err)
	}
	u.Path = "/" + db
	return u.String()
}

// demoSample is one row of the demo soak's table.
type demoSample struct {
	elapsed       time.Duration
	interval      time.Duration
	head          uint64
	blocks        int     // mined in the interval
	received      int     // `webhook received` lines of the demo receiver in the interval
	rejected      int     // REJECTED lines
	succeeded     int     // 2xx attempts recorded in the interval
	backlog       float64 // messages pending, delivering or failed (awaiting a retry)
	quotaExceeded int64
	p99           time.Duration // block mined -> 2xx recorded
	rss           float64
	goroutines    float64
}

func (s demoSample) String() string {
	return fmt.Sprintf("t=%-6s head=%d blocks=%d received=%d (%.1f/s) rejected=%d backlog=%.0f quota_exceeded=%d p99_lateness=%s rss=%.0fMiB goroutines=%.0f",
		s.elapsed.Round(time.Second), s.head, s.blocks, s.received, s.rate(), s.rejected, s.backlog, s.quotaExceeded,
		s.p99.Round(time.Millisecond), s.rss/(1<<20), s.goroutines)
}

func (s demoSample) rate() float64 {
	if s.interval <= 0 {
		return 0
	}
	return float64(s.received) / s.interval.Seconds()
}

var demoHeader = []string{"elapsed_s", "head_block", "blocks_mined", "webhooks_received", "rejected", "attempts_2xx",
	"backlog_messages", "quota_exceeded_messages", "p99_lateness_ms", "rss_bytes", "goroutines"}

func (s demoSample) row() []string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	return []string{strconv.FormatFloat(s.elapsed.Seconds(), 'f', 0, 64), strconv.FormatUint(s.head, 10), strconv.Itoa(s.blocks),
		strconv.Itoa(s.received), strconv.Itoa(s.rejected), strconv.Itoa(s.succeeded), f(s.backlog), strconv.FormatInt(s.quotaExceeded, 10),
		strconv.FormatInt(s.p99.Milliseconds(), 10), f(s.rss), f(s.goroutines)}
}

func writeDemoCSV(path string, rows []demoSample) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write(demoHeader)
	for _, s := range rows {
		w.Write(s.row())
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// demoRecorder samples the demo: the serve log (read on from where it last
// stopped), the devnet, Postgres and /metrics.
type demoRecorder struct {
	pool    *pgxpool.Pool
	devnet  *devnetClient
	serve   *proc
	epID    string
	logPath string

	logOff   int64
	lastHead uint64
	lastAt   time.Time
	lastEl   time.Duration
	quota    []string
}

func (r *demoRecorder) take(elapsed time.Duration) demoSample {
	now := time.Now()
	s := demoSample{elapsed: elapsed, interval: elapsed - r.lastEl}
	r.lastEl = elapsed
	if h, err := r.devnet.head(); err == nil {
		s.head = h.Number
		if r.lastHead > 0 {
			s.blocks = int(h.Number - r.lastHead)
		}
		r.lastHead = h.Number
	}
	s.received, s.rejected = r.readLog()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state IN ('pending', 'delivering', 'failed')),
		count(*) FILTER (WHERE state = 'quota_exceeded') FROM message_states
		WHERE state IN ('pending', 'delivering', 'failed', 'quota_exceeded')`).Scan(&s.backlog, &s.quotaExceeded); err != nil {
		fmt.Printf("demo-soak: backlog: %v\n", err)
		s.backlog = -1
	}
	if !r.lastAt.IsZero() {
		rows, err := r.pool.Query(ctx, `SELECT m.block_number, dh.created_at FROM delivery_history dh JOIN messages m ON m.id = dh.message_id
			WHERE dh.endpoint_id = $1 AND dh.created_at > $2 AND dh.created_at <= $3 AND dh.status_code BETWEEN 200 AND 299`,
			r.epID, r.lastAt, now)
		if err == nil {
			var lat []time.Duration
			for rows.Next() {
				var n int64
				var at time.Time
				if rows.Scan(&n, &at) == nil {
					s.succeeded++
					if mined := r.devnet.minedAt(uint64(n)); !mined.IsZero() {
						lat = append(lat, at.Sub(mined))
					}
				}
			}
			rows.Close()
			if len(lat) > 0 {
				slices.Sort(lat)
				s.p99 = lat[min(len(lat)-1, int(float64(len(lat))*0.99))]
			}
		} else {
			fmt.Printf("demo-soak: lateness: %v\n", err)
		}
	}
	r.lastAt = now
	s.rss = rssOf(r.serve.pid())
	s.goroutines = r.serve.metric("go_goroutines ")
	return s
}

// readLog counts the receiver's lines written since the last call, and keeps
// any line about the quota or the rate limit.
func (r *demoRecorder) readLog() (received, rejected int) {
	f, err := os.Open(r.logPath)
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	if _, err := f.Seek(r.logOff, 0); err != nil {
		return 0, 0
	}
	br := bufio.NewReader(f)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			break // a partial last line is read next time
		}
		r.logOff += int64(len(line))
		switch {
		case strings.Contains(line, "webhook received") && strings.Contains(line, "REJECTED"):
			rejected++
		case strings.Contains(line, "webhook received"):
			received++
		case strings.Contains(strings.ToLower(line), "quota") || strings.Contains(strings.ToLower(line), "rate limit"):
			if len(r.quota) < 10 {
				r.quota = append(r.quota, strings.TrimSpace(line))
			}
		}
	}
	return received, rejected
}

func (r *demoRecorder) quotaLogLines() []string { return r.quota }
