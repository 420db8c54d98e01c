package ui

import (
	"encoding/json"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/hook"
)

func TestFilterBuilderFormBuildsTheEndpointFilter(t *testing.T) {
	erc20 := "event Transfer(address indexed from, address indexed to, uint256 value)"
	form := url.Values{
		"url": {" https://example.com/hook "}, "description": {"payments"},
		"chains": {"31337"}, "other_chains": {"base, 10"},
		"addresses": {"0xAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n\n0xbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"},
		"events":    {erc20}, "other_events": {"Deposit(address,uint256)\n"},
		"topic0": {""}, "topic1": {"", ""}, "topic2": {"0x01, 0x02"}, "topic3": {""},
		"cond_arg": {"value", "", "to"}, "cond_op": {">=", "==", "=="}, "cond_value": {"1000000", "", "0xcc"},
		"raw_conditions": {"from == 0x1 or value > 5\n"},
		"confirmations":  {"3"}, "batch_max": {"10"}, "batch_wait_ms": {"500"}, "rate_limit": {"20"},
		"retry_schedule": {"0s, 5s,1m"}, "allow_redirects": {"on"}, "enabled": {"on"},
	}
	f := parseEndpointForm(form)
	ep := f.toEndpoint()
	if len(f.Fields) != 0 {
		t.Fatalf("field errors %v", f.Fields)
	}
	want := hook.Endpoint{
		URL: "https://example.com/hook", Description: "payments", Enabled: true, AllowRedirects: true,
		Confirmations: 3, BatchMax: 10, BatchWaitMS: 500, RateLimit: 20, RetrySchedule: []string{"0s", "5s", "1m"},
		Filter: hook.Filter{
			Chains:    []uint64{31337, 8453, 10},
			Addresses: []string{"0xAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "0xbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"},
			Events:    []string{erc20, "Deposit(address,uint256)"},
			Topics:    [][]string{nil, nil, {"0x01", "0x02"}},
			Where:     []string{"value >= 1000000", "to == 0xcc", "from == 0x1 or value > 5"},
		},
	}
	if !reflect.DeepEqual(ep, want) {
		t.Fatalf("endpoint\n got %+v\nwant %+v", ep, want)
	}
}

func TestFilterBuilderRoundTripsAnEndpoint(t *testing.T) {
	devnet, _ := config.Builtin("devnet")
	chains := []config.Chain{devnet}
	ep := hook.Endpoint{
		URL: "https://example.com/x", Enabled: false, Confirmations: 2, RetrySchedule: []string{"1s"},
		Ordering: "fifo", FIFOKey: "topic2",
		Filter: hook.Filter{
			Chains: []uint64{31337, 1}, Addresses: []string{"0xaa"},
			Events: []string{"event Transfer(address indexed from, address indexed to, uint256 value)", "Foo(uint256)"},
			ABI:    json.RawMessage(`[{"type":"event","name":"Foo","inputs":[{"name":"x","type":"uint256","indexed":false}],"anonymous":false}]`),
			Where:  []string{"value > 5", "x in (1, 2)", "a == 1 or b == 2"},
			Topics: [][]string{{"0x01"}},
		},
	}
	f := formFromEndpoint(ep, chains) // Foo(uint256) is in the ABI, so the picker ticks it
	if len(f.Conds) != 2 || f.Conds[1] != (condRow{"x", "in", "(1, 2)"}) || f.RawConds != "a == 1 or b == 2" {
		t.Fatalf("conditions %+v raw %q", f.Conds, f.RawConds)
	}
	if !reflect.DeepEqual(f.Chains, []uint64{31337}) || f.OtherChains != "1" || f.OtherEvents != "" || len(f.Events) != 2 {
		t.Fatalf("form %+v", f)
	}
	got := f.toEndpoint()
	if !json.Valid(got.Filter.ABI) {
		t.Fatalf("abi %s", got.Filter.ABI)
	}
	got.Filter.ABI, ep.Filter.ABI = nil, nil
	if !reflect.DeepEqual(got, ep) {
		t.Fatalf("round trip\n got %+v\nwant %+v", got, ep)
	}
	names := f.argNames()
	for _, n := range []string{"from", "to", "value", "x"} {
		if !strings.Contains(strings.Join(names, ","), n) {
			t.Fatalf("arg names %v lack %s", names, n)
		}
	}
}

func TestFilterBuilderReportsBadNumbersAndJSON(t *testing.T) {
	f := parseEndpointForm(url.Values{"confirmations": {"three"}, "rate_limit": {"-1"}, "abi": {"[{"}, "other_chains": {"nochain"}})
	f.toEndpoint()
	for _, k := range []string{"confirmations", "rate_limit", "abi", "chains"} {
		if f.Fields[k] == "" {
			t.Errorf("no field error for %s: %v", k, f.Fields)
		}
	}
}

func TestEventPickerOffersTheBuiltInEventsAsDeclarations(t *testing.T) {
	evs := builtinEvents()
	var erc20, erc721 bool
	for _, e := range evs {
		if e.Decl == "event Transfer(address indexed from, address indexed to, uint256 value)" && e.Note == "ERC-20" {
			erc20 = true
		}
		if e.Decl == "event Transfer(address indexed from, address indexed to, uint256 indexed tokenId)" && e.Note == "ERC-721" {
			erc721 = true
		}
	}
	if !erc20 || !erc721 || len(evs) < 8 {
		t.Fatalf("built-in events %+v", evs)
	}
	abi := `[{"type":"event","name":"Deposit","inputs":[{"name":"who","type":"address","indexed":true},{"name":"amt","type":"uint256","indexed":false}],"anonymous":false},{"type":"function","name":"f","inputs":[],"outputs":[]}]`
	got, err := abiEvents(abi)
	if err != nil || len(got) != 1 || got[0].Signature != "Deposit(address,uint256)" || !reflect.DeepEqual(got[0].Args, []string{"who", "amt"}) {
		t.Fatalf("abi events %+v, %v", got, err)
	}
	if _, err := abiEvents("not json"); err == nil {
		t.Fatal("bad ABI accepted")
	}
}

func TestEndpointFormCarriesFinalityAndTwoPhase(t *testing.T) {
	f := parseEndpointForm(url.Values{"url": {"https://example.com/x"}, "chains": {"31337"},
		"confirmations": {"7"}, "stage": {"finalized"}, "two_phase": {"1"}})
	ep := f.toEndpoint()
	if ep.Stage != hook.StageFinalized || !ep.TwoPhase || ep.Confirmations != 0 {
		t.Fatalf("endpoint stage %q two-phase %v confirmations %d, want finalized, two-phase, 0", ep.Stage, ep.TwoPhase, ep.Confirmations)
	}
	back := formFromEndpoint(ep, nil)
	if back.Stage != hook.StageFinalized || !back.TwoPhase {
		t.Fatalf("form from endpoint: stage %q two-phase %v", back.Stage, back.TwoPhase)
	}
	count := parseEndpointForm(url.Values{"confirmations": {"4"}})
	if ep := count.toEndpoint(); ep.Stage != "" || ep.Confirmations != 4 || ep.TwoPhase {
		t.Fatalf("count only: %+v", ep)
	}
}

func TestEndpointFormReadsAndShowsCustomHeaders(t *testing.T) {
	f := parseEndpointForm(url.Values{"url": {"https://example.com/h"}, "chains": {"31337"}, "headers": {"X-Tenant: acme\r\n\nAuthorization: Bearer t:1\n"}})
	ep := f.toEndpoint()
	if len(f.Fields) != 0 || !reflect.DeepEqual(ep.Headers, map[string]string{"X-Tenant": "acme", "Authorization": "Bearer t:1"}) {
		t.Fatalf("headers %v, field errors %v", ep.Headers, f.Fields)
	}
	if got := formFromEndpoint(ep, nil).Headers; got != "Authorization: Bearer t:1\nX-Tenant: acme\n" {
		t.Fatalf("form shows %q", got)
	}
	f = parseEndpointForm(url.Values{"url": {"https://example.com/h"}, "headers": {"no colon here"}})
	f.toEndpoint()
	if !strings.Contains(f.Fields["headers"], "no colon here") {
		t.Fatalf("field errors %v", f.Fields)
	}
}
