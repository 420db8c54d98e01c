package hook

import "testing"

func TestProvidersRoundTrip(t *testing.T) {
	ps := []ProviderHealth{{Provider: "wss://a.example", Health: "healthy"}, {Provider: "wss://b.example", Health: "lagging"}, {Provider: "wss://c.example"}}
	got, err := ParseProviders(EncodeProviders(ps))
	if err != nil || len(got) != 3 || got[1] != ps[1] || got[2] != ps[2] {
		t.Fatalf("providers round trip = %+v %v, want %+v", got, err, ps)
	}
	if _, err := ParseProviders("{"); err == nil {
		t.Fatal("a bad providers value was accepted")
	}
}
