package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/tenant"
)

// loginFrom posts a login from the socket address remote, with extra
// request headers.
func (h *harness) loginFrom(remote string, hdr map[string]string, email, pw string) resp {
	h.t.Helper()
	body, _ := json.Marshal(loginRequest{Email: email, Password: pw})
	req := httptest.NewRequest("POST", "/api/v1/auth/login", bytes.NewReader(body))
	req.RemoteAddr = remote
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := serve(h, req)
	return resp{Code: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
}

// inOneWindow runs f(try) until one run starts and ends in the same
// one-minute limiter window (the limits count in fixed windows, so a run
// that straddles two sees its attempts split); f must use fresh addresses
// and accounts for each try. f returns what it found wrong with the
// limits rather than failing: a run that straddled a boundary is tried
// again whatever it found (its counts were split), and only a run within
// one window fails the test.
func inOneWindow(t *testing.T, f func(try int) error) {
	t.Helper()
	for try := 0; ; try++ {
		before := time.Now().Unix() / 60
		err := f(try)
		if time.Now().Unix()/60 == before {
			if err != nil {
				t.Fatal(err)
			}
			return
		}
		if try == 2 {
			t.Fatal("three runs straddled a minute boundary")
		}
	}
}

func TestLoginLimitIgnoresForwardedForFromAnUntrustedClient(t *testing.T) {
	h := newHarness(t, func(c *config.Admin) { c.LoginRateLimit = 20 })
	inOneWindow(t, func(try int) error { return loginLimitIgnoresForwardedFor(t, h, try) })
}

func loginLimitIgnoresForwardedFor(t *testing.T, h *harness, try int) error {
	limited := 0
	for i := 0; i < 25; i++ {
		// A new address in every header, and a new email (so only the
		// per-address limit is in play).
		r := h.loginFrom(fmt.Sprintf("192.0.2.%d:4000", 100+try), map[string]string{"X-Forwarded-For": fmt.Sprintf("203.0.113.%d", i),
			"X-Real-IP": fmt.Sprintf("198.51.100.%d", i)}, fmt.Sprintf("guess%d-%d@example.com", try, i), "wrong-password")
		switch r.Code {
		case http.StatusUnauthorized:
		case http.StatusTooManyRequests:
			limited++
			if r.Header.Get("Retry-After") == "" || r.errCode(t).Error.Code != "rate_limited" {
				t.Fatalf("429 without Retry-After or code: %v %s", r.Header, r.Body)
			}
		default:
			t.Fatalf("attempt %d: %d %s", i+1, r.Code, r.Body)
		}
	}
	if limited != 5 {
		return fmt.Errorf("%d of 25 attempts limited, want 5: forwarded headers from an untrusted client must not pick the address", limited)
	}
	// Another socket address has its own budget.
	if r := h.loginFrom(fmt.Sprintf("192.0.2.%d:4000", 200+try), nil, "x@example.com", "wrong-password"); r.Code != 401 {
		return fmt.Errorf("another client: %d", r.Code)
	}
	return nil
}

func TestLoginLimitHonoursForwardedForFromATrustedProxy(t *testing.T) {
	h := newHarness(t, func(c *config.Admin) {
		c.LoginRateLimit = 3
		c.TrustedProxies = []string{"192.0.2.0/24"}
	})
	inOneWindow(t, func(try int) error {
		from := func(client string, i int) int {
			return h.loginFrom("192.0.2.9:4000", map[string]string{"X-Forwarded-For": client}, fmt.Sprintf("u%d-%d@example.com", try, i), "wrong-password").Code
		}
		client := fmt.Sprintf("203.0.113.%d", 10+2*try)
		for i := 0; i < 3; i++ {
			if c := from(client, i); c != 401 {
				return fmt.Errorf("attempt %d: %d", i, c)
			}
		}
		if c := from(client, 3); c != 429 {
			return fmt.Errorf("4th attempt of a forwarded client: %d, want 429", c)
		}
		// The same client as an IPv4-mapped IPv6 address is the same client.
		if c := from("::ffff:"+client, 4); c != 429 {
			return fmt.Errorf("mapped address: %d, want 429", c)
		}
		// Another client behind the same proxy is not limited.
		if c := from(fmt.Sprintf("203.0.113.%d", 11+2*try), 5); c != 401 {
			return fmt.Errorf("another forwarded client: %d, want 401", c)
		}
		return nil
	})
}

func TestAccountLoginLimitHoldsAcrossAddresses(t *testing.T) {
	h := newHarness(t, func(c *config.Admin) { c.LoginAccountRateLimit = 10 })
	inOneWindow(t, func(try int) error {
		email := fmt.Sprintf("acct%d@example.com", try)
		if _, err := h.store.CreateUser(context.Background(), hook.Operator, tenant.NewUser{Email: email, Password: "acct-password"}); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 10; i++ {
			if r := h.loginFrom(fmt.Sprintf("198.51.100.%d:4000", i), nil, email, "wrong-password"); r.Code != 401 {
				return fmt.Errorf("attempt %d: %d %s", i, r.Code, r.Body)
			}
		}
		// The 11th, from yet another address and even with the right
		// password (and the email written differently), is refused before
		// it is checked.
		r := h.loginFrom("198.51.100.200:4000", nil, " "+strings.ToUpper(email), "acct-password")
		if r.Code != 429 || r.errCode(t).Error.Code != "rate_limited" || !strings.Contains(r.errCode(t).Error.Message, "account") {
			return fmt.Errorf("11th attempt: %d %s, want 429 for the account", r.Code, r.Body)
		}
		return nil
	})
	// Other accounts are unaffected.
	h.login("root@example.com", "root-password")
}

func TestAHugeForwardedForNeverBecomesALargeRedisKey(t *testing.T) {
	for _, trusted := range [][]string{nil, {"192.0.2.0/24"}} {
		h := newHarness(t, func(c *config.Admin) {
			c.LoginRateLimit = 20
			c.TrustedProxies = trusted
		})
		huge := strings.Repeat("1.2.3.4,", 110000) // ~900 KB
		for i := 0; i < 3; i++ {
			r := h.loginFrom("192.0.2.1:4000", map[string]string{"X-Forwarded-For": huge + fmt.Sprint(i), "X-Real-IP": huge},
				"root@example.com", "wrong-password")
			if r.Code != 401 {
				t.Fatalf("trusted %v: %d %s", trusted, r.Code, r.Body)
			}
		}
		ctx := context.Background()
		rdb := h.m.rdb
		keys, err := rdb.Do(ctx, rdb.B().Keys().Pattern(h.keys.Prefix+"*").Build()).AsStrSlice()
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) == 0 {
			t.Fatal("no limiter keys written")
		}
		for _, k := range keys {
			if len(k) > 200 {
				t.Fatalf("trusted %v: a %d-byte Redis key: %.80s...", trusted, len(k), k)
			}
		}
	}
}

