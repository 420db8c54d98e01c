package deliver

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/modules/deliver/ssrf"
	"github.com/ethhook/ethhook/sign"
)

// Go CPU per webhook on deliver's hot path, without Postgres or Redis
// (issue 12's 10,000-endpoint shape is CPU-bound): one attempt's POST
// (sign, headers, HTTP round trip to a local receiver, classify) and the
// encoding of its attempt row's headers.
//
//	go test -run '^$' -bench 'Post|AttemptHeaders' -benchmem ./modules/deliver/

func benchPostModule(b *testing.B) (*Module, *endpoint, *job) {
	b.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(srv.Close)
	dc := config.DefaultDelivery()
	m := &Module{cfg: dc, now: time.Now, userAgent: "ethhook/1.2.3"}
	m.client, m.follow = newClients(ssrf.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}), dc.ConnectTimeout, 16)
	secret, _ := sign.NewSecret()
	key, err := sign.NewSigner(secret)
	if err != nil {
		b.Fatal(err)
	}
	ep := &endpoint{id: "ep_1", url: srv.URL + "/hook", enabled: true, key: key,
		custom: customHeaders(map[string]string{"X-Tenant": "acme", "Authorization": "Bearer s3cret"})}
	payload := `{"id":"1:0x` + strings.Repeat("ab", 32) + `:12","type":"log","chain":{"id":1,"name":"eth"},"log":{"address":"0x` +
		strings.Repeat("ef", 20) + `","topics":["0x` + strings.Repeat("12", 32) + `"],"data":"0x` + strings.Repeat("00", 64) + `","index":12}}`
	j := &job{id: "msg_1", endpointID: ep.id, webhookID: "1:0x" + strings.Repeat("ab", 32) + ":12", payload: []byte(payload)}
	return m, ep, j
}

// BenchmarkPost: one attempt, each in a goroutine of its own as a lane
// starts it.
func BenchmarkPost(b *testing.B) {
	m, ep, j := benchPostModule(b)
	ctx := context.Background()
	b.ReportAllocs()
	done := make(chan attempt)
	cpu0 := processCPU()
	for b.Loop() {
		go func() { done <- m.post(ctx, ep, j) }()
		if a := <-done; a.status != http.StatusNoContent {
			b.Fatalf("attempt %+v", a)
		}
	}
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkPostOnSenders: the same attempts, run as lanes run them now,
// on senders (goroutines that wait for the next attempt).
func BenchmarkPostOnSenders(b *testing.B) {
	m, ep, j := benchPostModule(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var s senders
	b.ReportAllocs()
	done := make(chan attempt)
	cpu0 := processCPU()
	for b.Loop() {
		s.run(ctx, func() { done <- m.post(ctx, ep, j) })
		if a := <-done; a.status != http.StatusNoContent {
			b.Fatalf("attempt %+v", a)
		}
	}
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkAttemptHeaders: the request and response headers of one
// attempt as the attempt row stores them.
func BenchmarkAttemptHeaders(b *testing.B) {
	req := requestHeaders(customHeaders(map[string]string{"X-Tenant": "acme"}), "ethhook/1.2.3",
		"1:0x"+strings.Repeat("ab", 32)+":12", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", "1700000000")
	resp := storedHeaders(http.Header{"Content-Length": {"0"}, "Server": {"nginx"}})
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		buf = appendHeadersJSON(buf[:0], req)
		q := string(buf)
		buf = appendHeadersJSON(buf[:0], resp)
		r := string(buf)
		if len(q) == 0 || len(r) == 0 {
			b.Fatal("empty")
		}
	}
}
