package ui

import (
	"net/url"
	"testing"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/hook"
)

// The form's signature select reaches the endpoint (create and edit), an
// edited ed25519 endpoint's form keeps ed25519 selected, and the update
// call leaves the scheme alone when the form does not carry the field.
func TestFormSignatureReachesTheEndpointAndEditKeepsIt(t *testing.T) {
	f := parseEndpointForm(url.Values{"url": {"https://example.com/h"}, "chains": {"31337"}, "signature": {"ed25519"}})
	if ep := f.toEndpoint(); ep.Signature != "ed25519" {
		t.Fatalf("signature %q", ep.Signature)
	}
	devnet, _ := config.Builtin("devnet")
	if f := formFromEndpoint(hook.Endpoint{URL: "https://example.com/h", Signature: "ed25519"}, []config.Chain{devnet}); f.Signature != "ed25519" {
		t.Fatalf("edit form signature %q", f.Signature)
	}
	if f := newEndpointForm([]config.Chain{devnet}); f.Signature != "hmac" {
		t.Fatalf("new form signature %q, want the default hmac", f.Signature)
	}
	if p := nonEmpty(""); p != nil {
		t.Fatal("an absent signature field would change the scheme")
	}
}