func TestPasswordChangeNeedsTheCurrentPasswordAndRevokesOldTokens(t *testing.T) {
	h := newHarness(t)
	old, _, _ := h.member("m@example.com")
	other := h.login("m@example.com", "member-password") // a second session
	var me whoami
	h.must(200, "GET", "/api/v1/auth/me", old, nil).json(t, &me)

	// Without, or with a wrong, current password: refused, nothing changes.
	for _, body := range []any{
		map[string]string{"new_password": "new-password-1"},
		passwordChange{CurrentPassword: "not-my-password", NewPassword: "new-password-1"},
	} {
		if e := h.must(400, "POST", "/api/v1/auth/password", old, body).errCode(t); e.Error.Fields["current_password"] == "" {
			t.Fatalf("no current_password error: %+v", e)
		}
	}
	if e := h.must(400, "PATCH", "/api/v1/users/"+me.ID, old, map[string]any{"password": "new-password-1"}).errCode(t); e.Error.Fields["current_password"] == "" {
		t.Fatalf("PATCH own password without the current one: %+v", e)
	}
	if e := h.must(400, "POST", "/api/v1/auth/password", old, passwordChange{CurrentPassword: "member-password", NewPassword: "short"}).errCode(t); e.Error.Fields["new_password"] == "" {
		t.Fatalf("short new password not named: %+v", e)
	}
	h.must(200, "GET", "/api/v1/auth/me", old, nil)

	var changed loginResponse
	h.must(200, "POST", "/api/v1/auth/password", old, passwordChange{CurrentPassword: "member-password", NewPassword: "new-password-1"}).json(t, &changed)
	for _, tok := range []string{old, other} {
		if e := h.must(401, "GET", "/api/v1/auth/me", tok, nil).errCode(t); e.Error.Code != "unauthorized" {
			t.Fatalf("old token after a password change: %+v", e)
		}
	}
	h.must(200, "GET", "/api/v1/auth/me", changed.Token, nil)
	h.must(401, "POST", "/api/v1/auth/login", "", loginRequest{Email: "m@example.com", Password: "member-password"})

	// An admin resets it without the current one; the member's tokens die.
	h.must(200, "PATCH", "/api/v1/users/"+me.ID, h.admin, map[string]any{"password": "reset-password"})
	h.must(401, "GET", "/api/v1/auth/me", changed.Token, nil)
	tok := h.login("m@example.com", "reset-password")
	// A role change revokes too.
	h.must(200, "PATCH", "/api/v1/users/"+me.ID, h.admin, map[string]any{"role": "admin"})
	h.must(401, "GET", "/api/v1/auth/me", tok, nil)

	// The admin's own change through PATCH needs the current password too.
	var root whoami
	h.must(200, "GET", "/api/v1/auth/me", h.admin, nil).json(t, &root)
	h.must(400, "PATCH", "/api/v1/users/"+root.ID, h.admin, map[string]any{"password": "root-password-2"})
	h.must(200, "PATCH", "/api/v1/users/"+root.ID, h.admin, map[string]any{"password": "root-password-2", "current_password": "root-password"})
	h.must(401, "GET", "/api/v1/auth/me", h.admin, nil)
}

