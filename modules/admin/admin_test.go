package admin

import (
	"context"
	"encoding/csv"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/module"
	"github.com/ethhook/ethhook/tenant"
)

func TestOpenAPIDocumentMatchesTheRouterBothWays(t *testing.T) {
	h := newHarness(t)
	var doc struct {
		OpenAPI    string                               `json:"openapi"`
		Paths      map[string]map[string]map[string]any `json:"paths"`
		Components map[string]map[string]any            `json:"components"`
	}
	r := h.must(200, "GET", "/api/v1/openapi.json", "", nil)
	r.json(t, &doc)
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for p, ops := range doc.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+p] = true
		}
	}
	served := map[string]bool{}
	for _, rt := range h.m.Echo().Routes() {
		if !strings.HasPrefix(rt.Path, Prefix+"/") {
			continue
		}
		served[rt.Method+" "+OpenAPIPath(rt.Path)] = true
	}
	for k := range served {
		if !documented[k] {
			t.Errorf("route %s is served but not in openapi.json", k)
		}
	}
	for k := range documented {
		if !served[k] {
			t.Errorf("openapi.json documents %s but no handler serves it", k)
		}
	}
	if len(served) < 20 {
		t.Fatalf("only %d routes served", len(served))
	}
	// Every $ref resolves.
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				parts := strings.Split(strings.TrimPrefix(ref, "#/components/"), "/")
				if _, ok := doc.Components[parts[0]][parts[len(parts)-1]]; len(parts) != 2 || !ok {
					t.Errorf("dangling $ref %s", ref)
				}
			}
			for _, y := range x {
				walk(y)
			}
		case []any:
			for _, y := range x {
				walk(y)
			}
		}
	}
	var raw map[string]any
	r.json(t, &raw)
	walk(raw)
}

