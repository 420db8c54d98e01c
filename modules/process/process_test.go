package process

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/rueidis"

	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/testenv"
)

const (
	token = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
	other = "0xdac17f958d2ee523a2206206994597c13d831ec7"
	alice = "0x9c0649d7325990d98375f7864ea167b5eadcd46a"
	bob   = "0xf848e97469538830b0b147152524184a255b9106"
)

func intp(n int) *int { return &n }

func TestMatchedLogBecomesPayloadV1MessageAndDeliveryJob(t *testing.T) {
	e := newEnv(t)
	ep := e.endpoint(endpoint.Input{Filter: hook.Filter{Addresses: []string{token},
		Events: []string{"Transfer(address,address,uint256)"}, Where: []string{"value >= 1000"}}})
	e.start()
	big := transfer("aa", 100, 4, token, alice, bob, 5000)
	small := transfer("aa", 100, 5, token, alice, bob, 10)
	elsewhere := transfer("aa", 100, 6, other, alice, bob, 5000)
	e.publish(big, small, elsewhere)
	e.eventually("stream drained", e.drained)
	msgs := e.messages(ep.ID)
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1: %+v", len(msgs), msgs)
	}
	m := msgs[0]
	if m.EventID != big.ID || m.Type != hook.TypeLog || m.WebhookID != big.ID || m.State != hook.StatePending {
		t.Fatalf("message %+v", m)
	}
	var got map[string]any
	if err := json.Unmarshal(m.Payload, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"id": big.ID, "type": "log", "api_version": "1",
		"chain":       map[string]any{"id": float64(testChain), "name": "devnet"},
		"block":       map[string]any{"number": float64(100), "hash": big.Block.Hash, "timestamp": float64(1700000100)},
		"transaction": map[string]any{"hash": big.Transaction.Hash, "index": float64(4)},
		"log": map[string]any{"address": token, "topics": []any{transferTopic, addrWord(alice), addrWord(bob)},
			"data": big.Log.Data, "index": float64(4)},
		"decoded": map[string]any{"name": "Transfer", "signature": "Transfer(address,address,uint256)",
			"args": map[string]any{"from": alice, "to": bob, "value": "5000"}},
		"confirmations": float64(0),
		"endpoint_id":   ep.ID,
	}
	if !reflect.DeepEqual(got, want) {
		gb, _ := json.MarshalIndent(got, "", " ")
		t.Fatalf("payload\n%s", gb)
	}
	// The stored body is sent byte for byte, in the documented key order.
	if !strings.HasPrefix(string(m.Payload), `{"id":"`+big.ID+`","type":"log","api_version":"1","chain":`) {
		t.Fatalf("stored payload is not in the documented order: %s", m.Payload)
	}
	if jobs := e.jobs(); jobs[m.ID] != 1 || len(jobs) != 1 {
		t.Fatalf("jobs %v, want one for %s", jobs, m.ID)
	}
	entries, _ := e.rdb.Do(context.Background(), e.rdb.B().Xrange().Key(e.keys.DeliverJobs()).Start("-").End("+").Build()).AsXRange()
	if entries[0].FieldValues["endpoint_id"] != ep.ID {
		t.Fatalf("job fields %v", entries[0].FieldValues)
	}
}

func TestUndecodableLogIsDeliveredRawWithDecodeError(t *testing.T) {
	e := newEnv(t)
	ep := e.endpoint(endpoint.Input{Filter: hook.Filter{Addresses: []string{token}}})
	e.start()
	bad := transfer("aa", 7, 0, token, alice, bob, 1)
	bad.Log.Data = "0x01"
	unknown := transfer("aa", 7, 1, token, alice, bob, 1)
	unknown.Log.Topics[0] = "0x" + strings.Repeat("ab", 32)
	e.publish(bad, unknown)
	e.eventually("both messages", func() bool { return e.count(ep.ID) == 2 })
	for _, m := range e.messages(ep.ID) {
		var p map[string]any
		_ = json.Unmarshal(m.Payload, &p)
		if p["decoded"] != nil || p["decode_error"] == nil || p["decode_error"] == "" {
			t.Fatalf("payload %s", m.Payload)
		}
	}
}

