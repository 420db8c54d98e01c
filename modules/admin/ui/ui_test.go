package ui

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/module"
	"github.com/ethhook/ethhook/message"
	"github.com/ethhook/ethhook/tenant"
)

func TestLoginSetsAnHttpOnlySameSiteSessionCookie(t *testing.T) {
	h := newHarness(t)
	h.user("admin@example.com", tenant.RoleAdmin)
	c := h.client()
	c.get("/login")
	resp, body := c.post("/login", url.Values{"email": {"admin@example.com"}, "password": {testPassword}, "next": {"/apps"}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	if loc := resp.Header.Get("Location"); loc != "/apps" {
		t.Fatalf("redirect to %q, want /apps", loc)
	}
	var found bool
	for _, ck := range resp.Cookies() {
		if ck.Name == sessionCookie {
			found = true
			if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || len(ck.Value) < 40 {
				t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Lax, Path=/, a long random value", ck)
			}
		}
	}
	if !found {
		t.Fatal("no session cookie")
	}
	resp, body = c.get("/apps")
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, "admin@example.com") || !strings.Contains(body, "Sign out") {
		t.Fatalf("signed-in page lacks the user and sign-out:\n%s", body)
	}
}

func TestWrongPasswordIsRefusedWithoutSayingWhichPartWasWrong(t *testing.T) {
	h := newHarness(t)
	h.user("admin@example.com", tenant.RoleAdmin)
	for _, email := range []string{"admin@example.com", "nobody@example.com"} {
		c := h.client()
		c.get("/login")
		resp, body := c.post("/login", url.Values{"email": {email}, "password": {"wrong password!"}})
		wantStatus(t, resp, body, http.StatusUnauthorized)
		if !strings.Contains(body, "Wrong email or password.") {
			t.Fatalf("%s: no generic error:\n%s", email, body)
		}
	}
}

func TestPagesRedirectToLoginWithoutASession(t *testing.T) {
	h := newHarness(t)
	c := h.client()
	for _, p := range []string{"/", "/apps", "/users", "/apps/app_x/keys"} {
		resp, body := c.get(p)
		wantStatus(t, resp, body, http.StatusSeeOther)
		if loc := resp.Header.Get("Location"); loc != "/login?next="+url.QueryEscape(p) {
			t.Fatalf("%s redirects to %q", p, loc)
		}
	}
	resp, body := c.post("/apps", url.Values{"name": {"x"}})
	wantStatus(t, resp, body, http.StatusUnauthorized)
}

func TestLoginFormRequiresItsDoubleSubmitToken(t *testing.T) {
	h := newHarness(t)
	h.user("admin@example.com", tenant.RoleAdmin)
	c := h.client()
	c.get("/login")
	resp, body := c.post("/login", url.Values{"email": {"admin@example.com"}, "password": {testPassword}, "_csrf": {"forged"}})
	wantStatus(t, resp, body, http.StatusForbidden)
}

func TestEveryPostWithoutTheSessionCSRFTokenIsRefused(t *testing.T) {
	h := newHarness(t)
	h.user("admin@example.com", tenant.RoleAdmin)
	a := h.app("Shop")
	c := h.client()
	c.login("admin@example.com")
	for _, p := range []string{"/apps", "/apps/" + a.ID, "/apps/" + a.ID + "/keys", "/users", "/logout"} {
		for _, tok := range []string{"", "not-the-token"} {
			resp, body := c.post(p, url.Values{"_csrf": {tok}, "name": {"Evil"}})
			wantStatus(t, resp, body, http.StatusForbidden)
		}
	}
	// Nothing changed: the application keeps its name and has no key.
	got, err := h.store.GetApplication(context.Background(), hook.Operator, a.ID)
	if err != nil || got.Name != "Shop" {
		t.Fatalf("application after forged posts: %+v, %v", got, err)
	}
	keys, _, _ := h.store.ListAPIKeys(context.Background(), hook.Operator, a.ID, tenant.APIKeyFilter{}, "", 10)
	if len(keys) != 0 {
		t.Fatalf("forged post created keys: %+v", keys)
	}
	// The real token works.
	resp, body := c.post("/apps/"+a.ID, url.Values{"name": {"Shop 2"}})
	wantStatus(t, resp, body, http.StatusSeeOther)
}

func TestLogoutEndsTheSessionOnTheServer(t *testing.T) {
	h := newHarness(t)
	h.user("admin@example.com", tenant.RoleAdmin)
	c := h.client()
	c.login("admin@example.com")
	u, _ := url.Parse(h.srv.URL)
	var old *http.Cookie
	for _, ck := range c.c.Jar.Cookies(u) {
		if ck.Name == sessionCookie {
			old = ck
		}
	}
	resp, body := c.post("/logout", nil)
	wantStatus(t, resp, body, http.StatusSeeOther)
	// Replaying the old cookie does not get back in.
	req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/apps", nil)
	req.AddCookie(old)
	r2, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r2.Header.Get("Location"), "/login") {
		t.Fatalf("old session cookie after logout: status %d location %q", r2.StatusCode, r2.Header.Get("Location"))
	}
}