func TestEveryProtectedRouteAnswers401WithoutValidCredentials(t *testing.T) {
	h := newHarness(t)
	expired, _, err := (&Module{cfg: config.Admin{JWTTTL: -time.Hour}, jwtKey: h.m.jwtKey}).issueToken("usr_x", 1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	forged, _, _ := (&Module{cfg: config.Admin{JWTTTL: time.Hour}, jwtKey: []byte(strings.Repeat("x", 32))}).issueToken("usr_x", 1, time.Now())
	for _, rt := range h.m.routes {
		if rt.auth == authNone {
			continue
		}
		path := Prefix + strings.NewReplacer(":app_id", "app_x", ":key_id", "key_x", ":user_id", "usr_x", ":endpoint_id", "ep_x", ":message_id", "msg_x",
			":plan_id", "free", ":chain_id", "31337").Replace(rt.path)
		for _, tok := range []string{"", "garbage", "ethk_notakey", expired, forged} {
			r := h.do(rt.method, path, tok, nil)
			if r.Code != http.StatusUnauthorized {
				t.Errorf("%s %s with token %.12q: %d, want 401: %s", rt.method, path, tok, r.Code, r.Body)
				continue
			}
			if e := r.errCode(t); e.Error.Code != "unauthorized" {
				t.Errorf("%s %s: code %q", rt.method, path, e.Error.Code)
			}
		}
	}
}

// TestEveryRouteHappyPath walks every route once with a caller allowed to
// use it, then checks (through the request metric) that each answered 2xx.
func TestEveryRouteHappyPath(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	a := h.admin
	h.must(200, "GET", "/api/v1/openapi.json", "", nil)
	var me whoami
	h.must(200, "GET", "/api/v1/auth/me", a, nil).json(t, &me)
	if me.Type != "user" || !me.Admin || me.User == nil || me.User.Email != "root@example.com" {
		t.Fatalf("whoami %+v", me)
	}

	var plan planView
	h.must(201, "POST", "/api/v1/plans", a, map[string]any{"id": "pro", "name": "Pro", "monthly_quota": 1000000, "max_endpoints": 50, "rate_limit": 100}).json(t, &plan)
	if plan.ID != "pro" || plan.MonthlyQuota != 1000000 {
		t.Fatalf("plan %+v", plan)
	}
	h.must(200, "GET", "/api/v1/plans/pro", a, nil)
	h.must(200, "PATCH", "/api/v1/plans/pro", a, map[string]any{"max_endpoints": 60})
	var plans List[planView]
	h.must(200, "GET", "/api/v1/plans?name=pro", a, nil).json(t, &plans)
	if len(plans.Data) != 1 {
		t.Fatalf("plans %+v", plans)
	}

	var app appView
	h.must(201, "POST", "/api/v1/applications", a, appCreate{Name: "shop", PlanID: "pro"}).json(t, &app)
	h.must(200, "GET", "/api/v1/applications/"+app.ID, a, nil)
	var apps List[appView]
	h.must(200, "GET", "/api/v1/applications?plan_id=pro&limit=10", a, nil).json(t, &apps)
	if len(apps.Data) != 1 || apps.Data[0].ID != app.ID {
		t.Fatalf("apps %+v", apps)
	}
	var renamed appView
	h.must(200, "PATCH", "/api/v1/applications/"+app.ID, a, map[string]any{"name": "store"}).json(t, &renamed)
	if renamed.Name != "store" {
		t.Fatalf("renamed %+v", renamed)
	}

	var key keyCreated
	h.must(201, "POST", "/api/v1/applications/"+app.ID+"/api-keys", a, keyCreate{Name: "ci"}).json(t, &key)
	h.must(200, "GET", "/api/v1/applications/"+app.ID+"/api-keys/"+key.ID, a, nil)
	var keys List[keyView]
	h.must(200, "GET", "/api/v1/applications/"+app.ID+"/api-keys?revoked=false", a, nil).json(t, &keys)
	if len(keys.Data) != 1 || strings.Contains(string(h.do("GET", "/api/v1/applications/"+app.ID+"/api-keys", a, nil).Body), key.Key) {
		t.Fatalf("keys %+v (or the key leaked into a listing)", keys)
	}

	if _, err := h.store.Pool().Exec(ctx, `INSERT INTO usage (app_id, month, deliveries) VALUES ($1, date_trunc('month', now() AT TIME ZONE 'UTC')::date, 42)`, app.ID); err != nil {
		t.Fatal(err)
	}
	var usage usageView
	h.must(200, "GET", "/api/v1/applications/"+app.ID+"/usage", a, nil).json(t, &usage)
	if usage.Current.Deliveries != 42 || usage.Current.Quota != 1000000 || len(usage.History) != 1 {
		t.Fatalf("usage %+v", usage)
	}
	r := h.must(200, "GET", "/api/v1/applications/"+app.ID+"/usage?format=csv", a, nil)
	rows, err := csv.NewReader(strings.NewReader(string(r.Body))).ReadAll()
	if err != nil || len(rows) != 2 || rows[1][2] != "42" || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("csv %q %v", r.Body, err)
	}

	h.chainFixture(t)
	var chains List[chainView]
	h.must(200, "GET", "/api/v1/chains", a, nil).json(t, &chains)
	if len(chains.Data) != 2 || chains.Data[1].ID != config.DevnetChainID || chains.Data[1].CommittedBlock == nil ||
		*chains.Data[1].CommittedBlock != 100 || chains.Data[1].Lag == nil || *chains.Data[1].Lag != 5 || chains.Data[1].LeaseHolder != "host-1" {
		t.Fatalf("chains %s", h.do("GET", "/api/v1/chains", a, nil).Body)
	}
	var events List[eventView]
	h.must(200, "GET", "/api/v1/chains/31337/events?limit=2", a, nil).json(t, &events)
	if len(events.Data) != 2 || events.Data[0].Event.Block.Number != 3 || events.NextCursor == "" {
		t.Fatalf("events %+v", events)
	}
	h.must(200, "GET", "/api/v1/chains/devnet/events?cursor="+events.NextCursor, a, nil).json(t, &events)
	if len(events.Data) != 1 || events.Data[0].Event.Block.Number != 1 || events.NextCursor != "" {
		t.Fatalf("events page 2 %+v", events)
	}

	h.endpointsAndMessages(t, app.ID, a)
	h.historyPreviewAndDeadLetters(t, app.ID, a)

	var u userView
	h.must(201, "POST", "/api/v1/users", a, userCreate{Email: "m@example.com", Password: "member-password", AppIDs: []string{app.ID}}).json(t, &u)
	h.must(200, "GET", "/api/v1/users/"+u.ID, a, nil)
	var users List[userView]
	h.must(200, "GET", "/api/v1/users?app_id="+app.ID, a, nil).json(t, &users)
	if len(users.Data) != 1 || users.Data[0].ID != u.ID {
		t.Fatalf("users %+v", users)
	}
	h.must(200, "PATCH", "/api/v1/users/"+u.ID, a, map[string]any{"role": "member", "password": "another-password"})
	h.login("m@example.com", "another-password")

	var audit List[auditView]
	h.must(200, "GET", "/api/v1/audit-log?app_id="+app.ID, a, nil).json(t, &audit)
	h.must(200, "GET", "/api/v1/event-types", a, nil)
	actions := map[string]bool{}
	for _, e := range audit.Data {
		actions[e.Action] = true
		if e.Actor != me.ID || e.RequestID == "" {
			t.Errorf("audit entry without actor or request id: %+v", e)
		}
	}
	for _, want := range []string{"application.create", "application.update", "api_key.create"} {
		if !actions[want] {
			t.Errorf("audit log lacks %s: %+v", want, audit.Data)
		}
	}
	if strings.Contains(string(h.do("GET", "/api/v1/audit-log", a, nil).Body), "another-password") {
		t.Fatal("audit log holds a password")
	}

	h.must(204, "DELETE", "/api/v1/applications/"+app.ID+"/api-keys/"+key.ID, a, nil)
	h.must(204, "DELETE", "/api/v1/users/"+u.ID, a, nil)
	h.must(204, "DELETE", "/api/v1/applications/"+app.ID, a, nil)
	h.must(404, "GET", "/api/v1/applications/"+app.ID, a, nil)
	h.must(200, "POST", "/api/v1/auth/login", "", loginRequest{Email: "root@example.com", Password: "root-password"})
	var changed loginResponse
	h.must(200, "POST", "/api/v1/auth/password", a, passwordChange{CurrentPassword: "root-password", NewPassword: "root-password-2"}).json(t, &changed)
	h.must(204, "POST", "/api/v1/auth/logout", changed.Token, nil)

	ok := h.routesAnswered2xx()
	for _, rt := range h.m.routes {
		if !ok[rt.method+" "+Prefix+rt.path] {
			t.Errorf("route %s %s never answered 2xx in this test", rt.method, rt.path)
		}
	}
}