// The reorg scenario: block 100 and 101 of branch aa carry matching logs;
// blocks 100..101 are then orphaned (removed entries, as ingest publishes
// them) and branch bb replaces them and grows to 105.
func TestReorgConfirmedEndpointsNeverGetOrphansAndZeroConfGetRemoved(t *testing.T) {
	e := newEnv(t)
	fast := e.endpoint(endpoint.Input{Filter: hook.Filter{Addresses: []string{token}}})
	safe := e.endpoint(endpoint.Input{Filter: hook.Filter{Addresses: []string{token}}, Confirmations: intp(3)})
	e.start()

	a100 := transfer("aa", 100, 0, token, alice, bob, 1)
	a101 := transfer("aa", 101, 0, token, alice, bob, 2)
	e.publish(a100, a101)
	e.eventually("zero-conf got both orphan-to-be logs", func() bool { return e.count(fast.ID) == 2 })
	if n := e.count(safe.ID); n != 0 {
		t.Fatalf("confirmed endpoint got %d messages before 3 confirmations", n)
	}

	// Reorg: remove 101 then 100, publish the new branch.
	b100 := transfer("bb", 100, 0, token, alice, bob, 1)
	b101 := transfer("bb", 101, 0, token, alice, bob, 2)
	e.publish(removed(a101), removed(a100), b100, b101)
	for n := uint64(102); n <= 105; n++ {
		e.publish(transfer("bb", n, 0, other, alice, bob, 9)) // unmatched logs move the head
	}
	e.eventually("confirmed endpoint got the canonical logs", func() bool { return e.count(safe.ID) == 2 })
	e.eventually("stream drained", e.drained)

	got := map[string][]string{}
	for _, m := range e.messages("") {
		got[m.EndpointID] = append(got[m.EndpointID], m.Type+" "+m.EventID)
	}
	wantFast := []string{"log " + a100.ID, "log.removed " + a100.ID, "log " + b100.ID, "log " + a101.ID, "log.removed " + a101.ID, "log " + b101.ID}
	sort.Strings(wantFast)
	sort.Strings(got[fast.ID])
	if !reflect.DeepEqual(got[fast.ID], wantFast) {
		t.Fatalf("zero-conf endpoint got\n%v\nwant\n%v", got[fast.ID], wantFast)
	}
	wantSafe := []string{"log " + b100.ID, "log " + b101.ID}
	sort.Strings(got[safe.ID])
	if !reflect.DeepEqual(got[safe.ID], wantSafe) {
		t.Fatalf("confirmed endpoint got %v, want %v", got[safe.ID], wantSafe)
	}
	for _, m := range e.messages(safe.ID) {
		var p Payload
		_ = json.Unmarshal(m.Payload, &p)
		if p.Confirmations < 3 {
			t.Fatalf("released with %d confirmations", p.Confirmations)
		}
	}
	for _, m := range e.messages(fast.ID) {
		if m.Type == hook.TypeLogRemoved && m.WebhookID != m.EventID+":removed" {
			t.Fatalf("log.removed webhook id %q", m.WebhookID)
		}
	}
}

