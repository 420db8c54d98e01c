package ui

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/module"
	"github.com/ethhook/ethhook/internal/testenv"
	"github.com/ethhook/ethhook/tenant"
	"go.uber.org/zap/zaptest"
)

// harness is a UI on a fresh database and Redis prefix, served by httptest.
type harness struct {
	t     *testing.T
	ui    *UI
	store *tenant.Store
	srv   *httptest.Server
	keys  hook.Keys
}

const testPassword = "correct horse battery"

func newHarness(t *testing.T) *harness { return newHarnessWith(t, nil) }

// newHarnessWith lets more set Deps and Options (endpoint and message
// services) before the UI is built; d has the harness's pool, Redis client
// and key prefix.
func newHarnessWith(t *testing.T, more func(d *module.Deps, o *Options)) *harness {
	t.Helper()
	pool := testenv.PG(t)
	rdb, prefix := testenv.Redis(t)
	store := tenant.New(pool)
	keys := hook.Keys{Prefix: prefix}
	ch, _ := config.Builtin("devnet")
	d := module.Deps{Config: config.Config{Redis: config.Redis{Prefix: prefix}, Chains: []config.Chain{ch},
		Admin: config.Admin{LoginRateLimit: 1000}}, Pool: pool, Redis: rdb, Log: zaptest.NewLogger(t)}
	o := Options{Tenant: store}
	if more != nil {
		more(&d, &o)
	}
	u, err := New(d, o)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, ui: u, store: store, keys: keys}
	h.srv = httptest.NewServer(u.Handler())
	t.Cleanup(h.srv.Close)
	return h
}

func (h *harness) user(email, role string, apps ...string) tenant.User {
	h.t.Helper()
	u, err := h.store.CreateUser(context.Background(), hook.Operator, tenant.NewUser{Email: email, Password: testPassword, Role: role, AppIDs: apps})
	if err != nil {
		h.t.Fatal(err)
	}
	return u
}

func (h *harness) app(name string) tenant.Application {
	h.t.Helper()
	a, err := h.store.CreateApplication(context.Background(), hook.Operator, name, "")
	if err != nil {
		h.t.Fatal(err)
	}
	return a
}

// client is a browser-like HTTP client with a cookie jar that does not
// follow redirects, so tests see them.
type client struct {
	h    *harness
	c    *http.Client
	csrf string
}

func (h *harness) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{h: h, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfRe = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

func (c *client) get(path string) (*http.Response, string) {
	c.h.t.Helper()
	resp, err := c.c.Get(c.h.srv.URL + path)
	if err != nil {
		c.h.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if m := csrfRe.FindStringSubmatch(string(b)); m != nil {
		c.csrf = m[1]
	}
	return resp, string(b)
}

// post submits a form with the last seen CSRF token unless form sets _csrf.
func (c *client) post(path string, form url.Values) (*http.Response, string) {
	c.h.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["_csrf"]; !ok {
		form.Set("_csrf", c.csrf)
	}
	resp, err := c.c.Post(c.h.srv.URL+path, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		c.h.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if m := csrfRe.FindStringSubmatch(string(b)); m != nil {
		c.csrf = m[1]
	}
	return resp, string(b)
}

func (c *client) login(email string) {
	c.h.t.Helper()
	c.get("/login")
	resp, body := c.post("/login", url.Values{"email": {email}, "password": {testPassword}})
	if resp.StatusCode != http.StatusSeeOther {
		c.h.t.Fatalf("login %s: status %d: %s", email, resp.StatusCode, body)
	}
	c.get("/") // picks up the session's CSRF token
}

func wantStatus(t *testing.T, resp *http.Response, body string, want int) {
	t.Helper()
	if resp.StatusCode != want {
		if len(body) > 2000 {
			body = body[:2000]
		}
		t.Fatalf("%s %s: status %d, want %d; body:\n%s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, want, body)
	}
}
