package ui

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/module"
	"github.com/ethhook/ethhook/tenant"
)

func TestSafeNextRefusesEveryWayOffSite(t *testing.T) {
	for _, evil := range []string{
		"//evil.example", "///evil.example", `/\evil.example`, `\/evil.example`, `\\evil.example`,
		"/%09/evil.example/", "/\t/evil.example", "/\n/evil.example", "/\r//evil.example", "/ /evil.example",
		"/%0a/evil.example", "/%0d/evil.example", "/%00/evil.example", "/%7f/evil.example",
		"https://evil.example", "http:/evil.example", "javascript:alert(1)", "evil.example", "",
		"/%2f%2fevil.example", "/%2Fevil.example", "/%5cevil.example", "/%5C%5Cevil.example", "/\\/evil.example",
		"/\u0085/evil.example", "/\u0080/evil.example", "/\xff/evil.example", "/%zz", "/" + strings.Repeat("a", 600),
		"//evil.example/%2e%2e", "/\x00", "/\x7f/evil.example",
	} {
		if got := safeNext(evil); got != "/" {
			t.Errorf("safeNext(%q) = %q, want /", evil, got)
		}
	}
	for _, ok := range []string{"/", "/apps", "/apps?x=1", "/apps/app_1/messages?state=failed&since=2025-01-01T00%3A00%3A00Z",
		"/apps?name=a%20b", "/apps#top", "/apps?next=//x"} {
		if got := safeNext(ok); got != ok {
			t.Errorf("safeNext(%q) = %q, want it kept", ok, got)
		}
	}
}

