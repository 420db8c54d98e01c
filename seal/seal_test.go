package seal

import (
	"bytes"
	"testing"
)

func TestSealOpenRoundTripAndWrongKeyFails(t *testing.T) {
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	b1, _ := New(k1)
	b2, _ := New(k2)
	s, err := b1.Seal([]byte("whsec_abc"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(s, []byte("whsec_abc")) {
		t.Fatal("sealed bytes contain the plaintext")
	}
	got, err := b1.Open(s)
	if err != nil || string(got) != "whsec_abc" {
		t.Fatalf("open = %q, %v", got, err)
	}
	if _, err := b2.Open(s); err == nil {
		t.Fatal("open with another key succeeded")
	}
	var zero *Box
	if _, err := zero.Seal([]byte("x")); err != ErrNoKey {
		t.Fatalf("nil box seal err = %v", err)
	}
	if _, err := New([]byte("short")); err == nil {
		t.Fatal("short key accepted")
	}
}
