package app

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/rueidis"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/modules/devnet"
	"github.com/ethhook/ethhook/modules/ingest"
)

// Finality tests: ingest and process against a devnet over real sockets,
// one endpoint per stage. Blocks are mined by the test (no timer), so
// every assertion is on what was delivered, never on timing.

const (
	finSafeDepth      = 4
	finFinalizedDepth = 8
)

// switchable serves the devnet the test points it at: the node under
// ingest can be replaced by another one on the same URL.
type switchable struct{ h atomic.Pointer[http.Handler] }

func (s *switchable) ServeHTTP(w http.ResponseWriter, r *http.Request) { (*s.h.Load()).ServeHTTP(w, r) }

func (s *switchable) set(n *devnet.Node) {
	h := n.Handler()
	s.h.Store(&h)
}

type finPipeline struct {
	t    *testing.T
	node *devnet.Node
	sw   *switchable
	rdb  rueidis.Client
	keys hook.Keys
	pool *pgxpool.Pool
	reg  *prometheus.Registry
	eps  map[string]string // name (latest, safe, finalized, twophase) -> endpoint id
}

func newFinPipeline(t *testing.T, dcfg devnet.Config, reorgDepth, maxReorgDepth int) *finPipeline {
	t.Helper()
	p := &finPipeline{t: t, reg: prometheus.NewRegistry(), sw: &switchable{}, eps: map[string]string{}}
	dcfg.ChainID = config.DevnetChainID
	p.node = devnet.New(dcfg)
	p.sw.set(p.node)
	zero := uint64(0)
	s := newDevnetStack(t, p.node, stackConfig{name: "finality", handler: p.sw,
		chain: config.Chain{ReorgDepth: reorgDepth, MaxReorgDepth: maxReorgDepth, StartBlock: &zero},
		tune: func(c *config.Config) {
			c.Ingest.ReconnectMax = 300 * time.Millisecond
			c.Ingest.HeadPollInterval = 100 * time.Millisecond
			c.Ingest.FinalityPollInterval = 50 * time.Millisecond
		}})
	p.rdb, p.keys, p.pool = s.rdb, s.keys, s.pool

	ctx := context.Background()
	for _, c := range []struct {
		name, finality string
		twoPhase       bool
	}{{"latest", "latest", false}, {"safe", "safe", false}, {"finalized", "finalized", false}, {"twophase", "finalized", true}} {
		fin := c.finality
		ep, _, err := s.svc.Create(ctx, hook.Operator, s.appID, endpoint.Input{URL: "https://receiver.example/hook",
			Filter: hook.Filter{Chains: []uint64{config.DevnetChainID}}, Finality: &fin, TwoPhase: c.twoPhase})
		if err != nil {
			t.Fatal(err)
		}
		if ep.Finality != c.finality || ep.TwoPhase != c.twoPhase {
			t.Fatalf("endpoint %s: finality %q two_phase %v, want %q %v", c.name, ep.Finality, ep.TwoPhase, c.finality, c.twoPhase)
		}
		p.eps[c.name] = ep.ID
	}
	s.run(s.newIngest(p.reg, ingest.Options{}))
	s.run(s.newProcess())
	return p
}

func (p *finPipeline) waitFor(what string, cond func() bool) {
	p.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			p.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *finPipeline) get(name string) string {
	s, _ := p.rdb.Do(context.Background(), p.rdb.B().Get().Key(p.keys.Chain(config.DevnetChainID, name)).Build()).ToString()
	return s
}

// finalized is the finalized block ingest published (0: none).
func (p *finPipeline) finalized() uint64 {
	_, f, _ := strings.Cut(p.get("finality"), "|")
	c, err := hook.ParseCursor(f)
	if err != nil {
		return 0
	}
	return c.Number
}

// caughtUp waits until ingest committed the node's head and process handled
// every entry and raised its head to it (a release pass ran over it).
func (p *finPipeline) caughtUp() {
	p.t.Helper()
	h := p.node.Head()
	want := hook.Cursor{Number: h.Number, Hash: strings.ToLower(h.Hash.Hex()), Set: true}.String()
	p.waitFor("ingest to commit the head "+want, func() bool { return p.get("cursor") == want })
	p.waitFor("process to handle the stream up to the head", func() bool {
		var head int64
		err := p.pool.QueryRow(context.Background(), `SELECT head FROM process_heads WHERE chain_id = $1`, config.DevnetChainID).Scan(&head)
		return err == nil && uint64(head) >= h.Number
	})
}

