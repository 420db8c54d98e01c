package process

// CPU benchmarks of process's per-event work, with no Redis or Postgres:
//
//	go test -run '^$' -bench 'Route|Payload|ParseEntry' -benchmem ./modules/process/
//
// BenchmarkRoute is route (parse the stream entry, find the candidates,
// match, decode, build the payload and the message id) over reads of 500
// entries (process.read_count) at 1,000 endpoints with every event
// matching one endpoint (and, for comparison, one event in ten): one op is
// one event, so ns/op is what one event costs before its rows are written.
// cpu-ns/op is the process's CPU time per op, which a busy machine inflates
// far less than wall time.

import (
	"fmt"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/filter"
	"github.com/ethhook/ethhook/hook"
)

// benchModule is a Module with only what route needs, and n endpoints like
// BenchmarkThroughput's (each watches its own token for Transfer with a
// condition on value); it returns the tokens.
func benchModule(b *testing.B, n int) (*Module, []string) {
	met, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	m := &Module{log: zap.NewNop(), met: met, ix: newIndex(), chains: []config.Chain{{Name: "devnet", ID: testChain}}}
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("0x%040x", 0xabc000000+i)
		t, err := compile(hook.Endpoint{ID: fmt.Sprintf("ep_%026d", i), AppID: "app_bench", Filter: hook.Filter{
			Chains: []uint64{testChain}, Addresses: []string{tokens[i]},
			Events: []string{"Transfer(address,address,uint256)"}, Where: []string{"value >= 1"}}})
		if err != nil {
			b.Fatal(err)
		}
		m.ix.put(t)
	}
	return m, tokens
}

func benchEntries(b *testing.B, tokens []string, n, matchEvery int) []rueidis.XRangeEntry {
	out := make([]rueidis.XRangeEntry, n)
	for i := range out {
		ev := benchEvent(tokens, i, matchEvery)
		ev.Block.ParentHash = blockHash("be", ev.Block.Number-1)
		f, err := ev.Fields()
		if err != nil {
			b.Fatal(err)
		}
		out[i] = rueidis.XRangeEntry{ID: fmt.Sprintf("1700000000000-%d", i), FieldValues: f}
	}
	return out
}

func BenchmarkRoute(b *testing.B) {
	for _, matchEvery := range []int{1, 10} {
		b.Run(fmt.Sprintf("1k_endpoints/match_1_in_%d", matchEvery), func(b *testing.B) {
			m, tokens := benchModule(b, 1000)
			const read = 500
			entries := benchEntries(b, tokens, 10*read, matchEvery)
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			messages := 0
			for done := 0; done < b.N; done += read {
				start := done % len(entries)
				rt, err := m.route(testChain, entries[start:start+min(read, b.N-done)], 0)
				if err != nil {
					b.Fatal(err)
				}
				messages += len(rt.direct)
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			if want := (b.N + matchEvery - 1) / matchEvery; matchEvery == 1 && messages != want {
				b.Fatalf("%d messages for %d events, want %d", messages, b.N, want)
			}
		})
	}
}

// cpuTime is the CPU time this process has used (user and system, every
// thread, the collector's included), in ns. On a busy machine with the
// benchmark niced, wall time per op includes the waits for a core; CPU time
// does not.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkPayload is the webhook body of one decoded Transfer.
func BenchmarkPayload(b *testing.B) {
	m, tokens := benchModule(b, 1)
	ev := benchEvent(tokens, 0, 1)
	var r filter.Result
	m.ix.candidates(&ev, func(t *target) { r, _ = t.m.Match(&ev, nil) })
	if r.Decoded == nil {
		b.Fatal("not decoded")
	}
	b.ReportAllocs()
	cpu0 := cpuTime()
	var buf []byte
	var err error
	for b.Loop() {
		if buf, err = encodePayload(buf[:0], &ev, hook.TypeLog, "ep_01HZZZZZZZZZZZZZZZZZZZZZZZ", r, 3); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkParseEntry is one stream entry read back into a hook.Event.
func BenchmarkParseEntry(b *testing.B) {
	ev := transfer("be", 1_000_000, 7, token, alice, bob, 1234)
	ev.Block.ParentHash = blockHash("be", 999_999)
	f, err := ev.Fields()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		if _, err := hook.ParseEntry(f); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}