func TestRemovalBeforeTheLogSuppressesIt(t *testing.T) {
	// Whether the removal and the log arrive in one read or in two must
	// not matter: both are forced here, not left to timing.
	for _, split := range []bool{false, true} {
		name := "one read"
		if split {
			name = "two reads"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			fast := e.endpoint(endpoint.Input{Filter: hook.Filter{Addresses: []string{token}}})
			// Held one block: the later log would release it.
			held := e.endpoint(endpoint.Input{Filter: hook.Filter{Addresses: []string{token}}, Confirmations: intp(1)})
			e.cfg.Process.Workers = 1 // one reader: entries are handled in stream order
			ev := transfer("cc", 50, 3, token, alice, bob, 1)
			later := transfer("cc", 51, 0, token, alice, bob, 2)
			// As when a dead consumer's log entry is reclaimed after its removal was handled.
			if split {
				e.start()
				e.publish(removed(ev))
				e.eventually("the removal handled", e.drained)
				e.publish(ev, later)
			} else {
				// Published before process starts: its first read takes all three.
				e.publish(removed(ev), ev, later)
				e.start()
			}
			e.eventually("the later log", func() bool { return e.count(fast.ID) >= 1 })
			e.eventually("stream drained", e.drained)
			if msgs := e.messages(fast.ID); len(msgs) != 1 || msgs[0].EventID != later.ID {
				t.Fatalf("removed-before-sent log was delivered: %+v", msgs)
			}
			var st string
			if err := e.pool.QueryRow(context.Background(), `SELECT state FROM process_holds WHERE endpoint_id = $1 AND event_id = $2`,
				held.ID, ev.ID).Scan(&st); err != nil || st != "removed" {
				t.Fatalf("hold of the removed log for the held endpoint: %q %v, want removed", st, err)
			}
			if msgs := e.messages(held.ID); len(msgs) != 0 {
				t.Fatalf("held endpoint got %+v, want nothing (removed; the later log is not deep enough)", msgs)
			}
		})
	}
}

// Two processes share the stream. B reads a removal and hangs (then dies)
// before committing it; A meanwhile handles later blocks that would confirm
// the removed event. A must not release it: the safe head counts only
// reads with no earlier entry pending anywhere in the group.
func TestRemovalPendingInAnotherProcessHoldsBackRelease(t *testing.T) {
	e := newEnv(t)
	safe := e.endpoint(endpoint.Input{Filter: hook.Filter{Addresses: []string{token}}, Confirmations: intp(3)})
	holdState := func(eventID string) string {
		var st string
		_ = e.pool.QueryRow(context.Background(), `SELECT state FROM process_holds WHERE endpoint_id = $1 AND event_id = $2`,
			safe.ID, eventID).Scan(&st)
		return st
	}

	e.cfg.Process.ClaimIdle = 3 * time.Second // longer than A's wait below: B's entry stays B's
	gotRemoval := make(chan struct{})
	var once sync.Once
	consumerA, workers := e.cfg.Process.Consumer, e.cfg.Process.Workers
	e.cfg.Process.Consumer, e.cfg.Process.Workers = consumerA+"-b", 1 // B's only reader hangs
	b := e.start(func(m *Module) {
		m.beforeHandle = func(ctx context.Context, entries []rueidis.XRangeEntry) {
			for _, en := range entries {
				if en.FieldValues["type"] == hook.TypeLogRemoved {
					once.Do(func() { close(gotRemoval) })
					<-ctx.Done() // hangs until killed: never commits
					return
				}
			}
		}
	})
	orphan := transfer("aa", 100, 0, token, alice, bob, 1)
	e.publish(orphan)
	e.eventually("orphan-to-be held", func() bool { return holdState(orphan.ID) == "held" })
	e.publish(removed(orphan))
	select {
	case <-gotRemoval:
	case <-time.After(30 * time.Second):
		t.Fatal("process B never read the removal")
	}

	e.cfg.Process.Consumer, e.cfg.Process.Workers = consumerA, workers
	e.start()
	canonical := transfer("bb", 105, 0, token, alice, bob, 2)
	e.publish(canonical, transfer("bb", 110, 0, other, alice, bob, 3))
	e.eventually("A handled the later blocks", func() bool { return e.pending() == 1 }) // only B's removal
	// Give A's releaser many passes (every 50 ms) at a head of 110.
	time.Sleep(20 * e.cfg.Process.ReleaseInterval)
	if n := e.count(safe.ID); n != 0 {
		for _, m := range e.messages(safe.ID) {
			t.Errorf("released %s %s while an earlier removal was uncommitted", m.Type, m.EventID)
		}
		t.FailNow()
	}

	b.stop() // B dies; A reclaims its removal once idle
	e.eventually("removal reclaimed and committed", func() bool { return holdState(orphan.ID) == "removed" })
	e.eventually("the canonical event released", func() bool { return e.count(safe.ID) == 1 })
	e.eventually("stream drained", e.drained)
	if msgs := e.messages(safe.ID); len(msgs) != 1 || msgs[0].EventID != canonical.ID || msgs[0].Type != hook.TypeLog {
		t.Fatalf("confirmed endpoint got %d messages, want only the canonical log", len(msgs))
	}
}

