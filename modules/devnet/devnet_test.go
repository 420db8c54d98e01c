package devnet

import (
	"encoding/json"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
)

func TestSameSeedGivesSameHashes(t *testing.T) {
	a := New(Config{Seed: 7, LogsPerBlock: 20})
	b := New(Config{Seed: 7, LogsPerBlock: 20})
	c := New(Config{Seed: 8, LogsPerBlock: 20})
	ba, bb, bc := a.Mine(10), b.Mine(10), c.Mine(10)
	for i := range ba {
		if ba[i].Hash != bb[i].Hash {
			t.Fatalf("block %d: hash %s != %s with the same seed", ba[i].Number, ba[i].Hash, bb[i].Hash)
		}
		if len(ba[i].Logs) != len(bb[i].Logs) {
			t.Fatalf("block %d: log counts differ", ba[i].Number)
		}
		if ba[i].Hash == bc[i].Hash {
			t.Fatalf("block %d: same hash with a different seed", ba[i].Number)
		}
	}
	a.Reorg(3)
	b.Reorg(3)
	if a.Head().Hash != b.Head().Hash {
		t.Fatalf("after the same reorg heads differ")
	}
}

func TestTransferTopicIsKeccakOfSignature(t *testing.T) {
	want := common.HexToHash("0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef")
	if TopicTransfer != want {
		t.Fatalf("Transfer topic0 = %s, want %s", TopicTransfer, want)
	}
	if TopicApproval != common.HexToHash("0x8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925") {
		t.Fatalf("Approval topic0 = %s", TopicApproval)
	}
	if TopicSwap != common.HexToHash("0xd78ad95fa46c994b6551d0da85fc275fe613ce37657fb8d5e3d130840159d822") {
		t.Fatalf("Swap topic0 = %s", TopicSwap)
	}
}

func TestBloomContainsEveryLogAddressAndTopic(t *testing.T) {
	n := New(Config{Seed: 1, LogsPerBlock: 50})
	seen := map[common.Hash]bool{}
	for _, b := range n.Mine(20) {
		for _, l := range b.Logs {
			seen[l.Topics[0]] = true
			if !types.BloomLookup(b.Bloom, l.Address) {
				t.Fatalf("block %d: bloom misses address %s", b.Number, l.Address)
			}
			for _, tp := range l.Topics {
				if !types.BloomLookup(b.Bloom, tp) {
					t.Fatalf("block %d: bloom misses topic %s", b.Number, tp)
				}
			}
			if l.BlockHash != b.Hash || l.BlockNumber != b.Number {
				t.Fatalf("log block fields not set")
			}
		}
	}
	for _, tp := range []common.Hash{TopicTransfer, TopicApproval, TopicSwap} {
		if !seen[tp] {
			t.Fatalf("no log with topic0 %s in 20 blocks", tp)
		}
	}
}

func TestLogDataIsABIEncoded(t *testing.T) {
	n := New(Config{Seed: 2, LogsPerBlock: 30, FixedLogs: true})
	for _, b := range n.Mine(5) {
		if len(b.Logs) != 30 {
			t.Fatalf("FixedLogs: block %d has %d logs", b.Number, len(b.Logs))
		}
		for i, l := range b.Logs {
			if l.Index != uint(i) {
				t.Fatalf("log index %d at position %d", l.Index, i)
			}
			switch l.Topics[0] {
			case TopicTransfer, TopicApproval:
				vals, err := uint256Args.Unpack(l.Data)
				if err != nil || len(vals) != 1 || len(l.Topics) != 3 {
					t.Fatalf("bad transfer/approval log: %v %x", err, l.Data)
				}
			case TopicSwap:
				vals, err := swapDataArgs.Unpack(l.Data)
				if err != nil || len(vals) != 4 || len(l.Topics) != 3 {
					t.Fatalf("bad swap log: %v", err)
				}
			default:
				t.Fatalf("unexpected topic0 %s", l.Topics[0])
			}
		}
	}
}