func TestLogoutRevokesEveryTokenOfTheCaller(t *testing.T) {
	h := newHarness(t)
	a, _, key := h.member("m@example.com")
	b := h.login("m@example.com", "member-password")
	h.must(204, "POST", "/api/v1/auth/logout", a, nil)
	h.must(401, "GET", "/api/v1/auth/me", a, nil)
	h.must(401, "GET", "/api/v1/auth/me", b, nil)
	h.must(401, "POST", "/api/v1/auth/logout", a, nil)
	// Logging in again works; the admin was not logged out.
	h.must(200, "GET", "/api/v1/auth/me", h.login("m@example.com", "member-password"), nil)
	h.must(200, "GET", "/api/v1/auth/me", h.admin, nil)
	// Keys have no session: they are revoked by DELETE, not logout.
	h.must(403, "POST", "/api/v1/auth/logout", key, nil)
	h.must(403, "POST", "/api/v1/auth/password", key, passwordChange{CurrentPassword: "x", NewPassword: "yyyyyyyyyyyy"})
	h.must(200, "GET", "/api/v1/auth/me", key, nil)
}

func TestAPIKeysCannotManageKeysAndDieWithTheirCreatorsAccess(t *testing.T) {
	h := newHarness(t)
	tok, appID, key := h.member("m@example.com")
	var me whoami
	h.must(200, "GET", "/api/v1/auth/me", tok, nil).json(t, &me)
	var keys List[keyView]
	h.must(200, "GET", "/api/v1/applications/"+appID+"/api-keys", tok, nil).json(t, &keys)
	if len(keys.Data) != 1 || keys.Data[0].CreatedBy != me.ID {
		t.Fatalf("keys %+v: want one, created by %s", keys.Data, me.ID)
	}
	e := h.must(403, "POST", "/api/v1/applications/"+appID+"/api-keys", key, keyCreate{Name: "minted"}).errCode(t)
	if e.Error.Code != "forbidden" || !strings.Contains(e.Error.Message, "API keys cannot create or revoke API keys") {
		t.Fatalf("key minting a key: %+v", e)
	}
	h.must(403, "DELETE", "/api/v1/applications/"+appID+"/api-keys/"+keys.Data[0].ID, key, nil)
	h.must(200, "GET", "/api/v1/applications/"+appID, key, nil)

	// A second app and key of m; then m leaves the first app.
	var app2 appView
	h.must(201, "POST", "/api/v1/applications", tok, appCreate{Name: "second"}).json(t, &app2)
	var k2 keyCreated
	h.must(201, "POST", "/api/v1/applications/"+app2.ID+"/api-keys", tok, keyCreate{Name: "k2"}).json(t, &k2)
	var adminKey keyCreated
	h.must(201, "POST", "/api/v1/applications/"+appID+"/api-keys", h.admin, keyCreate{Name: "admin's"}).json(t, &adminKey)
	h.must(200, "PATCH", "/api/v1/users/"+me.ID, h.admin, map[string]any{"app_ids": []string{app2.ID}})
	h.must(401, "GET", "/api/v1/applications/"+appID, key, nil)
	h.must(200, "GET", "/api/v1/applications/"+app2.ID, k2.Key, nil)
	h.must(200, "GET", "/api/v1/applications/"+appID, adminKey.Key, nil)
	// Deleting m revokes the rest of m's keys.
	h.must(204, "DELETE", "/api/v1/users/"+me.ID, h.admin, nil)
	h.must(401, "GET", "/api/v1/applications/"+app2.ID, k2.Key, nil)
	h.must(200, "GET", "/api/v1/applications/"+appID, adminKey.Key, nil)
}

