package endpoint

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/rueidis"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/testenv"
	"github.com/ethhook/ethhook/seal"
	"github.com/ethhook/ethhook/sign"
	"github.com/ethhook/ethhook/tenant"
)

type env struct {
	pool *pgxpool.Pool
	rdb  rueidis.Client
	keys hook.Keys
	svc  *Service
	box  *seal.Box
}

func newEnv(t *testing.T) *env {
	t.Helper()
	pool := testenv.PG(t)
	rdb, prefix := testenv.Redis(t)
	box, err := seal.New([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	keys := hook.Keys{Prefix: prefix}
	return &env{pool: pool, rdb: rdb, keys: keys, box: box, svc: New(pool, box, rdb, keys, nil)}
}

// endpoints creates n endpoints of app (transferInput) and returns their ids.
func (e *env) endpoints(t *testing.T, app string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ep, _, err := e.svc.Create(context.Background(), hook.Operator, app, transferInput)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = ep.ID
	}
	return ids
}

func (e *env) app(t *testing.T, name string) string {
	t.Helper()
	a, err := tenant.New(e.pool).CreateApplication(context.Background(), hook.Operator, name, "")
	if err != nil {
		t.Fatal(err)
	}
	// The free plan caps endpoints at 5; tests use an unlimited plan.
	if _, err := e.pool.Exec(context.Background(), `INSERT INTO plans (id, name, monthly_quota, max_endpoints) VALUES ('test', 'Test', 1000000, 0) ON CONFLICT DO NOTHING`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(context.Background(), `UPDATE applications SET plan_id = 'test' WHERE id = $1`, a.ID); err != nil {
		t.Fatal(err)
	}
	return a.ID
}

func intp(n int) *int { return &n }

var transferInput = Input{
	URL: "https://example.com/hook",
	Filter: hook.Filter{
		Chains:    []uint64{1},
		Addresses: []string{"0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"},
		Events:    []string{"Transfer(address,address,uint256)"},
		Where:     []string{"value >= 1000"},
	},
	Confirmations: intp(3),
}

func TestCreateReturnsSecretOnceAndStoresItSealed(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	app := e.app(t, "a")
	ep, secret, err := e.svc.Create(ctx, hook.Operator, app, transferInput)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ep.ID, "ep_") || !strings.HasPrefix(secret, sign.SecretPrefix) {
		t.Fatalf("id %q secret %q", ep.ID, secret)
	}
	if ep.Filter.Addresses[0] != "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48" || ep.Confirmations != 3 || !ep.Enabled {
		t.Fatalf("stored endpoint %+v", ep)
	}
	var sealed []byte
	if err := e.pool.QueryRow(ctx, `SELECT secret_enc FROM endpoints WHERE id = $1`, ep.ID).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(sealed), secret) || strings.Contains(string(sealed), strings.TrimPrefix(secret, "whsec_")) {
		t.Fatal("secret stored in clear")
	}
	got, err := e.svc.Secret(ctx, hook.Operator, app, ep.ID)
	if err != nil || got != secret {
		t.Fatalf("Secret = %q, %v", got, err)
	}
	rotated, err := e.svc.RotateSecret(ctx, hook.Operator, app, ep.ID, time.Hour)
	if err != nil || rotated == secret {
		t.Fatalf("rotate: %q %v", rotated, err)
	}
	var oldSealed []byte
	if err := e.pool.QueryRow(ctx, `SELECT secret_enc FROM endpoint_old_secrets WHERE endpoint_id = $1`, ep.ID).Scan(&oldSealed); err != nil {
		t.Fatal(err)
	}
	if old, err := e.box.Open(ep.ID, oldSealed); err != nil || string(old) != secret {
		t.Fatalf("old secret kept for the overlap: %q %v", old, err)
	}
	if now, _ := e.svc.Secret(ctx, hook.Operator, app, ep.ID); now != rotated {
		t.Fatal("Secret does not return the rotated secret")
	}
}

