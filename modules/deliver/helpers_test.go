package deliver

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/module"
	"github.com/ethhook/ethhook/internal/testenv"
	"github.com/ethhook/ethhook/msgstate"
	"github.com/ethhook/ethhook/seal"
	"github.com/ethhook/ethhook/sign"
)

type env struct {
	pool   *pgxpool.Pool
	rdb    rueidis.Client
	prefix string
	box    *seal.Box
	cfg    config.Config
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{pool: tracePool(t, testenv.PG(t))}
	e.rdb, e.prefix = testenv.Redis(t)
	key := make([]byte, 32)
	rand.Read(key)
	box, err := seal.New(key)
	if err != nil {
		t.Fatal(err)
	}
	e.box = box
	e.cfg = config.Defaults()
	e.cfg.Redis.Prefix = e.prefix
	d := &e.cfg.Delivery
	d.AllowCIDRs = []string{"127.0.0.0/8", "::1/128"}
	d.ConnectTimeout = 2 * time.Second
	d.Timeout = 5 * time.Second
	d.LeaseTimeout = 6 * time.Second
	d.SweepInterval = 300 * time.Millisecond
	if _, bench := t.(*testing.B); !bench {
		d.MetricsInterval = 200 * time.Millisecond // tests read gauges; benchmarks keep the production period
	}
	return e
}

func (e *env) keys() hook.Keys { return hook.Keys{Prefix: e.prefix} }

