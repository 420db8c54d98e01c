package web

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"testing"
)

func TestVendoredHTMXIsPinned(t *testing.T) {
	b, err := fs.ReadFile(Static(), "htmx.min.js")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != HTMXSHA256 {
		t.Fatalf("static/htmx.min.js sha256 = %s, want %s (update the pin in web.go when upgrading htmx)", got, HTMXSHA256)
	}
}
