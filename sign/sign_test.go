package sign

import (
	"fmt"
	"strings"
	"sync"
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

// TestSignerReusesItsHMACWithoutCarryingStateOver: a Signer keeps its
// keyed HMAC states for reuse; every signature, from any goroutine, in any
// order, of any id length, equals a fresh Signature, the official vector
// included, and during a rotation both secrets sign.
func TestSignerReusesItsHMACWithoutCarryingStateOver(t *testing.T) {
	const vector = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	s, err := NewSigner(vector)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if got := s.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`)); got != "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" {
			t.Fatalf("signature = %s, want the Standard Webhooks vector's", got)
		}
	}
	key, _ := Key(vector)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				id := fmt.Sprintf("1:0x%x:%d", g, i) + strings.Repeat("x", (g*37+i)%300)
				body := []byte(strings.Repeat("b", (g*131+i*7)%2000))
				if got, want := s.Sign(id, int64(1700000000+i), body), Signature(key, id, int64(1700000000+i), body); got != want {
					errs <- fmt.Sprintf("goroutine %d signature %d = %s, want %s", g, i, got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	other, _ := NewSecret()
	o, _ := NewSigner(other)
	now := time.Unix(1700000000, 0)
	body := []byte(`{"a":1}`)
	h := HeaderOf([]Signer{s, o}, "id1", now.Unix(), body)
	for _, sec := range []string{vector, other} {
		v, _ := NewVerifier(sec)
		if err := v.Verify("id1", "1700000000", h, body, now, 5*time.Minute); err != nil {
			t.Fatalf("rotation header %q: %v", h, err)
		}
	}
	if one := HeaderOf([]Signer{s}, "id1", now.Unix(), body); one != strings.Fields(h)[0] {
		t.Fatalf("one signer's header %q, want %q", one, strings.Fields(h)[0])
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

// BenchmarkHeaderOf: the webhook-signature header of one ~400-byte payload,
// with one secret and during a rotation (two).
//
//	go test -run '^$' -bench HeaderOf -benchmem ./sign/
func BenchmarkHeaderOf(b *testing.B) {
	body := []byte(`{"id":"1:0x` + strings.Repeat("ab", 32) + `:12","type":"log","chain":{"id":1,"name":"eth"},"log":{"address":"0x` +
		strings.Repeat("ef", 20) + `","topics":["0x` + strings.Repeat("12", 32) + `"],"data":"0x` + strings.Repeat("00", 64) + `","index":12}}`)
	var signers []Signer
	for range 2 {
		s, _ := NewSecret()
		sg, err := NewSigner(s)
		if err != nil {
			b.Fatal(err)
		}
		signers = append(signers, sg)
	}
	for _, n := range []int{1, 2} {
		b.Run(strings.Repeat("k", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				HeaderOf(signers[:n], "1:0xabc:12", 1700000000+int64(i), body)
			}
		})
	}
}
