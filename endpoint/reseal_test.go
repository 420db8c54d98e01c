package endpoint

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/seal"
)

// sealV1 writes a secret as EthHook did before secrets were bound to
// their endpoint: nonce || AES-GCM ciphertext, no associated data.
func sealV1(t *testing.T, key []byte, plaintext string) []byte {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	aead, _ := cipher.NewGCM(block)
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	return aead.Seal(nonce, nonce, []byte(plaintext), nil)
}

func TestSecretCopiedToAnotherEndpointDoesNotOpen(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	app := e.app(t, "shop")
	a, secretA, err := e.svc.Create(ctx, hook.Operator, app, transferInput)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := e.svc.Create(ctx, hook.Operator, app, transferInput)
	if err != nil {
		t.Fatal(err)
	}
	// Someone with write access to the table moves A's sealed secret to B.
	if _, err := e.pool.Exec(ctx, `UPDATE endpoints SET secret_enc = (SELECT secret_enc FROM endpoints WHERE id = $1) WHERE id = $2`, a.ID, b.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := e.svc.Secret(ctx, hook.Operator, app, b.ID); err == nil {
		t.Fatalf("B opened A's secret: %q (A's is %q)", got, secretA)
	}
	if got, err := e.svc.Secret(ctx, hook.Operator, app, a.ID); err != nil || got != secretA {
		t.Fatalf("A's own secret: %q %v", got, err)
	}
}

func TestV1SecretsOpenAndResealMovesEverySecretToTheNewKey(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	oldKey := []byte(strings.Repeat("k", 32)) // newEnv's key
	newKey := bytes.Repeat([]byte{0x5a}, 32)
	app := e.app(t, "shop")

	// One endpoint of before v2 (current and rotation-old secrets in v1),
	// one sealed in v2 under the old key.
	v1ep, _, err := e.svc.Create(ctx, hook.Operator, app, transferInput)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, `UPDATE endpoints SET secret_enc = $2, old_secret_enc = $3, old_secret_expires_at = now() + interval '1 hour' WHERE id = $1`,
		v1ep.ID, sealV1(t, oldKey, "whsec_v1current"), sealV1(t, oldKey, "whsec_v1old")); err != nil {
		t.Fatal(err)
	}
	if got, err := e.svc.Secret(ctx, hook.Operator, app, v1ep.ID); err != nil || got != "whsec_v1current" {
		t.Fatalf("a v1 secret does not open: %q %v", got, err)
	}
	v2ep, v2secret, err := e.svc.Create(ctx, hook.Operator, app, transferInput)
	if err != nil {
		t.Fatal(err)
	}

	// A box with only a wrong old key opens nothing: nothing changes.
	wrong, _ := seal.New(bytes.Repeat([]byte{0x11}, 32))
	to, _ := seal.New(newKey)
	if _, err := Reseal(ctx, e.pool, wrong, to); err == nil || !errors.Is(err, seal.ErrCannotOpen) || !strings.Contains(err.Error(), "endpoint ep_") {
		t.Fatalf("reseal with a wrong old key: %v", err)
	}
	if got, err := e.svc.Secret(ctx, hook.Operator, app, v2ep.ID); err != nil || got != v2secret {
		t.Fatalf("a failed reseal changed rows: %q %v", got, err)
	}

	from, _ := seal.New(newKey, oldKey)
	res, err := Reseal(ctx, e.pool, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if res.Endpoints != 2 || res.Secrets != 3 || res.Changed != 3 {
		t.Fatalf("reseal: %+v, want 2 endpoints, 3 secrets, 3 changed", res)
	}
	// Under the new key alone every secret opens, bound to its endpoint.
	svc := New(e.pool, to, e.rdb, e.keys, nil)
	for id, want := range map[string]string{v1ep.ID: "whsec_v1current", v2ep.ID: v2secret} {
		if got, err := svc.Secret(ctx, hook.Operator, app, id); err != nil || got != want {
			t.Fatalf("%s under the new key: %q %v", id, got, err)
		}
	}
	var cur, old []byte
	if err := e.pool.QueryRow(ctx, `SELECT secret_enc, old_secret_enc FROM endpoints WHERE id = $1`, v1ep.ID).Scan(&cur, &old); err != nil {
		t.Fatal(err)
	}
	for what, s := range map[string][]byte{"secret": cur, "old secret": old} {
		if _, current, err := to.OpenCurrent(v1ep.ID, s); err != nil || !current {
			t.Fatalf("%s after reseal: current=%v %v", what, current, err)
		}
	}
	if got, err := to.Open(v1ep.ID, old); err != nil || string(got) != "whsec_v1old" {
		t.Fatalf("old secret after reseal: %q %v", got, err)
	}
	oldBox, _ := seal.New(oldKey)
	if _, err := oldBox.Open(v1ep.ID, cur); err == nil {
		t.Fatal("the old key still opens a re-sealed secret")
	}

	// A second run finds everything current.
	if res, err := Reseal(ctx, e.pool, from, to); err != nil || res.Changed != 0 || res.Secrets != 3 {
		t.Fatalf("second reseal: %+v %v", res, err)
	}
	// Rotating an endpoint's secret keeps both under the new key.
	if _, err := svc.RotateSecret(ctx, hook.Operator, app, v2ep.ID, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := e.pool.QueryRow(ctx, `SELECT secret_enc FROM endpoint_old_secrets WHERE endpoint_id = $1`, v2ep.ID).Scan(&old); err != nil {
		t.Fatal(err)
	}
	if got, err := to.Open(v2ep.ID, old); err != nil || string(got) != v2secret {
		t.Fatalf("rotated-out secret: %q %v", got, err)
	}
}
