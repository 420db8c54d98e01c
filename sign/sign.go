// Package sign implements Standard Webhooks signing
// (https://www.standardwebhooks.com): secrets are "whsec_" + base64 of random
// bytes; a signature is "v1," + base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)).
package sign

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix starts every signing secret.
const SecretPrefix = "whsec_"

// NewSecret returns a fresh secret of 32 random bytes.
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// decodeKey is the base64 after prefix of a whsec_, whsk_ or whpk_ key
// (what names it in errors).
func decodeKey(s, prefix, what string) ([]byte, error) {
	raw, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return nil, errors.New(what + " must start with " + prefix)
	}
	b, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return nil, errors.New(what + " is not valid base64 after " + prefix)
	}
	return b, nil
}

// Key decodes a secret into its HMAC key; it accepts 24 to 64 bytes.
func Key(secret string) ([]byte, error) {
	key, err := decodeKey(secret, SecretPrefix, "secret")
	if err != nil {
		return nil, err
	}
	if len(key) < 24 || len(key) > 64 {
		return nil, fmt.Errorf("secret must hold 24 to 64 bytes, has %d", len(key))
	}
	return key, nil
}

// Signature computes "v1,<base64>" for one key.
func Signature(key []byte, id string, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(strconv.FormatInt(ts, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Header builds the webhook-signature header value: one signature per key,
// space-separated (during a rotation both the new and the old secret sign).
func Header(keys [][]byte, id string, ts int64, body []byte) string {
	sigs := make([]string, len(keys))
	for i, k := range keys {
		sigs[i] = Signature(k, id, ts, body)
	}
	return strings.Join(sigs, " ")
}

// Errors from Verify.
var (
	ErrNoMatch   = errors.New("no signature matches")
	ErrTimestamp = errors.New("timestamp outside the tolerance")
)

// Verify checks a request as a receiver should: the timestamp within
// tolerance of now, and at least one v1 signature matching the key.
func Verify(key []byte, id, timestamp, header string, body []byte, now time.Time, tolerance time.Duration) error {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("bad webhook-timestamp %q", timestamp)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return ErrTimestamp
	}
	want := Signature(key, id, ts, body)
	for _, s := range strings.Fields(header) {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return ErrNoMatch
}
