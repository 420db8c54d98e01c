package sign

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Asymmetric signatures of the Standard Webhooks specification: ed25519
// over the same "id.timestamp.body", sent as "v1a,<base64 signature>".
// The secret key is "whsk_" + base64 of the 64-byte ed25519 private key
// (seed then public key, as Go, libsodium and Svix hold it; a bare 32-byte
// seed is accepted too); the public key a receiver verifies with is
// "whpk_" + base64 of its 32 bytes.
const (
	PrivateKeyPrefix = "whsk_"
	PublicKeyPrefix  = "whpk_"
)

// Signature schemes an endpoint may choose.
const (
	SchemeHMAC    = "hmac"    // v1, whsec_ shared secret (the default)
	SchemeEd25519 = "ed25519" // v1a, whsk_ private key, receivers hold the whpk_ public key
)

// Schemes lists the signature schemes.
var Schemes = []string{SchemeHMAC, SchemeEd25519}

// NewKeyPair returns a fresh whsk_ private key.
func NewKeyPair() (string, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("generate ed25519 key: %w", err)
	}
	return PrivateKeyPrefix + base64.StdEncoding.EncodeToString(priv), nil
}

// NewSecretFor returns a fresh secret of the scheme: whsec_ for hmac (or
// ""), whsk_ for ed25519.
func NewSecretFor(scheme string) (string, error) {
	switch scheme {
	case SchemeHMAC, "":
		return NewSecret()
	case SchemeEd25519:
		return NewKeyPair()
	}
	return "", fmt.Errorf("unknown signature scheme %q (want %s)", scheme, strings.Join(Schemes, " or "))
}

// SchemeOf names the scheme of a secret or key by its prefix: ed25519
// for whsk_ and whpk_, hmac for anything else.
func SchemeOf(secret string) string {
	if strings.HasPrefix(secret, PrivateKeyPrefix) || strings.HasPrefix(secret, PublicKeyPrefix) {
		return SchemeEd25519
	}
	return SchemeHMAC
}

// PrivateKey decodes a whsk_ secret.
func PrivateKey(secret string) (ed25519.PrivateKey, error) {
	b, err := decodeKey(secret, PrivateKeyPrefix, "private key")
	if err != nil {
		return nil, err
	}
	switch len(b) {
	case ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(b), nil
	case ed25519.PrivateKeySize:
		k := ed25519.NewKeyFromSeed(b[:ed25519.SeedSize])
		if !bytes.Equal(k[ed25519.SeedSize:], b[ed25519.SeedSize:]) {
			return nil, errors.New("private key's public half does not belong to its seed")
		}
		return k, nil
	}
	return nil, fmt.Errorf("private key must hold %d (or a %d-byte seed) bytes, has %d", ed25519.PrivateKeySize, ed25519.SeedSize, len(b))
}

// PublicKey decodes a whpk_ public key.
func PublicKey(key string) (ed25519.PublicKey, error) {
	b, err := decodeKey(key, PublicKeyPrefix, "public key")
	if err != nil {
		return nil, err
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key must hold %d bytes, has %d", ed25519.PublicKeySize, len(b))
	}
	return ed25519.PublicKey(b), nil
}

// EncodePublicKey is the whpk_ form of a public key.
func EncodePublicKey(pub ed25519.PublicKey) string {
	return PublicKeyPrefix + base64.StdEncoding.EncodeToString(pub)
}

// VerifyKey returns what a receiver verifies a secret's signatures with:
// the whpk_ public key of a whsk_ private key, or the whsec_ secret itself
// (HMAC has no public half; it is returned as it is).
func VerifyKey(secret string) (string, error) {
	if SchemeOf(secret) == SchemeHMAC || strings.HasPrefix(secret, PublicKeyPrefix) {
		return secret, nil
	}
	priv, err := PrivateKey(secret)
	if err != nil {
		return "", err
	}
	return EncodePublicKey(priv.Public().(ed25519.PublicKey)), nil
}

// content is what both schemes sign: id.timestamp.body.
func content(id string, ts int64, body []byte) []byte {
	t := strconv.FormatInt(ts, 10)
	b := make([]byte, 0, len(id)+len(t)+len(body)+2)
	b = append(b, id...)
	b = append(b, '.')
	b = append(b, t...)
	b = append(b, '.')
	return append(b, body...)
}

// SignatureA computes "v1a,<base64>" for one private key.
func SignatureA(priv ed25519.PrivateKey, id string, ts int64, body []byte) string {
	return "v1a," + base64.StdEncoding.EncodeToString(ed25519.Sign(priv, content(id, ts, body)))
}

