package admin

import (
	"context"
	"strings"
	"testing"

	"github.com/ethhook/ethhook/sign"
)

// An ed25519 endpoint shows its receiver only the whpk_ public key (at
// creation, from GET .../secret and from a rotation); the whsk_ private key
// appears in no answer. Switching to hmac in a PATCH rotates: the answer
// says hmac, GET .../secret a whsec_, and the ed25519 key keeps signing in
// endpoint_old_secrets for the overlap.
func TestEd25519EndpointShowsOnlyThePublicKeyAndSwitchesSchemeByRotation(t *testing.T) {
	h := newHarness(t)
	h.chainFixture(t)
	_, appID, key := h.member("sig@example.com")
	base := "/api/v1/applications/" + appID + "/endpoints"
	var bodies []string
	r := h.must(201, "POST", base, key, map[string]any{"url": "https://example.com/ed", "signature": "ed25519", "filter": map[string]any{"chains": []int{31337}}})
	bodies = append(bodies, string(r.Body))
	var ep endpointCreated
	r.json(t, &ep)
	if ep.Signature != sign.SchemeEd25519 || !strings.HasPrefix(ep.Secret, sign.PublicKeyPrefix) {
		t.Fatalf("created: signature %q secret %q", ep.Signature, ep.Secret)
	}
	if _, err := sign.NewVerifier(ep.Secret); err != nil {
		t.Fatalf("created key does not verify: %v", err)
	}
	var sec secretView
	r = h.must(200, "GET", base+"/"+ep.ID+"/secret", key, nil)
	bodies = append(bodies, string(r.Body))
	if r.json(t, &sec); sec.Secret != ep.Secret || sec.Signature != sign.SchemeEd25519 {
		t.Fatalf("GET secret %+v, created with %q", sec, ep.Secret)
	}
	var rot secretView
	r = h.must(200, "POST", base+"/"+ep.ID+"/secret/rotate", key, nil)
	bodies = append(bodies, string(r.Body))
	if r.json(t, &rot); rot.Signature != sign.SchemeEd25519 || !strings.HasPrefix(rot.Secret, sign.PublicKeyPrefix) || rot.Secret == ep.Secret {
		t.Fatalf("rotated %+v", rot)
	}
	var got endpointView
	r = h.must(200, "GET", base+"/"+ep.ID, key, nil)
	bodies = append(bodies, string(r.Body))
	if r.json(t, &got); got.Signature != sign.SchemeEd25519 {
		t.Fatalf("GET endpoint signature %q", got.Signature)
	}
	r = h.must(200, "PATCH", base+"/"+ep.ID, key, map[string]any{"signature": "hmac"})
	bodies = append(bodies, string(r.Body))
	if r.json(t, &got); got.Signature != sign.SchemeHMAC {
		t.Fatalf("PATCH signature: %q", got.Signature)
	}
	r = h.must(200, "GET", base+"/"+ep.ID+"/secret", key, nil)
	bodies = append(bodies, string(r.Body))
	if r.json(t, &sec); sec.Signature != sign.SchemeHMAC || !strings.HasPrefix(sec.Secret, sign.SecretPrefix) {
		t.Fatalf("after the switch: %+v", sec)
	}
	for _, b := range bodies {
		if strings.Contains(b, sign.PrivateKeyPrefix) {
			t.Fatalf("an answer shows a private key: %s", b)
		}
	}
	// Both ed25519 keys (the first, rotated out, and the second, switched
	// out) still sign for their overlap.
	var old int
	if err := h.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM endpoint_old_secrets WHERE endpoint_id = $1 AND expires_at > now()`, ep.ID).Scan(&old); err != nil {
		t.Fatal(err)
	}
	if old != 2 {
		t.Fatalf("%d unexpired old secrets, want 2", old)
	}
	if bad := h.must(400, "PATCH", base+"/"+ep.ID, key, map[string]any{"signature": "rsa"}).errCode(t); !strings.Contains(bad.Error.Message, "signature") {
		t.Fatalf("bad scheme: %+v", bad)
	}
}
