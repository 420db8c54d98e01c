package app

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ethhook/ethhook/sign"
)

// `endpoint create --signature ed25519` prints the whpk_ public key (never
// the whsk_), `secret` shows it with its scheme, and `update --signature
// hmac` switches to a whsec_ secret.
func TestEndpointSignatureFlagCreatesEd25519AndSwitchesBack(t *testing.T) {
	rt := cliRuntime(t)
	app := cliApp(t, rt, "sig")
	out, err := runCmd(t, newEndpointCmd(rt), "create", "--app", app, "--url", "https://example.com/h", "--chain", "eth",
		"--signature", "ed25519", "--json")
	if err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	var created struct{ ID, Secret, Signature string }
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Signature != "ed25519" || !strings.HasPrefix(created.Secret, sign.PublicKeyPrefix) ||
		strings.Contains(out, sign.PrivateKeyPrefix) {
		t.Fatalf("create --signature ed25519 --json: %q", out)
	}
	out, err = runCmd(t, newEndpointCmd(rt), "secret", "--app", app, created.ID)
	if err != nil || !strings.Contains(out, "secret: "+created.Secret) || !strings.Contains(out, "signature: ed25519") {
		t.Fatalf("secret: %v\n%s", err, out)
	}
	if out, err = runCmd(t, newEndpointCmd(rt), "show", "--app", app, created.ID); err != nil || !strings.Contains(out, "ed25519") {
		t.Fatalf("show: %v\n%s", err, out)
	}
	if _, err = runCmd(t, newEndpointCmd(rt), "update", "--app", app, created.ID, "--signature", "rsa"); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("update --signature rsa: %v", err)
	}
	if out, err = runCmd(t, newEndpointCmd(rt), "update", "--app", app, created.ID, "--signature", "hmac", "--json"); err != nil || !strings.Contains(out, `"signature": "hmac"`) {
		t.Fatalf("update --signature hmac: %v\n%s", err, out)
	}
	if out, err = runCmd(t, newEndpointCmd(rt), "secret", "--app", app, created.ID, "--json"); err != nil || !strings.Contains(out, `"whsec_`) || !strings.Contains(out, `"signature": "hmac"`) {
		t.Fatalf("secret after the switch: %v\n%s", err, out)
	}
}