// An application over its monthly quota still gets every message, stored
// as quota_exceeded and not queued: the quota release queues it later.
func TestOverQuotaMessagesAreKeptButNotQueued(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.pool.Exec(ctx, `INSERT INTO plans (id, name, monthly_quota, max_endpoints) VALUES ('tiny', 'Tiny', 5, 0)`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, `UPDATE applications SET plan_id = 'tiny' WHERE id = $1`, e.app); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, `INSERT INTO usage (app_id, month, deliveries) VALUES ($1, date_trunc('month', now() AT TIME ZONE 'UTC')::date, 5)`, e.app); err != nil {
		t.Fatal(err)
	}
	fast := e.endpoint(endpoint.Input{Filter: hook.Filter{Addresses: []string{token}}})
	safe := e.endpoint(endpoint.Input{Filter: hook.Filter{Addresses: []string{token}}, Confirmations: intp(1)})
	e.start()
	e.publish(transfer("qq", 7, 0, token, alice, bob, 1), transfer("qq", 8, 0, other, alice, bob, 1))
	e.eventually("both endpoints got their message", func() bool { return e.count(fast.ID) == 1 && e.count(safe.ID) == 1 })
	e.eventually("stream drained", e.drained)
	jobs := e.jobs()
	for _, m := range e.messages("") {
		if m.State != hook.StateQuotaExceeded {
			t.Fatalf("message for %s in state %q, want %q", m.EndpointID, m.State, hook.StateQuotaExceeded)
		}
		if jobs[m.ID] != 0 {
			t.Fatalf("over-quota message %s was queued for delivery", m.ID)
		}
	}
}

func TestConfirmedEventsSurviveRestartWhileHeld(t *testing.T) {
	e := newEnv(t)
	safe := e.endpoint(endpoint.Input{Filter: hook.Filter{Addresses: []string{token}}, Confirmations: intp(2)})
	r := e.start()
	ev := transfer("dd", 10, 0, token, alice, bob, 1)
	e.publish(ev)
	e.eventually("stream drained", e.drained)
	r.stop()
	if n := e.count(safe.ID); n != 0 {
		t.Fatalf("released early: %d", n)
	}
	e.start()
	e.publish(transfer("dd", 12, 0, other, alice, bob, 1))
	e.eventually("held event released after restart", func() bool { return e.count(safe.ID) == 1 })
}