func (e *env) app(t testing.TB, plan string) string {
	t.Helper()
	id := "app_" + ulid.Make().String()
	if plan == "" {
		plan = "free"
	}
	if _, err := e.pool.Exec(context.Background(), `INSERT INTO plans (id, name, monthly_quota, max_endpoints, rate_limit)
		VALUES ('unlimited', 'Unlimited', 1000000000, 1000, 0) ON CONFLICT DO NOTHING`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(context.Background(), `INSERT INTO applications (id, name, plan_id) VALUES ($1, 'test', $2)`, id, plan); err != nil {
		t.Fatal(err)
	}
	return id
}

type epOpt struct {
	rateLimit      int
	schedule       string
	allowRedirects bool
	oldSecret      string
	oldExpires     time.Time
	signature      string // "" or sign.SchemeHMAC, or sign.SchemeEd25519 (the secret returned is then the whsk_)
}

func (e *env) endpoint(t testing.TB, app, url string, o epOpt) (string, string) {
	t.Helper()
	id := "ep_" + ulid.Make().String()
	if o.signature == "" {
		o.signature = sign.SchemeHMAC
	}
	secret, err := sign.NewSecretFor(o.signature)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := e.box.Seal(id, []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.pool.Exec(context.Background(), `
		INSERT INTO endpoints (id, app_id, url, rate_limit, retry_schedule, allow_redirects, secret_enc, signature)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, id, app, url, o.rateLimit, o.schedule, o.allowRedirects, enc, o.signature)
	if err != nil {
		t.Fatal(err)
	}
	if o.oldSecret != "" {
		e.oldSecret(t, id, o.oldSecret, o.oldExpires)
	}
	return id, secret
}

// oldSecret adds a rotated-out secret of endpoint id that signs until expires.
func (e *env) oldSecret(t testing.TB, id, secret string, expires time.Time) {
	t.Helper()
	sealed, err := e.box.Seal(id, []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(context.Background(), `INSERT INTO endpoint_old_secrets (endpoint_id, secret_enc, expires_at) VALUES ($1, $2, $3)`,
		id, sealed, expires); err != nil {
		t.Fatal(err)
	}
}

var msgSeq sync.Mutex
var msgN int

// message inserts a pending message as process does and XADDs its job.
func (e *env) message(t testing.TB, app, ep, payload string) (string, string) {
	t.Helper()
	id, wid := e.insertMessage(t, app, ep, payload, 0)
	e.offer(t, id, ep)
	return id, wid
}

func (e *env) insertMessage(t testing.TB, app, ep, payload string, block int64) (string, string) {
	t.Helper()
	msgSeq.Lock()
	msgN++
	n := msgN
	msgSeq.Unlock()
	id := "msg_" + ulid.Make().String()
	eventID := fmt.Sprintf("1:0x%064x:%d", n, n)
	wid := hook.WebhookID(eventID, hook.TypeLog)
	if payload == "" {
		payload = fmt.Sprintf(`{"id":%q,"type":"log","n":%d}`, eventID, n)
	}
	_, err := e.pool.Exec(context.Background(), `
		WITH m AS (INSERT INTO messages (id, app_id, endpoint_id, event_id, type, webhook_id, chain_id, block_number, block_hash, tx_hash, payload)
		VALUES ($1, $2, $3, $4, 'log', $5, 1, $6, '0xb', $7, $8) RETURNING *)
		INSERT INTO message_states (id, app_id, endpoint_id, state, attempts, created_at, type, block_number, log_index, fifo_key)
		SELECT id, app_id, endpoint_id, 'pending', 0, created_at, type, block_number, log_index, fifo_key FROM m`,
		id, app, ep, eventID, wid, block, fmt.Sprintf("0x%064x", n), payload)
	if err != nil {
		t.Fatal(err)
	}
	return id, wid
}

func (e *env) offer(t testing.TB, id, ep string) {
	t.Helper()
	err := e.rdb.Do(context.Background(), e.rdb.B().Xadd().Key(e.keys().DeliverJobs()).Id("*").FieldValue().
		FieldValue("message_id", id).FieldValue("endpoint_id", ep).Build()).Error()
	if err != nil {
		t.Fatal(err)
	}
}

// start runs a module until the test ends (or stop is called).
func (e *env) start(t testing.TB, o ...Options) (*Module, func()) {
	t.Helper()
	return e.startWith(t, e.cfg, o...)
}

func (e *env) startWith(t testing.TB, cfg config.Config, o ...Options) (*Module, func()) {
	t.Helper()
	m, err := New(e.deps(t, cfg, "1.2.3", prometheus.NewRegistry()), options(o))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil && !errors.Is(err, context.Canceled) {
					t.Errorf("module Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("module did not stop within 30s")
			}
		})
	}
	t.Cleanup(stop)
	return m, stop
}

type msgRow struct {
	State      string
	Attempts   int
	LastStatus *int
	LastError  string
	Next       *time.Time
}

func (e *env) msg(t testing.TB, id string) msgRow {
	t.Helper()
	var r msgRow
	if err := e.pool.QueryRow(context.Background(), `SELECT state, attempts, last_status, last_error, next_attempt_at FROM message_states WHERE id = $1`, id).
		Scan(&r.State, &r.Attempts, &r.LastStatus, &r.LastError, &r.Next); err != nil {
		t.Fatal(err)
	}
	return r
}

// eventually polls cond for up to 30 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) waitState(t testing.TB, id, state string) msgRow {
	t.Helper()
	var r msgRow
	eventually(t, "message "+id+" to be "+state, func() bool { r = e.msg(t, id); return r.State == state })
	return r
}

// received is one request a test receiver got.
type received struct {
	header http.Header
	body   []byte
	at     time.Time
}

// receiver is an httptest server that records requests and answers with
// whatever handle returns (status, headers).
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []received
}

func newReceiver(t testing.TB, handle func(n int, r *http.Request) (int, http.Header)) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, received{header: r.Header.Clone(), body: body, at: time.Now()})
		n := len(rc.reqs)
		rc.mu.Unlock()
		status, h := 200, http.Header(nil)
		if handle != nil {
			status, h = handle(n, r)
		}
		for k, v := range h {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, "answer %d", n)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) got() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.reqs...)
}

func (rc *receiver) count() int { rc.mu.Lock(); defer rc.mu.Unlock(); return len(rc.reqs) }

// fakeClock is real time plus an offset the test advances.
type fakeClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return time.Now().Add(c.off) }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// frozenClock is a clock that stands still where the test puts it (to
// the microsecond, which fakeClock, moving with real time, cannot hold).
type frozenClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *frozenClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *frozenClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// deps is what New takes in these tests: the env's Postgres, Redis and box
// under cfg, logging to testLogger.
func (e *env) deps(t testing.TB, cfg config.Config, version string, reg prometheus.Registerer) module.Deps {
	return module.Deps{Config: cfg, Pool: e.pool, Redis: e.rdb, Box: e.box, Version: version, Log: testLogger(t), Registerer: reg}
}

// options is the one Options a test start helper was given, or the zero value.
func options(o []Options) Options {
	if len(o) == 0 {
		return Options{}
	}
	return o[0]
}

func testLogger(t testing.TB) *zap.Logger {
	if testing.Verbose() {
		l, _ := zap.NewDevelopment(zap.AddStacktrace(zap.DPanicLevel))
		return l
	}
	return zap.NewNop()
}

// deleteEndpoint deletes an endpoint as the API does (endpoint.Service.Delete):
// the row, then its waiting states (msgstate.Forget); the rest of its
// history waits for the retention role's purge.
func (e *env) deleteEndpoint(t testing.TB, app, id string) {
	t.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM endpoints WHERE id = $1`, id); err != nil {
			return err
		}
		return msgstate.Forget(ctx, tx, app, []string{id})
	})
	if err != nil {
		t.Fatal(err)
	}
}
