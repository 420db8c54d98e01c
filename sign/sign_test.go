package sign

import (
	"strings"
	"testing"
	"time"
)

// The Standard Webhooks specification's published test vector.
func TestSignatureMatchesStandardWebhooksVector(t *testing.T) {
	key, err := Key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := Signature(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("signature = %s, want %s", got, want)
	}
}

func TestVerifyAcceptsEitherRotatedSignatureAndRejectsStaleTimestamp(t *testing.T) {
	s1, _ := NewSecret()
	s2, _ := NewSecret()
	k1, _ := Key(s1)
	k2, _ := Key(s2)
	now := time.Unix(1700000000, 0)
	body := []byte(`{"a":1}`)
	h := Header([][]byte{k1, k2}, "id1", now.Unix(), body)
	if len(strings.Fields(h)) != 2 {
		t.Fatalf("header %q has not two signatures", h)
	}
	for _, k := range [][]byte{k1, k2} {
		if err := Verify(k, "id1", "1700000000", h, body, now, 5*time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if err := Verify(k1, "id1", "1700000000", h, []byte(`{"a":2}`), now, 5*time.Minute); err != ErrNoMatch {
		t.Fatalf("tampered body: %v", err)
	}
	if err := Verify(k1, "id1", "1700000000", h, body, now.Add(10*time.Minute), 5*time.Minute); err != ErrTimestamp {
		t.Fatalf("stale timestamp: %v", err)
	}
	if _, err := Key("whsec_c2hvcnQ="); err == nil {
		t.Fatal("5-byte secret accepted")
	}
}
