package ingest

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/modules/devnet"
)

// provider is one more URL for the env's chain: a second server on the
// env's own node (an honest provider that agrees) or on another node.
func (e *env) provider(n *devnet.Node) string {
	srv := httptest.NewServer(n.Handler())
	e.t.Cleanup(srv.Close)
	return wsURL(srv)
}

// twin is a node with the env's seed: the same operations give the same
// chain, so it agrees with the env's node until it is mined differently.
func twin(dcfg devnet.Config) *devnet.Node {
	dcfg.ChainID = testChainID
	return devnet.New(dcfg)
}

func (r *runner) providerHealthy(url string) float64 {
	return testutil.ToFloat64(r.m.met.providerHealthy.WithLabelValues("devnet", "31337", config.RedactURL(url)))
}

func (r *runner) disagreements(url string) float64 {
	return testutil.ToFloat64(r.m.met.providerDisagreements.WithLabelValues("devnet", "31337", config.RedactURL(url)))
}

func (r *runner) quorumWaiting() float64 {
	return testutil.ToFloat64(r.m.met.quorumWaiting.WithLabelValues("devnet", "31337"))
}

// committedNumber is the cursor's block number ("" -> -1).
func (e *env) committedNumber() int64 {
	c := e.cursor()
	if c == "" {
		return -1
	}
	cur, err := parseCursor(c)
	if err != nil {
		e.t.Fatalf("cursor %q: %v", c, err)
	}
	return int64(cur.Number)
}

// Quorum 2 of 3 where the first URL (the one the session starts on) is a
// node on another branch from block 7: the two honest providers outvote
// it, the session moves to an honest one, the liar is reported unhealthy,
// and the stream holds exactly the canonical chain's logs, each once,
// with no removal (nothing of the lying branch was published).
func TestQuorumLyingProviderIsOutvoted(t *testing.T) {
	dcfg := devnet.Config{Seed: 91, LogsPerBlock: 3}
	e := newEnv(t, dcfg)
	liar := twin(dcfg)
	e.node.Mine(10)
	liar.Mine(10)
	liar.Reorg(4) // the liar's blocks 7.. are another branch
	e.node.Mine(1)
	if e.node.Head().Hash == liar.Head().Hash || e.node.Head().Number != liar.Head().Number {
		t.Fatal("the liar's branch is not different at the same height")
	}
	liarURL := e.provider(liar)
	q := 2
	e.chain.WSURLs = []string{liarURL, wsURL(e.srv), e.provider(e.node)}
	e.chain.Quorum = &q
	r := e.start(nil)
	for i := 0; i < 15; i++ {
		e.node.Mine(1)
		liar.Mine(1)
		time.Sleep(50 * time.Millisecond)
	}
	e.waitCaughtUp()
	eventually(t, 30*time.Second, "the liar to be reported unhealthy", func() bool {
		return r.providerHealthy(liarURL) == 0 && r.providerHealthy(wsURL(e.srv)) == 1
	})
	if d := r.disagreements(liarURL); d < 1 {
		t.Fatalf("liar's disagreements = %v, want at least 1", d)
	}
	raw, _ := e.rdb.Do(context.Background(), e.rdb.B().Get().Key(hook.Keys{Prefix: e.prefix}.Chain(testChainID, "providers")).Build()).ToString()
	ps, err := hook.ParseProviders(raw)
	if err != nil || len(ps) != 3 || ps[0].Provider != config.RedactURL(liarURL) || ps[0].Health != "disagrees" || ps[1].Health != "healthy" {
		t.Fatalf("providers key %q: %+v %v", raw, ps, err)
	}
	logs, removed := e.verify()
	if removed != 0 || logs == 0 {
		t.Fatalf("logs %d, removed %d: want the canonical logs and no removal", logs, removed)
	}
	published := map[string]bool{}
	for _, x := range e.stream() {
		published[x.ID] = true
	}
	lies := 0
	for _, l := range liar.CanonicalLogs(7, liar.Head().Number) {
		lies++
		if id := hook.EventID(testChainID, l.BlockHash.Hex(), l.Index); published[id] {
			t.Fatalf("the liar's log %s was published", id)
		}
	}
	if lies == 0 {
		t.Fatal("the liar's branch has no logs to tell")
	}
}

