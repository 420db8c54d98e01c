package config

import (
	"bytes"
	"fmt"
	"strings"
)

// knownSecrets are secrets that were shipped in this repository (the old
// `make run` and docker-compose defaults) or are placeholders: anyone can
// sign a token or open a sealed secret with them.
var knownSecrets = []string{
	"dev-only-jwt-secret-change-me-in-production",
	"demo-only-jwt-secret-change-me-please",
	"0000000000000000000000000000000000000000000000000000000000000001",
}

// keyWeakness says why a decoded 32-byte secret key cannot be a random
// one, or "" when it may be: a key from `openssl rand -hex 32` passes
// every check with overwhelming probability (fewer than 12 distinct
// bytes in 32 random ones is rarer than 1 in 2^80).
func keyWeakness(raw string, key []byte) string {
	for _, k := range knownSecrets {
		if strings.EqualFold(strings.TrimSpace(raw), k) {
			return "is a well-known key published with EthHook"
		}
	}
	distinct := map[byte]bool{}
	printable := true
	for _, b := range key {
		distinct[b] = true
		printable = printable && b >= 0x20 && b < 0x7f
	}
	switch {
	case bytes.Count(key, []byte{0}) >= len(key)-1:
		return "is all zeros (or zeros and one byte)"
	case len(distinct) < 12:
		return fmt.Sprintf("has only %d distinct bytes (repeated bytes are not a random key)", len(distinct))
	case constantStep(key):
		return "is a counting sequence, not a random key"
	case printable:
		return "is printable text, not random bytes"
	}
	return ""
}

// constantStep reports whether b is an arithmetic sequence (00 01 02 ...).
func constantStep(b []byte) bool {
	for i := 2; i < len(b); i++ {
		if b[i]-b[i-1] != b[1]-b[0] {
			return false
		}
	}
	return true
}

// jwtWeakness says why a JWT secret is guessable, or "".
func jwtWeakness(s string) string {
	for _, k := range knownSecrets {
		if strings.EqualFold(strings.TrimSpace(s), k) {
			return "is a well-known secret published with EthHook"
		}
	}
	low := strings.ToLower(s)
	for _, p := range []string{"change-me", "changeme", "change_me", "replace-me", "example"} {
		if strings.Contains(low, p) {
			return fmt.Sprintf("is a placeholder (contains %q)", p)
		}
	}
	distinct := map[rune]bool{}
	for _, r := range s {
		distinct[r] = true
	}
	// 32 random hex characters have fewer than 8 distinct ones about once
	// in 3*10^7; "abab...", "ssss..." and "word-word-..." have fewer.
	if len(distinct) < 8 {
		return fmt.Sprintf("has only %d distinct characters", len(distinct))
	}
	return ""
}

// secretProblems checks the secret settings for guessable values; each
// problem names its key and says why, never the value. Validate refuses
// them unless DevInsecure.
func (c Config) secretProblems() []string {
	var out []string
	var cur []byte
	if c.SecretKey != "" {
		if key, err := DecodeKey(c.SecretKey); err == nil { // a malformed key is reported by Validate
			cur = key
			if why := keyWeakness(c.SecretKey, key); why != "" {
				out = append(out, "secret_key (ETHHOOK_SECRET_KEY) "+why)
			}
		}
	}
	if s := c.Admin.JWTSecret; s != "" {
		if why := jwtWeakness(s); why != "" {
			out = append(out, "admin.jwt_secret (ETHHOOK_JWT_SECRET) "+why)
		}
		if k, err := DecodeKey(s); s == c.SecretKey || err == nil && cur != nil && bytes.Equal(k, cur) {
			out = append(out, "admin.jwt_secret (ETHHOOK_JWT_SECRET) is the secret_key; use two different secrets")
		}
	}
	return out
}

// previousKeyProblem says why secret_key_previous is guessable, or "". It
// is a warning, never refused: rotating away from a shipped key is exactly
// when the previous key is a public one.
func (c Config) previousKeyProblem() string {
	if c.SecretKeyPrevious == "" {
		return ""
	}
	key, err := DecodeKey(c.SecretKeyPrevious)
	if err != nil {
		return ""
	}
	if why := keyWeakness(c.SecretKeyPrevious, key); why != "" {
		return "secret_key_previous (ETHHOOK_SECRET_KEY_PREVIOUS) " + why +
			": secrets sealed under it are readable by anyone with the database; run `ethhook secrets rotate-key` and remove it"
	}
	return ""
}

// Warnings are the problems the process runs with: the weak secrets that
// dev_insecure lets through, and a guessable previous key. The process
// logs each at WARN when it starts.
func (c Config) Warnings() []string {
	var out []string
	if c.DevInsecure {
		for _, p := range c.secretProblems() {
			out = append(out, "dev_insecure (ETHHOOK_DEV_INSECURE) is set, so an insecure secret is accepted: "+p+"; never run this way with real data")
		}
	}
	if p := c.previousKeyProblem(); p != "" {
		out = append(out, p)
	}
	return out
}

// CheckKey decodes a secret key and refuses a guessable one, for keys that
// do not come through Load (ethhook secrets rotate-key --new-key).
func CheckKey(raw string) error {
	key, err := DecodeKey(raw)
	if err != nil {
		return err
	}
	if why := keyWeakness(raw, key); why != "" {
		return fmt.Errorf("%s; generate one with `openssl rand -hex 32`", why)
	}
	return nil
}