func TestSignInDoesNotRedirectOffSiteWithAControlCharacter(t *testing.T) {
	h := newHarness(t)
	h.user("admin@example.com", tenant.RoleAdmin)
	c := h.client()
	c.get("/login?next=" + url.QueryEscape("/\t/attacker.example/"))
	resp, body := c.post("/login", url.Values{"email": {"admin@example.com"}, "password": {testPassword}, "next": {"/\t/attacker.example/"}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	if loc := resp.Header.Get("Location"); loc != "/" {
		t.Fatalf("redirect to %q, want /", loc)
	}
}

func sessionVersion(t *testing.T, h *harness, id string) int64 {
	t.Helper()
	u, err := h.store.UserByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return u.CredentialVersion
}

func signedIn(t *testing.T, c *client) bool {
	t.Helper()
	resp, _ := c.get("/apps")
	return resp.StatusCode == http.StatusOK
}

func TestChangingThePasswordNeedsTheCurrentOneAndEndsOtherSessions(t *testing.T) {
	h := newHarness(t)
	h.user("m@example.com", tenant.RoleMember)
	a, b := h.client(), h.client()
	a.login("m@example.com")
	b.login("m@example.com")
	a.get("/account/password")
	resp, body := a.post("/account/password", url.Values{"current_password": {"wrong password!"}, "password": {"a-new-password"}, "password_again": {"a-new-password"}})
	wantStatus(t, resp, body, http.StatusUnprocessableEntity)
	if !strings.Contains(body, "is not your current password") {
		t.Fatalf("no current-password error:\n%s", body)
	}
	resp, body = a.post("/account/password", url.Values{"current_password": {testPassword}, "password": {"a-new-password"}, "password_again": {"another"}})
	wantStatus(t, resp, body, http.StatusUnprocessableEntity)
	if !signedIn(t, b) {
		t.Fatal("a refused change signed the other session out")
	}
	a.get("/account/password")
	resp, body = a.post("/account/password", url.Values{"current_password": {testPassword}, "password": {"a-new-password"}, "password_again": {"a-new-password"}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	if !signedIn(t, a) {
		t.Fatal("the browser that changed the password was signed out")
	}
	if signedIn(t, b) {
		t.Fatal("another session survived the password change")
	}
	if _, err := h.store.Authenticate(context.Background(), "m@example.com", "a-new-password"); err != nil {
		t.Fatal(err)
	}
}

func TestAnAdminResetOrRoleChangeEndsTheUsersSessions(t *testing.T) {
	h := newHarness(t)
	m := h.user("m@example.com", tenant.RoleMember)
	c := h.client()
	c.login("m@example.com")
	pw := "reset-password"
	if _, err := h.store.UpdateUser(context.Background(), hook.Operator, m.ID, tenant.UserUpdate{Password: &pw}); err != nil {
		t.Fatal(err)
	}
	if signedIn(t, c) {
		t.Fatal("session survived a password reset")
	}
	c.get("/login")
	resp, body := c.post("/login", url.Values{"email": {"m@example.com"}, "password": {pw}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	role := tenant.RoleAdmin
	if _, err := h.store.UpdateUser(context.Background(), hook.Operator, m.ID, tenant.UserUpdate{Role: &role}); err != nil {
		t.Fatal(err)
	}
	if signedIn(t, c) {
		t.Fatal("session survived a role change")
	}
}

func TestSignOutEndsEverySessionAndTokenOfTheUser(t *testing.T) {
	h := newHarness(t)
	m := h.user("m@example.com", tenant.RoleMember)
	a, b := h.client(), h.client()
	a.login("m@example.com")
	b.login("m@example.com")
	before := sessionVersion(t, h, m.ID)
	resp, body := a.post("/logout", nil)
	wantStatus(t, resp, body, http.StatusSeeOther)
	if signedIn(t, a) || signedIn(t, b) {
		t.Fatal("a session survived signing out")
	}
	// API login tokens carry the version too (modules/admin checks it).
	if after := sessionVersion(t, h, m.ID); after <= before {
		t.Fatalf("credential version %d -> %d: sign-out must revoke API tokens", before, after)
	}
}

func TestOwnPasswordChangeOnTheUsersPageNeedsTheCurrentOne(t *testing.T) {
	h := newHarness(t)
	adm := h.user("admin@example.com", tenant.RoleAdmin)
	c := h.client()
	c.login("admin@example.com")
	c.get("/users")
	resp, body := c.post("/users/"+adm.ID, url.Values{"role": {"admin"}, "password": {"stolen-password"}})
	wantStatus(t, resp, body, http.StatusUnprocessableEntity)
	c.get("/users")
	resp, body = c.post("/users/"+adm.ID, url.Values{"role": {"admin"}, "password": {"chosen-password"}, "current_password": {testPassword}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	if !signedIn(t, c) {
		t.Fatal("changing one's own password on the users page signed this browser out")
	}
}

func TestTheBootstrapAdminIsSentToThePasswordPageUntilItChangesIt(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	_, pw, created, err := h.store.Bootstrap(ctx, "admin@ethhook.local")
	if err != nil || !created {
		t.Fatal(err, created)
	}
	c := h.client()
	c.get("/login")
	resp, body := c.post("/login", url.Values{"email": {"admin@ethhook.local"}, "password": {pw}, "next": {"/apps"}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	if loc := resp.Header.Get("Location"); loc != "/account/password?next=%2Fapps" {
		t.Fatalf("after sign-in: %q", loc)
	}
	for _, p := range []string{"/", "/apps", "/users"} {
		resp, body := c.get(p)
		wantStatus(t, resp, body, http.StatusSeeOther)
		if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "/account/password") {
			t.Fatalf("%s goes to %q", p, loc)
		}
	}
	resp, body = c.get("/account/password?next=%2Fapps")
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, `id="must-change"`) {
		t.Fatalf("password page does not say why:\n%s", body)
	}
	resp, body = c.post("/apps", url.Values{"name": {"x"}})
	wantStatus(t, resp, body, http.StatusForbidden)
	c.get("/account/password")
	resp, body = c.post("/account/password", url.Values{"current_password": {pw}, "password": {"a-chosen-password"}, "password_again": {"a-chosen-password"}, "next": {"/apps"}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	if loc := resp.Header.Get("Location"); loc != "/apps" {
		t.Fatalf("after the change: %q", loc)
	}
	resp, body = c.get("/apps")
	wantStatus(t, resp, body, http.StatusOK)
}

// postFrom posts the login form with extra headers.
func (c *client) postFrom(path string, hdr map[string]string, form url.Values) *http.Response {
	c.h.t.Helper()
	form.Set("_csrf", c.loginCSRF())
	req, _ := http.NewRequest(http.MethodPost, c.h.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.c.Do(req)
	if err != nil {
		c.h.t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func (c *client) loginCSRF() string {
	u, _ := url.Parse(c.h.srv.URL)
	for _, ck := range c.c.Jar.Cookies(u) {
		if ck.Name == loginCSRFCookie {
			return ck.Value
		}
	}
	c.h.t.Fatal("no login CSRF cookie")
	return ""
}

func TestUISignInLimitIgnoresForwardedForAndIsAudited(t *testing.T) {
	h := newHarnessWith(t, func(d *module.Deps, _ *Options) { d.Config.Admin.LoginRateLimit = 5 })
	h.user("admin@example.com", tenant.RoleAdmin)
	c := h.client()
	c.get("/login")
	for try := 0; ; try++ {
		// The limit counts in fixed minutes: start again if this run
		// straddled two (the socket address is always the test's own).
		if try > 0 {
			time.Sleep(time.Until(time.Now().Truncate(time.Minute).Add(time.Minute)) + 100*time.Millisecond)
		}
		before := time.Now().Unix() / 60
		var codes []int
		for i := 0; i < 7; i++ {
			r := c.postFrom("/login", map[string]string{"X-Forwarded-For": fmt.Sprintf("203.0.113.%d", i), "X-Real-IP": fmt.Sprintf("198.51.100.%d", i)},
				url.Values{"email": {fmt.Sprintf("nobody%d@example.com", i)}, "password": {"wrong password!"}})
			codes = append(codes, r.StatusCode)
		}
		if time.Now().Unix()/60 != before && try < 2 {
			continue
		}
		if codes[4] != http.StatusUnauthorized || codes[5] != http.StatusTooManyRequests || codes[6] != http.StatusTooManyRequests {
			t.Fatalf("codes %v: want five 401s, then 429 whatever X-Forwarded-For says", codes)
		}
		break
	}
	entries, _, err := h.store.ListAudit(context.Background(), hook.Operator, tenant.AuditFilter{Action: "auth.login_failed"}, "", 50)
	if err != nil || len(entries) < 5 {
		t.Fatalf("audit %+v %v: want the failed sign-ins", entries, err)
	}
	if d := string(entries[0].Details); !strings.Contains(d, `"via": "ui"`) && !strings.Contains(d, `"via":"ui"`) || !strings.Contains(d, "127.0.0.1") {
		t.Fatalf("audit details %s: want the socket address and via ui", d)
	}
}
