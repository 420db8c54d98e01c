package process

// Benchmarks (real Redis and Postgres on this machine):
//
//	go test -run '^$' -bench 'Throughput' -benchtime 100000x ./modules/process/
//	go test -run '^$' -bench Latency -benchtime 5000x ./modules/process/
//
// PROCESS_WORKERS and PROCESS_READ override process.workers and
// process.read_count for a run; PROCESS_DEBUG=1 logs what the module does.
//
// Every endpoint watches its own token address for Transfer with a
// condition on value. In match_1_in_1 every event matches exactly one
// endpoint, so every event is matched, decoded, written as a message and
// queued as a delivery job; in match_1_in_10 one event in ten does (the
// others come from an unwatched contract, as most chain logs do).

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/redis/rueidis"

	"github.com/ethhook/ethhook/hook"
)

// bulkEndpoints inserts n endpoints directly (the service's per-row
// validation and NOTIFY are not what is measured) and returns their tokens.
func (e *env) bulkEndpoints(n int) []string {
	ctx := context.Background()
	tokens := make([]string, n)
	for start := 0; start < n; start += 5000 {
		end := min(n, start+5000)
		var ids, filters []string
		for i := start; i < end; i++ {
			tokens[i] = fmt.Sprintf("0x%040x", 0xabc000000+i)
			f, _ := json.Marshal(hook.Filter{Chains: []uint64{testChain}, Addresses: []string{tokens[i]},
				Events: []string{"Transfer(address,address,uint256)"}, Where: []string{"value >= 1"}})
			ids = append(ids, "ep_"+ulid.Make().String())
			filters = append(filters, string(f))
		}
		_, err := e.pool.Exec(ctx, `INSERT INTO endpoints (id, app_id, url, filter, secret_enc)
			SELECT t.id, $3, 'https://receiver.example/hook', t.filter::jsonb, '\x00'::bytea
			FROM unnest($1::text[], $2::text[]) AS t(id, filter)`, ids, filters, e.app)
		if err != nil {
			e.t.Fatal(err)
		}
	}
	return tokens
}

// benchEvent is event i; every matchEvery-th event matches an endpoint, the
// others come from a contract no endpoint watches.
func benchEvent(tokens []string, i, matchEvery int) hook.Event {
	addr := other
	if i%matchEvery == 0 {
		addr = tokens[(i/matchEvery)%len(tokens)]
	}
	return transfer("be", uint64(1_000_000+i/100), uint(i%100), addr, alice, bob, int64(1000+i))
}

func xaddCmd(rdb rueidis.Client, key string, ev hook.Event) rueidis.Completed {
	f, _ := ev.Fields()
	return rdb.B().Xadd().Key(key).Id("*").FieldValue().
		FieldValue("id", f["id"]).FieldValue("type", f["type"]).FieldValue("event", f["event"]).Build()
}

func BenchmarkThroughput(b *testing.B) {
	for _, bc := range []struct {
		endpoints, matchEvery int
	}{{1000, 1}, {1000, 10}, {100000, 1}, {100000, 10}} {
		n := bc.endpoints
		b.Run(fmt.Sprintf("%dk_endpoints/match_1_in_%d", n/1000, bc.matchEvery), func(b *testing.B) {
			e := newEnv(b)
			tokens := e.bulkEndpoints(n)
			key := e.keys.Events(testChain)
			ctx := context.Background()
			// Publish everything first (ingest's work, not measured).
			for start := 0; start < b.N; start += 1000 {
				cmds := make(rueidis.Commands, 0, 1000)
				for i := start; i < min(b.N, start+1000); i++ {
					cmds = append(cmds, xaddCmd(e.rdb, key, benchEvent(tokens, i, bc.matchEvery)))
				}
				for _, r := range e.rdb.DoMulti(ctx, cmds...) {
					if err := r.Error(); err != nil {
						b.Fatal(err)
					}
				}
			}
			loadStart := time.Now()
			var mu sync.Mutex
			var first time.Time
			r := e.start(func(m *Module) {
				m.onQueued = func(string, time.Time) {
					mu.Lock()
					if first.IsZero() {
						first = time.Now()
					}
					mu.Unlock()
				}
			})
			indexLoad := time.Since(loadStart)
			b.ResetTimer()
			start := time.Now()
			cpu0 := cpuTime()
			deadline := time.Now().Add(10 * time.Minute)
			for !e.drained() {
				if time.Now().After(deadline) {
					b.Fatal("not drained")
				}
				time.Sleep(5 * time.Millisecond)
			}
			elapsed := time.Since(start)
			cpu := cpuTime() - cpu0
			b.StopTimer()
			r.stop()
			if got, want := e.count(""), (b.N+bc.matchEvery-1)/bc.matchEvery; got != want {
				b.Fatalf("%d messages for %d events, want %d", got, b.N, want)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
			b.ReportMetric(float64(e.count(""))/elapsed.Seconds(), "messages/s")
			b.ReportMetric(indexLoad.Seconds(), "startup-s")
			// This process's CPU per event (the module, its Redis and
			// Postgres clients, the drain polling): not Postgres's or Redis's.
			b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/event")
		})
	}
}

// BenchmarkLatency publishes 1,000 events/s (one every millisecond) and
// reports the stream-entry -> queued latency: from just before XADD to the
// moment the message is committed and its delivery job queued.
func BenchmarkLatency(b *testing.B) {
	e := newEnv(b)
	tokens := e.bulkEndpoints(1000)
	key := e.keys.Events(testChain)
	var mu sync.Mutex
	queued := map[string]time.Time{}
	done := make(chan struct{})
	r := e.start(func(m *Module) {
		m.onQueued = func(id string, at time.Time) {
			mu.Lock()
			queued[id] = at
			if len(queued) == b.N {
				close(done)
			}
			mu.Unlock()
		}
	})
	defer r.stop()
	ctx := context.Background()
	sent := make(map[string]time.Time, b.N)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if d := time.Until(start.Add(time.Duration(i) * time.Millisecond)); d > 0 {
			time.Sleep(d)
		}
		t0 := time.Now()
		id, err := e.rdb.Do(ctx, xaddCmd(e.rdb, key, benchEvent(tokens, i, 1))).ToString()
		if err != nil {
			b.Fatal(err)
		}
		sent[id] = t0
	}
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		b.Fatal("not all events queued")
	}
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	lat := make([]time.Duration, 0, len(sent))
	for id, t0 := range sent {
		if q, ok := queued[id]; ok {
			lat = append(lat, q.Sub(t0))
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
}
