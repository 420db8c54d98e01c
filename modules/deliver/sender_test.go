package deliver

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/modules/deliver/ssrf"
)

// TestAttemptsWithoutRedirectsFailAsTheHTTPClientWouldSayIt: an attempt
// that follows no redirect goes straight to the transport; its errors read
// as http.Client's do (the method and URL, the scheme mismatch of an https
// URL answered in plain HTTP, the SSRF refusal), so the attempt log and its
// error classes are unchanged.
func TestAttemptsWithoutRedirectsFailAsTheHTTPClientWouldSayIt(t *testing.T) {
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	defer plain.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String() + "/hook"
	l.Close()
	dc := config.DefaultDelivery()
	allowed := &Module{}
	allowed.client, allowed.follow = newClients(ssrf.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}), time.Second, 4)
	guarded := &Module{}
	guarded.client, guarded.follow = newClients(ssrf.New(nil), dc.ConnectTimeout, 4)
	for _, c := range []struct {
		name string
		m    *Module
		url  string
	}{
		{"closed port", allowed, closed},
		{"https to plain HTTP", allowed, strings.Replace(plain.URL, "http:", "https:", 1) + "/hook?token=x"},
		{"ssrf", guarded, plain.URL + "/hook"},
	} {
		req := func() *http.Request {
			r, err := http.NewRequestWithContext(context.Background(), http.MethodPost, c.url, bytes.NewReader([]byte(`{}`)))
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		_, want := c.m.client.Do(req())
		_, got := c.m.do(req(), false)
		if want == nil || got == nil {
			t.Fatalf("%s: errors %v and %v, want both to fail", c.name, want, got)
		}
		wc, wt := classify(want)
		gc, gt := classify(got)
		if gc != wc || gt != wt {
			t.Fatalf("%s: attempt failed as %s %q, the HTTP client says %s %q", c.name, gc, gt, wc, wt)
		}
	}
	if resp, err := allowed.do(func() *http.Request {
		r, _ := http.NewRequest(http.MethodPost, plain.URL, bytes.NewReader([]byte(`{}`)))
		return r
	}(), false); err != nil || resp.StatusCode != 204 {
		t.Fatalf("plain attempt: %v %v", resp, err)
	}
}