func TestTheBootstrapAdminMustChangeItsPasswordBeforeAnythingElse(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	if _, err := h.store.Pool().Exec(ctx, `DELETE FROM users`); err != nil {
		t.Fatal(err)
	}
	u, pw, created, err := h.store.Bootstrap(ctx, config.DefaultAdmin().BootstrapEmail)
	if err != nil || !created {
		t.Fatal(err, created)
	}
	var login loginResponse
	h.must(200, "POST", "/api/v1/auth/login", "", loginRequest{Email: u.Email, Password: pw}).json(t, &login)
	if !login.User.MustChangePassword {
		t.Fatalf("login answer %+v: want must_change_password", login.User)
	}
	tok := login.Token
	for _, c := range [][2]string{{"GET", "/api/v1/applications"}, {"GET", "/api/v1/users"}, {"GET", "/api/v1/users/" + u.ID}, {"GET", "/api/v1/audit-log"}} {
		r := h.must(403, c[0], c[1], tok, nil)
		if e := r.errCode(t); e.Error.Code != "password_change_required" || !strings.Contains(e.Error.Message, "/auth/password") {
			t.Fatalf("%s %s: %+v", c[0], c[1], e)
		}
	}
	h.must(403, "POST", "/api/v1/applications", tok, appCreate{Name: "x"})
	var me whoami
	h.must(200, "GET", "/api/v1/auth/me", tok, nil).json(t, &me)
	if me.User == nil || !me.User.MustChangePassword {
		t.Fatalf("whoami %+v", me)
	}
	var changed loginResponse
	h.must(200, "POST", "/api/v1/auth/password", tok, passwordChange{CurrentPassword: pw, NewPassword: "a-chosen-password"}).json(t, &changed)
	if changed.User.MustChangePassword {
		t.Fatal("still must change")
	}
	h.must(200, "GET", "/api/v1/applications", changed.Token, nil)
	h.must(200, "GET", "/api/v1/users", changed.Token, nil)
}

func TestSignInsAndFailedSignInsAreAuditedWithTheAddressNeverThePassword(t *testing.T) {
	h := newHarness(t)
	h.loginFrom("198.51.100.7:4000", nil, "root@example.com", "root-password")
	h.loginFrom("198.51.100.7:4000", nil, "root@example.com", "wrong-password-xyz")
	h.loginFrom("198.51.100.8:4000", nil, "nobody@example.com", "wrong-password-abc")
	var root whoami
	h.must(200, "GET", "/api/v1/auth/me", h.admin, nil).json(t, &root)
	r := h.must(200, "GET", "/api/v1/audit-log?action=auth.", h.admin, nil)
	var audit List[auditView]
	r.json(t, &audit)
	if strings.Contains(string(r.Body), "wrong-password") || strings.Contains(string(r.Body), "root-password") {
		t.Fatalf("audit log holds a password: %s", r.Body)
	}
	type seen struct{ action, resource, ip string }
	var got []seen
	for _, e := range audit.Data {
		var d map[string]string
		_ = json.Unmarshal(e.Details, &d)
		got = append(got, seen{e.Action, e.ResourceID, d["ip"]})
	}
	want := []seen{
		{"auth.login_failed", "", "198.51.100.8"},
		{"auth.login_failed", root.ID, "198.51.100.7"},
		{"auth.login", root.ID, "198.51.100.7"},
	}
	if len(got) < len(want) {
		t.Fatalf("audit %+v, want at least %+v", got, want)
	}
	for i, w := range want {
		if got[i] != w {
			t.Fatalf("audit %+v, want %+v first", got, want)
		}
	}
	// Members do not see them: sign-ins belong to no application.
	tok, _, _ := h.member("m@example.com")
	var mine List[auditView]
	h.must(200, "GET", "/api/v1/audit-log?action=auth.", tok, nil).json(t, &mine)
	if len(mine.Data) != 0 {
		t.Fatalf("member sees sign-ins: %+v", mine.Data)
	}
}

func TestTooManyPasswordChecksAtOnceIsA503NotA500(t *testing.T) {
	ae := toAPIError(fmt.Errorf("create user: %w", tenant.ErrBusy))
	if ae == nil || ae.Status != http.StatusServiceUnavailable || ae.Code != "busy" || ae.RetryAfter < 1 {
		t.Fatalf("ErrBusy answers %+v, want 503 busy with Retry-After", ae)
	}
}
