package ingest

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ethhook/ethhook/modules/devnet"
)

func TestBlocksArriveExactlyOnceInOrder(t *testing.T) {
	e := newEnv(t, devnet.Config{Seed: 1, LogsPerBlock: 7, FixedLogs: true})
	e.node.Mine(40) // backfilled
	r := e.start(nil)
	e.waitCaughtUp()
	for i := 0; i < 30; i++ { // live
		e.node.Mine(1)
		time.Sleep(5 * time.Millisecond)
	}
	e.waitCaughtUp()
	logs, removed := e.verify()
	if logs != 70*7 || removed != 0 {
		t.Fatalf("logs %d removed %d, want %d and 0", logs, removed, 70*7)
	}
	if !r.m.Ready() {
		t.Fatal("module not ready while live")
	}
	if got := testutil.ToFloat64(r.m.met.blocks.WithLabelValues("devnet", "31337")); got != 71 {
		t.Fatalf("blocks_total = %v, want 71 (genesis + 70)", got)
	}
	// The head is published for the API and UI as a decimal block number.
	head, err := e.rdb.Do(context.Background(), e.rdb.B().Get().Key(e.prefix+"{31337}:head").Build()).ToString()
	if err != nil || head != "70" {
		t.Fatalf("head key = %q, %v; want 70", head, err)
	}
}

func TestReorgPublishesRemovedForEveryOrphanedLog(t *testing.T) {
	e := newEnv(t, devnet.Config{Seed: 2, LogsPerBlock: 4, FixedLogs: true})
	e.node.Mine(5)
	r := e.start(nil)
	e.waitCaughtUp()
	wantRemoved := 0
	for depth := 1; depth <= 6; depth++ {
		e.node.Mine(2)
		e.waitCaughtUp()
		e.node.Reorg(depth)
		wantRemoved += depth * 4
		e.waitCaughtUp()
	}
	_, removed := e.verify()
	if removed != wantRemoved {
		t.Fatalf("removed %d, want %d", removed, wantRemoved)
	}
	if got := testutil.CollectAndCount(r.m.met.reorgs); got != 1 {
		t.Fatalf("reorg histogram series = %d", got)
	}
}

func TestReorgWhileDownIsDetectedOnRestart(t *testing.T) {
	e := newEnv(t, devnet.Config{Seed: 3, LogsPerBlock: 3, FixedLogs: true})
	e.node.Mine(10)
	r := e.start(nil)
	e.waitCaughtUp()
	r.stop()
	e.node.Reorg(3)
	e.node.Mine(2)
	e.start(nil)
	e.waitCaughtUp()
	if _, removed := e.verify(); removed != 9 {
		t.Fatalf("removed %d, want 9", removed)
	}
}

func TestSkippedHeadsAreBackfilled(t *testing.T) {
	e := newEnv(t, devnet.Config{Seed: 4, LogsPerBlock: 5})
	e.node.Mine(3)
	e.start(nil)
	e.waitCaughtUp()
	for i := 0; i < 5; i++ {
		e.node.SkipHeads(6)
		e.node.Mine(1)
	}
	e.waitCaughtUp()
	e.verify()
}

func TestEmptyLogsLagIsFetchedAgain(t *testing.T) {
	e := newEnv(t, devnet.Config{Seed: 5, LogsPerBlock: 5, FixedLogs: true})
	r := e.start(nil)
	e.waitCaughtUp()
	for i := 0; i < 3; i++ {
		e.node.EmptyLogsOnceNext()
		e.node.Mine(1)
		e.waitCaughtUp()
	}
	e.verify()
	if e.node.Stats().EmptyLogsServed == 0 {
		t.Fatal("devnet never served the empty answer")
	}
	if got := testutil.ToFloat64(r.m.met.emptyRefetch.WithLabelValues("devnet", "31337")); got < 1 {
		t.Fatalf("empty_logs_refetch_total = %v", got)
	}
}

func TestDroppedConnectionsLoseNothing(t *testing.T) {
	e := newEnv(t, devnet.Config{Seed: 6, LogsPerBlock: 6})
	r := e.start(nil)
	stop := miner(e.node, 10*time.Millisecond)
	for i := 0; i < 5; i++ {
		time.Sleep(150 * time.Millisecond)
		e.node.DropConnections()
	}
	stop()
	e.waitCaughtUp()
	e.verify()
	if got := testutil.ToFloat64(r.m.met.reconnects.WithLabelValues("devnet", "31337")); got < 1 {
		t.Fatalf("reconnects_total = %v", got)
	}
}

func TestRangeErrorsShrinkBackfillOverHTTP(t *testing.T) {
	e := newEnv(t, devnet.Config{Seed: 7, LogsPerBlock: 10, FixedLogs: true, MaxLogRange: 64, MaxLogResults: 150})
	e.node.Mine(300)
	e.chain.HTTPURL = e.srv.URL + "/"
	r := e.start(nil)
	e.waitCaughtUp()
	e.verify()
	if got := testutil.ToFloat64(r.m.met.rpcErrors.WithLabelValues("devnet", "31337", "-32005")); got < 1 {
		t.Fatalf("no -32005 range errors seen (%v): the test does not exercise shrinking", got)
	}
	if e.node.Stats().Requests["eth_getLogs"] == 0 {
		t.Fatal("no eth_getLogs")
	}
}
