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
// problem names its key and says why, never the value.
func (c Config) secretProblems() []string {
	var out []string
	keyOf := func(name, raw string) []byte {
		if raw == "" {
			return nil
		}
		key, err := DecodeKey(raw)
		if err != nil {
			return nil // reported by Validate as malformed
		}
		if why := keyWeakness(raw, key); why != "" {
			out = append(out, fmt.Sprintf("%s %s", name, why))
		}
		return key
	}
	cur := keyOf("secret_key (ETHHOOK_SECRET_KEY)", c.SecretKey)
	prev := keyOf("secret_key_previous (ETHHOOK_SECRET_KEY_PREVIOUS)", c.SecretKeyPrevious)
	if cur != nil && prev != nil && bytes.Equal(cur, prev) {
		out = append(out, "secret_key_previous (ETHHOOK_SECRET_KEY_PREVIOUS) is the same key as secret_key")
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

// Warnings are the problems a development setting lets through; the
// process logs each at WARN when it starts.
func (c Config) Warnings() []string {
	if !c.DevInsecure {
		return nil
	}
	var out []string
	for _, p := range c.secretProblems() {
		out = append(out, "dev_insecure (ETHHOOK_DEV_INSECURE) is set, so an insecure secret is accepted: "+p+"; never run this way with real data")
	}
	return out
}
