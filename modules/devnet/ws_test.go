package devnet

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

func subscribe(t *testing.T, w *wsClient, params ...any) string {
	t.Helper()
	r, _ := w.call("eth_subscribe", params...)
	var id string
	mustResult(t, r, &id)
	if !strings.HasPrefix(id, "0x") || len(id) != 34 {
		t.Fatalf("subscription id %q is not geth-shaped", id)
	}
	return id
}

func headOf(t *testing.T, r rpcResp) (uint64, common.Hash) {
	t.Helper()
	var h types.Header
	if err := json.Unmarshal(r.Params.Result, &h); err != nil {
		t.Fatalf("decode head %s: %v", r.Params.Result, err)
	}
	var m struct {
		Hash common.Hash `json:"hash"`
	}
	_ = json.Unmarshal(r.Params.Result, &m)
	return h.Number.Uint64(), m.Hash
}

func logOf(t *testing.T, r rpcResp) types.Log {
	t.Helper()
	var l types.Log
	if err := json.Unmarshal(r.Params.Result, &l); err != nil {
		t.Fatalf("decode log %s: %v", r.Params.Result, err)
	}
	return l
}

func TestNewHeadsAnnouncesEveryMinedBlock(t *testing.T) {
	n, srv := startNode(t, Config{Seed: 4, LogsPerBlock: 5})
	w := dialWS(t, srv)
	id := subscribe(t, w, "newHeads")
	for _, b := range n.Mine(3) {
		note := w.nextResp()
		if note.Method != "eth_subscription" || note.Params.Subscription != id {
			t.Fatalf("unexpected frame %+v", note)
		}
		num, hash := headOf(t, note)
		if num != b.Number || hash != b.Hash {
			t.Fatalf("head %d %s, want %d %s", num, hash, b.Number, b.Hash)
		}
	}
	r, _ := w.call("eth_unsubscribe", id)
	var ok bool
	mustResult(t, r, &ok)
	r, _ = w.call("eth_unsubscribe", id)
	if r.Error == nil || r.Error.Code != CodeServerError {
		t.Fatalf("second unsubscribe: %+v", r)
	}
	n.Mine(1)
	r, notes := w.call("eth_blockNumber")
	if len(notes) != 0 {
		t.Fatalf("notification after unsubscribe: %+v", notes)
	}
}

func TestReorgReplacesLastBlocksAndAnnouncesNewBranch(t *testing.T) {
	n, srv := startNode(t, Config{Seed: 13, LogsPerBlock: 8})
	n.Mine(10)
	before := map[uint64]common.Hash{}
	for i := uint64(0); i <= 10; i++ {
		b, _ := n.BlockByNumber(i)
		before[i] = b.Hash
	}
	w := dialWS(t, srv)
	subscribe(t, w, "newHeads")
	branch := n.Reorg(3)
	if len(branch) != 4 || branch[0].Number != 8 || n.Head().Number != 11 {
		t.Fatalf("branch %d blocks from %d, head %d; want 4 from 8, head 11", len(branch), branch[0].Number, n.Head().Number)
	}
	for i := uint64(0); i <= 7; i++ {
		b, _ := n.BlockByNumber(i)
		if b.Hash != before[i] {
			t.Fatalf("block %d below the reorg changed", i)
		}
	}
	for i := uint64(8); i <= 10; i++ {
		b, _ := n.BlockByNumber(i)
		if b.Hash == before[i] {
			t.Fatalf("block %d kept its hash through a depth-3 reorg", i)
		}
	}
	b8, _ := n.BlockByNumber(8)
	b7, _ := n.BlockByNumber(7)
	if b8.ParentHash != b7.Hash {
		t.Fatalf("new branch does not link to the common ancestor")
	}
	if orph := n.Orphaned(); len(orph) != 3 || orph[0].Hash != before[8] {
		t.Fatalf("orphaned %d blocks", len(orph))
	}
	for _, b := range branch {
		num, hash := headOf(t, w.nextResp())
		if num != b.Number || hash != b.Hash {
			t.Fatalf("announced %d %s, want %d %s", num, hash, b.Number, b.Hash)
		}
	}
	// Orphans stay retrievable by hash; ranges are canonical only.
	var blk map[string]any
	if e := httpCall(t, srv.URL, "eth_getBlockByHash", &blk, before[9], false); e != nil || blk["hash"] != before[9].Hex() {
		t.Fatalf("orphan by hash: %v %v", blk, e)
	}
	var logs []types.Log
	if e := httpCall(t, srv.URL, "eth_getLogs", &logs, map[string]any{"blockHash": before[9]}); e != nil {
		t.Fatal(e)
	}
	orphan, _ := n.BlockByHash(before[9])
	if len(logs) != len(orphan.Logs) {
		t.Fatalf("orphan logs by hash: %d, want %d", len(logs), len(orphan.Logs))
	}
	if e := httpCall(t, srv.URL, "eth_getLogs", &logs, map[string]any{"fromBlock": "0x8", "toBlock": "0xb"}); e != nil {
		t.Fatal(e)
	}
	want := n.CanonicalLogs(8, 11)
	if len(logs) != len(want) {
		t.Fatalf("range after reorg: %d logs, want %d", len(logs), len(want))
	}
	for i := range logs {
		if logs[i].BlockHash != want[i].BlockHash {
			t.Fatalf("range returned a non-canonical log")
		}
	}
}