// delivered is the endpoint's messages: event id -> type -> count.
func (p *finPipeline) delivered(name string) map[string]map[string]int {
	p.t.Helper()
	rows, err := p.pool.Query(context.Background(), `SELECT event_id, type FROM messages WHERE endpoint_id = $1`, p.eps[name])
	if err != nil {
		p.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]map[string]int{}
	for rows.Next() {
		var id, typ string
		if err := rows.Scan(&id, &typ); err != nil {
			p.t.Fatal(err)
		}
		if out[id] == nil {
			out[id] = map[string]int{}
		}
		out[id][typ]++
	}
	return out
}

// canonical is the node's canonical log ids of blocks 0..to.
func (p *finPipeline) canonical(to uint64) map[string]bool {
	out := map[string]bool{}
	for _, l := range p.node.CanonicalLogs(0, to) {
		out[hook.EventID(config.DevnetChainID, l.BlockHash.Hex(), l.Index)] = true
	}
	return out
}

// orphaned is the log ids of every orphaned block.
func (p *finPipeline) orphaned() map[string]bool {
	out := map[string]bool{}
	for _, b := range p.node.Orphaned() {
		for _, l := range b.Logs {
			out[hook.EventID(config.DevnetChainID, l.BlockHash.Hex(), l.Index)] = true
		}
	}
	return out
}

// exactly checks that the endpoint has one message of type typ for every
// id in want and no message of that type for any other id.
func (p *finPipeline) exactly(name, typ string, want map[string]bool) {
	p.t.Helper()
	got := p.delivered(name)
	for id := range want {
		if got[id][typ] != 1 {
			p.t.Fatalf("%s endpoint: %d %s messages of %s, want 1", name, got[id][typ], typ, id)
		}
	}
	for id, types := range got {
		if types[typ] > 0 && !want[id] {
			p.t.Fatalf("%s endpoint: a %s message of %s, which it should not have", name, typ, id)
		}
	}
}

// waitExactly waits until exactly holds (deliveries at a stage arrive
// after the release pass that follows the finality entry).
func (p *finPipeline) waitExactly(name, typ string, want map[string]bool) {
	p.t.Helper()
	p.waitFor(name+" endpoint's "+typ+" messages", func() bool {
		got := p.delivered(name)
		n := 0
		for id, types := range got {
			if types[typ] > 0 {
				n++
				if !want[id] {
					return true // exactly fails below with the id
				}
			}
		}
		return n >= len(want)
	})
	p.exactly(name, typ, want)
}

// metric sums the ingest metric name with label values (all labels when nil).
func (p *finPipeline) metric(name string, labels map[string]string) float64 {
	p.t.Helper()
	mfs, err := p.reg.Gather()
	if err != nil {
		p.t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if matches(m, labels) {
				if c := m.GetCounter(); c != nil {
					sum += c.GetValue()
				}
				if g := m.GetGauge(); g != nil {
					sum += g.GetValue()
				}
			}
		}
	}
	return sum
}

