package app

import (
	"context"
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/rueidis"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/modules/devnet"
	"github.com/ethhook/ethhook/modules/ingest"
)

// histEnv is ingest (with its historian) and process against a devnet
// over real sockets, a fresh database and a key prefix of the shared Redis.
type histEnv struct {
	t       testing.TB
	node    *devnet.Node
	rdb     rueidis.Client
	keys    hook.Keys
	pool    *pgxpool.Pool
	svc     *endpoint.Service
	appID   string
	histOpt ingest.HistoryOptions
	rate    int // process history rate; 0 = default

	startIngest, startProcess func() (stop func())
	stopMining                func()
}

func newHistEnv(t testing.TB, dc devnet.Config, premine int) *histEnv {
	t.Helper()
	e := &histEnv{t: t, histOpt: ingest.HistoryOptions{Grace: 300 * time.Millisecond, Poll: 100 * time.Millisecond}}
	dc.ChainID = config.DevnetChainID
	e.node = devnet.New(dc)
	e.node.Mine(premine)
	s := newDevnetStack(t, e.node, stackConfig{name: "history", chain: config.Chain{ReorgDepth: 16}})
	e.rdb, e.keys, e.pool, e.svc, e.appID = s.rdb, s.keys, s.pool, s.svc, s.appID
	e.startIngest = func() func() { return s.run(s.newIngest(nil, ingest.Options{History: &e.histOpt})) }
	e.startProcess = func() func() {
		proc := s.newProcess()
		proc.SetHistoryRate(e.rate)
		return s.run(proc)
	}
	return e
}

// mine mines a block every 40ms until stopMining.
func (e *histEnv) mine() {
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				e.node.Mine(1)
			}
		}
	}()
	var once sync.Once
	e.stopMining = func() { once.Do(func() { stop(); wg.Wait() }) }
	e.t.Cleanup(e.stopMining)
}

func (e *histEnv) cursor() uint64 {
	raw, err := e.rdb.Do(context.Background(), e.rdb.B().Get().Key(e.keys.Chain(config.DevnetChainID, "cursor")).Build()).ToString()
	if err != nil {
		return 0
	}
	c, _ := hook.ParseCursor(raw)
	return c.Number
}

// waitFor polls cond (bounded: the machine is noisy, so generous).
func (e *histEnv) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitDone waits until the history is done; failed fails the test.
func (e *histEnv) waitDone(id string) {
	e.t.Helper()
	e.waitFor("history done", func() bool {
		h := e.history(id)
		if h.State == hook.HistoryFailed {
			e.t.Fatalf("history failed: %s", h.Error)
		}
		return h.State == hook.HistoryDone
	})
}

func (e *histEnv) create(in endpoint.Input) hook.Endpoint {
	e.t.Helper()
	ep, _, err := e.svc.Create(context.Background(), hook.Operator, e.appID, in)
	if err != nil {
		e.t.Fatal(err)
	}
	return ep
}

func (e *histEnv) history(id string) hook.History {
	e.t.Helper()
	h, err := endpoint.LoadHistory(context.Background(), e.pool, id)
	if err != nil || h == nil {
		e.t.Fatalf("history of %s: %v %v", id, h, err)
	}
	return *h
}

type histMsg struct {
	id, event string
	block     int64
	payload   []byte
}

// messages lists an endpoint's log messages in the order they were made:
// by transaction time (message ids are deterministic, not monotonic; see
// hook.MessageID), and within one insert in chain order.
func (e *histEnv) messages(endpointID string) []histMsg {
	e.t.Helper()
	rows, err := e.pool.Query(context.Background(), `SELECT id, event_id, block_number, payload::text FROM messages
		WHERE endpoint_id = $1 AND type = 'log' ORDER BY created_at, block_number, (payload->'log'->>'index')::int`, endpointID)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []histMsg
	for rows.Next() {
		var m histMsg
		var p string
		if err := rows.Scan(&m.id, &m.event, &m.block, &p); err != nil {
			e.t.Fatal(err)
		}
		m.payload = []byte(p)
		out = append(out, m)
	}
	return out
}

