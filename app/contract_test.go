package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethhook/ethhook/internal/contract"
	"github.com/ethhook/ethhook/internal/testenv"
)

// TestRealWebhookBodiesMatchTheDocumentsWebhooksSection runs the whole
// pipeline on the embedded devnet, receives real log, batch and test
// webhooks, and the operational endpoint.rate_limited and
// endpoint.rate_limit_cleared of an endpoint held back by its rate limit,
// and validates each body against the webhooks section of the document
// the server serves. The schemas are open here (receivers must
// accept new fields), so a field another change adds passes, while a
// documented field that is missing, renamed or of another type fails.
func TestRealWebhookBodiesMatchTheDocumentsWebhooksSection(t *testing.T) {
	var mu sync.Mutex
	bodies := map[string][][]byte{}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var head struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(b, &head)
		mu.Lock()
		if len(bodies[head.Type]) < 20 {
			bodies[head.Type] = append(bodies[head.Type], b)
		}
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(receiver.Close)

	const password = "contract-admin-password"
	httpPort := freePort(t)
	clearMetricsEnv(t) // METRICS_PORT below, not make run's exported port
	for k, v := range map[string]string{
		"ETHHOOK_LOG_LEVEL":            "error",
		"ETHHOOK_DATABASE_URL":         testenv.PGURL(t),
		"ETHHOOK_HTTP_ADDR":            fmt.Sprintf("127.0.0.1:%d", httpPort),
		"METRICS_PORT":                 "0",
		"ETHHOOK_SECRET_KEY":           testSecretKey,
		"ETHHOOK_JWT_SECRET":           testJWTSecret,
		"ETHHOOK_DELIVERY_ALLOW_CIDRS": "127.0.0.0/8",
	} {
		t.Setenv(k, v)
	}
	_, prefix := testenv.Redis(t)
	t.Setenv("ETHHOOK_REDIS_PREFIX", prefix)
	if out, err := run(t, nil, "migrate", "up"); err != nil {
		t.Fatalf("migrate up: %v\n%s", err, out)
	}
	root := NewRoot()
	var out bytes.Buffer
	root.SetIn(strings.NewReader(password + "\n"))
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"user", "create", "--email", "admin@ethhook.local", "--admin"})
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("user create: %v\n%s", err, out.String())
	}
	startServe(t, httpPort, "serve", "--all")

	base := fmt.Sprintf("http://127.0.0.1:%d/api/v1", httpPort)
	client := &http.Client{Timeout: 10 * time.Second}
	call := func(method, path, token string, body any, into any) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, base+path, rd)
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		if into != nil {
			if err := json.Unmarshal(b, into); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
		}
	}
	var doc json.RawMessage
	call("GET", "/openapi.json", "", nil, &doc)
	d, err := contract.Load(doc, contract.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var login struct{ Token string }
	call("POST", "/auth/login", "", map[string]any{"email": "admin@ethhook.local", "password": password}, &login)
	var app struct{ ID string }
	call("POST", "/applications", login.Token, map[string]any{"name": "contract"}, &app)
	var single, batched struct{ ID string }
	call("POST", "/applications/"+app.ID+"/endpoints", login.Token, map[string]any{"url": receiver.URL + "/single",
		"filter": map[string]any{"chains": []int{31337}, "events": []string{"Transfer(address,address,uint256)"}}}, &single)
	call("POST", "/applications/"+app.ID+"/endpoints", login.Token, map[string]any{"url": receiver.URL + "/batch",
		"filter": map[string]any{"chains": []int{31337}}, "batch_max": 3, "batch_wait_ms": 200}, &batched)
	call("POST", "/applications/"+app.ID+"/endpoints/"+single.ID+"/test", login.Token, nil, nil)
	// Operational webhooks: an endpoint held back by its rate limit (1/s
	// against the devnet's Transfers) starts an endpoint.rate_limited
	// episode; raising its limit ends it (endpoint.rate_limit_cleared).
	var limited struct{ ID string }
	call("POST", "/applications/"+app.ID+"/endpoints", login.Token, map[string]any{"url": receiver.URL + "/ops",
		"ops_events": []string{"endpoint.rate_limited", "endpoint.rate_limit_cleared"}}, nil)
	call("POST", "/applications/"+app.ID+"/endpoints", login.Token, map[string]any{"url": receiver.URL + "/limited", "rate_limit": 1,
		"filter": map[string]any{"chains": []int{31337}, "events": []string{"Transfer(address,address,uint256)"}}}, &limited)
	raised := false

	deadline := time.Now().Add(90 * time.Second)
	for {
		mu.Lock()
		done := len(bodies["log"]) >= 3 && len(bodies["batch"]) >= 1 && len(bodies["test"]) >= 1 &&
			len(bodies["endpoint.rate_limited"]) >= 1 && len(bodies["endpoint.rate_limit_cleared"]) >= 1
		raise := !raised && len(bodies["endpoint.rate_limited"]) >= 1
		mu.Unlock()
		if done {
			break
		}
		if raise {
			// Under way (1/s against ~12/s): the health answer shows it.
			var health struct {
				RateLimited *struct {
					RateLimit int   `json:"rate_limit"`
					Backlog   int64 `json:"backlog"`
				} `json:"rate_limited"`
			}
			call("GET", "/applications/"+app.ID+"/endpoints/"+limited.ID+"/health", login.Token, nil, &health)
			if r := health.RateLimited; r == nil || r.RateLimit != 1 || r.Backlog < 1 {
				t.Fatalf("health of the endpoint held back: rate_limited %+v, want the limit 1 and a backlog", r)
			}
			call("PATCH", "/applications/"+app.ID+"/endpoints/"+limited.ID, login.Token, map[string]any{"rate_limit": 0}, nil)
			raised = true
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhooks received: %d log, %d batch, %d test, %d endpoint.rate_limited, %d endpoint.rate_limit_cleared", len(bodies["log"]), len(bodies["batch"]), len(bodies["test"]),
				len(bodies["endpoint.rate_limited"]), len(bodies["endpoint.rate_limit_cleared"]))
		}
		time.Sleep(200 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	checked := 0
	for typ, list := range bodies {
		for _, b := range list {
			if err := d.CheckWebhook(typ, b); err != nil {
				t.Error(err)
			}
			checked++
		}
	}
	// The documents' schemas tell the types apart: a log is not a batch.
	if err := d.CheckWebhook("batch", bodies["log"][0]); err == nil {
		t.Error("a log body validates as a batch")
	}
	t.Logf("%d webhook bodies valid against the document", checked)
}
