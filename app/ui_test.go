package app

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ethhook/ethhook/internal/testenv"
)

// TestServeAdminServesTheWebUI runs `serve --modules=admin` in-process and
// checks the web UI is mounted next to the API: the dashboard sends an
// anonymous visitor to the sign-in page, which is HTML.
func TestServeAdminServesTheWebUI(t *testing.T) {
	httpPort := freePort(t)
	clearMetricsEnv(t) // METRICS_PORT below, not make run's exported port
	for k, v := range map[string]string{
		"ETHHOOK_LOG_LEVEL":    "error",
		"ETHHOOK_DATABASE_URL": testenv.PGURL(t),
		"ETHHOOK_HTTP_ADDR":    fmt.Sprintf("127.0.0.1:%d", httpPort),
		"METRICS_PORT":         "0",
		"ETHHOOK_SECRET_KEY":   testSecretKey,
		"ETHHOOK_JWT_SECRET":   testJWTSecret,
	} {
		t.Setenv(k, v)
	}
	_, prefix := testenv.Redis(t)
	t.Setenv("ETHHOOK_REDIS_PREFIX", prefix)
	startServe(t, httpPort, "serve", "--modules=admin")

	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	client := &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) (*http.Response, string, error) {
		resp, err := client.Get(base + path)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b), nil
	}

	resp, body, err := get("/")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?next=%2F" {
		t.Fatalf("GET / = %d, Location %q, want 303 to /login?next=%%2F (is mountUI called in the admin module spec?)\n%s",
			resp.StatusCode, resp.Header.Get("Location"), body)
	}
	resp, body, err = get("/login")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(body, `<form method="post" action="/login">`) || !strings.Contains(body, `id="password"`) {
		t.Fatalf("GET /login = %d %s, want the HTML sign-in form:\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if resp, _, err := get("/static/htmx.min.js"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /static/htmx.min.js: %v %v", resp, err)
	}
	// The API keeps its own JSON answers next to the UI.
	if resp, body, err := get("/api/v1/nope"); err != nil || resp.StatusCode != http.StatusNotFound || !strings.Contains(body, `"error"`) {
		t.Fatalf("GET /api/v1/nope: %v %q %v", resp, body, err)
	}
}

func TestUICookiesAreSecureUnlessListeningOnLoopbackOnly(t *testing.T) {
	for addr, want := range map[string]bool{
		":8080": true, "0.0.0.0:8080": true, "[::]:8080": true, "10.1.2.3:8080": true, "ethhook.example.com:443": true,
		"127.0.0.1:8080": false, "127.0.0.2:80": false, "[::1]:8080": false, "localhost:8080": false, "LOCALHOST:1": false,
		"garbage": true,
	} {
		if got := secureCookies(addr); got != want {
			t.Errorf("secureCookies(%q) = %v, want %v", addr, got, want)
		}
	}
}
