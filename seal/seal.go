// Package seal encrypts secrets at rest (endpoint signing secrets) with
// AES-256-GCM under the configured secret key.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// Box seals and opens small secrets. The zero Box is unusable: a process
// that handles secrets must be configured with ETHHOOK_SECRET_KEY.
type Box struct{ aead cipher.AEAD }

// ErrNoKey is returned by a Box made without a key.
var ErrNoKey = errors.New("no secret key configured (set ETHHOOK_SECRET_KEY to 32 random bytes, e.g. `openssl rand -hex 32`)")

// New makes a Box from a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("secret key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts plaintext; the random nonce is stored in front.
func (b *Box) Seal(plaintext []byte) ([]byte, error) {
	if b == nil || b.aead == nil {
		return nil, ErrNoKey
	}
	nonce := make([]byte, b.aead.NonceSize(), b.aead.NonceSize()+len(plaintext)+b.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return b.aead.Seal(nonce, nonce, plaintext, nil), nil
}

// Open decrypts what Seal produced.
func (b *Box) Open(sealed []byte) ([]byte, error) {
	if b == nil || b.aead == nil {
		return nil, ErrNoKey
	}
	n := b.aead.NonceSize()
	if len(sealed) < n+b.aead.Overhead() {
		return nil, errors.New("sealed secret is too short")
	}
	out, err := b.aead.Open(nil, sealed[:n], sealed[n:], nil)
	if err != nil {
		return nil, errors.New("cannot open sealed secret: wrong secret key or corrupted data")
	}
	return out, nil
}
