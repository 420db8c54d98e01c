package process

import (
	"context"
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ethhook/ethhook/decode"
	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/hook"
)

// TestStoredHostileFiltersAreSkippedAtStart puts filters that passed no
// validation into the endpoints table (as rows saved before the bounds
// existed would be) and starts process: it must compile the good endpoint,
// skip each hostile one with a warning naming it, stay up, and spend little
// memory doing so (the deepest signature alone took 17 GB to compile).
func TestStoredHostileFiltersAreSkippedAtStart(t *testing.T) {
	e := newEnv(t)
	good := e.endpoint(endpoint.Input{Filter: hook.Filter{Addresses: []string{token}, Events: []string{"Transfer(address,address,uint256)"}}})
	huge := "event Huge(uint256[2305843009213693952] x)" // decoding a log of it panicked in reflect.ArrayOf
	hostile := map[string]hook.Filter{
		"deep signature": {Chains: []uint64{testChain}, Events: []string{"E(uint256" + strings.Repeat("[]", 200000) + ")"}},
		"deep ABI type": {Chains: []uint64{testChain}, ABI: json.RawMessage(`[{"type":"event","name":"E","inputs":[{"name":"v","type":"uint256` +
			strings.Repeat("[]", 100000) + `"}]}]`)},
		"huge fixed array": {Chains: []uint64{testChain}, Addresses: []string{token}, Events: []string{huge}},
		"deep condition": {Chains: []uint64{testChain}, Events: []string{"Transfer(address,address,uint256)"},
			Where: []string{strings.Repeat("not ", 100000) + "value > 1"}},
	}
	ids := map[string]string{}
	for name, f := range hostile {
		ep := e.endpoint(endpoint.Input{Filter: hook.Filter{Addresses: []string{token}}})
		raw, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.pool.Exec(context.Background(), `UPDATE endpoints SET filter = $2 WHERE id = $1`, ep.ID, raw); err != nil {
			t.Fatal(err)
		}
		ids[ep.ID] = name
	}

	core, logs := observer.New(zap.WarnLevel)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := e.start(func(m *Module) { m.log = zap.New(core) })
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 256<<20 {
		t.Errorf("starting with the hostile endpoints allocated %d MiB, want < 256 MiB", got>>20)
	}
	if n := r.m.ix.size(); n != 1 || r.m.ix.get(good.ID) == nil {
		t.Fatalf("index holds %d endpoints, want only the good one", n)
	}
	for _, l := range logs.FilterMessageSnippet("does not compile").All() {
		delete(ids, l.ContextMap()["endpoint"].(string))
	}
	if len(ids) > 0 {
		t.Fatalf("no warning for the skipped endpoints %v", ids)
	}

	// A log of the hostile event next to a normal one: the good endpoint
	// gets its message and process keeps running.
	ev := transfer("aa", 1, 0, token, alice, bob, 5)
	hugeLog := transfer("aa", 1, 1, token, alice, bob, 5)
	hugeLog.Log.Topics = []string{decode.TopicOf("Huge(uint256[2305843009213693952])")}
	e.publish(hugeLog, ev)
	e.eventually("good endpoint's message", func() bool { return e.count(good.ID) == 1 })
	select {
	case <-r.done:
		t.Fatalf("process stopped: %v", r.err)
	default:
	}
}