func TestHTTPBasicMethods(t *testing.T) {
	n, srv := startNode(t, Config{Seed: 3, LogsPerBlock: 10, ChainID: 31337})
	n.Mine(5)
	var s string
	if e := httpCall(t, srv.URL, "eth_chainId", &s); e != nil || s != "0x7a69" {
		t.Fatalf("eth_chainId = %q, %v", s, e)
	}
	if e := httpCall(t, srv.URL, "net_version", &s); e != nil || s != "31337" {
		t.Fatalf("net_version = %q, %v", s, e)
	}
	if e := httpCall(t, srv.URL, "eth_blockNumber", &s); e != nil || s != "0x5" {
		t.Fatalf("eth_blockNumber = %q, %v", s, e)
	}
	var blk map[string]any
	if e := httpCall(t, srv.URL, "eth_getBlockByNumber", &blk, "0x3", false); e != nil {
		t.Fatal(e)
	}
	b3, _ := n.BlockByNumber(3)
	if blk["hash"] != b3.Hash.Hex() || blk["number"] != "0x3" || blk["parentHash"] != b3.ParentHash.Hex() {
		t.Fatalf("block 3 = %v", blk)
	}
	if blk["logsBloom"] != hexutil.Encode(b3.Bloom.Bytes()) {
		t.Fatalf("logsBloom mismatch")
	}
	var logs []types.Log
	if e := httpCall(t, srv.URL, "eth_getLogs", &logs, map[string]any{"blockHash": b3.Hash}); e != nil {
		t.Fatal(e)
	}
	if len(logs) != len(b3.Logs) {
		t.Fatalf("getLogs by hash: %d logs, want %d", len(logs), len(b3.Logs))
	}
	for i := range logs {
		want, _ := json.Marshal(b3.Logs[i])
		got, _ := json.Marshal(logs[i])
		if string(want) != string(got) {
			t.Fatalf("log %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

func TestRetainBlocksRebuildsOldBlocksIdentically(t *testing.T) {
	full := New(Config{Seed: 40, LogsPerBlock: 10})
	kept, srv := startNode(t, Config{Seed: 40, LogsPerBlock: 10, RetainBlocks: 5})
	full.Mine(30)
	kept.Mine(30)
	full.Reorg(2)
	kept.Reorg(2)
	for i := uint64(0); i <= 31; i++ {
		a, _ := full.BlockByNumber(i)
		b, _ := kept.BlockByNumber(i)
		if a.Hash != b.Hash || len(a.Logs) != len(b.Logs) || len(a.TxHashes) != len(b.TxHashes) {
			t.Fatalf("block %d differs after compaction", i)
		}
		for j := range a.Logs {
			if a.Logs[j].TxHash != b.Logs[j].TxHash || string(a.Logs[j].Data) != string(b.Logs[j].Data) {
				t.Fatalf("block %d log %d differs", i, j)
			}
		}
	}
	var logs []types.Log
	if e := httpCall(t, srv.URL, "eth_getLogs", &logs, map[string]any{"fromBlock": "0x1", "toBlock": "0x1f"}); e != nil {
		t.Fatal(e)
	}
	if want := full.CanonicalLogs(1, 31); len(logs) != len(want) {
		t.Fatalf("range over compacted blocks: %d logs, want %d", len(logs), len(want))
	}
	if kept.Stats().Rebuilt == 0 {
		t.Fatal("nothing was compacted")
	}
	// Stubs keep no body: eth_getBlockByNumber renders the block again, byte for byte.
	for i := uint64(1); i <= 20; i++ {
		kept.mu.RLock()
		stub := kept.canon[i]
		kept.mu.RUnlock()
		if !stub.compact || stub.body != nil {
			t.Fatalf("block %d: compact %v, body kept %v", i, stub.compact, stub.body != nil)
		}
		if a, b := full.renderBlock(full.canon[i], true), kept.renderBlock(stub, true); string(a) != string(b) {
			t.Fatalf("block %d renders differently after compaction:\n%s\n%s", i, a, b)
		}
	}
}

func TestRetainLogsBoundsWholeBlocksByLogs(t *testing.T) {
	full := New(Config{Seed: 41, LogsPerBlock: 10, FixedLogs: true})
	kept := New(Config{Seed: 41, LogsPerBlock: 10, FixedLogs: true, RetainLogs: 25})
	full.Mine(20)
	kept.Mine(20)
	full.Reorg(3)
	kept.Reorg(3)
	kept.mu.RLock()
	whole, logs := 0, 0
	for _, b := range kept.canon[1:] {
		if !b.compact {
			whole++
			logs += len(b.Logs)
		}
	}
	if logs != kept.fullLogs {
		t.Errorf("counted %d logs in whole blocks, node says %d", logs, kept.fullLogs)
	}
	kept.mu.RUnlock()
	if whole != 2 {
		t.Errorf("%d whole blocks kept, want 2 (RetainLogs 25, 10 logs a block)", whole)
	}
	head := kept.Head().Number
	for i := uint64(0); i <= head; i++ {
		a, _ := full.BlockByNumber(i)
		b, _ := kept.BlockByNumber(i)
		if a.Hash != b.Hash || len(a.Logs) != len(b.Logs) {
			t.Fatalf("block %d differs after compaction", i)
		}
	}
	if kept.Stats().Rebuilt == 0 {
		t.Fatal("nothing was compacted")
	}
	kept.cacheMu.Lock()
	defer kept.cacheMu.Unlock()
	if kept.cacheLogs > 25/2 && len(kept.cacheOrder) > 1 {
		t.Errorf("rebuilt-block cache holds %d blocks, %d logs; want at most half of RetainLogs", len(kept.cacheOrder), kept.cacheLogs)
	}
}
