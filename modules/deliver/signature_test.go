package deliver

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/nodecheck"
	"github.com/ethhook/ethhook/modules/deliver/listen"
	"github.com/ethhook/ethhook/sign"
)

// An ed25519 endpoint that switched from HMAC an hour ago: every delivery
// carries a v1a signature by its whsk_ key and, for the overlap, a v1 by
// the old whsec_. The receiver is `ethhook listen`'s verifier holding only
// the whpk_ public key (401 on a bad signature), so a succeeded message
// is one it accepted; then Node's crypto verifies every received request
// independently, and rejects them tampered; the v1 still verifies with the
// old secret.
func TestEd25519EndpointDeliversV1aThatAReceiverAndNodeVerify(t *testing.T) {
	e := newEnv(t)
	app := e.app(t, "")
	oldHMAC, _ := sign.NewSecret()

	var mu sync.Mutex
	var reqs []received
	var verifier http.Handler // set below, once the key is known
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		reqs = append(reqs, received{header: r.Header.Clone(), body: body})
		mu.Unlock()
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		verifier.ServeHTTP(w, r)
	}))
	t.Cleanup(rc.Close)

	ep, priv := e.endpoint(t, app, rc.URL+"/hook", epOpt{signature: sign.SchemeEd25519, oldSecret: oldHMAC, oldExpires: time.Now().Add(time.Hour)})
	pub, err := sign.VerifyKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	lh, err := listen.New([]string{pub}, 200, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	verifier = lh

	var ids []string
	for i := 0; i < 3; i++ {
		id, _ := e.message(t, app, ep, "")
		ids = append(ids, id)
	}
	e.start(t)
	for _, id := range ids {
		e.waitState(t, id, hook.StateSucceeded)
	}

	mu.Lock()
	got := append([]received(nil), reqs...)
	mu.Unlock()
	if len(got) != 3 {
		t.Fatalf("receiver got %d requests, want 3", len(got))
	}
	var msgs []nodecheck.Msg
	for _, r := range got {
		sig := r.header.Get("webhook-signature")
		if f := strings.Fields(sig); len(f) != 2 || !strings.HasPrefix(f[0], "v1a,") || !strings.HasPrefix(f[1], "v1,") {
			t.Fatalf("webhook-signature %q: want the v1a of the current key, then the v1 of the old secret", sig)
		}
		if strings.Contains(strings.Join(headerValues(r.header), " "), sign.PrivateKeyPrefix) {
			t.Fatalf("a header carries the private key: %v", r.header)
		}
		if !verifyStandardWebhook(oldHMAC, r.header, r.body) {
			t.Fatalf("the old HMAC secret's v1 does not verify during the overlap")
		}
		m := nodecheck.Msg{PublicKey: pub, ID: r.header.Get("webhook-id"), Timestamp: r.header.Get("webhook-timestamp"), Signature: sig, Body: r.body}
		tampered := m
		tampered.Body = append(append([]byte(nil), r.body...), ' ')
		msgs = append(msgs, m, tampered)
	}
	res, err := nodecheck.VerifyV1a(context.Background(), msgs)
	if errors.Is(err, nodecheck.ErrNoNode) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if want := i%2 == 0; r.OK != want {
			t.Fatalf("delivery %d (tampered=%v): node says %+v", i/2, i%2 == 1, r)
		}
	}
}

func headerValues(h http.Header) []string {
	var out []string
	for _, v := range h {
		out = append(out, v...)
	}
	return out
}
