package ingest

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/outage"
	"github.com/ethhook/ethhook/internal/testenv"
	"github.com/ethhook/ethhook/modules/devnet"
)

// liveFrom checks that the stream holds each canonical log of blocks
// from..head exactly once, and nothing else.
func (e *env) liveFrom(from uint64) {
	e.t.Helper()
	seen := map[string]int{}
	for _, x := range e.stream() {
		if x.Type == hook.TypeLog {
			seen[x.ID]++
		}
	}
	canon := e.node.CanonicalLogs(from, e.node.Head().Number)
	for _, l := range canon {
		id := hook.EventID(testChainID, l.BlockHash.Hex(), l.Index)
		if seen[id] != 1 {
			e.t.Fatalf("log %s of block %d published %d times, want once", id, l.BlockNumber, seen[id])
		}
		delete(seen, id)
	}
	for id := range seen {
		e.t.Fatalf("log %s published but not canonical in blocks %d.. ", id, from)
	}
	if len(canon) == 0 {
		e.t.Fatal("no canonical logs to check")
	}
}

func redisLost(r *runner, found string) float64 {
	return testutil.ToFloat64(r.m.met.redisLost.WithLabelValues("devnet", "31337", found))
}

// TestRedisLosingItsStateResumesFromTheDurableCursor: the chain's keys
// vanish mid-run (as in a FLUSHALL or an empty restart) after process made
// blocks up to 5 durable. Ingest must go on from block 6, not from the
// head, so the blocks after the durable cursor are all published again.
func TestRedisLosingItsStateResumesFromTheDurableCursor(t *testing.T) {
	e := newEnv(t, devnet.Config{Seed: 61, LogsPerBlock: 3})
	e.usePostgres(testenv.PG(t))
	e.chain.StartBlock = nil // a fresh chain starts at the head
	ctx := context.Background()
	r := e.start(nil)
	e.node.Mine(12)
	e.waitCaughtUp()
	b5, _ := e.node.BlockByNumber(5)
	if _, err := e.cursors.Advance(ctx, testChainID, hook.Cursor{Number: 5, Hash: strings.ToLower(b5.Hash.Hex()), Set: true}); err != nil {
		t.Fatal(err)
	}
	testenv.DeleteKeys(ctx, e.rdb, e.prefix) // Redis forgets everything
	e.node.Mine(8)
	e.waitCaughtUp()
	e.liveFrom(6)
	if got := redisLost(r, "empty"); got != 1 {
		t.Fatalf("redis_state_lost_total{found=empty} = %v, want 1", got)
	}
}

// TestRedisLosingItsStateOnAReorgedCursorResumesBelowIt: while Redis was
// gone the chain reorganised past the durable cursor; ingest must resume
// from a canonical block below it, not from a hash the node abandoned.
func TestRedisLosingItsStateOnAReorgedCursorResumesBelowIt(t *testing.T) {
	e := newEnv(t, devnet.Config{Seed: 62, LogsPerBlock: 3})
	e.usePostgres(testenv.PG(t))
	e.chain.StartBlock = nil
	ctx := context.Background()
	e.node.Mine(30)
	// A durable cursor on a block the node does not have on its chain.
	orphan := hook.Cursor{Number: 25, Hash: "0x" + strings.Repeat("ab", 32), Set: true}
	if _, err := e.cursors.Advance(ctx, testChainID, orphan); err != nil {
		t.Fatal(err)
	}
	r := e.start(nil)
	e.waitCaughtUp()
	e.liveFrom(uint64(25-(e.chain.ReorgDepth+1)) + 1) // a window (depth+1) below it
	if got := redisLost(r, "empty"); got != 1 {
		t.Fatalf("redis_state_lost_total{found=empty} = %v, want 1", got)
	}
}