func TestMemberSeesOnlyTheirApplications(t *testing.T) {
	h := newHarness(t)
	mine, theirs := h.app("Mine"), h.app("Theirs")
	h.user("member@example.com", tenant.RoleMember, mine.ID)
	c := h.client()
	c.login("member@example.com")
	_, body := c.get("/apps")
	if !strings.Contains(body, "Mine") || strings.Contains(body, "Theirs") || strings.Contains(body, theirs.ID) {
		t.Fatalf("member's application list:\n%s", body)
	}
	for _, p := range []string{"/apps/" + theirs.ID, "/apps/" + theirs.ID + "/keys", "/apps/" + theirs.ID + "/usage"} {
		resp, body := c.get(p)
		wantStatus(t, resp, body, http.StatusNotFound)
		if strings.Contains(body, "Theirs") {
			t.Fatalf("%s leaks the other application's name", p)
		}
	}
	resp, body := c.post("/apps/"+theirs.ID+"/keys", url.Values{"name": {"steal"}})
	wantStatus(t, resp, body, http.StatusNotFound)
	resp, body = c.post("/apps/"+theirs.ID+"/delete", url.Values{"confirm": {"Theirs"}})
	wantStatus(t, resp, body, http.StatusNotFound)
	resp, body = c.get("/users")
	wantStatus(t, resp, body, http.StatusForbidden)
	if _, err := h.store.GetApplication(context.Background(), hook.Operator, theirs.ID); err != nil {
		t.Fatalf("other application after member's attempts: %v", err)
	}
}

func TestAPIKeyIsShownOnceThenOnlyItsPrefix(t *testing.T) {
	h := newHarness(t)
	h.user("admin@example.com", tenant.RoleAdmin)
	a := h.app("Shop")
	c := h.client()
	c.login("admin@example.com")
	c.get("/apps/" + a.ID + "/keys")
	resp, body := c.post("/apps/"+a.ID+"/keys", url.Values{"name": {"ci"}})
	wantStatus(t, resp, body, http.StatusCreated)
	key := regexp.MustCompile(`value="(ethk_[A-Za-z0-9_-]+)"`).FindStringSubmatch(body)
	if key == nil {
		t.Fatalf("created key not shown:\n%s", body)
	}
	if _, err := h.store.AuthenticateKey(context.Background(), key[1]); err != nil {
		t.Fatalf("shown key does not authenticate: %v", err)
	}
	_, body = c.get("/apps/" + a.ID + "/keys")
	if strings.Contains(body, key[1]) {
		t.Fatal("the key is shown again on a later page")
	}
	keys, _, _ := h.store.ListAPIKeys(context.Background(), hook.Operator, a.ID, tenant.APIKeyFilter{}, "", 10)
	if len(keys) != 1 || !strings.Contains(body, keys[0].Prefix) {
		t.Fatalf("key list lacks the prefix: %+v", keys)
	}
	resp, body = c.post("/apps/"+a.ID+"/keys/"+keys[0].ID+"/revoke", nil)
	wantStatus(t, resp, body, http.StatusSeeOther)
	if _, err := h.store.AuthenticateKey(context.Background(), key[1]); err == nil {
		t.Fatal("revoked key still authenticates")
	}
	_, body = c.get("/apps/" + a.ID + "/keys")
	if !strings.Contains(body, "revoked") {
		t.Fatalf("key list does not show revocation:\n%s", body)
	}
}