func matches(m *dto.Metric, labels map[string]string) bool {
	for k, v := range labels {
		ok := false
		for _, l := range m.GetLabel() {
			if l.GetName() == k && l.GetValue() == v {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// TestFinalityStagesFollowTheNodesTags: endpoints at safe and finalized get
// exactly the logs of blocks up to the node's safe and finalized blocks;
// a stalled finalized head holds deliveries back, a jump releases them at
// once, and a tag that goes backwards never takes back what was published.
func TestFinalityStagesFollowTheNodesTags(t *testing.T) {
	p := newFinPipeline(t, devnet.Config{Seed: 71, LogsPerBlock: 2, SafeDepth: finSafeDepth, FinalizedDepth: finFinalizedDepth}, 16, 64)
	p.node.Mine(30)
	p.caughtUp()
	head := p.node.Head().Number
	p.waitFor("finalized block published", func() bool { return p.finalized() == head-finFinalizedDepth })
	p.waitExactly("finalized", hook.TypeLog, p.canonical(head-finFinalizedDepth))
	p.waitExactly("safe", hook.TypeLog, p.canonical(head-finSafeDepth))
	p.waitExactly("latest", hook.TypeLog, p.canonical(head))

	// Stalled: blocks keep coming, finalized deliveries do not.
	stalled := p.node.StallFinality().Finalized
	p.node.Mine(12)
	p.caughtUp()
	head = p.node.Head().Number
	p.waitExactly("safe", hook.TypeLog, p.canonical(stalled+finFinalizedDepth-finSafeDepth)) // safe is stalled too
	p.waitExactly("latest", hook.TypeLog, p.canonical(head))
	p.exactly("finalized", hook.TypeLog, p.canonical(stalled))

	// A jump to the head releases everything at once.
	p.node.JumpFinality(head)
	p.waitFor("the jumped finalized block published", func() bool { return p.finalized() == head })
	p.waitExactly("finalized", hook.TypeLog, p.canonical(head))

	// Backwards: the node's tag falls back below what was published; the
	// published block stays, the refusal is counted.
	p.node.ResumeFinality()
	p.node.Mine(2)
	p.caughtUp()
	p.waitFor("the backwards tag refused", func() bool {
		return p.metric("ethhook_ingest_finality_refused_total", map[string]string{"reason": "backwards"}) >= 1
	})
	if got := p.finalized(); got != head {
		t.Fatalf("published finalized block moved from %d to %d", head, got)
	}
	p.exactly("finalized", hook.TypeLog, p.canonical(head))
}

// TestRemovalsAtEveryStage: a reorg shallower than the safe distance. The
// latest endpoint got the orphaned logs and gets their log.removed; the
// safe and finalized endpoints never see them; the two-phase endpoint gets
// the log and its removal, and log.finalized only for canonical logs.
func TestRemovalsAtEveryStage(t *testing.T) {
	p := newFinPipeline(t, devnet.Config{Seed: 72, LogsPerBlock: 3, SafeDepth: finSafeDepth, FinalizedDepth: finFinalizedDepth}, 16, 64)
	p.node.Mine(20)
	p.caughtUp()
	p.waitExactly("latest", hook.TypeLog, p.canonical(p.node.Head().Number))
	p.node.Reorg(finSafeDepth - 1)
	p.node.Mine(finFinalizedDepth + 2) // every orphaned number is finalized on the new branch
	p.caughtUp()
	head := p.node.Head().Number
	orphans := p.orphaned()
	if len(orphans) == 0 {
		t.Fatal("the reorg orphaned no log")
	}
	all := p.canonical(head)
	for id := range orphans {
		all[id] = true
	}
	p.waitExactly("latest", hook.TypeLog, all)
	p.waitExactly("latest", hook.TypeLogRemoved, orphans)
	p.waitExactly("finalized", hook.TypeLog, p.canonical(head-finFinalizedDepth))
	p.waitExactly("safe", hook.TypeLog, p.canonical(head-finSafeDepth))
	p.waitExactly("twophase", hook.TypeLog, all)
	p.waitExactly("twophase", hook.TypeLogRemoved, orphans)
	p.waitExactly("twophase", hook.TypeLogFinalized, p.canonical(head-finFinalizedDepth))
	for _, name := range []string{"safe", "finalized"} {
		for id, types := range p.delivered(name) {
			if orphans[id] {
				t.Fatalf("%s endpoint got %v for orphaned log %s", name, types, id)
			}
		}
	}
}

// TestDeepReorgBeyondTheWindowRetractsFromPostgres: a reorg three times
// deeper than reorg_depth (whose entries ingest no longer has) but above
// the finalized block: every orphaned log the latest endpoint got is
// retracted, the finalized endpoint never saw one.
func TestDeepReorgBeyondTheWindowRetractsFromPostgres(t *testing.T) {
	const window, depth = 4, 12
	p := newFinPipeline(t, devnet.Config{Seed: 73, LogsPerBlock: 2, SafeDepth: 20, FinalizedDepth: 30}, window, 40)
	p.node.Mine(50)
	p.caughtUp()
	p.waitExactly("latest", hook.TypeLog, p.canonical(p.node.Head().Number))
	p.node.Reorg(depth)
	p.caughtUp()
	orphans := p.orphaned()
	p.waitExactly("latest", hook.TypeLogRemoved, orphans)
	if got := p.metric("ethhook_ingest_deep_reorgs_total", nil); got != 1 {
		t.Fatalf("deep_reorgs_total = %v, want 1", got)
	}
	head := p.node.Head().Number
	all := p.canonical(head)
	for id := range orphans {
		all[id] = true
	}
	p.exactly("latest", hook.TypeLog, all)
	for id := range p.delivered("finalized") {
		if orphans[id] {
			t.Fatalf("finalized endpoint got orphaned log %s", id)
		}
	}
}

// noRetraction checks that no endpoint got a removal and the stream holds
// no removal entry.
func (p *finPipeline) noRetraction() {
	p.t.Helper()
	var n int
	if err := p.pool.QueryRow(context.Background(), `SELECT count(*) FROM messages WHERE type = 'log.removed'`).Scan(&n); err != nil {
		p.t.Fatal(err)
	}
	if n != 0 {
		p.t.Fatalf("%d log.removed messages after a foreign node", n)
	}
	entries, err := p.rdb.Do(context.Background(), p.rdb.B().Xrange().Key(p.keys.Events(config.DevnetChainID)).Start("-").End("+").Build()).AsXRange()
	if err != nil {
		p.t.Fatal(err)
	}
	for _, e := range entries {
		if typ := e.FieldValues["type"]; typ == hook.TypeLogRemoved || typ == hook.TypeBlockRemoved {
			p.t.Fatalf("stream entry %s of type %s after a foreign node", e.ID, typ)
		}
	}
}

// TestForeignNodeWithTheSameChainIDIsRefused: the node under ingest is
// replaced by another devnet with the same chain id and another history
// (what `make run` found on its port). Ingest must refuse it, unwind
// nothing, retract nothing, and go on once the right node is back.
func TestForeignNodeWithTheSameChainIDIsRefused(t *testing.T) {
	p := newFinPipeline(t, devnet.Config{Seed: 74, LogsPerBlock: 2, SafeDepth: finSafeDepth, FinalizedDepth: finFinalizedDepth}, 16, 64)
	p.node.Mine(70)
	p.caughtUp()
	p.waitFor("finalized block published", func() bool { return p.finalized() > 0 })
	cursor := p.get("cursor")

	other := devnet.New(devnet.Config{ChainID: config.DevnetChainID, Seed: 999, LogsPerBlock: 2, SafeDepth: finSafeDepth, FinalizedDepth: finFinalizedDepth})
	other.Mine(80) // ahead of ours, so a backfill meets it first
	p.sw.set(other)
	p.node.DropConnections()
	p.waitFor("the foreign node refused", func() bool { return p.metric("ethhook_ingest_foreign_node_total", nil) >= 1 })
	other.Mine(3) // and it goes on: still refused, never applied
	p.waitFor("the foreign node refused again", func() bool { return p.metric("ethhook_ingest_foreign_node_total", nil) >= 2 })
	if got := p.get("cursor"); got != cursor {
		t.Fatalf("cursor moved from %s to %s on a foreign node", cursor, got)
	}
	p.noRetraction()

	// The right node is back: ingest goes on from where it was.
	p.sw.set(p.node)
	other.DropConnections()
	p.node.Mine(5)
	p.caughtUp()
	p.waitExactly("latest", hook.TypeLog, p.canonical(p.node.Head().Number))
	p.noRetraction()
}

// TestReorgBelowTheFinalizedBlockIsRefused: the node reorganises below the
// block it reported finalized. Nothing is unwound or retracted; the node is
// given up as broken.
func TestReorgBelowTheFinalizedBlockIsRefused(t *testing.T) {
	p := newFinPipeline(t, devnet.Config{Seed: 75, LogsPerBlock: 2, SafeDepth: finSafeDepth, FinalizedDepth: finFinalizedDepth}, 16, 64)
	p.node.Mine(40)
	p.caughtUp()
	head := p.node.Head().Number
	p.waitFor("finalized block published", func() bool { return p.finalized() == head-finFinalizedDepth })
	cursor := p.get("cursor")
	sent := p.canonical(head - finFinalizedDepth) // what the finalized endpoint gets, before the node changes it
	p.waitExactly("finalized", hook.TypeLog, sent)
	p.node.Reorg(finFinalizedDepth + 3)
	p.waitFor("the reorg below finalized refused", func() bool {
		return p.metric("ethhook_ingest_foreign_node_total", map[string]string{"reason": "contradicts_finalized"}) >= 1
	})
	if got := p.get("cursor"); got != cursor {
		t.Fatalf("cursor moved from %s to %s", cursor, got)
	}
	p.noRetraction()
	p.exactly("finalized", hook.TypeLog, sent)
}