// TestRotationKeepsEveryUnexpiredOldSecretUpToTheBound: a second
// rotation keeps the first's secret signing until its own overlap ends;
// rotations past MaxOldSecrets drop the one that expires first, and an
// overlap of 0 keeps nothing.
func TestRotationKeepsEveryUnexpiredOldSecretUpToTheBound(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	app := e.app(t, "a")
	ep, first, err := e.svc.Create(ctx, hook.Operator, app, transferInput)
	if err != nil {
		t.Fatal(err)
	}
	olds := func() []string {
		rows, err := e.pool.Query(ctx, `SELECT secret_enc FROM endpoint_old_secrets WHERE endpoint_id = $1 AND expires_at > now() ORDER BY expires_at DESC`, ep.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				t.Fatal(err)
			}
			plain, err := e.box.Open(ep.ID, b)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, string(plain))
		}
		return out
	}
	second, err := e.svc.RotateSecret(ctx, hook.Operator, app, ep.ID, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RotateSecret(ctx, hook.Operator, app, ep.ID, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := olds(); len(got) != 2 || got[0] != first || got[1] != second {
		t.Fatalf("after two rotations the old secrets are %d, want the first (2 h) and the second (1 h)", len(got))
	}
	for i := 0; i < MaxOldSecrets+2; i++ {
		if _, err := e.svc.RotateSecret(ctx, hook.Operator, app, ep.ID, time.Duration(3+i)*time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM endpoint_old_secrets WHERE endpoint_id = $1`, ep.ID).Scan(&n); err != nil || n != MaxOldSecrets {
		t.Fatalf("%d old secrets kept, want the bound %d (%v)", n, MaxOldSecrets, err)
	}
	if _, err := e.svc.RotateSecret(ctx, hook.Operator, app, ep.ID, 0); err != nil {
		t.Fatal(err)
	}
	if got := olds(); len(got) != MaxOldSecrets {
		t.Fatalf("an overlap of 0 changed the others: %d", len(got))
	}
}

func TestDefaultConfirmationsComeFromTheChain(t *testing.T) {
	e := newEnv(t)
	app := e.app(t, "a")
	in := transferInput
	in.Confirmations = nil
	ep, _, err := e.svc.Create(context.Background(), hook.Operator, app, in)
	if err != nil {
		t.Fatal(err)
	}
	if ep.Confirmations != 12 { // eth's registry default
		t.Fatalf("confirmations %d, want eth's 12", ep.Confirmations)
	}
}

func TestValidationErrorsNameEachField(t *testing.T) {
	e := newEnv(t)
	app := e.app(t, "a")
	in := Input{
		URL: "ftp://example.com",
		Filter: hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer(address,address,uint256)"},
			Where: []string{"value >= 1", "vaule >= 1000"}, Addresses: []string{"0x12"}},
		Confirmations: intp(-1), BatchMax: 10, RateLimit: -2, RetrySchedule: []string{"5s", "soon"},
	}
	_, _, err := e.svc.Create(context.Background(), hook.Operator, app, in)
	var ve hook.FieldErrors
	if !errors.As(err, &ve) {
		t.Fatalf("want ValidationError, got %v", err)
	}
	want := map[string]string{
		"url":            "must be http:// or https://",
		"where[1]":       `unknown argument "vaule" of Transfer(address,address,uint256); known: from, to, value`,
		"addresses[0]":   "is not a 0x address",
		"confirmations":  "must be 0..1000",
		"batch_wait_ms":  "must be positive when batch_max > 1",
		"rate_limit":     "must be 0..",
		"retry_schedule": `item 2 "soon"`,
	}
	for k, v := range want {
		if !strings.Contains(ve[k], v) {
			t.Errorf("field %s: %q, want it to contain %q", k, ve[k], v)
		}
	}
	if _, _, err := e.svc.Create(context.Background(), hook.Operator, app, Input{URL: "https://x.example/"}); err == nil ||
		!strings.Contains(err.Error(), "chains: at least one chain id") {
		t.Fatalf("missing chains: %v", err)
	}
}

func TestScopesSeeOnlyTheirApplications(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	appA, appB := e.app(t, "a"), e.app(t, "b")
	epA, _, err := e.svc.Create(ctx, hook.Operator, appA, transferInput)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, `INSERT INTO users (id, email, password_hash, role) VALUES ('usr_1', 'm@example.com', 'x', 'member')`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, `INSERT INTO application_members (app_id, user_id) VALUES ($1, 'usr_1')`, appB); err != nil {
		t.Fatal(err)
	}
	member := hook.Scope{UserID: "usr_1"}
	keyB := hook.Scope{AppID: appB}
	for name, scope := range map[string]hook.Scope{"member of B": member, "API key of B": keyB, "nobody": {}} {
		if _, err := e.svc.Get(ctx, scope, appA, epA.ID); !errors.Is(err, hook.ErrNotFound) {
			t.Errorf("%s: Get of A's endpoint: %v", name, err)
		}
		if _, _, err := e.svc.List(ctx, scope, appA, "", 0); !errors.Is(err, hook.ErrNotFound) {
			t.Errorf("%s: List of A: %v", name, err)
		}
		if _, _, err := e.svc.Create(ctx, scope, appA, transferInput); !errors.Is(err, hook.ErrNotFound) {
			t.Errorf("%s: Create in A: %v", name, err)
		}
		if _, err := e.svc.Disable(ctx, scope, appA, epA.ID, ""); !errors.Is(err, hook.ErrNotFound) {
			t.Errorf("%s: Disable in A: %v", name, err)
		}
		if err := e.svc.Delete(ctx, scope, appA, epA.ID); !errors.Is(err, hook.ErrNotFound) {
			t.Errorf("%s: Delete in A: %v", name, err)
		}
		if _, err := e.svc.Secret(ctx, scope, appA, epA.ID); !errors.Is(err, hook.ErrNotFound) {
			t.Errorf("%s: Secret in A: %v", name, err)
		}
	}
	// Asking through B for A's endpoint id finds nothing either.
	if _, err := e.svc.Get(ctx, keyB, appB, epA.ID); !errors.Is(err, hook.ErrNotFound) {
		t.Errorf("A's endpoint through app B: %v", err)
	}
	for name, scope := range map[string]hook.Scope{"member of B": member, "API key of B": keyB} {
		if _, _, err := e.svc.Create(ctx, scope, appB, transferInput); err != nil {
			t.Errorf("%s: Create in B: %v", name, err)
		}
	}
}

func TestListPaginatesWithCursor(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	app := e.app(t, "a")
	ids := e.endpoints(t, app, 5)
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		page, next, err := e.svc.List(ctx, hook.Operator, app, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range page {
			got = append(got, p.ID)
		}
		if next == "" {
			break
		}
		cursor = next
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
	}
	if strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Fatalf("pages %v, want %v", got, ids)
	}
	if _, _, err := e.svc.List(ctx, hook.Operator, app, "garbage!", 2); err == nil {
		t.Fatal("a bad cursor was accepted")
	}
}

func TestChangesAreAnnouncedOnPostgresAndRedis(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	app := e.app(t, "a")

	conn, err := e.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
		t.Fatal(err)
	}
	published := make(chan string, 16)
	subCtx, stop := context.WithCancel(ctx)
	defer stop()
	go e.rdb.Receive(subCtx, e.rdb.B().Subscribe().Channel(e.keys.EndpointsChanged()).Build(), func(m rueidis.PubSubMessage) {
		published <- m.Message
	})
	time.Sleep(200 * time.Millisecond) // let SUBSCRIBE reach the server

	ep, _, err := e.svc.Create(ctx, hook.Operator, app, transferInput)
	if err != nil {
		t.Fatal(err)
	}
	newURL := "http://127.0.0.1:9/hook"
	steps := []func() error{
		func() error { return nil }, // the create above
		func() error {
			_, err := e.svc.Update(ctx, hook.Operator, app, ep.ID, Patch{URL: &newURL, Confirmations: intp(0)})
			return err
		},
		func() error { _, err := e.svc.Disable(ctx, hook.Operator, app, ep.ID, "maintenance"); return err },
		func() error { _, err := e.svc.Enable(ctx, hook.Operator, app, ep.ID); return err },
		func() error { _, err := e.svc.RotateSecret(ctx, hook.Operator, app, ep.ID, 0); return err },
		func() error { return e.svc.Delete(ctx, hook.Operator, app, ep.ID) },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil || n.Payload != ep.ID {
			t.Fatalf("step %d: NOTIFY %v %v", i, n, err)
		}
		select {
		case id := <-published:
			if id != ep.ID {
				t.Fatalf("step %d: published %q", i, id)
			}
		case <-ctx.Done():
			t.Fatalf("step %d: nothing published", i)
		}
	}
	if _, err := e.svc.Get(ctx, hook.Operator, app, ep.ID); !errors.Is(err, hook.ErrNotFound) {
		t.Fatalf("deleted endpoint still readable: %v", err)
	}
}

func TestUpdateValidatesAndKeepsOtherFields(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	app := e.app(t, "a")
	ep, _, err := e.svc.Create(ctx, hook.Operator, app, transferInput)
	if err != nil {
		t.Fatal(err)
	}
	bad := "notaurl"
	if _, err := e.svc.Update(ctx, hook.Operator, app, ep.ID, Patch{URL: &bad}); err == nil {
		t.Fatal("bad URL accepted")
	}
	sched := []string{"1s", "10s"}
	up, err := e.svc.Update(ctx, hook.Operator, app, ep.ID, Patch{RetrySchedule: &sched, BatchMax: intp(10), BatchWaitMS: intp(500)})
	if err != nil {
		t.Fatal(err)
	}
	if up.URL != ep.URL || up.Confirmations != 3 || len(up.Filter.Where) != 1 || up.BatchMax != 10 || strings.Join(up.RetrySchedule, ",") != "1s,10s" {
		t.Fatalf("updated %+v", up)
	}
	dis, err := e.svc.Disable(ctx, hook.Operator, app, ep.ID, "")
	if err != nil || dis.Enabled || dis.DisabledReason == "" {
		t.Fatalf("disable: %+v %v", dis, err)
	}
	all, err := LoadEnabled(ctx, e.pool)
	if err != nil || len(all) != 0 {
		t.Fatalf("LoadEnabled after disable: %d %v", len(all), err)
	}
}

func TestPlanCapsEndpointsPerApplication(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	app := e.app(t, "a")
	if _, err := e.pool.Exec(ctx, `UPDATE applications SET plan_id = 'free' WHERE id = $1`, app); err != nil {
		t.Fatal(err)
	}
	scope := hook.Scope{AppID: app}
	for i := range 5 {
		if _, _, err := e.svc.Create(ctx, scope, app, transferInput); err != nil {
			t.Fatalf("endpoint %d: %v", i+1, err)
		}
	}
	if _, _, err := e.svc.Create(ctx, scope, app, transferInput); !errors.Is(err, ErrLimitReached) {
		t.Fatalf("6th endpoint on the free plan: %v", err)
	}
}

// ordering and fifo_key are stored, returned, patched and validated with
// errors that name the field and the bad value; parallel is the default
// and turning an endpoint back to parallel drops its key.
func TestOrderingAndFIFOKeyRoundTripAndValidate(t *testing.T) {
	e := newEnv(t)
	app := e.app(t, "a")
	ctx := context.Background()
	plain, _, err := e.svc.Create(ctx, hook.Operator, app, transferInput)
	if err != nil {
		t.Fatal(err)
	}
	if plain.Ordering != hook.OrderingParallel || plain.FIFOKey != "" {
		t.Fatalf("default ordering %q key %q, want parallel and none", plain.Ordering, plain.FIFOKey)
	}
	in := transferInput
	in.Ordering, in.FIFOKey = "fifo", "topic1"
	ep, _, err := e.svc.Create(ctx, hook.Operator, app, in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.svc.Get(ctx, hook.Operator, app, ep.ID)
	if err != nil || !got.FIFO() || got.FIFOKey != "topic1" {
		t.Fatalf("get: %+v %v", got, err)
	}
	key := "contract"
	if got, err = e.svc.Update(ctx, hook.Operator, app, ep.ID, Patch{FIFOKey: &key}); err != nil || got.FIFOKey != "contract" || !got.FIFO() {
		t.Fatalf("patch key: %+v %v", got, err)
	}
	par := "parallel"
	if got, err = e.svc.Update(ctx, hook.Operator, app, ep.ID, Patch{Ordering: &par}); err != nil || got.FIFO() || got.FIFOKey != "" {
		t.Fatalf("patch back to parallel: ordering %q key %q, %v", got.Ordering, got.FIFOKey, err)
	}
	for _, c := range []struct{ ordering, key, field, says string }{
		{"random", "", "ordering", `"random"`},
		{"fifo", "tx_hash", "fifo_key", `"tx_hash"`},
		{"fifo", "tx_from", "fifo_key", "sender"},
		{"parallel", "topic1", "fifo_key", "only applies"},
	} {
		bad := transferInput
		bad.Ordering, bad.FIFOKey = c.ordering, c.key
		_, _, err := e.svc.Create(ctx, hook.Operator, app, bad)
		var ve hook.FieldErrors
		if !errors.As(err, &ve) || !strings.Contains(ve[c.field], c.says) {
			t.Fatalf("ordering %q key %q: %v, want %s naming %s", c.ordering, c.key, err, c.field, c.says)
		}
	}
	batched := transferInput
	batched.Ordering, batched.FIFOKey, batched.BatchMax, batched.BatchWaitMS = "fifo", "topic2", 10, 100
	if _, _, err := e.svc.Create(ctx, hook.Operator, app, batched); err == nil || !strings.Contains(err.Error(), "batch") {
		t.Fatalf("fifo_key with batching: %v, want refused", err)
	}
}