func TestAdminCreatesAMemberWhoThenSeesTheApplication(t *testing.T) {
	h := newHarness(t)
	h.user("admin@example.com", tenant.RoleAdmin)
	a := h.app("Shop")
	c := h.client()
	c.login("admin@example.com")
	c.get("/users")
	resp, body := c.post("/users", url.Values{"email": {"new@example.com"}, "password": {"short"}, "role": {"member"}})
	wantStatus(t, resp, body, http.StatusUnprocessableEntity)
	if !strings.Contains(body, "at least 10 characters") {
		t.Fatalf("no field error for the short password:\n%s", body)
	}
	resp, body = c.post("/users", url.Values{"email": {"new@example.com"}, "password": {testPassword}, "role": {"member"}, "app_ids": {a.ID}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	m := h.client()
	m.login("new@example.com")
	_, body = m.get("/apps")
	if !strings.Contains(body, "Shop") {
		t.Fatalf("new member does not see the application:\n%s", body)
	}
}

func TestCreateApplicationShowsFieldErrors(t *testing.T) {
	h := newHarness(t)
	h.user("member@example.com", tenant.RoleMember)
	c := h.client()
	c.login("member@example.com")
	resp, body := c.post("/apps", url.Values{"name": {"   "}})
	wantStatus(t, resp, body, http.StatusUnprocessableEntity)
	if !strings.Contains(body, "is required") {
		t.Fatalf("no field error:\n%s", body)
	}
	resp, body = c.post("/apps", url.Values{"name": {"My app"}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	apps, _, _ := h.store.ListApplications(context.Background(), hook.Operator, "", 10)
	if len(apps) != 1 || apps[0].Name != "My app" {
		t.Fatalf("applications: %+v", apps)
	}
}

func TestUsagePageShowsQuotaReached(t *testing.T) {
	h := newHarness(t)
	h.user("admin@example.com", tenant.RoleAdmin)
	a, err := h.store.CreateApplication(context.Background(), hook.Operator, "Shop", "free")
	if err != nil {
		t.Fatal(err)
	}
	month := time.Now().UTC().Format("2006-01") + "-01"
	if _, err := h.store.Pool().Exec(context.Background(), `INSERT INTO usage (app_id, month, deliveries) VALUES ($1, $2, 10000)`, a.ID, month); err != nil {
		t.Fatal(err)
	}
	c := h.client()
	c.login("admin@example.com")
	resp, body := c.get("/apps/" + a.ID + "/usage")
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, "Quota reached") {
		t.Fatalf("usage page does not say the quota is reached:\n%s", body)
	}
}

// Messages admitted but not yet delivered count against the quota, so the
// pages say "quota reached" once they fill it, before the deliveries do.
func TestAppPagesSayQuotaReachedWhenMessagesOnTheirWayFillIt(t *testing.T) {
	h := newHarness(t)
	h.user("admin@example.com", tenant.RoleAdmin)
	ctx := context.Background()
	if _, err := h.store.CreatePlan(ctx, hook.Operator, tenant.Plan{ID: "tiny", Name: "Tiny", MonthlyQuota: 2}); err != nil {
		t.Fatal(err)
	}
	a, err := h.store.CreateApplication(ctx, hook.Operator, "Shop", "tiny")
	if err != nil {
		t.Fatal(err)
	}
	pool := h.store.Pool()
	ep := tenant.NewID("ep")
	if _, err := pool.Exec(ctx, `INSERT INTO endpoints (id, app_id, url, secret_enc) VALUES ($1, $2, 'https://example.com/h', '\x00')`, ep, a.ID); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		id := tenant.NewID("msg")
		if _, err := pool.Exec(ctx, `WITH m AS (INSERT INTO messages (id, app_id, endpoint_id, event_id, type, webhook_id, chain_id, block_number, payload)
			VALUES ($1, $2, $3, $1, 'log', $1, 31337, $4, '{}') RETURNING *)
			INSERT INTO message_states (id, app_id, endpoint_id, state, attempts, created_at, type, block_number, log_index, fifo_key)
			SELECT id, app_id, endpoint_id, 'pending', 0, created_at, type, block_number, log_index, fifo_key FROM m`, id, a.ID, ep, i); err != nil {
			t.Fatal(err)
		}
	}
	c := h.client()
	c.login("admin@example.com")
	for page, want := range map[string]string{
		"/apps/" + a.ID:            "0 of 2 deliveries this month, 2 more on their way",
		"/apps/" + a.ID + "/usage": "(2 messages admitted before it are still on their way)",
	} {
		resp, body := c.get(page)
		wantStatus(t, resp, body, http.StatusOK)
		if !strings.Contains(body, "Quota reached") || !strings.Contains(body, want) {
			t.Errorf("%s does not say the quota is reached by 2 messages on their way:\n%s", page, body)
		}
	}
}

func TestPagesSendSecurityHeaders(t *testing.T) {
	h := newHarness(t)
	c := h.client()
	resp, _ := c.get("/login")
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("CSP %q", csp)
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("headers %v", resp.Header)
	}
	resp, body := c.get("/static/htmx.min.js")
	wantStatus(t, resp, body, http.StatusOK)
}

func TestSafeNextStaysOnSite(t *testing.T) {
	for in, want := range map[string]string{
		"/apps": "/apps", "": "/", "//evil.example": "/", "https://evil.example": "/", `/\evil`: "/", "/apps?x=1": "/apps?x=1",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestChartScalesBarsAndPlotsSuccessRate(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 30, 10, 0, time.UTC)
	c := buildChart([]message.Minute{
		{At: now.Truncate(time.Minute), Total: 10, Succeeded: 10},
		{At: now.Truncate(time.Minute).Add(-time.Minute), Total: 5, Succeeded: 0},
	}, now)
	if len(c.Bars) != chartMinutes || c.Max != 10 || c.Total != 15 || c.Empty {
		t.Fatalf("chart %+v", c)
	}
	last, prev := c.Bars[chartMinutes-1], c.Bars[chartMinutes-2]
	if last.H != c.Height-10 || prev.H != (c.Height-10)/2 {
		t.Fatalf("bar heights %d, %d", last.H, prev.H)
	}
	// 100% plots at the top margin, 0% on the axis.
	if c.Line != "285,100 295,10" {
		t.Fatalf("rate line %q", c.Line)
	}
	if e := buildChart(nil, now); !e.Empty || e.Line != "" {
		t.Fatalf("empty chart %+v", e)
	}
}

func TestDashboardRendersChainStatusFromIngestKeys(t *testing.T) {
	h := newHarness(t)
	h.user("admin@example.com", tenant.RoleAdmin)
	ctx := context.Background()
	rdb := h.ui.redis
	if err := rdb.Do(ctx, rdb.B().Set().Key(h.keys.Chain(31337, "cursor")).Value("1200:0xabc").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Do(ctx, rdb.B().Set().Key(h.keys.Chain(31337, "head")).Value("1234").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	c := h.client()
	c.login("admin@example.com")
	resp, body := c.get("/dashboard/live")
	wantStatus(t, resp, body, http.StatusOK)
	for _, want := range []string{"devnet", "1200", ">34 blocks<", "No delivery attempts", "No failed deliveries"} {
		if !strings.Contains(body, want) {
			t.Fatalf("dashboard lacks %q:\n%s", want, body)
		}
	}
}

func TestLoginPageWarnsWhenSecureCookiesMeetPlainHTTPFromAnotherHost(t *testing.T) {
	h := newHarnessWith(t, func(_ *module.Deps, o *Options) { o.SecureCookies = true })
	page := func(host, proto string) string {
		req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/login", nil)
		req.Host = host
		if proto != "" {
			req.Header.Set("X-Forwarded-Proto", proto)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if body := page("ethhook.example.com", ""); !strings.Contains(body, `id="insecure"`) {
		t.Fatalf("plain HTTP from another host: no warning:\n%s", body)
	}
	for _, c := range [][2]string{{"ethhook.example.com", "https"}, {"localhost:8080", ""}, {"127.0.0.1:8080", ""}, {"[::1]:8080", ""}} {
		if body := page(c[0], c[1]); strings.Contains(body, `id="insecure"`) {
			t.Fatalf("host %s proto %q: warned although the cookie is kept", c[0], c[1])
		}
	}
	h2 := newHarness(t) // cookies not Secure: nothing to warn about
	req, _ := http.NewRequest(http.MethodGet, h2.srv.URL+"/login", nil)
	req.Host = "ethhook.example.com"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(b), `id="insecure"`) {
		t.Fatal("warned without Secure cookies")
	}
}

func TestDashboardWithoutAHeadKeyShowsTheCommittedBlockAndNewestEventNotAMadeUpLag(t *testing.T) {
	h := newHarness(t)
	h.user("admin@example.com", tenant.RoleAdmin)
	ctx := context.Background()
	rdb := h.ui.redis
	if err := rdb.Do(ctx, rdb.B().Set().Key(h.keys.Chain(31337, "cursor")).Value("1200:0xabc").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	published := time.Now().Add(-90 * time.Second)
	ev := hook.Event{ID: hook.EventID(31337, "0xdef", 3), Type: hook.TypeLog, Chain: hook.Chain{ID: 31337, Name: "devnet"},
		Block: hook.Block{Number: 1187, Hash: "0xdef", Timestamp: 1}}
	fields, err := ev.Fields()
	if err != nil {
		t.Fatal(err)
	}
	add := rdb.B().Xadd().Key(h.keys.Events(31337)).Id(fmt.Sprintf("%d-0", published.UnixMilli())).FieldValue()
	for k, v := range fields {
		add = add.FieldValue(k, v)
	}
	if err := rdb.Do(ctx, add.Build()).Error(); err != nil {
		t.Fatal(err)
	}
	c := h.client()
	c.login("admin@example.com")
	resp, body := c.get("/dashboard/live")
	wantStatus(t, resp, body, http.StatusOK)
	for _, want := range []string{`class="committed">1200<`, "not known", "block 1187", "published 1m ago"} {
		if !strings.Contains(body, want) {
			t.Fatalf("dashboard lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, " blocks</span>") {
		t.Fatalf("dashboard shows a lag although no head is known:\n%s", body)
	}
}

// TestDashboardShowsTheSafeAndFinalizedHeads: the chains table shows the
// node's safe and finalized heads as ingest published them, and says when
// the node reports none.
func TestDashboardShowsTheSafeAndFinalizedHeads(t *testing.T) {
	h := newHarness(t)
	h.user("admin@example.com", tenant.RoleAdmin)
	ctx := context.Background()
	rdb := h.ui.redis
	c := h.client()
	c.login("admin@example.com")
	for _, kv := range [][2]string{{"cursor", "1200:0xabc"}} {
		if err := rdb.Do(ctx, rdb.B().Set().Key(h.keys.Chain(31337, kv[0])).Value(kv[1]).Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	resp, body := c.get("/dashboard/live")
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, "not reported") {
		t.Fatalf("dashboard without finality:\n%s", body)
	}
	if err := rdb.Do(ctx, rdb.B().Set().Key(h.keys.Chain(31337, "finality")).Value("1190:0xs|1150:0xf").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	resp, body = c.get("/dashboard/live")
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, `class="finality">1190 / 1150<`) {
		t.Fatalf("dashboard lacks the safe and finalized heads:\n%s", body)
	}
}