// Signer signs with one secret of either scheme. Copies share its HMAC
// states (macs): a Signer lives as long as its endpoint's cache entry and
// signs every webhook of the endpoint, and hmac.New per signature (two
// SHA-256 states and the padded key) was most of the cost of signing.
type Signer struct {
	hmac []byte
	macs *sync.Pool // of *macState keyed with hmac; nil: each signature keys its own
	ed   ed25519.PrivateKey
}

// macState is a keyed HMAC-SHA256, reset after each use, and the scratch
// space of a signature (the signed prefix, the sum, its encoding).
type macState struct {
	mac hash.Hash
	buf []byte
}

func newMACPool(key []byte) *sync.Pool {
	return &sync.Pool{New: func() any { return &macState{mac: hmac.New(sha256.New, key), buf: make([]byte, 0, 128)} }}
}

// signHMAC is Signature with a pooled state: the same "v1,<base64>".
func (s Signer) signHMAC(id string, ts int64, body []byte) string {
	st := s.macs.Get().(*macState)
	b := append(st.buf[:0], id...)
	b = append(b, '.')
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, '.')
	st.mac.Write(b)
	st.mac.Write(body)
	sum := st.mac.Sum(b[:0])
	n := len(sum)
	out := append(sum, "v1,"...)
	out = base64.StdEncoding.AppendEncode(out, out[:n])
	sig := string(out[n:])
	st.mac.Reset()
	st.buf = out[:0]
	s.macs.Put(st)
	return sig
}

// NewSigner decodes a whsec_ or whsk_ secret.
func NewSigner(secret string) (Signer, error) {
	if SchemeOf(secret) == SchemeEd25519 {
		k, err := PrivateKey(secret)
		return Signer{ed: k}, err
	}
	k, err := Key(secret)
	if err != nil {
		return Signer{}, err
	}
	return Signer{hmac: k, macs: newMACPool(k)}, nil
}

// Sign returns the one signature ("v1,..." or "v1a,...").
func (s Signer) Sign(id string, ts int64, body []byte) string {
	switch {
	case s.ed != nil:
		return SignatureA(s.ed, id, ts, body)
	case s.macs != nil:
		return s.signHMAC(id, ts, body)
	}
	return Signature(s.hmac, id, ts, body)
}

// HeaderOf builds the webhook-signature header: one signature per signer,
// space-separated (during a rotation old and new secrets sign, whatever
// their schemes).
func HeaderOf(signers []Signer, id string, ts int64, body []byte) string {
	if len(signers) == 1 {
		return signers[0].Sign(id, ts, body)
	}
	sigs := make([]string, len(signers))
	for i, s := range signers {
		sigs[i] = s.Sign(id, ts, body)
	}
	return strings.Join(sigs, " ")
}

// Verifier checks signatures as a receiver does, with a whsec_ secret
// (v1) or a whpk_ public key (v1a).
type Verifier struct {
	hmac []byte
	ed   ed25519.PublicKey
}

// NewVerifier decodes a whsec_ secret or a whpk_ public key; a whsk_
// private key is refused: a receiver needs only the public key.
func NewVerifier(key string) (Verifier, error) {
	switch {
	case strings.HasPrefix(key, PublicKeyPrefix):
		k, err := PublicKey(key)
		return Verifier{ed: k}, err
	case strings.HasPrefix(key, PrivateKeyPrefix):
		return Verifier{}, errors.New("a " + PrivateKeyPrefix + " private key stays with the sender: verify with its " + PublicKeyPrefix + " public key")
	}
	k, err := Key(key)
	return Verifier{hmac: k}, err
}

// Verify checks the timestamp within tolerance of now and at least one
// signature of the verifier's scheme matching: v1 for a secret, v1a for a
// public key; signatures of other versions are skipped, as the
// specification says.
func (v Verifier) Verify(id, timestamp, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if v.ed == nil {
		return Verify(v.hmac, id, timestamp, header, body, now, tolerance)
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("bad webhook-timestamp %q", timestamp)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return ErrTimestamp
	}
	msg := content(id, ts, body)
	for _, s := range strings.Fields(header) {
		b64, ok := strings.CutPrefix(s, "v1a,")
		if !ok {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(sig) != ed25519.SignatureSize {
			continue
		}
		if ed25519.Verify(v.ed, msg, sig) {
			return nil
		}
	}
	return ErrNoMatch
}