// wantEvents are the devnet's canonical log ids of addr in from..to.
func (e *histEnv) wantEvents(addr string, from, to uint64) map[string]bool {
	want := map[string]bool{}
	for _, l := range e.node.CanonicalLogs(from, to) {
		if addr == "" || strings.EqualFold(l.Address.Hex(), addr) {
			want[hook.EventID(config.DevnetChainID, l.BlockHash.Hex(), l.Index)] = true
		}
	}
	return want
}

// checkOnce fails unless the endpoint has exactly the wanted events.
func (e *histEnv) checkOnce(msgs []histMsg, want map[string]bool) {
	e.t.Helper()
	got := map[string]int{}
	for _, m := range msgs {
		got[m.event]++
	}
	var missing, extra, doubled []string
	for id := range want {
		if got[id] == 0 {
			missing = append(missing, id)
		}
	}
	for id, n := range got {
		if !want[id] {
			extra = append(extra, id)
		}
		if n > 1 {
			doubled = append(doubled, id)
		}
	}
	sort.Strings(missing)
	if len(missing)+len(extra)+len(doubled) > 0 {
		e.t.Fatalf("want %d events once: %d missing (first %v), %d not canonical, %d doubled", len(want), len(missing), first(missing), len(extra), len(doubled))
	}
}

func first(s []string) []string { return s[:min(3, len(s))] }

// TestHistoryMergesWithLiveTrafficEveryEventOnce creates an endpoint with
// from_block far behind the head while blocks keep coming: it gets every
// matching event from from_block to the end exactly once, the history part
// in chain order, with the payload the live path sends for the same event;
// the node refuses ranges over 8 blocks (-32005), so the history's ranges
// must be split to finish at all.
func TestHistoryMergesWithLiveTrafficEveryEventOnce(t *testing.T) {
	e := newHistEnv(t, devnet.Config{Seed: 41, LogsPerBlock: 3, MaxLogRange: 8}, 150)
	// A live endpoint for every log, from before ingest starts: it has
	// the live payload of every event from ingest's first block on.
	live := e.create(endpoint.Input{URL: "https://receiver.example/live", Filter: hook.Filter{Chains: []uint64{config.DevnetChainID}}})
	e.startIngest()
	e.startProcess()
	e.waitFor("ingest's first block", func() bool { return e.cursor() > 0 })
	start := e.cursor()
	e.mine()
	e.waitFor("30 live blocks", func() bool { return e.cursor() >= start+30 })

	addr := strings.ToLower(e.node.Contracts()[0].Hex())
	from := uint64(1)
	created := e.cursor()
	ep := e.create(endpoint.Input{URL: "https://receiver.example/hist", FromBlock: &from,
		Filter: hook.Filter{Chains: []uint64{config.DevnetChainID}, Addresses: []string{addr}}})
	if ep.History == nil || ep.History.State != hook.HistoryPending {
		t.Fatalf("created endpoint's history: %+v", ep.History)
	}
	e.waitDone(ep.ID)
	h := e.history(ep.ID)
	if h.ToBlock == nil || *h.ToBlock < created || h.BlocksDone != h.BlocksTotal || h.Events == 0 {
		t.Fatalf("finished history: %+v (endpoint created at block %d)", h, created)
	}
	// Live traffic after the history, then stop and let process catch up.
	after := e.cursor()
	e.waitFor("20 more blocks", func() bool { return e.cursor() >= after+20 })
	e.stopMining()
	head := e.node.Head().Number
	e.waitFor("ingest at the head", func() bool { return e.cursor() == head })
	want := e.wantEvents(addr, from, head)
	e.waitFor("every event", func() bool { return len(e.messages(ep.ID)) >= len(want) })
	time.Sleep(300 * time.Millisecond) // a late duplicate would show now
	msgs := e.messages(ep.ID)
	e.checkOnce(msgs, want)

	// Only history made the messages of blocks well before the creation:
	// they were made in chain order.
	var prev histMsg
	for _, m := range msgs {
		if uint64(m.block) > created-20 {
			continue
		}
		if prev.id != "" && (m.block < prev.block || (m.block == prev.block && logIndex(t, m.payload) < logIndex(t, prev.payload))) {
			t.Fatalf("history out of chain order: %s (block %d) after %s (block %d)", m.event, m.block, prev.event, prev.block)
		}
		prev = m
	}
	// The same event through history and live: the same payload but for
	// the endpoint id and the confirmations at the time it was made.
	liveMsgs := map[string]histMsg{}
	for _, m := range e.messages(live.ID) {
		liveMsgs[m.event] = m
	}
	compared := 0
	for _, m := range msgs {
		l, ok := liveMsgs[m.event]
		if !ok || uint64(m.block) > created-20 {
			continue
		}
		a, b := strip(t, m.payload), strip(t, l.payload)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("event %s: history payload %s, live payload %s", m.event, m.payload, l.payload)
		}
		compared++
	}
	if compared == 0 {
		t.Fatal("no event was made by both the history and the live path")
	}
}

