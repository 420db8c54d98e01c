package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/contract"
	"github.com/ethhook/ethhook/internal/module"
	"github.com/ethhook/ethhook/internal/testenv"
	"github.com/ethhook/ethhook/seal"
	"github.com/ethhook/ethhook/tenant"
)

type harness struct {
	t     testing.TB
	m     *Module
	reg   *prometheus.Registry
	store *tenant.Store
	keys  hook.Keys
	admin string // admin JWT
	// contract is the served OpenAPI document: every answer do gets from
	// a documented operation is checked against it.
	contract *contract.Doc
}

func testConfig() config.Admin {
	c := config.DefaultAdmin()
	c.JWTSecret = strings.Repeat("s", 32)
	c.RateLimit = 0
	c.LoginRateLimit = 0
	return c
}

func newHarness(t testing.TB, mod ...func(*config.Admin)) *harness {
	t.Helper()
	pool := testenv.PG(t)
	rdb, prefix := testenv.Redis(t)
	cfg := testConfig()
	for _, f := range mod {
		f(&cfg)
	}
	reg := prometheus.NewRegistry()
	keys := hook.Keys{Prefix: prefix}
	box, err := seal.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(module.Deps{Config: config.Config{Admin: cfg, Redis: config.Redis{Prefix: prefix},
		Chains: []config.Chain{{Name: "devnet", ID: config.DevnetChainID}, {Name: "eth", ID: 1}}},
		Pool: pool, Redis: rdb, Log: nil, Registerer: reg, Box: box}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, m: m, reg: reg, store: m.Store(), keys: keys}
	doc, err := json.Marshal(m.openapi)
	if err != nil {
		t.Fatal(err)
	}
	if h.contract, err = contract.Load(doc, contract.Options{Closed: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.CreateUser(context.Background(), hook.Operator, tenant.NewUser{Email: "root@example.com", Password: "root-password", Role: tenant.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	h.admin = h.login("root@example.com", "root-password")
	return h
}

type resp struct {
	Code   int
	Header http.Header
	Body   []byte
}

func (r resp) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

func (r resp) errCode(t testing.TB) ErrorBody {
	t.Helper()
	var e ErrorBody
	if err := json.Unmarshal(r.Body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("not an error body (%d): %s", r.Code, r.Body)
	}
	return e
}

// do sends a request; body may be nil, a string (sent raw) or a value (JSON).
func (h *harness) do(method, path, token string, body any) resp {
	h.t.Helper()
	return h.doWith(method, path, token, body, nil)
}

// doWith is do with extra request headers.
func (h *harness) doWith(method, path, token string, body any, hdr map[string]string) resp {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req := httptest.NewRequest(method, path, rd)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req = req.WithContext(ctx)
	rec := httptest.NewRecorder()
	h.m.Handler().ServeHTTP(rec, req)
	h.checkContract(req, rec)
	return resp{Code: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
}

// checkContract validates an answer of a documented operation against the
// served document (undocumented paths, HEAD and the web UI are skipped).
func (h *harness) checkContract(req *http.Request, rec *httptest.ResponseRecorder) {
	h.t.Helper()
	if h.contract == nil || req.Method == http.MethodHead || rec.Code == http.StatusMethodNotAllowed {
		return
	}
	if id, _ := h.contract.Operation(req.Method, req.URL.Path); id == "" {
		return
	}
	if rec.Code == http.StatusNotFound && bytes.Contains(rec.Body.Bytes(), []byte("no such route")) {
		return
	}
	if err := h.contract.CheckResponse(req.Method, req.URL.Path, rec.Code, rec.Header(), rec.Body.Bytes()); err != nil {
		h.t.Errorf("contract: %v", err)
		return
	}
	id, _ := h.contract.Operation(req.Method, req.URL.Path)
	checkedOps.Store(id+" "+strconv.Itoa(rec.Code), true)
}

// must sends a request and fails unless the status is want.
func (h *harness) must(want int, method, path, token string, body any) resp {
	h.t.Helper()
	r := h.do(method, path, token, body)
	if r.Code != want {
		h.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Code, want, r.Body)
	}
	return r
}

func (h *harness) login(email, pw string) string {
	h.t.Helper()
	var out loginResponse
	h.must(200, "POST", "/api/v1/auth/login", "", loginRequest{Email: email, Password: pw}).json(h.t, &out)
	if out.Token == "" {
		h.t.Fatal("no token")
	}
	return out.Token
}

// member creates a member user with a fresh application and returns the
// user's token, the app id and an API key of that app.
func (h *harness) member(email string) (token, appID, key string) {
	h.t.Helper()
	var u userView
	h.must(201, "POST", "/api/v1/users", h.admin, userCreate{Email: email, Password: "member-password"}).json(h.t, &u)
	token = h.login(email, "member-password")
	var app appView
	h.must(201, "POST", "/api/v1/applications", token, appCreate{Name: "app of " + email}).json(h.t, &app)
	var k keyCreated
	h.must(201, "POST", "/api/v1/applications/"+app.ID+"/api-keys", token, keyCreate{Name: "k"}).json(h.t, &k)
	return token, app.ID, k.Key
}

func newRequest(method, path string) *http.Request {
	return httptest.NewRequest(method, path, nil)
}

func serve(h *harness, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.m.Handler().ServeHTTP(rec, req)
	return rec
}