// chainFixture writes what ingest writes for the devnet chain: cursor,
// head, lease, finality (safe 98, finalized 90) and three events.
func (h *harness) chainFixture(t *testing.T) {
	ctx := context.Background()
	rdb := h.m.rdb
	id := uint64(config.DevnetChainID)
	for _, c := range [][2]string{{"cursor", "100:0xabc"}, {"head", "105"}, {"lease", "host-1"}, {"finality", "98:0xs|90:0xf"}} {
		if err := rdb.Do(ctx, rdb.B().Set().Key(h.keys.Chain(id, c[0])).Value(c[1]).Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	for n := uint64(1); n <= 3; n++ {
		ev := hook.Event{ID: hook.EventID(id, "0xb", uint(n)), Type: hook.TypeLog, Chain: hook.Chain{ID: id, Name: "devnet"},
			Block: hook.Block{Number: n, Hash: "0xb"}, Log: hook.Log{Address: "0x" + strings.Repeat("1", 40)}}
		f, err := ev.Fields()
		if err != nil {
			t.Fatal(err)
		}
		cmd := rdb.B().Xadd().Key(h.keys.Events(id)).Id("*").FieldValue().FieldValue("id", f["id"]).FieldValue("type", f["type"]).FieldValue("event", f["event"]).Build()
		if err := rdb.Do(ctx, cmd).Error(); err != nil {
			t.Fatal(err)
		}
	}
}

// routesAnswered2xx reads ethhook_api_requests_total.
func (h *harness) routesAnswered2xx() map[string]bool {
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string]bool{}
	for _, mf := range mfs {
		if mf.GetName() != "ethhook_api_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := labels(m)
			if strings.HasPrefix(l["status"], "2") {
				out[l["method"]+" "+l["route"]] = true
			}
		}
	}
	return out
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// TestTenantCannotReachAnotherTenantsResources: A's user and A's key get
// exactly the answer for a nonexistent id on everything of B.
func TestTenantCannotReachAnotherTenantsResources(t *testing.T) {
	h := newHarness(t)
	userA, appA, keyA := h.member("a@example.com")
	userB, appB, _ := h.member("b@example.com")
	var keysB List[keyView]
	h.must(200, "GET", "/api/v1/applications/"+appB+"/api-keys", userB, nil).json(t, &keysB)
	keyB := keysB.Data[0].ID

	type call struct {
		method, path string
		body         any
	}
	calls := func(app, key string) []call {
		base := "/api/v1/applications/" + app
		return []call{
			{"GET", base, nil},
			{"PATCH", base, map[string]any{"name": "mine now"}},
			{"DELETE", base, nil},
			{"GET", base + "/api-keys", nil},
			{"POST", base + "/api-keys", keyCreate{Name: "x"}},
			{"GET", base + "/api-keys/" + key, nil},
			{"DELETE", base + "/api-keys/" + key, nil},
			{"GET", base + "/usage", nil},
			{"GET", base + "/usage?format=csv", nil},
			{"GET", "/api/v1/audit-log?app_id=" + app, nil},
		}
	}
	missing := calls("app_01NOSUCHAPP0000000000000000", "key_01NOSUCHKEY0000000000000")
	for _, tok := range []string{userA, keyA} {
		for i, c := range calls(appB, keyB) {
			got := h.do(c.method, c.path, tok, c.body)
			ref := h.do(missing[i].method, missing[i].path, tok, missing[i].body)
			if got.Code != http.StatusNotFound || ref.Code != http.StatusNotFound || string(got.Body) != string(ref.Body) {
				t.Errorf("%s %s as A: %d %s; for a missing id: %d %s", c.method, c.path, got.Code, got.Body, ref.Code, ref.Body)
			}
		}
		var apps List[appView]
		h.must(200, "GET", "/api/v1/applications", tok, nil).json(t, &apps)
		if len(apps.Data) != 1 || apps.Data[0].ID != appA {
			t.Errorf("A lists %+v", apps.Data)
		}
		var audit List[auditView]
		h.must(200, "GET", "/api/v1/audit-log", tok, nil).json(t, &audit)
		for _, e := range audit.Data {
			if e.AppID != appA {
				t.Errorf("A sees audit entry of %s", e.AppID)
			}
		}
		// Members and keys may not list users or change plans.
		h.must(403, "GET", "/api/v1/users", tok, nil)
		h.must(403, "POST", "/api/v1/plans", tok, map[string]any{"name": "x", "monthly_quota": 1, "max_endpoints": 1})
	}
	// B's things are untouched.
	var app appView
	h.must(200, "GET", "/api/v1/applications/"+appB, userB, nil).json(t, &app)
	if app.Name != "app of b@example.com" {
		t.Fatalf("B's app changed: %+v", app)
	}
	h.must(200, "GET", "/api/v1/applications/"+appB+"/api-keys/"+keyB, userB, nil)
	// A key cannot act for the application as a user would.
	h.must(403, "DELETE", "/api/v1/applications/"+appA, keyA, nil)
	h.must(403, "POST", "/api/v1/applications", keyA, appCreate{Name: "x"})
	var meB whoami
	h.must(200, "GET", "/api/v1/auth/me", userB, nil).json(t, &meB)
	h.must(404, "GET", "/api/v1/users/"+meB.ID, userA, nil)
	h.must(404, "PATCH", "/api/v1/users/"+meB.ID, userA, map[string]any{"password": "stolen-password"})
}

func TestAPIKeyLifecycleOverHTTP(t *testing.T) {
	h := newHarness(t)
	var app appView
	h.must(201, "POST", "/api/v1/applications", h.admin, appCreate{Name: "x"}).json(t, &app)
	var k keyCreated
	h.must(201, "POST", "/api/v1/applications/"+app.ID+"/api-keys", h.admin, keyCreate{Name: "deploy"}).json(t, &k)
	if !strings.HasPrefix(k.Key, "ethk_") || !strings.HasPrefix(k.Key, k.Prefix) {
		t.Fatalf("created %+v", k)
	}
	var me whoami
	h.must(200, "GET", "/api/v1/auth/me", k.Key, nil).json(t, &me)
	if me.Type != "api_key" || me.AppID != app.ID || me.Admin {
		t.Fatalf("whoami %+v", me)
	}
	h.must(200, "GET", "/api/v1/applications/"+app.ID, k.Key, nil)
	var got keyView
	h.must(200, "GET", "/api/v1/applications/"+app.ID+"/api-keys/"+k.ID, h.admin, nil).json(t, &got)
	if got.LastUsedAt == nil {
		t.Fatal("last_used_at not recorded")
	}
	h.must(204, "DELETE", "/api/v1/applications/"+app.ID+"/api-keys/"+k.ID, h.admin, nil)
	if e := h.must(401, "GET", "/api/v1/applications/"+app.ID, k.Key, nil).errCode(t); e.Error.Code != "unauthorized" {
		t.Fatalf("revoked key: %+v", e)
	}
	h.must(200, "GET", "/api/v1/applications/"+app.ID+"/api-keys?revoked=true", h.admin, nil)
}

func TestLoginRejectsBadCredentialsWithoutSayingWhich(t *testing.T) {
	h := newHarness(t)
	a := h.must(401, "POST", "/api/v1/auth/login", "", loginRequest{Email: "root@example.com", Password: "wrong-password"})
	b := h.must(401, "POST", "/api/v1/auth/login", "", loginRequest{Email: "nobody@example.com", Password: "wrong-password"})
	if string(a.Body) != string(b.Body) {
		t.Fatalf("login answers differ: %s vs %s", a.Body, b.Body)
	}
	if e := h.must(400, "POST", "/api/v1/auth/login", "", map[string]string{"email": ""}).errCode(t); e.Error.Fields["password"] == "" {
		t.Fatalf("missing password not named: %+v", e)
	}
	// A deleted user's token stops working.
	var u userView
	h.must(201, "POST", "/api/v1/users", h.admin, userCreate{Email: "gone@example.com", Password: "gone-password"}).json(t, &u)
	tok := h.login("gone@example.com", "gone-password")
	h.must(200, "GET", "/api/v1/auth/me", tok, nil)
	h.must(204, "DELETE", "/api/v1/users/"+u.ID, h.admin, nil)
	h.must(401, "GET", "/api/v1/auth/me", tok, nil)
}

func TestRateLimitAnswers429WithRetryAfterAcrossProcesses(t *testing.T) {
	h := newHarness(t, func(c *config.Admin) { c.RateLimit = 3 })
	// A second module on the same Postgres and Redis is another process.
	other, err := New(module.Deps{Config: config.Config{Admin: h.m.cfg, Redis: config.Redis{Prefix: h.keys.Prefix}}, Pool: h.m.pool, Redis: h.m.rdb}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	h2 := &harness{t: t, m: other}
	_, _, key := h.member("c@example.com")
	h.must(200, "GET", "/api/v1/auth/me", key, nil)
	h2.must(200, "GET", "/api/v1/auth/me", key, nil)
	h.must(200, "GET", "/api/v1/auth/me", key, nil)
	r := h2.do("GET", "/api/v1/auth/me", key, nil)
	if r.Code != http.StatusTooManyRequests {
		// The fixed one-minute window may have turned between requests; the
		// next three requests all land in the new window.
		h.must(200, "GET", "/api/v1/auth/me", key, nil)
		h.must(200, "GET", "/api/v1/auth/me", key, nil)
		r = h2.do("GET", "/api/v1/auth/me", key, nil)
	}
	if r.Code != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" || r.errCode(t).Error.Code != "rate_limited" {
		t.Fatalf("4th request: %d %v %s", r.Code, r.Header, r.Body)
	}
	// Another caller has its own budget.
	h.must(200, "GET", "/api/v1/auth/me", h.admin, nil)
}

func TestRequestIDIsReturnedAndCallerIDsKeptWhenSafe(t *testing.T) {
	h := newHarness(t)
	r := h.do("GET", "/api/v1/nope", "", nil)
	if r.Code != 404 || r.Header.Get("X-Request-Id") == "" {
		t.Fatalf("no request id: %d %v", r.Code, r.Header)
	}
	if e := r.errCode(t); e.Error.Code != "not_found" {
		t.Fatalf("unknown route: %+v", e)
	}
	for id, keep := range map[string]bool{"abc-123": true, "bad id\nwith newline": false, strings.Repeat("x", 65): false} {
		req := newRequest("GET", "/api/v1/openapi.json")
		req.Header.Set("X-Request-Id", id)
		got := serve(h, req).Header().Get("X-Request-Id")
		if (got == id) != keep || got == "" {
			t.Errorf("request id %q -> %q (keep %v)", id, got, keep)
		}
	}
}

func TestQuotaHoldsMessagesAndRaisingThePlanReleasesThem(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.must(201, "POST", "/api/v1/plans", h.admin, map[string]any{"id": "tiny", "name": "Tiny", "monthly_quota": 2, "max_endpoints": 1})
	h.must(201, "POST", "/api/v1/plans", h.admin, map[string]any{"id": "big", "name": "Big", "monthly_quota": 100, "max_endpoints": 10})
	var app appView
	h.must(201, "POST", "/api/v1/applications", h.admin, appCreate{Name: "q", PlanID: "tiny"}).json(t, &app)
	pool := h.store.Pool()
	ep := tenant.NewID("ep")
	if _, err := pool.Exec(ctx, `INSERT INTO endpoints (id, app_id, url, secret_enc) VALUES ($1, $2, 'https://example.com/h', '\x00')`, ep, app.ID); err != nil {
		t.Fatal(err)
	}
	// What process and deliver do: create a message in the state the quota
	// says, and count successful deliveries in usage.
	store := tenant.New(pool) // process's own store, its own cache
	create := func(i int) string {
		exceeded, err := store.QuotaExceeded(ctx, app.ID)
		if err != nil {
			t.Fatal(err)
		}
		state := hook.StatePending
		if exceeded {
			state = hook.StateQuotaExceeded
		}
		id := tenant.NewID("msg")
		if _, err := pool.Exec(ctx, `WITH m AS (INSERT INTO messages (id, app_id, endpoint_id, event_id, type, webhook_id, chain_id, block_number, payload)
			VALUES ($1, $2, $3, $1, 'log', $1, 31337, $4, '{}') RETURNING *)
			INSERT INTO message_states (id, app_id, endpoint_id, state, attempts, created_at, type, block_number, log_index, fifo_key)
			SELECT id, app_id, endpoint_id, $5, 0, created_at, type, block_number, log_index, fifo_key FROM m`, id, app.ID, ep, i, state); err != nil {
			t.Fatal(err)
		}
		return state
	}
	deliver := func() {
		if _, err := pool.Exec(ctx, `WITH d AS (UPDATE message_states SET state = 'succeeded' WHERE app_id = $1 AND state = 'pending' RETURNING 1)
			INSERT INTO usage (app_id, month, deliveries) SELECT $1, date_trunc('month', now() AT TIME ZONE 'UTC')::date, count(*) FROM d
			ON CONFLICT (app_id, month) DO UPDATE SET deliveries = usage.deliveries + EXCLUDED.deliveries`, app.ID); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 2; i++ {
		if s := create(i); s != hook.StatePending {
			t.Fatalf("message %d under quota is %s", i, s)
		}
	}
	deliver()
	// Wait out the QuotaExceeded cache instead of asserting on timing.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if ex, _ := store.QuotaExceeded(ctx, app.ID); ex {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("quota never reported exceeded")
		}
		time.Sleep(200 * time.Millisecond)
	}
	for i := 2; i < 5; i++ {
		if s := create(i); s != hook.StateQuotaExceeded {
			t.Fatalf("message %d over quota is %s", i, s)
		}
	}
	var usage usageView
	h.must(200, "GET", "/api/v1/applications/"+app.ID+"/usage", h.admin, nil).json(t, &usage)
	if !usage.Current.Exceeded || usage.Current.Held != 3 || usage.Current.Deliveries != 2 {
		t.Fatalf("usage at quota %+v", usage.Current)
	}
	h.m.releaseOnce(ctx)
	if usage := h.heldCount(t, app.ID); usage != 3 {
		t.Fatalf("released while over quota: held %d", usage)
	}
	h.must(200, "PATCH", "/api/v1/applications/"+app.ID, h.admin, map[string]any{"plan_id": "big"})
	if held := h.heldCount(t, app.ID); held != 0 {
		t.Fatalf("held %d after raising the plan", held)
	}
	rdb := h.m.rdb
	jobs, err := rdb.Do(ctx, rdb.B().Xrange().Key(h.keys.DeliverJobs()).Start("-").End("+").Build()).AsXRange()
	if err != nil || len(jobs) != 3 {
		t.Fatalf("delivery jobs %d %v", len(jobs), err)
	}
	for _, j := range jobs {
		if j.FieldValues["endpoint_id"] != ep || !strings.HasPrefix(j.FieldValues["message_id"], "msg_") {
			t.Fatalf("job %v", j.FieldValues)
		}
	}
	deliver()
	h.must(200, "GET", "/api/v1/applications/"+app.ID+"/usage", h.admin, nil).json(t, &usage)
	if usage.Current.Exceeded || usage.Current.Deliveries != 5 || usage.Current.Held != 0 {
		t.Fatalf("usage after release %+v", usage.Current)
	}
}