// TestRedisBehindTheDurableCursorResumesFromRedis: Redis came back from an
// old snapshot (its cursor far below the durable one). Ingest goes on from
// Redis's cursor (consistent with its window), publishing the blocks
// between again, and says Redis lost state.
func TestRedisBehindTheDurableCursorResumesFromRedis(t *testing.T) {
	e := newEnv(t, devnet.Config{Seed: 63, LogsPerBlock: 3})
	e.usePostgres(testenv.PG(t))
	ctx := context.Background()
	e.node.Mine(10)
	first := e.start(nil)
	e.waitCaughtUp()
	first.stop() // Redis as it was at the snapshot: cursor 10
	e.node.Mine(40)
	b45, _ := e.node.BlockByNumber(45)
	if _, err := e.cursors.Advance(ctx, testChainID, hook.Cursor{Number: 45, Hash: strings.ToLower(b45.Hash.Hex()), Set: true}); err != nil {
		t.Fatal(err)
	}
	r := e.start(nil)
	e.waitCaughtUp()
	e.verify() // from block 0: nothing skipped, nothing twice
	if got := redisLost(r, "behind"); got != 1 {
		t.Fatalf("redis_state_lost_total{found=behind} = %v, want 1", got)
	}
}

// TestOldRedisSnapshotKeepsTheFenceAboveOldTokens: Redis went back to an
// older fence (an old snapshot, a replica that lagged); counting on from
// it must not hand out again the token a writer from before still holds.
func TestOldRedisSnapshotKeepsTheFenceAboveOldTokens(t *testing.T) {
	e := newEnv(t, devnet.Config{Seed: 66})
	ctx := context.Background()
	st := newStore(e.rdb, e.prefix, testChainID, 1000, time.Minute)
	var tokens []int64
	for i := 0; i < 3; i++ {
		e.rdb.Do(ctx, e.rdb.B().Del().Key(st.lease).Build())
		tok, err := st.acquire(ctx, "w", time.Second)
		if err != nil || tok == 0 {
			t.Fatalf("acquire: %d %v", tok, err)
		}
		tokens = append(tokens, tok)
	}
	// Back to the fence as it was after the first acquisition.
	e.rdb.Do(ctx, e.rdb.B().Set().Key(st.fence).Value(strconv.FormatInt(tokens[0], 10)).Build())
	for i := 0; i < 3; i++ {
		e.rdb.Do(ctx, e.rdb.B().Del().Key(st.lease).Build())
		tok, err := st.acquire(ctx, "new", time.Second)
		if err != nil || tok <= tokens[2] {
			t.Fatalf("acquire #%d after going back: %d %v, want above %d", i+1, tok, err, tokens[2])
		}
	}
}

// TestEmptyRedisRestartsTheFenceAboveOldTokens: after Redis lost its state
// the fence starts over; a writer still holding a token from before must
// not be able to commit with it.
func TestEmptyRedisRestartsTheFenceAboveOldTokens(t *testing.T) {
	e := newEnv(t, devnet.Config{Seed: 64})
	ctx := context.Background()
	st := newStore(e.rdb, e.prefix, testChainID, 1000, time.Minute)
	testenv.DeleteKeys(ctx, e.rdb, e.prefix)
	old, err := st.acquire(ctx, "old", time.Second)
	if err != nil || old == 0 {
		t.Fatalf("acquire: %d %v", old, err)
	}
	// A few more acquisitions before the loss, as after failovers.
	for i := 0; i < 3; i++ {
		e.rdb.Do(ctx, e.rdb.B().Del().Key(st.lease).Build())
		if old, err = st.acquire(ctx, "old", time.Second); err != nil {
			t.Fatal(err)
		}
	}
	testenv.DeleteKeys(ctx, e.rdb, e.prefix) // Redis forgets everything
	b := &block{header: header{Number: 1, Hash: hash(1), ParentHash: hash(0)}, logs: []ethLog{{LogIndex: 0, BlockHash: hash(1), BlockNumber: 1}}}
	req := commitReq{token: old, blocks: []*block{b}, trim: func(uint64) (uint64, string, bool) { return 0, "", false }}
	for i := 0; i < 4; i++ {
		e.rdb.Do(ctx, e.rdb.B().Del().Key(st.lease).Build())
		tok, err := st.acquire(ctx, "new", time.Second)
		if err != nil || tok <= old {
			t.Fatalf("acquire #%d after the loss: token %d (%v), want above %d", i+1, tok, err, old)
		}
		if _, _, err := st.commit(ctx, req); !isErr(err, errFenced) {
			t.Fatalf("commit with the token from before the loss: %v, want fenced", err)
		}
	}
}