func TestLogsSubscriptionSendsRemovedForEveryOrphanedLog(t *testing.T) {
	n, srv := startNode(t, Config{Seed: 14, LogsPerBlock: 6, FixedLogs: true})
	w := dialWS(t, srv)
	id := subscribe(t, w, "logs", map[string]any{})
	mined := n.Mine(4)
	got := 0
	for _, b := range mined {
		for _, want := range b.Logs {
			r := w.nextResp()
			l := logOf(t, r)
			if r.Params.Subscription != id || l.Removed || l.BlockHash != want.BlockHash || l.Index != want.Index {
				t.Fatalf("log %+v, want block %s index %d", l, want.BlockHash, want.Index)
			}
			got++
		}
	}
	n.Reorg(2)
	orphaned := map[[2]any]bool{}
	for _, b := range mined[2:] {
		for _, l := range b.Logs {
			orphaned[[2]any{l.BlockHash, l.Index}] = true
		}
	}
	for len(orphaned) > 0 {
		l := logOf(t, w.nextResp())
		if !l.Removed || !orphaned[[2]any{l.BlockHash, l.Index}] {
			t.Fatalf("expected a removed log of an orphaned block first, got %+v", l)
		}
		delete(orphaned, [2]any{l.BlockHash, l.Index})
	}
	for _, want := range n.CanonicalLogs(3, 5) {
		l := logOf(t, w.nextResp())
		if l.Removed || l.BlockHash != want.BlockHash || l.Index != want.Index {
			t.Fatalf("new branch log %+v, want %s/%d", l, want.BlockHash, want.Index)
		}
	}
}

func TestLogsSubscriptionAppliesFilter(t *testing.T) {
	n, srv := startNode(t, Config{Seed: 15, LogsPerBlock: 30})
	w := dialWS(t, srv)
	tok := n.Contracts()[0]
	subscribe(t, w, "logs", map[string]any{"address": tok, "topics": []any{TopicTransfer}})
	n.Mine(5)
	var want []types.Log
	for _, l := range n.CanonicalLogs(1, 5) {
		if l.Address == tok && l.Topics[0] == TopicTransfer {
			want = append(want, l)
		}
	}
	if len(want) == 0 {
		t.Fatal("no matching logs in 5 blocks")
	}
	_, notes := w.call("eth_blockNumber") // the answer follows every queued notification
	if len(notes) != len(want) {
		t.Fatalf("got %d notifications, want %d", len(notes), len(want))
	}
	for i, r := range notes {
		l := logOf(t, r)
		if l.BlockHash != want[i].BlockHash || l.Index != want[i].Index {
			t.Fatalf("notification %d mismatch", i)
		}
	}
}

func TestSkipHeadsAnnouncesOnlyTheLastHead(t *testing.T) {
	n, srv := startNode(t, Config{Seed: 16})
	n.Mine(2)
	w := dialWS(t, srv)
	subscribe(t, w, "newHeads")
	n.SkipHeads(5)
	_, notes := w.call("eth_blockNumber")
	if len(notes) != 1 {
		t.Fatalf("got %d heads, want 1", len(notes))
	}
	if num, hash := headOf(t, notes[0]); num != 7 || hash != n.Head().Hash {
		t.Fatalf("announced head %d, want 7", num)
	}
}

func TestMalformedNextCorruptsFramesOfMixedKinds(t *testing.T) {
	n, srv := startNode(t, Config{Seed: 17})
	w := dialWS(t, srv)
	n.MalformedNext(4)
	kinds := map[string]bool{}
	for i := 0; i < 4; i++ {
		w.send(`{"jsonrpc":"2.0","id":7,"method":"eth_chainId"}`)
		f := w.next()
		var r rpcResp
		switch err := json.Unmarshal(f, &r); {
		case err != nil && strings.HasPrefix(`{"jsonrpc":"2.0","id":7,"result":"0x7a69"}`, string(f)):
			kinds["truncated"] = true
		case err != nil:
			kinds["invalid"] = true
		case r.JSONRPC != "2.0":
			kinds["version"] = true
		case string(r.ID) != "7":
			kinds["unknown id"] = true
		default:
			t.Fatalf("frame %d is well formed: %s", i, f)
		}
	}
	if len(kinds) != 4 {
		t.Fatalf("kinds %v, want 4 different", kinds)
	}
	r, _ := w.call("eth_chainId")
	mustResult(t, r, nil)
	if n.Stats().Malformed != 4 {
		t.Fatalf("stats malformed %d", n.Stats().Malformed)
	}
}