// Quorum 2 of 3 with the session's own provider stalled (a node that
// stops mining): the two others are ahead, the session moves to one of
// them and publication goes on with the two that agree; the stalled one
// is reported lagging, and healthy again once it caught up. Every
// canonical log once, no gap.
func TestQuorumLaggingProviderTwoOfThree(t *testing.T) {
	dcfg := devnet.Config{Seed: 92, LogsPerBlock: 3}
	e := newEnv(t, dcfg)
	slow := twin(dcfg)
	e.node.Mine(10)
	slow.Mine(10)
	slowURL := e.provider(slow)
	q := 2
	e.chain.WSURLs = []string{slowURL, wsURL(e.srv), e.provider(e.node)}
	e.chain.Quorum = &q
	r := e.start(nil)
	e.waitCaughtUp()
	for i := 0; i < 15; i++ {
		e.node.Mine(1)
		time.Sleep(50 * time.Millisecond)
	}
	e.waitCaughtUp() // on the two that agree, the stalled one at block 10
	if slow.Head().Number != 10 {
		t.Fatalf("the stalled node moved to %d", slow.Head().Number)
	}
	eventually(t, 30*time.Second, "the stalled provider to be reported unhealthy", func() bool {
		return r.providerHealthy(slowURL) == 0
	})
	slow.Mine(15) // caught up: the same chain again
	for i := 0; i < 5; i++ {
		e.node.Mine(1)
		slow.Mine(1)
		time.Sleep(50 * time.Millisecond)
	}
	e.waitCaughtUp()
	eventually(t, 30*time.Second, "the caught-up provider to be healthy again", func() bool {
		return r.providerHealthy(slowURL) == 1
	})
	if logs, removed := e.verify(); removed != 0 || logs == 0 {
		t.Fatalf("logs %d, removed %d", logs, removed)
	}
}

// Quorum 2 of 2 with one provider stalled: nothing past the stalled
// node's head is published while it lags (the block waits, reported by
// ethhook_ingest_quorum_waiting), and publication resumes once it caught
// up, with no gap and no duplicate.
func TestQuorumLaggingProviderTwoOfTwoWaits(t *testing.T) {
	dcfg := devnet.Config{Seed: 93, LogsPerBlock: 3}
	e := newEnv(t, dcfg)
	slow := twin(dcfg)
	e.node.Mine(10)
	slow.Mine(10)
	slowURL := e.provider(slow)
	q := 2
	e.chain.WSURLs = []string{wsURL(e.srv), slowURL}
	e.chain.Quorum = &q
	r := e.start(nil)
	e.waitCaughtUp()
	e.node.Mine(10)
	eventually(t, 30*time.Second, "a block to wait for the quorum and the stalled provider to be reported", func() bool {
		return r.quorumWaiting() == 1 && r.providerHealthy(slowURL) == 0
	})
	if n := e.committedNumber(); n != 10 {
		t.Fatalf("committed block %d while the second provider has only 10", n)
	}
	slow.Mine(10)
	e.waitCaughtUp()
	eventually(t, 30*time.Second, "the quorum to be reached again", func() bool {
		return r.quorumWaiting() == 0 && r.providerHealthy(slowURL) == 1
	})
	if logs, removed := e.verify(); removed != 0 || logs == 0 {
		t.Fatalf("logs %d, removed %d", logs, removed)
	}
}

// Quorum 2 of 3 with the session on a provider that agrees, then reorgs
// onto a branch of its own: the two others do not confirm the branch, so
// nothing is unwound (no log.removed for canonical blocks) and nothing of
// the branch is published; the session moves to an honest provider.
func TestQuorumLyingReorgIsNotUnwound(t *testing.T) {
	dcfg := devnet.Config{Seed: 94, LogsPerBlock: 3}
	e := newEnv(t, dcfg)
	liar := twin(dcfg)
	e.node.Mine(10)
	liar.Mine(10)
	liarURL := e.provider(liar)
	q := 2
	e.chain.WSURLs = []string{liarURL, wsURL(e.srv), e.provider(e.node)}
	e.chain.Quorum = &q
	r := e.start(nil)
	e.waitCaughtUp() // on the liar, which agrees so far
	liar.Reorg(3)
	e.node.Mine(1)
	for i := 0; i < 10; i++ {
		e.node.Mine(1)
		liar.Mine(1)
		time.Sleep(50 * time.Millisecond)
	}
	e.waitCaughtUp()
	eventually(t, 30*time.Second, "the liar to be reported unhealthy", func() bool { return r.providerHealthy(liarURL) == 0 })
	if logs, removed := e.verify(); removed != 0 || logs == 0 {
		t.Fatalf("logs %d, removed %d: want the canonical logs and no removal", logs, removed)
	}
}