func logIndex(t *testing.T, payload []byte) uint {
	var p struct {
		Log struct {
			Index uint `json:"index"`
		} `json:"log"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		t.Fatal(err)
	}
	return p.Log.Index
}

func strip(t *testing.T, payload []byte) map[string]any {
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "endpoint_id")
	delete(m, "confirmations")
	return m
}

// TestHistoryResumesAfterRestart stops ingest and process in the middle of
// a history (process slowed down) and starts new ones: the history
// resumes from its durable progress and every event arrives exactly once.
func TestHistoryResumesAfterRestart(t *testing.T) {
	e := newHistEnv(t, devnet.Config{Seed: 42, LogsPerBlock: 3}, 300)
	e.rate = 100 // events/s: slow enough to stop mid-way
	e.histOpt.MaxQueued = 20
	stopIngest := e.startIngest()
	stopProcess := e.startProcess()
	e.waitFor("ingest's first block", func() bool { return e.cursor() > 0 })
	from := uint64(1)
	ep := e.create(endpoint.Input{URL: "https://receiver.example/hist", FromBlock: &from,
		Filter: hook.Filter{Chains: []uint64{config.DevnetChainID}}})
	e.waitFor("some history progress", func() bool { return e.history(ep.ID).BlocksDone > 0 })
	stopIngest()
	stopProcess()
	h := e.history(ep.ID)
	if h.State != hook.HistoryRunning || h.BlocksDone >= h.BlocksTotal {
		t.Fatalf("history not stopped in the middle: %+v", h)
	}
	e.rate = 0
	e.startIngest()
	e.startProcess()
	e.waitDone(ep.ID)
	h = e.history(ep.ID)
	want := e.wantEvents("", from, *h.ToBlock)
	e.waitFor("every event", func() bool { return len(e.messages(ep.ID)) >= len(want) })
	msgs := e.messages(ep.ID)
	inHistory := msgs[:0]
	for _, m := range msgs {
		if uint64(m.block) <= *h.ToBlock {
			inHistory = append(inHistory, m)
		}
	}
	e.checkOnce(inHistory, want)
}

// TestHistoryOverItsEventBoundFails: a history whose range holds more
// events than the bound ends failed with an error naming the bound, and
// the endpoint keeps its live delivery.
func TestHistoryOverItsEventBoundFails(t *testing.T) {
	e := newHistEnv(t, devnet.Config{Seed: 43, LogsPerBlock: 3, FixedLogs: true}, 100)
	e.histOpt.MaxEvents = 50
	e.startIngest()
	e.startProcess()
	e.waitFor("ingest's first block", func() bool { return e.cursor() > 0 })
	from := uint64(1)
	ep := e.create(endpoint.Input{URL: "https://receiver.example/hist", FromBlock: &from, Filter: hook.Filter{Chains: []uint64{config.DevnetChainID}}})
	e.waitFor("history failed", func() bool { return e.history(ep.ID).State == hook.HistoryFailed })
	if h := e.history(ep.ID); !strings.Contains(h.Error, "MaxHistoryEvents") || !strings.Contains(h.Error, "50") {
		t.Fatalf("failed history's error: %q", h.Error)
	}
	start := e.cursor()
	e.mine()
	e.waitFor("live messages after the failure", func() bool {
		for _, m := range e.messages(ep.ID) {
			if uint64(m.block) > start {
				return true
			}
		}
		return false
	})
}