// TestPostgresDownDoesNotStopIngestWhileRedisHasTheCursor: the durable
// cursor is needed only when Redis lost state; while Postgres cannot be
// reached, sessions go on from Redis's cursor.
func TestPostgresDownDoesNotStopIngestWhileRedisHasTheCursor(t *testing.T) {
	e := newEnv(t, devnet.Config{Seed: 65, LogsPerBlock: 3})
	e.node.Mine(5)
	first := e.start(nil)
	e.waitCaughtUp()
	first.stop()
	pool := testenv.PG(t)
	e.usePostgres(pool)
	pool.Close() // Postgres unreachable
	e.start(nil)
	e.node.Mine(5)
	e.waitCaughtUp()
	e.verify()
}

// TestRedisLosingItsStateWithoutADurableCursorGoesOnFromItsOwn: with no
// durable cursor (none configured, or process never stored one), a
// session that finds Redis empty goes on from this process's last cursor,
// not from the head.
func TestRedisLosingItsStateWithoutADurableCursorGoesOnFromItsOwn(t *testing.T) {
	e := newEnv(t, devnet.Config{Seed: 67, LogsPerBlock: 3})
	e.chain.StartBlock = nil
	ctx := context.Background()
	r := e.start(nil)
	e.node.Mine(5)
	e.waitCaughtUp()
	at := e.node.Head().Number
	testenv.DeleteKeys(ctx, e.rdb, e.prefix)
	e.node.Mine(8)
	e.waitCaughtUp()
	e.liveFrom(at + 1)
	if got := redisLost(r, "empty"); got != 1 {
		t.Fatalf("redis_state_lost_total{found=empty} = %v, want 1", got)
	}
}

// TestRedisFailingAtSessionStartIsNotTheNodes: a session that cannot load
// the committed chain from Redis (here a WRONGTYPE at the cursor key, as
// every call fails in an outage) is EthHook's storage failing, not the
// node: it is logged once as a Redis outage, not as an RPC session ending
// per try, and ingest goes on when Redis answers again.
func TestRedisFailingAtSessionStartIsNotTheNodes(t *testing.T) {
	e := newEnv(t, devnet.Config{Seed: 69, LogsPerBlock: 3})
	e.chain.WSURLs = append(e.chain.WSURLs, e.chain.WSURLs[0]) // a second URL to fail over to
	ctx := context.Background()
	key := hook.Keys{Prefix: e.prefix}.Chain(testChainID, "cursor")
	if err := e.rdb.Do(ctx, e.rdb.B().Hset().Key(key).FieldValue().FieldValue("not", "a cursor").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	e.log = zap.New(core)
	r := e.start(nil)
	e.node.Mine(5)
	reconnects := r.m.met.reconnects.With(chainLabelValues(e.chain.Name, e.chain.ID))
	eventually(t, 20*time.Second, "three sessions to fail", func() bool { return testutil.ToFloat64(reconnects) >= 3 })
	if n := logs.FilterMessage("rpc session ended; reconnecting").Len(); n > 0 {
		t.Fatalf("%d sessions that Redis failed were logged as the node's", n)
	}
	if n := logs.FilterMessage("redis unavailable").Len(); n != 1 {
		t.Fatalf("%d 'redis unavailable' lines, want 1", n)
	}
	if err := e.rdb.Do(ctx, e.rdb.B().Del().Key(key).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	e.waitCaughtUp()
	// The outage ends at the first success once outage.Calm has passed
	// without a failure: the next block's commit.
	time.Sleep(outage.Calm)
	e.node.Mine(1)
	e.waitCaughtUp()
	e.verify()
	eventually(t, 10*time.Second, "the outage's end to be logged", func() bool {
		return logs.FilterMessage("redis available again").Len() == 1
	})
}
