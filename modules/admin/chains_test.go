package admin

import (
	"context"
	"strings"
	"testing"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/hook"
)

func TestChainsShowTheLeaseHolderToAdminsOnly(t *testing.T) {
	h := newHarness(t)
	h.chainFixture(t) // the devnet's lease is held by "host-1"
	member, _, key := h.member("tenant@example.com")
	devnet := func(token string) (chainView, string) {
		t.Helper()
		r := h.must(200, "GET", "/api/v1/chains", token, nil)
		var chains List[chainView]
		r.json(t, &chains)
		for _, c := range chains.Data {
			if c.ID == config.DevnetChainID {
				return c, string(r.Body)
			}
		}
		t.Fatalf("no devnet in %s", r.Body)
		return chainView{}, ""
	}
	if c, body := devnet(h.admin); c.LeaseHolder != "host-1" || !c.ActiveWriter {
		t.Fatalf("admin view: %s", body)
	}
	for who, token := range map[string]string{"member": member, "api key": key} {
		c, body := devnet(token)
		if !c.ActiveWriter || c.LeaseHolder != "" || strings.Contains(body, "host-1") || strings.Contains(body, "lease_holder") {
			t.Fatalf("%s view shows who holds the lease (or not that one does): %s", who, body)
		}
	}
	// A chain nobody writes: no active writer, for anyone.
	for _, token := range []string{h.admin, member} {
		var chains List[chainView]
		h.must(200, "GET", "/api/v1/chains", token, nil).json(t, &chains)
		for _, c := range chains.Data {
			if c.ID != config.DevnetChainID && (c.ActiveWriter || c.LeaseHolder != "") {
				t.Fatalf("chain %d without a lease: %+v", c.ID, c)
			}
		}
	}
}

func TestChainsShowProviderHealthToAdminsOnly(t *testing.T) {
	h := newHarness(t)
	h.chainFixture(t)
	ps := []hook.ProviderHealth{{Provider: "wss://a.example", Health: "healthy"}, {Provider: "wss://b.example", Health: "disagrees"}}
	rdb := h.m.rdb
	if err := rdb.Do(context.Background(), rdb.B().Set().Key(h.keys.Chain(config.DevnetChainID, "providers")).Value(hook.EncodeProviders(ps)).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	member, _, _ := h.member("tenant@example.com")
	for token, want := range map[string]int{h.admin: 2, member: 0} {
		var chains List[chainView]
		r := h.must(200, "GET", "/api/v1/chains", token, nil)
		r.json(t, &chains)
		for _, c := range chains.Data {
			if c.ID == config.DevnetChainID && (len(c.Providers) != want || want > 0 && c.Providers[1] != ps[1]) {
				t.Fatalf("want %d providers: %s", want, r.Body)
			}
		}
	}
}

// TestChainsShowTheSafeAndFinalizedHeads: GET /api/v1/chains carries the
// node's safe and finalized heads as ingest published them, and null for a
// chain whose node reported none (the contract test validates the shape).
func TestChainsShowTheSafeAndFinalizedHeads(t *testing.T) {
	h := newHarness(t)
	h.chainFixture(t)
	var chains List[chainView]
	r := h.must(200, "GET", "/api/v1/chains", h.admin, nil)
	r.json(t, &chains)
	seen := false
	for _, c := range chains.Data {
		if c.ID != config.DevnetChainID {
			if c.Safe != nil || c.Finalized != nil || !strings.Contains(string(r.Body), `"safe":null`) {
				t.Fatalf("chain %d without finality: %s", c.ID, r.Body)
			}
			continue
		}
		seen = true
		if c.Safe == nil || *c.Safe != 98 || c.Finalized == nil || *c.Finalized != 90 {
			t.Fatalf("devnet: %s", r.Body)
		}
	}
	if !seen {
		t.Fatalf("no devnet in %s", r.Body)
	}
}
