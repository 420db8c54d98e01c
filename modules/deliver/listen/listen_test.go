package listen

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethhook/ethhook/sign"
)

func post(t *testing.T, h http.Handler, id string, ts int64, sig string, body string) int {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(body))
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", sig)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}

func TestListenVerifiesSignatureAndTimestampAndAnswersChosenStatus(t *testing.T) {
	secret, _ := sign.NewSecret()
	other, _ := sign.NewSecret()
	key, _ := sign.Key(secret)
	otherKey, _ := sign.Key(other)
	var out bytes.Buffer
	h, err := New([]string{secret}, 503, &out)
	if err != nil {
		t.Fatal(err)
	}
	body := `{"id":"1:0xab:0","type":"log"}`
	now := time.Now().Unix()
	if c := post(t, h, "msg1", now, sign.Header([][]byte{otherKey, key}, "msg1", now, []byte(body)), body); c != 503 {
		t.Fatalf("valid webhook (rotation, two signatures): %d, want the chosen 503", c)
	}
	if c := post(t, h, "msg1", now, sign.Header([][]byte{otherKey}, "msg1", now, []byte(body)), body); c != 401 {
		t.Fatalf("wrong secret: %d, want 401", c)
	}
	if c := post(t, h, "msg1", now, sign.Header([][]byte{key}, "msg1", now, []byte(body)), body+" "); c != 401 {
		t.Fatalf("altered body: %d, want 401", c)
	}
	old := now - 600
	if c := post(t, h, "msg1", old, sign.Header([][]byte{key}, "msg1", old, []byte(body)), body); c != 401 {
		t.Fatalf("stale timestamp: %d, want 401", c)
	}
	s := out.String()
	if !strings.Contains(s, "webhook-id=msg1") || !strings.Contains(s, `"type": "log"`) || strings.Count(s, "REJECTED") != 3 {
		t.Fatalf("output:\n%s", s)
	}
	if _, err := New(nil, 200, &out); err == nil {
		t.Fatalf("no secret must be refused")
	}
}

// Given the whpk_ public key of an ed25519 endpoint, listen verifies its
// v1a signatures (also next to a v1 one during a switch of scheme) and
// rejects those of another key pair; a whsk_ private key is refused.
func TestListenVerifiesV1aWithPublicKey(t *testing.T) {
	priv, _ := sign.NewKeyPair()
	other, _ := sign.NewKeyPair()
	hsec, _ := sign.NewSecret()
	pub, _ := sign.VerifyKey(priv)
	s, _ := sign.NewSigner(priv)
	os, _ := sign.NewSigner(other)
	hs, _ := sign.NewSigner(hsec)
	var out bytes.Buffer
	h, err := New([]string{pub}, 200, &out)
	if err != nil {
		t.Fatal(err)
	}
	body := `{"id":"1:0xab:0","type":"log"}`
	now := time.Now().Unix()
	if c := post(t, h, "msg1", now, sign.HeaderOf([]sign.Signer{hs, s}, "msg1", now, []byte(body)), body); c != 200 {
		t.Fatalf("valid v1a next to v1: %d\n%s", c, out.String())
	}
	if c := post(t, h, "msg1", now, sign.HeaderOf([]sign.Signer{os, hs}, "msg1", now, []byte(body)), body); c != 401 {
		t.Fatalf("other key pair: %d, want 401", c)
	}
	if c := post(t, h, "msg1", now, sign.HeaderOf([]sign.Signer{s}, "msg1", now, []byte(body)), body+" "); c != 401 {
		t.Fatalf("altered body: %d, want 401", c)
	}
	if _, err := New([]string{priv}, 200, &out); err == nil || !strings.Contains(err.Error(), "whpk_") {
		t.Fatalf("private key accepted: %v", err)
	}
}
