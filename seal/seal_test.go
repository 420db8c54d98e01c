package seal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"testing"
)

// sealV1 writes the format of before v2: nonce || ciphertext, no
// associated data.
func sealV1(t *testing.T, key, plaintext []byte) []byte {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	aead, _ := cipher.NewGCM(block)
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	return aead.Seal(nonce, nonce, plaintext, nil)
}

func TestSealOpenRoundTripAndWrongKeyFails(t *testing.T) {
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	b1, _ := New(k1)
	b2, _ := New(k2)
	s, err := b1.Seal("ep_1", []byte("whsec_abc"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(s, []byte("whsec_abc")) {
		t.Fatal("sealed bytes contain the plaintext")
	}
	got, err := b1.Open("ep_1", s)
	if err != nil || string(got) != "whsec_abc" {
		t.Fatalf("open = %q, %v", got, err)
	}
	if _, err := b2.Open("ep_1", s); err == nil {
		t.Fatal("open with another key succeeded")
	}
	var zero *Box
	if _, err := zero.Seal("ep_1", []byte("x")); err != ErrNoKey {
		t.Fatalf("nil box seal err = %v", err)
	}
	if _, err := New([]byte("short")); err == nil {
		t.Fatal("short key accepted")
	}
	if _, err := b1.Seal("", []byte("x")); err == nil {
		t.Fatal("sealed without an owner id")
	}
}

func TestSealedSecretIsBoundToItsOwnerID(t *testing.T) {
	b, _ := New(bytes.Repeat([]byte{3}, 32))
	s, err := b.Seal("ep_A", []byte("whsec_a"))
	if err != nil {
		t.Fatal(err)
	}
	if s[0] != v2 {
		t.Fatalf("new secrets are sealed in format %d, want v2", s[0])
	}
	if _, err := b.Open("ep_B", s); !errors.Is(err, ErrCannotOpen) {
		t.Fatalf("endpoint A's secret opened as endpoint B's: %v", err)
	}
	if got, current, err := b.OpenCurrent("ep_A", s); err != nil || !current || string(got) != "whsec_a" {
		t.Fatalf("OpenCurrent = %q %v %v", got, current, err)
	}
}

func TestV1SecretsStillOpenAndAreReportedForResealing(t *testing.T) {
	key := bytes.Repeat([]byte{4}, 32)
	b, _ := New(key)
	// Enough v1 secrets that some nonce starts with the v2 byte.
	for i := 0; i < 2000; i++ {
		old := sealV1(t, key, []byte("whsec_old"))
		got, current, err := b.OpenCurrent("ep_any", old)
		if err != nil || current || string(got) != "whsec_old" {
			t.Fatalf("v1 secret (first byte %#x): %q current=%v %v", old[0], got, current, err)
		}
	}
}

func TestPreviousKeyOpensDuringARotation(t *testing.T) {
	oldKey, newKey := bytes.Repeat([]byte{5}, 32), bytes.Repeat([]byte{6}, 32)
	oldBox, _ := New(oldKey)
	s, _ := oldBox.Seal("ep_1", []byte("whsec_r"))
	v1 := sealV1(t, oldKey, []byte("whsec_v1"))
	both, err := New(newKey, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	if got, current, err := both.OpenCurrent("ep_1", s); err != nil || current || string(got) != "whsec_r" {
		t.Fatalf("v2 under the previous key: %q current=%v %v", got, current, err)
	}
	if got, current, err := both.OpenCurrent("ep_1", v1); err != nil || current || string(got) != "whsec_v1" {
		t.Fatalf("v1 under the previous key: %q current=%v %v", got, current, err)
	}
	if _, err := both.Open("ep_2", s); err == nil {
		t.Fatal("the previous key opened another endpoint's secret")
	}
	resealed, _ := both.Seal("ep_1", []byte("whsec_r"))
	newOnly, _ := New(newKey)
	if got, err := newOnly.Open("ep_1", resealed); err != nil || string(got) != "whsec_r" {
		t.Fatalf("re-sealed secret under the new key alone: %q %v", got, err)
	}
	if _, err := newOnly.Open("ep_1", s); err == nil {
		t.Fatal("the new key alone opened a secret sealed under the old one")
	}
	if _, err := New(newKey, []byte("short")); err == nil {
		t.Fatal("a short previous key was accepted")
	}
}
