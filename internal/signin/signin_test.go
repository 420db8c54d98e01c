package signin

import (
	"context"
	"errors"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/testenv"
	"github.com/ethhook/ethhook/tenant"
)

func TestNormalizeGivesCanonicalAddressText(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":                  "192.0.2.1",
		" 192.0.2.1 ":                "192.0.2.1",
		"::ffff:192.0.2.1":           "192.0.2.1",
		"[2001:DB8:0:0:0:0:0:1]":     "2001:db8::1",
		"fe80::1%eth0":               "fe80::1",
		"":                           "unknown",
		"not an ip":                  "unknown",
		"1.2.3.4, 5.6.7.8":           "unknown",
		string(make([]byte, 100000)): "unknown",
	} {
		if got := Normalize(in); got != want {
			t.Errorf("Normalize(%.40q) = %q, want %q", in, got, want)
		}
	}
	if b := bucket("2001:db8:1:2:3:4:5:6"); b != "2001:db8:1:2::/64" {
		t.Errorf("IPv6 bucket %q", b)
	}
	if b := bucket("192.0.2.1"); b != "192.0.2.1" {
		t.Errorf("IPv4 bucket %q", b)
	}
}

func TestClientIPIgnoresForwardedHeadersUnlessFromATrustedProxy(t *testing.T) {
	ip := func(trusted []netip.Prefix, remote, xff string) string {
		e := echo.New()
		if trusted != nil {
			e.IPExtractor = IPExtractor(trusted)
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		r.Header.Set("X-Real-IP", "203.0.113.99")
		return ClientIP(e.NewContext(r, httptest.NewRecorder()))
	}
	proxy := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, tc := range []struct {
		name        string
		trusted     []netip.Prefix
		remote, xff string
		want        string
	}{
		{"no extractor: socket", nil, "192.0.2.1:1234", "203.0.113.7", "192.0.2.1"},
		{"no trusted proxy: socket", []netip.Prefix{}, "192.0.2.1:1234", "203.0.113.7", "192.0.2.1"},
		{"loopback is not trusted by default", []netip.Prefix{}, "127.0.0.1:1234", "203.0.113.7", "127.0.0.1"},
		{"untrusted peer: socket", proxy, "192.0.2.1:1234", "203.0.113.7", "192.0.2.1"},
		{"trusted proxy: forwarded", proxy, "10.1.2.3:1234", "203.0.113.7", "203.0.113.7"},
		{"trusted proxy: rightmost untrusted", proxy, "10.1.2.3:1234", "6.6.6.6, 203.0.113.7, 10.9.9.9", "203.0.113.7"},
		{"trusted proxy, garbage header: the proxy", proxy, "10.1.2.3:1234", "x" + string(make([]byte, 1000)), "10.1.2.3"},
		{"mapped address", proxy, "10.1.2.3:1234", "::ffff:203.0.113.7", "203.0.113.7"},
	} {
		if got := ip(tc.trusted, tc.remote, tc.xff); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestSuccessfulSignInsDoNotUseUpTheAccountsBudget(t *testing.T) {
	pool := testenv.PG(t)
	rdb, prefix := testenv.Redis(t)
	store := tenant.New(pool)
	ctx := context.Background()
	if _, err := store.CreateUser(ctx, hook.Operator, tenant.NewUser{Email: "a@example.com", Password: "0123456789"}); err != nil {
		t.Fatal(err)
	}
	g := New(store, rdb, hook.Keys{Prefix: prefix}, Config{AccountLimit: 2}, nil)
	try := func(pw string) error {
		_, err := g.SignIn(ctx, Attempt{Email: "A@example.com ", Password: pw, IP: "192.0.2.1", Via: "api"})
		return err
	}
	for i := 0; i < 5; i++ {
		if err := try("0123456789"); err != nil {
			t.Fatalf("sign-in %d: %v", i, err)
		}
	}
	for i := 0; i < 2; i++ {
		if err := try("wrong-password"); !errors.Is(err, tenant.ErrBadCredentials) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	var le *LimitError
	if err := try("0123456789"); !errors.As(err, &le) || !le.Account || le.RetryAfterSeconds() < 1 {
		t.Fatalf("after two failures: %v, want the account limit", err)
	}
	entries, _, err := store.ListAudit(ctx, hook.Operator, tenant.AuditFilter{Action: "auth."}, "", 50)
	if err != nil {
		t.Fatal(err)
	}
	logins, failed := 0, 0
	for _, e := range entries {
		switch e.Action {
		case "auth.login":
			logins++
		case "auth.login_failed":
			failed++
		}
	}
	if logins != 5 || failed != 2 {
		t.Fatalf("audit: %d logins, %d failures; want 5 and 2 (the refused attempt is not audited)", logins, failed)
	}
}
