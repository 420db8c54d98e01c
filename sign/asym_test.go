package sign

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethhook/ethhook/internal/nodecheck"
)

// RFC 8032 section 7.1, test 1: a whsk_ key holding that seed (alone or
// with its public half, the 64-byte form Svix and libsodium use) signs as
// the RFC says, and its whpk_ is the RFC's public key.
func TestPrivateKeyEncodingsMatchRFC8032Vector(t *testing.T) {
	seed, _ := hex.DecodeString("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
	pub, _ := hex.DecodeString("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
	wantSig := "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
	for _, raw := range [][]byte{seed, append(append([]byte{}, seed...), pub...)} {
		secret := PrivateKeyPrefix + base64.StdEncoding.EncodeToString(raw)
		priv, err := PrivateKey(secret)
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(ed25519.Sign(priv, nil)); got != wantSig {
			t.Fatalf("signature of the empty message = %s, want %s", got, wantSig)
		}
		vk, err := VerifyKey(secret)
		if err != nil {
			t.Fatal(err)
		}
		if want := PublicKeyPrefix + base64.StdEncoding.EncodeToString(pub); vk != want {
			t.Fatalf("public key %s, want %s", vk, want)
		}
	}
	// A 64-byte key whose second half is not its seed's public key.
	bad := append(append([]byte{}, seed...), make([]byte, 32)...)
	if _, err := PrivateKey(PrivateKeyPrefix + base64.StdEncoding.EncodeToString(bad)); err == nil {
		t.Fatal("mismatched key pair accepted")
	}
	if _, err := PublicKey(PublicKeyPrefix + base64.StdEncoding.EncodeToString(pub[:31])); err == nil {
		t.Fatal("31-byte public key accepted")
	}
}

func TestNewKeyPairIs64BytesAndSignsV1aOverIDTimestampBody(t *testing.T) {
	secret, err := NewSecretFor(SchemeEd25519)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, PrivateKeyPrefix))
	if !strings.HasPrefix(secret, PrivateKeyPrefix) || len(raw) != 64 || SchemeOf(secret) != SchemeEd25519 {
		t.Fatalf("secret %q (%d bytes)", secret, len(raw))
	}
	s, err := NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	sig := s.Sign("msg_1", 1700000000, []byte(`{"a":1}`))
	b64, ok := strings.CutPrefix(sig, "v1a,")
	if !ok {
		t.Fatalf("signature %q", sig)
	}
	raw, _ = base64.StdEncoding.DecodeString(b64)
	vk, _ := VerifyKey(secret)
	pub, _ := PublicKey(vk)
	if !ed25519.Verify(pub, []byte(`msg_1.1700000000.{"a":1}`), raw) {
		t.Fatal("v1a signature is not ed25519 over id.timestamp.body")
	}
}

// During a rotation from HMAC to ed25519 (or back) the header carries both
// a v1 and a v1a signature, as in the specification's example; each
// receiver finds the one of its scheme.
func TestVerifierFindsItsSchemeInAMixedHeader(t *testing.T) {
	hsec, _ := NewSecretFor(SchemeHMAC)
	ksec, _ := NewSecretFor(SchemeEd25519)
	other, _ := NewSecretFor(SchemeEd25519)
	hs, _ := NewSigner(hsec)
	ks, _ := NewSigner(ksec)
	now := time.Unix(1700000000, 0)
	body := []byte(`{"a":1}`)
	h := HeaderOf([]Signer{ks, hs}, "id1", now.Unix(), body)
	if f := strings.Fields(h); len(f) != 2 || !strings.HasPrefix(f[0], "v1a,") || !strings.HasPrefix(f[1], "v1,") {
		t.Fatalf("header %q", h)
	}
	pk, _ := VerifyKey(ksec)
	opk, _ := VerifyKey(other)
	for _, key := range []string{hsec, pk} {
		v, err := NewVerifier(key)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Verify("id1", "1700000000", h, body, now, 5*time.Minute); err != nil {
			t.Fatalf("%s: %v", key[:5], err)
		}
		if err := v.Verify("id1", "1700000000", h, []byte(`{"a":2}`), now, 5*time.Minute); err != ErrNoMatch {
			t.Fatalf("%s: tampered body: %v", key[:5], err)
		}
		if err := v.Verify("id2", "1700000000", h, body, now, 5*time.Minute); err != ErrNoMatch {
			t.Fatalf("%s: other id: %v", key[:5], err)
		}
		if err := v.Verify("id1", "1700000000", h, body, now.Add(10*time.Minute), 5*time.Minute); err != ErrTimestamp {
			t.Fatalf("%s: stale timestamp: %v", key[:5], err)
		}
	}
	ov, _ := NewVerifier(opk)
	if err := ov.Verify("id1", "1700000000", h, body, now, 5*time.Minute); err != ErrNoMatch {
		t.Fatalf("another key pair verified: %v", err)
	}
	// A v1a signature relabelled v1 (or garbage) does not pass either verifier.
	forged := strings.Replace(strings.Fields(h)[0], "v1a,", "v1,", 1)
	if err := ov.Verify("id1", "1700000000", forged+" v1a,@@", body, now, 5*time.Minute); err != ErrNoMatch {
		t.Fatalf("forged: %v", err)
	}
	if _, err := NewVerifier(ksec); err == nil {
		t.Fatal("a receiver was allowed the private key")
	}
}

// Node's crypto (OpenSSL), an implementation that shares no code with Go's,
// accepts EthHook's v1a signatures under the whpk_ key and rejects a
// tampered body, id or timestamp, another key, and a header holding only v1.
func TestV1aVerifiesWithNodeCrypto(t *testing.T) {
	now := time.Now().Unix()
	ts := strconv.FormatInt(now, 10)
	var msgs []nodecheck.Msg
	var want []bool
	for i := 0; i < 20; i++ {
		secret, _ := NewKeyPair()
		other, _ := NewKeyPair()
		hsec, _ := NewSecret()
		s, _ := NewSigner(secret)
		hs, _ := NewSigner(hsec)
		pub, _ := VerifyKey(secret)
		opub, _ := VerifyKey(other)
		id := fmt.Sprintf("1:0x%064x:%d", i, i)
		body := []byte(fmt.Sprintf(`{"id":%q,"n":%d,"s":"ünïcode \u2028"}`, id, i))
		h := HeaderOf([]Signer{hs, s}, id, now, body)
		msgs = append(msgs,
			nodecheck.Msg{PublicKey: pub, ID: id, Timestamp: ts, Signature: h, Body: body},
			nodecheck.Msg{PublicKey: pub, ID: id, Timestamp: ts, Signature: h, Body: append(body, ' ')},
			nodecheck.Msg{PublicKey: pub, ID: id + "x", Timestamp: ts, Signature: h, Body: body},
			nodecheck.Msg{PublicKey: pub, ID: id, Timestamp: strconv.FormatInt(now+1, 10), Signature: h, Body: body},
			nodecheck.Msg{PublicKey: opub, ID: id, Timestamp: ts, Signature: h, Body: body},
			nodecheck.Msg{PublicKey: pub, ID: id, Timestamp: ts, Signature: HeaderOf([]Signer{hs}, id, now, body), Body: body},
		)
		want = append(want, true, false, false, false, false, false)
	}
	res, err := nodecheck.VerifyV1a(context.Background(), msgs)
	if errors.Is(err, nodecheck.ErrNoNode) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.OK != want[i] {
			t.Fatalf("webhook %d (case %d): node says %+v, want ok=%v", i/6, i%6, r, want[i])
		}
	}
}