func (h *harness) heldCount(t *testing.T, appID string) int {
	var n int
	if err := h.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM message_states WHERE app_id = $1 AND state = 'quota_exceeded'`, appID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRunBootstrapsOneAdminOnAnEmptyDatabase(t *testing.T) {
	h := newHarness(t)
	if _, err := h.store.Pool().Exec(context.Background(), `DELETE FROM users`); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.m.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for !h.m.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("never ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	users, _, err := h.store.ListUsers(context.Background(), hook.Operator, tenant.UserFilter{}, "", 0)
	if err != nil || len(users) != 1 || users[0].Role != tenant.RoleAdmin || users[0].Email != config.DefaultAdmin().BootstrapEmail {
		t.Fatalf("bootstrap users %+v %v", users, err)
	}
}

func TestBadInputIsA4xxNamingTheProblem(t *testing.T) {
	h := newHarness(t)
	var app appView
	h.must(201, "POST", "/api/v1/applications", h.admin, appCreate{Name: "x"}).json(t, &app)
	big := `{"name": "` + strings.Repeat("a", 2<<20) + `"}`
	cases := []struct {
		name, method, path string
		body               any
		status             int
		code, field, says  string
	}{
		{"invalid json", "POST", "/api/v1/applications", `{"name": `, 400, "invalid_json", "", "JSON"},
		{"not an object", "POST", "/api/v1/applications", `[1,2]`, 400, "invalid_request", "", "object"},
		{"unknown field", "POST", "/api/v1/applications", `{"name": "a", "nmae": "b"}`, 400, "invalid_request", "nmae", "unknown field"},
		{"wrong type", "POST", "/api/v1/applications", `{"name": 5}`, 400, "invalid_request", "name", "string"},
		{"trailing data", "POST", "/api/v1/applications", `{"name": "a"} {}`, 400, "invalid_json", "", "after"},
		{"empty body", "POST", "/api/v1/applications", ``, 400, "invalid_request", "", "required"},
		{"missing name", "POST", "/api/v1/applications", `{}`, 400, "invalid_request", "name", "required"},
		{"nul in string", "POST", "/api/v1/applications", `{"name": "a\u0000b"}`, 400, "invalid_request", "", "NUL"},
		{"oversized body", "POST", "/api/v1/applications", big, 413, "body_too_large", "", "limit"},
		{"bad limit", "GET", "/api/v1/applications?limit=0", nil, 400, "invalid_request", "limit", "between"},
		{"huge limit", "GET", "/api/v1/applications?limit=99999999999999999999", nil, 400, "invalid_request", "limit", "between"},
		{"bad cursor", "GET", "/api/v1/applications?cursor=%25%25", nil, 400, "invalid_request", "cursor", "cursor"},
		{"unknown filter", "GET", "/api/v1/applications?colour=red", nil, 400, "invalid_request", "colour", "unknown query parameter"},
		{"bad bool", "GET", "/api/v1/applications/" + app.ID + "/api-keys?revoked=maybe", nil, 400, "invalid_request", "revoked", "true or false"},
		{"bad month", "GET", "/api/v1/applications/" + app.ID + "/usage?from=2024-13", nil, 400, "invalid_request", "from", "YYYY-MM"},
		{"bad format", "GET", "/api/v1/applications/" + app.ID + "/usage?format=xml", nil, 400, "invalid_request", "format", "csv"},
		{"nul in path", "GET", "/api/v1/applications/a%00b", nil, 400, "invalid_request", "app_id", "identifier"},
		{"bad address filter", "GET", "/api/v1/chains/31337/events?address=0x12", nil, 400, "invalid_request", "address", "address"},
		{"bad event type", "GET", "/api/v1/chains/31337/events?type=block", nil, 400, "invalid_request", "type", "log"},
		{"unknown chain", "GET", "/api/v1/chains/999/events", nil, 404, "not_found", "", "not found"},
		{"bad email", "POST", "/api/v1/users", `{"email": "nope", "password": "long-enough-pw"}`, 400, "invalid_request", "email", "email"},
		{"short password", "POST", "/api/v1/users", `{"email": "a@b.co", "password": "short"}`, 400, "invalid_request", "password", "at least"},
		{"bad role", "POST", "/api/v1/users", `{"email": "a@b.co", "password": "long-enough-pw", "role": "root"}`, 400, "invalid_request", "role", "admin"},
		{"negative quota", "POST", "/api/v1/plans", `{"name": "n", "monthly_quota": -1, "max_endpoints": 1}`, 400, "invalid_request", "monthly_quota", "0"},
		{"plan without quota", "POST", "/api/v1/plans", `{"name": "n"}`, 400, "invalid_request", "monthly_quota", "required"},
		{"unknown plan", "PATCH", "/api/v1/applications/" + app.ID, `{"plan_id": "nope"}`, 400, "invalid_request", "plan_id", "does not exist"},
		{"method not allowed", "PUT", "/api/v1/applications", nil, 405, "method_not_allowed", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.do(c.method, c.path, h.admin, c.body)
			if r.Code != c.status {
				t.Fatalf("status %d, want %d: %.300s", r.Code, c.status, r.Body)
			}
			e := r.errCode(t)
			if e.Error.Code != c.code {
				t.Errorf("code %q, want %q (%s)", e.Error.Code, c.code, e.Error.Message)
			}
			if c.field != "" && e.Error.Fields[c.field] == "" {
				t.Errorf("field %q not named: %+v", c.field, e.Error)
			}
			if c.says != "" && !strings.Contains(e.Error.Message+fieldsText(e.Error.Fields), c.says) {
				t.Errorf("message %q does not say %q", e.Error.Message, c.says)
			}
		})
	}
}

func fieldsText(m map[string]string) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, k+": "+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

// endpointsAndMessages walks the endpoint and message routes of app.
func (h *harness) endpointsAndMessages(t *testing.T, appID, tok string) {
	ctx := context.Background()
	base := "/api/v1/applications/" + appID + "/endpoints"
	var ep endpointCreated
	h.must(201, "POST", base, tok, map[string]any{"url": "https://example.com/hook", "description": "d",
		"filter": map[string]any{"chains": []int{31337}}}).json(t, &ep)
	if ep.ID == "" || ep.Secret == "" || ep.URL != "https://example.com/hook" {
		t.Fatalf("endpoint %+v", ep)
	}
	var eps List[endpointView]
	h.must(200, "GET", base+"?enabled=true", tok, nil).json(t, &eps)
	if len(eps.Data) != 1 {
		t.Fatalf("endpoints %+v", eps)
	}
	h.must(200, "GET", base+"/"+ep.ID, tok, nil)
	var upd endpointView
	h.must(200, "PATCH", base+"/"+ep.ID, tok, map[string]any{"description": "new", "enabled": false}).json(t, &upd)
	if upd.Description != "new" || upd.Enabled {
		t.Fatalf("updated %+v", upd)
	}
	if upd.Ordering != "parallel" {
		t.Fatalf("default ordering %q", upd.Ordering)
	}
	h.must(200, "PATCH", base+"/"+ep.ID, tok, map[string]any{"ordering": "fifo", "fifo_key": "topic1"}).json(t, &upd)
	if upd.Ordering != "fifo" || upd.FIFOKey != "topic1" {
		t.Fatalf("ordering %q fifo_key %q after PATCH", upd.Ordering, upd.FIFOKey)
	}
	if bad := h.must(400, "PATCH", base+"/"+ep.ID, tok, map[string]any{"fifo_key": "tx_hash"}).errCode(t); !strings.Contains(bad.Error.Message, "fifo_key") ||
		!strings.Contains(bad.Error.Message, "tx_hash") {
		t.Fatalf("bad fifo_key: %+v", bad)
	}
	var sec secretView
	h.must(200, "GET", base+"/"+ep.ID+"/secret", tok, nil).json(t, &sec)
	if sec.Secret != ep.Secret {
		t.Fatalf("secret %q, created with %q", sec.Secret, ep.Secret)
	}
	var rot secretView
	h.must(200, "POST", base+"/"+ep.ID+"/secret/rotate", tok, nil).json(t, &rot)
	if rot.Secret == "" || rot.Secret == ep.Secret {
		t.Fatalf("rotated %q", rot.Secret)
	}
	// Replays refuse a disabled endpoint (409): enable it again.
	h.must(200, "PATCH", base+"/"+ep.ID, tok, map[string]any{"enabled": true})
	var health endpointHealth
	if h.must(200, "GET", base+"/"+ep.ID+"/health", tok, nil).json(t, &health); len(health.Windows) != 2 || health.Windows[0].Window != "1h" {
		t.Fatalf("health %+v", health)
	}
	var sent testSent
	h.must(202, "POST", base+"/"+ep.ID+"/test", tok, nil).json(t, &sent)
	// Pretend deliver answered the test message, so it can be replayed.
	if _, err := h.store.Pool().Exec(ctx, `UPDATE message_states SET state = 'succeeded' WHERE id = $1`, sent.MessageID); err != nil {
		t.Fatal(err)
	}
	var msgs List[messageView]
	h.must(200, "GET", "/api/v1/applications/"+appID+"/messages?state=succeeded&endpoint_id="+ep.ID+"&from_block=0&since=2000-01-01T00:00:00Z", tok, nil).json(t, &msgs)
	if len(msgs.Data) != 1 || msgs.Data[0].ID != sent.MessageID {
		t.Fatalf("messages %+v", msgs)
	}
	var detail messageDetail
	h.must(200, "GET", "/api/v1/applications/"+appID+"/messages/"+sent.MessageID, tok, nil).json(t, &detail)
	if detail.Message.Type != "test" || detail.Attempts == nil {
		t.Fatalf("detail %+v", detail)
	}
	h.must(202, "POST", "/api/v1/applications/"+appID+"/messages/"+sent.MessageID+"/replay", tok, nil)
	if _, err := h.store.Pool().Exec(ctx, `UPDATE message_states SET state = 'dead' WHERE id = $1`, sent.MessageID); err != nil {
		t.Fatal(err)
	}
	var rep replayed
	h.must(202, "POST", base+"/"+ep.ID+"/replay", tok, map[string]any{"from_block": 0, "only_failed": true}).json(t, &rep)
	if rep.Replayed != 1 {
		t.Fatalf("replayed %d", rep.Replayed)
	}
	jobs, err := h.m.rdb.Do(ctx, h.m.rdb.B().Xlen().Key(h.keys.DeliverJobs()).Build()).AsInt64()
	if err != nil || jobs != 3 {
		t.Fatalf("delivery jobs %d %v (want test + 2 replays)", jobs, err)
	}
	// Bad input to these routes is a 400 naming the field.
	if e := h.must(400, "POST", base, tok, map[string]any{"url": "ftp://x", "filter": map[string]any{"chains": []int{31337}}}).errCode(t); e.Error.Fields["url"] == "" {
		t.Fatalf("bad url: %+v", e)
	}
	if e := h.must(400, "GET", "/api/v1/applications/"+appID+"/messages?since=yesterday", tok, nil).errCode(t); e.Error.Fields["since"] == "" {
		t.Fatalf("bad since: %+v", e)
	}
	h.must(400, "POST", base+"/"+ep.ID+"/replay", tok, map[string]any{})
	h.must(204, "DELETE", base+"/"+ep.ID, tok, nil)
	h.must(404, "GET", base+"/"+ep.ID, tok, nil)
}

func TestTenantCannotReachAnotherTenantsEndpointsOrMessages(t *testing.T) {
	h := newHarness(t)
	userA, appA, keyA := h.member("a@example.com")
	userB, appB, _ := h.member("b@example.com")
	base := "/api/v1/applications/" + appB + "/endpoints"
	var ep endpointCreated
	h.must(201, "POST", base, userB, map[string]any{"url": "https://example.com/b", "filter": map[string]any{"chains": []int{31337}}}).json(t, &ep)
	var sent testSent
	h.must(202, "POST", base+"/"+ep.ID+"/test", userB, nil).json(t, &sent)
	paths := func(app, epID, msgID string) [][3]string {
		b := "/api/v1/applications/" + app
		e := b + "/endpoints/" + epID
		return [][3]string{
			{"GET", b + "/endpoints", ""}, {"POST", b + "/endpoints", `{"url":"https://example.com/a","filter":{"chains":[31337]}}`},
			{"GET", e, ""}, {"PATCH", e, `{"description":"x"}`}, {"DELETE", e, ""}, {"GET", e + "/secret", ""},
			{"POST", e + "/secret/rotate", ""}, {"POST", e + "/test", ""}, {"POST", e + "/replay", `{"from_block":0}`}, {"GET", e + "/health", ""},
			{"GET", b + "/messages", ""}, {"GET", b + "/messages/" + msgID, ""}, {"POST", b + "/messages/" + msgID + "/replay", ""},
			// B's ids through A's own application: still nothing.
			{"GET", "/api/v1/applications/" + appA + "/endpoints/" + epID, ""},
			{"GET", "/api/v1/applications/" + appA + "/messages/" + msgID, ""},
			{"POST", "/api/v1/applications/" + appA + "/messages/" + msgID + "/replay", ""},
		}
	}
	real := paths(appB, ep.ID, sent.MessageID)
	fake := paths("app_01NOSUCHAPP0000000000000000", "ep_01NOSUCH000000000000000000", "msg_01NOSUCH00000000000000000")
	for _, tok := range []string{userA, keyA} {
		for i, c := range real {
			var body any
			if c[2] != "" {
				body = c[2]
			}
			got := h.do(c[0], c[1], tok, body)
			if got.Code != http.StatusNotFound {
				t.Errorf("%s %s as A: %d %s", c[0], c[1], got.Code, got.Body)
				continue
			}
			if i < 13 {
				ref := h.do(fake[i][0], fake[i][1], tok, body)
				if string(ref.Body) != string(got.Body) {
					t.Errorf("%s %s: answer differs from a missing id's: %s vs %s", c[0], c[1], got.Body, ref.Body)
				}
			}
		}
	}
	var msg messageDetail
	h.must(200, "GET", "/api/v1/applications/"+appB+"/messages/"+sent.MessageID, userB, nil).json(t, &msg)
	if msg.Message.State != hook.StatePending {
		t.Fatalf("B's message changed: %+v", msg.Message)
	}
	h.must(200, "GET", base+"/"+ep.ID, userB, nil)
}
