// Package seal encrypts secrets at rest (endpoint signing secrets) with
// AES-256-GCM under the configured secret key.
//
// A sealed secret is bound to its owner's id (the endpoint id), given to
// AES-GCM as associated data: copied to another row it does not open.
// Format v2 is 0x02 || nonce (12) || ciphertext+tag, sealed with the id
// as associated data. Format v1 (nonce || ciphertext+tag, no associated
// data) was written before; it still opens, and is replaced by v2 on the
// next write of the secret or by `ethhook secrets rotate-key`.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// v2 is the first byte of a secret sealed with its owner's id.
const v2 = 0x02

// Box seals and opens small secrets. The zero Box is unusable: a process
// that handles secrets must be configured with ETHHOOK_SECRET_KEY.
type Box struct {
	aead     cipher.AEAD   // seals, and opens first
	previous []cipher.AEAD // keys being rotated away from: open only
}

// ErrNoKey is returned by a Box made without a key.
var ErrNoKey = errors.New("no secret key configured (set ETHHOOK_SECRET_KEY to 32 random bytes, e.g. `openssl rand -hex 32`)")

// ErrCannotOpen is returned when no key opens a sealed secret for that id.
var ErrCannotOpen = errors.New("cannot open sealed secret: wrong secret key, another owner's secret, or corrupted data")

// New makes a Box that seals under key and opens what key or any of the
// previous keys (ETHHOOK_SECRET_KEY_PREVIOUS during a rotation) sealed.
func New(key []byte, previous ...[]byte) (*Box, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	b := &Box{aead: aead}
	for i, k := range previous {
		p, err := newAEAD(k)
		if err != nil {
			return nil, fmt.Errorf("previous key %d: %w", i+1, err)
		}
		b.previous = append(b.previous, p)
	}
	return b, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("secret key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Seal encrypts plaintext for the owner id (v2): a random nonce, and id as
// associated data.
func (b *Box) Seal(id string, plaintext []byte) ([]byte, error) {
	if b == nil || b.aead == nil {
		return nil, ErrNoKey
	}
	if id == "" {
		return nil, errors.New("seal: a secret needs its owner's id")
	}
	n := b.aead.NonceSize()
	out := make([]byte, 1+n, 1+n+len(plaintext)+b.aead.Overhead())
	out[0] = v2
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	return b.aead.Seal(out, out[1:], plaintext, []byte(id)), nil
}

// Open decrypts what Seal produced for the same id (or a v1 secret), under
// the current or a previous key.
func (b *Box) Open(id string, sealed []byte) ([]byte, error) {
	plain, _, err := b.OpenCurrent(id, sealed)
	return plain, err
}

// OpenCurrent is Open that also reports whether the secret is current:
// sealed in v2 under the current key. One that is not should be sealed
// again (ethhook secrets rotate-key does it for every endpoint).
func (b *Box) OpenCurrent(id string, sealed []byte) (plain []byte, current bool, err error) {
	if b == nil || b.aead == nil {
		return nil, false, ErrNoKey
	}
	for i, a := range append([]cipher.AEAD{b.aead}, b.previous...) {
		n := a.NonceSize()
		if len(sealed) >= 1+n+a.Overhead() && sealed[0] == v2 {
			if out, err := a.Open(nil, sealed[1:1+n], sealed[1+n:], []byte(id)); err == nil {
				return out, i == 0, nil
			}
		}
		// v1 (no associated data); a v1 nonce may start with 0x02 too.
		if len(sealed) >= n+a.Overhead() {
			if out, err := a.Open(nil, sealed[:n], sealed[n:], nil); err == nil {
				return out, false, nil
			}
		}
	}
	return nil, false, ErrCannotOpen
}