func TestDropConnectionsClosesWithoutCloseFrame(t *testing.T) {
	n, srv := startNode(t, Config{Seed: 18})
	w := dialWS(t, srv)
	subscribe(t, w, "newHeads")
	if st := n.Stats(); st.ConnectionsOpen != 1 || st.SubscriptionsOpen != 1 {
		t.Fatalf("stats before drop %+v", st)
	}
	n.DropConnections()
	select {
	case err := <-w.errc:
		if websocket.CloseStatus(err) != -1 {
			t.Fatalf("got a close frame (%v), want an abrupt close", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("connection not dropped")
	}
	deadline := time.Now().Add(20 * time.Second)
	for n.Stats().ConnectionsOpen != 0 {
		if time.Now().After(deadline) {
			t.Fatal("connection still counted open")
		}
		time.Sleep(10 * time.Millisecond)
	}
	w2 := dialWS(t, srv) // the node keeps accepting
	r, _ := w2.call("eth_chainId")
	mustResult(t, r, nil)
}

func TestRateLimitNextAnswers32005AndHTTP429(t *testing.T) {
	n, srv := startNode(t, Config{Seed: 19})
	n.RateLimitNext(2)
	code, b := httpPost(t, srv.URL, `{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`)
	var r rpcResp
	_ = json.Unmarshal(b, &r)
	if code != 429 || r.Error == nil || r.Error.Code != CodeLimitExceeded || !strings.Contains(r.Error.Message, "rate limit") {
		t.Fatalf("HTTP: %d %s", code, b)
	}
	w := dialWS(t, srv)
	r, _ = w.call("eth_chainId")
	if r.Error == nil || r.Error.Code != CodeLimitExceeded {
		t.Fatalf("WS: %+v", r)
	}
	r, _ = w.call("eth_chainId")
	mustResult(t, r, nil)
	if n.Stats().RateLimited != 2 {
		t.Fatalf("stats %d", n.Stats().RateLimited)
	}
}

func TestEmptyLogsOnceAnswersEmptyOnlyTheFirstTime(t *testing.T) {
	n, srv := startNode(t, Config{Seed: 20, LogsPerBlock: 5, FixedLogs: true})
	n.EmptyLogsOnceNext()
	b := n.Mine(1)[0]
	var logs []types.Log
	if e := httpCall(t, srv.URL, "eth_getLogs", &logs, map[string]any{"blockHash": b.Hash}); e != nil || len(logs) != 0 {
		t.Fatalf("first getLogs: %d logs %v, want []", len(logs), e)
	}
	if e := httpCall(t, srv.URL, "eth_getLogs", &logs, map[string]any{"blockHash": b.Hash}); e != nil || len(logs) != 5 {
		t.Fatalf("second getLogs: %d logs %v, want 5", len(logs), e)
	}
	if n.Stats().EmptyLogsServed != 1 {
		t.Fatal("not counted")
	}
}

func TestStallHoldsAnswersUntilItEnds(t *testing.T) {
	n, srv := startNode(t, Config{Seed: 21})
	w := dialWS(t, srv)
	n.Stall(time.Hour)
	w.send(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`)
	select {
	case f := <-w.raw:
		t.Fatalf("answered during a stall: %s", f)
	case <-time.After(300 * time.Millisecond):
	}
	n.Stall(0)
	var r rpcResp
	if err := json.Unmarshal(w.next(), &r); err != nil || string(r.ID) != "1" {
		t.Fatalf("after stall: %+v %v", r, err)
	}
}

func TestSlowSubscriberIsDroppedWithoutBlockingMining(t *testing.T) {
	n, srv := startNode(t, Config{Seed: 22, LogsPerBlock: 1000, FixedLogs: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	// Subscribe, read the answer, then never read again.
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["logs",{}]}`)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Read(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200 && n.Stats().ConnectionsDropped == 0; i++ {
		n.Mine(1)
	}
	if n.Stats().ConnectionsDropped == 0 {
		t.Fatal("a subscriber that never reads was not dropped after 200,000 logs")
	}
}

func TestRunMinesWithAutomaticReorgsUntilCancelled(t *testing.T) {
	n := New(Config{Seed: 23, BlockTime: 2 * time.Millisecond, LogsPerBlock: 2, ReorgEvery: 5, ReorgDepth: 2})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for n.Stats().Reorgs < 2 || n.Head().Number < 12 {
		if time.Now().After(deadline) {
			t.Fatalf("after 30s: head %d, reorgs %d", n.Head().Number, n.Stats().Reorgs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v on cancel", err)
	}
	// The canonical chain links up.
	head := n.Head()
	for i := head.Number; i > 0; i-- {
		b, _ := n.BlockByNumber(i)
		p, _ := n.BlockByNumber(i - 1)
		if b.ParentHash != p.Hash {
			t.Fatalf("block %d does not link to %d", i, i-1)
		}
	}
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Fatal("ctx")
	}
}