func TestKilledProcessorLeavesEveryMatchExactlyOnce(t *testing.T) {
	e := newEnv(t)
	eps := []hook.Endpoint{
		e.endpoint(endpoint.Input{Filter: hook.Filter{Addresses: []string{token}}}),
		e.endpoint(endpoint.Input{Filter: hook.Filter{Events: []string{"Transfer"}, Where: []string{"value >= 100"}}}),
		e.endpoint(endpoint.Input{Filter: hook.Filter{Addresses: []string{token}}, Confirmations: intp(1)}),
	}
	e.cfg.Process.ReadCount = 25
	var evs []hook.Event
	want := map[string]int{}
	for i := range 400 {
		addr := token
		if i%3 == 0 {
			addr = other
		}
		ev := transfer("ee", uint64(1000+i/4), uint(i%4), addr, alice, bob, int64(i))
		evs = append(evs, ev)
		if addr == token {
			want[eps[0].ID]++
			want[eps[2].ID]++ // confirmed by the block published after the crashes
		}
		if i >= 100 {
			want[eps[1].ID]++
		}
	}
	e.publish(evs...)

	// Crash 1: killed between commit and queueing, several times.
	for crash := 0; crash < 3; crash++ {
		var once sync.Once
		kill := make(chan struct{})
		r := e.start(func(m *Module) {
			m.afterCommit = func(ctx context.Context) {
				once.Do(func() { close(kill) })
				<-ctx.Done() // killed before its jobs are queued and its entries acknowledged
			}
		})
		<-kill
		r.cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Fatal("module did not stop")
		}
	}
	// Crash 2: cancelled at an arbitrary moment.
	r := e.start()
	time.Sleep(30 * time.Millisecond)
	r.cancel()
	<-r.done

	// A different consumer takes over what the dead one left (XAUTOCLAIM).
	e.cfg.Process.Consumer = "successor-" + randHex(3)
	e.start()
	// The chain goes on: a later block confirms what was held.
	e.publish(transfer("ee", 1100, 0, other, alice, bob, 0))
	e.eventually("stream drained", e.drained)
	e.eventually("held events released", func() bool { return e.count(eps[2].ID) == want[eps[2].ID] })
	for _, ep := range eps {
		if n := e.count(ep.ID); n != want[ep.ID] {
			t.Errorf("endpoint %s: %d messages, want %d", ep.ID, n, want[ep.ID])
		}
	}
	var dups int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM (SELECT endpoint_id, event_id, type FROM messages
		GROUP BY 1, 2, 3 HAVING count(*) > 1) d`).Scan(&dups); err != nil || dups != 0 {
		t.Fatalf("duplicate messages: %d %v", dups, err)
	}
	// A release commits its messages before it queues their jobs, so the
	// count above can be reached a moment before the last jobs are in the
	// stream: wait for them (a message left without a job still fails).
	withoutJob := func() *message {
		jobs := e.jobs()
		for _, m := range e.messages("") {
			if m.State == hook.StatePending && jobs[m.ID] == 0 {
				return &m
			}
		}
		return nil
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		m := withoutJob()
		if m == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pending message %s (endpoint %s, event %s, %s) has no delivery job; endpoints %s %s %s", m.ID, m.EndpointID, m.EventID, m.Type, eps[0].ID, eps[1].ID, eps[2].ID)
		}
	}
}

func TestEndpointChangesAreMatchedWithoutRestart(t *testing.T) {
	e := newEnv(t)
	e.cfg.Process.RefreshInterval = time.Hour // only NOTIFY/PUBLISH can refresh
	r := e.start()
	ctx := context.Background()
	ep := e.endpoint(endpoint.Input{Filter: hook.Filter{Addresses: []string{token}}})
	block := uint64(1)
	publishUntil := func(what string, addr string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out: %s", what)
			}
			e.publish(transfer("ff", block, 0, addr, alice, bob, 1))
			block++
			time.Sleep(100 * time.Millisecond)
		}
	}
	publishUntil("new endpoint matched", token, func() bool { return e.count(ep.ID) > 0 })

	addrs := []string{other}
	f := ep.Filter
	f.Addresses = addrs
	if _, err := e.svc.Update(ctx, hook.Operator, e.app, ep.ID, endpoint.Patch{Filter: &f}); err != nil {
		t.Fatal(err)
	}
	before := e.count(ep.ID)
	publishUntil("changed filter matched", other, func() bool { return e.count(ep.ID) > before })

	if _, err := e.svc.Disable(ctx, hook.Operator, e.app, ep.ID, "test"); err != nil {
		t.Fatal(err)
	}
	// Once the disable is applied, publishing more changes nothing.
	e.eventually("index dropped the endpoint", func() bool { return r.m.ix.size() == 0 })
	e.eventually("stream drained", e.drained)
	n := e.count(ep.ID)
	e.publish(transfer("ff", block+1, 0, other, alice, bob, 1))
	e.eventually("stream drained", e.drained)
	if e.count(ep.ID) != n {
		t.Fatal("disabled endpoint still matched")
	}
}

// TestEndpointCreatedAsProcessStartsIsMatched creates an endpoint after
// process loaded its index and before it listens for changes (as the demo
// seeds its endpoint while serve --all starts): the announcement is missed,
// so only a load after subscribing can see it; with the periodic reload an
// hour away, the endpoint would go unmatched for that hour.
func TestEndpointCreatedAsProcessStartsIsMatched(t *testing.T) {
	e := newEnv(t)
	e.cfg.Process.RefreshInterval = time.Hour
	var ep hook.Endpoint
	r := e.start(func(m *Module) {
		m.afterLoad = func() { ep = e.endpoint(endpoint.Input{Filter: hook.Filter{Addresses: []string{token}}}) }
	})
	e.eventually("endpoint created during start indexed", func() bool { return r.m.ix.get(ep.ID) != nil })
	e.publish(transfer("ee", 1, 0, token, alice, bob, 1))
	e.eventually("endpoint created during start matched", func() bool { return e.count(ep.ID) > 0 })
}

func TestBatchingEndpointGetsBatchPayloads(t *testing.T) {
	e := newEnv(t)
	ep := e.endpoint(endpoint.Input{Filter: hook.Filter{Addresses: []string{token}}, BatchMax: 3, BatchWaitMS: 300})
	e.start()
	var evs []hook.Event
	for i := range 7 {
		evs = append(evs, transfer("ab", uint64(200+i), 0, token, alice, bob, int64(i)))
	}
	e.publish(evs...)
	e.eventually("three batches", func() bool { return e.count(ep.ID) == 3 })
	seen := map[string]bool{}
	sizes := []int{}
	for _, m := range e.messages(ep.ID) {
		var b BatchPayload
		if err := json.Unmarshal(m.Payload, &b); err != nil || b.Type != "batch" || m.Type != hook.TypeBatch || b.ID != m.EventID || m.WebhookID != b.ID {
			t.Fatalf("batch message %+v %s", m, m.Payload)
		}
		sizes = append(sizes, len(b.Events))
		for _, raw := range b.Events {
			var p Payload
			_ = json.Unmarshal(raw, &p)
			if seen[p.ID] || p.EndpointID != ep.ID || p.Decoded == nil {
				t.Fatalf("event in batch: %s", raw)
			}
			seen[p.ID] = true
		}
	}
	sort.Ints(sizes)
	if fmt.Sprint(sizes) != "[1 3 3]" || len(seen) != 7 {
		t.Fatalf("batch sizes %v, events %d", sizes, len(seen))
	}
}

// Consumers of processes gone for good are deleted once idle with nothing
// pending; one still holding entries is kept until they are reclaimed.
func TestIdleConsumersWithNothingPendingAreDeleted(t *testing.T) {
	e := newEnv(t)
	e.endpoint(endpoint.Input{Filter: hook.Filter{Addresses: []string{token}}})
	r := e.start()
	ctx := context.Background()
	key := e.keys.Events(testChain)
	for _, c := range []string{"gone-empty", "gone-busy"} {
		if err := e.rdb.Do(ctx, e.rdb.B().XgroupCreateconsumer().Key(key).Group(Group).Consumer(c).Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	e.publish(transfer("ic", 1, 0, token, alice, bob, 1))
	e.eventually("stream drained", e.drained)
	r.stop() // so no reader of ours races gone-busy for the next entry
	// gone-busy takes the next entry and never acknowledges it. A blocking
	// read of the stopped process may still be waiting in Redis (cancelling
	// it client-side does not end it there) and take the entry first:
	// gone-busy then claims it from that consumer.
	e.publish(transfer("ic", 2, 0, token, alice, bob, 1))
	if err := e.rdb.Do(ctx, e.rdb.B().Xreadgroup().Group(Group, "gone-busy").Count(10).Streams().Key(key).Id(">").Build()).Error(); err != nil && !rueidis.IsRedisNil(err) {
		t.Fatal(err)
	}
	if err := e.rdb.Do(ctx, e.rdb.B().Xautoclaim().Key(key).Group(Group).Consumer("gone-busy").MinIdleTime("0").Start("0-0").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	dropped, err := r.m.dropIdleConsumers(ctx, testChain, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(dropped, []string{"gone-empty"}) {
		t.Fatalf("deleted %v, want only gone-empty (gone-busy holds an entry; %s is this process)", dropped, e.cfg.Process.Consumer)
	}
	if p := e.pending(); p != 1 {
		t.Fatalf("%d entries pending after the cleanup, want gone-busy's 1", p)
	}
}

// While deliver's jobs backlog is at process.max_queued_jobs, process reads
// no new events (they wait in the stream); once it shrinks, it goes on.
func TestProcessHoldsBackWhileDeliveryBacklogIsFull(t *testing.T) {
	e := newEnv(t)
	e.cfg.Process.MaxQueuedJobs = 1000
	ep := e.endpoint(endpoint.Input{Filter: hook.Filter{Addresses: []string{token}}})
	ctx := context.Background()
	cmds := make(rueidis.Commands, 0, 1000)
	for range 1000 {
		cmds = append(cmds, e.rdb.B().Xadd().Key(e.keys.DeliverJobs()).Id("*").FieldValue().FieldValue("message_id", "msg_x").Build())
	}
	for _, r := range e.rdb.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			t.Fatal(err)
		}
	}
	r := e.start()
	e.publish(transfer("hb", 1, 0, token, alice, bob, 1))
	e.eventually("process to hold back", func() bool { return testutil.ToFloat64(r.m.met.heldBack) == 1 })
	time.Sleep(time.Second) // it would have handled the event by now
	if n := e.count(ep.ID); n != 0 {
		t.Fatalf("%d messages created while the delivery backlog was full", n)
	}
	if lag, _ := e.lastDelivered(); lag != 1 {
		t.Fatalf("lag %d: the event should wait unread in the stream", lag)
	}
	if err := e.rdb.Do(ctx, e.rdb.B().Xtrim().Key(e.keys.DeliverJobs()).Maxlen().Threshold("0").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	e.eventually("the event handled once deliver caught up", func() bool { return e.count(ep.ID) == 1 })
	if testutil.ToFloat64(r.m.met.heldBack) != 0 {
		t.Fatal("still held back")
	}
}

// Postgres connections dropped again and again while process works (as in a
// restart or failover): every match still ends up exactly once, with its job.
func TestPostgresGoingAwayLosesNothingAndDuplicatesNothing(t *testing.T) {
	e := newEnv(t)
	// The module gets a pool of its own, named, so only its connections
	// are dropped (not the test's).
	name := "process-under-test-" + randHex(4)
	testPool := e.pool
	e.runThroughFaults("pg", func() { e.pool = testenv.NamedPool(t, testPool, name) }, func() { e.pool = testPool },
		func() int64 { return int64(testenv.DropPostgres(t, name)) })
}

// Redis connections dropped again and again while process works (as in a
// Redis restart): every match still ends up exactly once, with its job.
func TestRedisGoingAwayLosesNothingAndDuplicatesNothing(t *testing.T) {
	e := newEnv(t)
	name := "process-under-test-" + randHex(4)
	testRedis := e.rdb
	e.runThroughFaults("rd", func() { e.rdb = testenv.NamedRedis(t, name) }, func() { e.rdb = testRedis },
		func() int64 { return testenv.DropRedis(t, testRedis, name) })
}

// runThroughFaults starts the module with its own connections (between
// useOwn and useTest), publishes 600 matching events in five rounds,
// dropping the module's connections after each, and checks that every
// match ends up exactly once, with its delivery job.
func (e *env) runThroughFaults(branch string, useOwn, useTest func(), drop func() int64) {
	t := e.t
	ep := e.endpoint(endpoint.Input{Filter: hook.Filter{Addresses: []string{token}}})
	e.cfg.Process.ReadCount = 20
	useOwn()
	r := e.start()
	useTest()
	t.Cleanup(r.stop) // runs before the module's connections close
	var evs []hook.Event
	for i := range 600 {
		evs = append(evs, transfer(branch, uint64(2000+i/6), uint(i%6), token, alice, bob, int64(i)))
	}
	killed := int64(0)
	for round := range 5 {
		e.publish(evs[round*120 : (round+1)*120]...)
		time.Sleep(5 * time.Millisecond)
		killed += drop()
	}
	if killed == 0 {
		t.Fatal("no connection of the module was dropped: the test proves nothing")
	}
	e.eventually("every match stored", func() bool { return e.count(ep.ID) == len(evs) })
	e.eventually("stream drained", e.drained)
	e.eventually("every message has its delivery job", func() bool {
		jobs := e.jobs()
		for _, m := range e.messages(ep.ID) {
			if jobs[m.ID] == 0 {
				return false
			}
		}
		return true
	})
	if n := e.count(ep.ID); n != len(evs) {
		t.Fatalf("%d messages for %d matching events", n, len(evs))
	}
}

// TestDeepReorgRetractsEventsDeliveredInBatches: a block.removed entry (a
// reorg deeper than ingest's window) retracts the events of the orphaned
// block that a batching endpoint got inside batch messages, with one
// log.removed each, as the window's log.removed entries do; a per-log
// endpoint gets its retraction too, events of other blocks none, and a
// replay of the entry inserts nothing twice.
func TestDeepReorgRetractsEventsDeliveredInBatches(t *testing.T) {
	e := newEnv(t)
	batched := e.endpoint(endpoint.Input{Filter: hook.Filter{Addresses: []string{token}}, BatchMax: 2, BatchWaitMS: 100})
	single := e.endpoint(endpoint.Input{Filter: hook.Filter{Addresses: []string{token}}})
	e.start()
	orphan := []hook.Event{transfer("dd", 300, 0, token, alice, bob, 1), transfer("dd", 300, 1, token, alice, bob, 2)}
	kept := transfer("dd", 301, 0, token, alice, bob, 3)
	e.publish(append(orphan, kept)...)
	e.eventually("two batches and three logs", func() bool { return e.count(batched.ID) == 2 && e.count(single.ID) == 3 })

	gone := hook.BlockRemoved{Block: hook.Cursor{Number: 300, Hash: orphan[0].Block.Hash, Set: true}}
	for range 2 { // the second is a replay
		f := gone.Fields()
		if err := e.rdb.Do(context.Background(), e.rdb.B().Xadd().Key(e.keys.Events(testChain)).Id("*").FieldValue().
			FieldValue("type", f["type"]).FieldValue("block", f["block"]).Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	e.eventually("entries handled", func() bool { return e.pending() == 0 && e.drained() })
	for _, ep := range []string{batched.ID, single.ID} {
		removedOf := map[string]int{}
		for _, m := range e.messages(ep) {
			if m.Type != hook.TypeLogRemoved {
				continue
			}
			var p Payload
			if err := json.Unmarshal(m.Payload, &p); err != nil || p.Type != hook.TypeLogRemoved || p.ID != m.EventID || p.EndpointID != ep {
				t.Fatalf("retraction %+v: %s", m, m.Payload)
			}
			if m.WebhookID != m.EventID+":removed" {
				t.Fatalf("retraction webhook-id %q", m.WebhookID)
			}
			removedOf[m.EventID]++
		}
		if len(removedOf) != 2 || removedOf[orphan[0].ID] != 1 || removedOf[orphan[1].ID] != 1 {
			t.Fatalf("endpoint %s: retractions %v, want one for each log of block 300", ep, removedOf)
		}
	}
}

// TestUnreadableBlockRemovedEntryIsSkippedNotFatal: a block.removed entry
// without its block is counted and skipped; later events still flow.
func TestUnreadableBlockRemovedEntryIsSkippedNotFatal(t *testing.T) {
	e := newEnv(t)
	ep := e.endpoint(endpoint.Input{Filter: hook.Filter{Addresses: []string{token}}})
	r := e.start()
	if err := e.rdb.Do(context.Background(), e.rdb.B().Xadd().Key(e.keys.Events(testChain)).Id("*").FieldValue().
		FieldValue("type", hook.TypeBlockRemoved).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	e.publish(transfer("ee", 400, 0, token, alice, bob, 1))
	e.eventually("the later event", func() bool { return e.count(ep.ID) == 1 && e.pending() == 0 })
	select {
	case <-r.done:
		t.Fatalf("process stopped: %v", r.err)
	default:
	}
}
