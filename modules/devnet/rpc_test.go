package devnet

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

func TestErrorCodesFollowJSONRPCSpec(t *testing.T) {
	n, srv := startNode(t, Config{Seed: 5, LogsPerBlock: 5})
	n.Mine(3)
	cases := []struct {
		name, body string
		code       int
		msg        string
	}{
		{"parse error", `{"jsonrpc":"2.0","id":1,"method":`, CodeParseError, "parse error"},
		{"batch parse error", `[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"`, CodeParseError, "parse error"},
		{"empty batch", `[]`, CodeInvalidRequest, "empty batch"},
		{"wrong version", `{"jsonrpc":"1.0","id":1,"method":"eth_chainId"}`, CodeInvalidRequest, "invalid request"},
		{"no method", `{"jsonrpc":"2.0","id":1}`, CodeInvalidRequest, "invalid request"},
		{"not an object", `42`, CodeInvalidRequest, "invalid request"},
		{"unknown method", `{"jsonrpc":"2.0","id":1,"method":"eth_foo"}`, CodeMethodNotFound, "the method eth_foo does not exist/is not available"},
		{"missing arg", `{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":[]}`, CodeInvalidParams, "missing value for required argument 0"},
		{"bad hex", `{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":["12",false]}`, CodeInvalidParams, "hex string without 0x prefix"},
		{"leading zero", `{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":["0x01",false]}`, CodeInvalidParams, "leading zero"},
		{"bad hash", `{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByHash","params":["0x1234",false]}`, CodeInvalidParams, "invalid argument 0"},
		{"unknown block", `{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{"blockHash":"0x` + strings.Repeat("ab", 32) + `"}]}`, CodeServerError, "unknown block"},
		{"hash with range", `{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{"blockHash":"0x` + strings.Repeat("ab", 32) + `","fromBlock":"0x1"}]}`, CodeInvalidParams, "can't specify fromBlock/toBlock with blockHash"},
		{"from after to", `{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{"fromBlock":"0x3","toBlock":"0x2"}]}`, CodeInvalidParams, "invalid block range params"},
		{"beyond head", `{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{"fromBlock":"0x1","toBlock":"0x9"}]}`, CodeInvalidParams, "block range extends beyond current head block"},
		{"pending logs", `{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{"fromBlock":"pending"}]}`, CodeInvalidParams, "pending logs are not supported"},
		{"bad topic", `{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{"topics":["0x12"]}]}`, CodeInvalidParams, "invalid topic(s)"},
		{"too many topics", `{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{"topics":[null,null,null,null,null]}]}`, CodeServerError, "exceed max topics"},
		{"subscribe over http", `{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}`, CodeMethodNotFound, "notifications not supported"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, b := httpPost(t, srv.URL, c.body)
			var r rpcResp
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatalf("answer %q is not one JSON object: %v", b, err)
			}
			if r.JSONRPC != "2.0" || r.Error == nil {
				t.Fatalf("answer %s has no error", b)
			}
			if r.Error.Code != c.code || !strings.Contains(r.Error.Message, c.msg) {
				t.Fatalf("error %d %q, want %d containing %q", r.Error.Code, r.Error.Message, c.code, c.msg)
			}
		})
	}
}

func TestBatchAnswersEveryCallAndSkipsNotifications(t *testing.T) {
	n, srv := startNode(t, Config{Seed: 6, LogsPerBlock: 5})
	n.Mine(2)
	body := `[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},
	 {"jsonrpc":"2.0","method":"eth_blockNumber"},
	 {"jsonrpc":"2.0","id":"two","method":"eth_blockNumber"},
	 {"jsonrpc":"2.0","id":3,"method":"nope"},
	 {"jsonrpc":"2.0","id":4,"method":"eth_getBlockByNumber","params":["latest",false]}]`
	check := func(t *testing.T, b []byte) {
		var rs []rpcResp
		if err := json.Unmarshal(b, &rs); err != nil {
			t.Fatalf("batch answer %q: %v", b, err)
		}
		if len(rs) != 4 {
			t.Fatalf("got %d answers, want 4 (the notification has none)", len(rs))
		}
		if string(rs[0].ID) != "1" || string(rs[0].Result) != `"0x7a69"` {
			t.Fatalf("answer 0: %s %s", rs[0].ID, rs[0].Result)
		}
		if string(rs[1].ID) != `"two"` || string(rs[1].Result) != `"0x2"` {
			t.Fatalf("answer 1: %s %s", rs[1].ID, rs[1].Result)
		}
		if rs[2].Error == nil || rs[2].Error.Code != CodeMethodNotFound {
			t.Fatalf("answer 2: %+v", rs[2])
		}
		var blk map[string]any
		if err := json.Unmarshal(rs[3].Result, &blk); err != nil || blk["number"] != "0x2" {
			t.Fatalf("answer 3: %s", rs[3].Result)
		}
	}
	t.Run("http", func(t *testing.T) {
		_, b := httpPost(t, srv.URL, body)
		check(t, b)
	})
	t.Run("ws", func(t *testing.T) {
		w := dialWS(t, srv)
		w.send(body)
		check(t, w.next())
	})
	t.Run("only notifications", func(t *testing.T) {
		code, b := httpPost(t, srv.URL, `[{"jsonrpc":"2.0","method":"eth_chainId"}]`)
		if code != 200 || len(b) != 0 {
			t.Fatalf("got %d %q, want an empty answer", code, b)
		}
	})
}

func TestGetBlockByNumberTagsAndHexNumbers(t *testing.T) {
	n, srv := startNode(t, Config{Seed: 9, LogsPerBlock: 3, FinalizedDepth: 4})
	n.Mine(10)
	for tag, want := range map[string]string{
		"latest": "0xa", "pending": "0xa", "earliest": "0x0", "finalized": "0x6", "safe": "0x8", "0x7": "0x7",
	} {
		var blk map[string]any
		if e := httpCall(t, srv.URL, "eth_getBlockByNumber", &blk, tag, false); e != nil {
			t.Fatalf("%s: %v", tag, e)
		}
		if blk["number"] != want {
			t.Fatalf("%s: number %v, want %s", tag, blk["number"], want)
		}
	}
	var blk json.RawMessage
	if e := httpCall(t, srv.URL, "eth_getBlockByNumber", &blk, "0x64", false); e != nil || string(blk) != "null" {
		t.Fatalf("block beyond head: %s %v, want null", blk, e)
	}
	if e := httpCall(t, srv.URL, "eth_getBlockByHash", &blk, common.Hash{1}, false); e != nil || string(blk) != "null" {
		t.Fatalf("unknown hash: %s %v, want null", blk, e)
	}
	// Full transactions and a geth-decodable header.
	b7, _ := n.BlockByNumber(7)
	var full struct {
		Hash         common.Hash `json:"hash"`
		Transactions []struct {
			Hash      common.Hash `json:"hash"`
			BlockHash common.Hash `json:"blockHash"`
			From      string      `json:"from"`
			TxIndex   string      `json:"transactionIndex"`
		} `json:"transactions"`
		Uncles []common.Hash `json:"uncles"`
	}
	if e := httpCall(t, srv.URL, "eth_getBlockByHash", &full, b7.Hash, true); e != nil {
		t.Fatal(e)
	}
	if full.Hash != b7.Hash || len(full.Transactions) != len(b7.TxHashes) {
		t.Fatalf("full block: %+v", full)
	}
	for i, tx := range full.Transactions {
		if tx.Hash != b7.TxHashes[i] || tx.BlockHash != b7.Hash {
			t.Fatalf("tx %d: %+v", i, tx)
		}
	}
	var h types.Header
	if e := httpCall(t, srv.URL, "eth_getBlockByHash", &h, b7.Hash, false); e != nil {
		t.Fatalf("header does not decode as a go-ethereum header: %v", e)
	}
	if h.Number.Uint64() != 7 || h.ParentHash != b7.ParentHash || h.Bloom != b7.Bloom || h.Time != b7.Time {
		t.Fatalf("decoded header %+v", h)
	}
}

// matches is an independent reference implementation of geth's filter.
func matches(l types.Log, addrs []common.Address, topics [][]common.Hash) bool {
	if len(addrs) > 0 {
		found := false
		for _, a := range addrs {
			found = found || a == l.Address
		}
		if !found {
			return false
		}
	}
	if len(topics) > len(l.Topics) {
		return false
	}
	for i, alts := range topics {
		if len(alts) == 0 {
			continue
		}
		found := false
		for _, tp := range alts {
			found = found || tp == l.Topics[i]
		}
		if !found {
			return false
		}
	}
	return true
}

func TestGetLogsRangeFiltersByAddressAndTopics(t *testing.T) {
	n, srv := startNode(t, Config{Seed: 10, LogsPerBlock: 40})
	n.Mine(30)
	all := n.CanonicalLogs(0, 30)
	ct := n.Contracts()
	someUser := all[0].Topics[1]
	cases := []struct {
		name   string
		filter map[string]any
		addrs  []common.Address
		topics [][]common.Hash
	}{
		{"all", map[string]any{"fromBlock": "earliest", "toBlock": "latest"}, nil, nil},
		{"single address", map[string]any{"fromBlock": "0x1", "toBlock": "0x1e", "address": ct[0]}, []common.Address{ct[0]}, nil},
		{"address list", map[string]any{"fromBlock": "0x1", "toBlock": "0x1e", "address": []common.Address{ct[1], ct[4]}}, []common.Address{ct[1], ct[4]}, nil},
		{"topic0", map[string]any{"fromBlock": "0x1", "toBlock": "0x1e", "topics": []any{TopicTransfer}}, nil, [][]common.Hash{{TopicTransfer}}},
		{"topic0 or", map[string]any{"fromBlock": "0x1", "toBlock": "0x1e", "topics": []any{[]any{TopicApproval, TopicSwap}}}, nil, [][]common.Hash{{TopicApproval, TopicSwap}}},
		{"wildcard then topic1", map[string]any{"fromBlock": "0x1", "toBlock": "0x1e", "topics": []any{nil, someUser}}, nil, [][]common.Hash{nil, {someUser}}},
		{"null inside or", map[string]any{"fromBlock": "0x1", "toBlock": "0x1e", "topics": []any{[]any{TopicSwap, nil}}}, nil, [][]common.Hash{nil}},
		{"four wildcards need four topics", map[string]any{"fromBlock": "0x1", "toBlock": "0x1e", "topics": []any{nil, nil, nil, nil}}, nil, [][]common.Hash{nil, nil, nil, nil}},
		{"address and topic", map[string]any{"fromBlock": "0x5", "toBlock": "0x9", "address": ct[0], "topics": []any{TopicTransfer}}, []common.Address{ct[0]}, [][]common.Hash{{TopicTransfer}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			from, to := uint64(0), uint64(30)
			if f, ok := c.filter["fromBlock"].(string); ok && f == "0x5" {
				from, to = 5, 9
			}
			var want []types.Log
			for _, l := range n.CanonicalLogs(from, to) {
				if matches(l, c.addrs, c.topics) {
					want = append(want, l)
				}
			}
			var got []types.Log
			if e := httpCall(t, srv.URL, "eth_getLogs", &got, c.filter); e != nil {
				t.Fatal(e)
			}
			if len(got) != len(want) {
				t.Fatalf("got %d logs, want %d", len(got), len(want))
			}
			for i := range got {
				if got[i].BlockHash != want[i].BlockHash || got[i].Index != want[i].Index {
					t.Fatalf("log %d: got %d/%d, want %d/%d", i, got[i].BlockNumber, got[i].Index, want[i].BlockNumber, want[i].Index)
				}
			}
			if c.name == "four wildcards need four topics" && len(got) != 0 {
				t.Fatalf("devnet logs have 3 topics; 4 positions must match none")
			}
			if c.name != "four wildcards need four topics" && len(got) == 0 {
				t.Fatalf("filter matched nothing; test data too thin")
			}
		})
	}
}

func TestGetLogsRangeLimitsAnswerProviderErrors(t *testing.T) {
	n, srv := startNode(t, Config{Seed: 11, LogsPerBlock: 10, FixedLogs: true, MaxLogRange: 5, MaxLogResults: 25})
	n.Mine(20)
	var logs []types.Log
	e := httpCall(t, srv.URL, "eth_getLogs", &logs, map[string]any{"fromBlock": "0x1", "toBlock": "0x6"})
	if e == nil || e.Code != CodeLimitExceeded || !strings.Contains(e.Message, "block range too large") {
		t.Fatalf("6-block range: %v, want -32005 block range too large", e)
	}
	e = httpCall(t, srv.URL, "eth_getLogs", &logs, map[string]any{"fromBlock": "0x1", "toBlock": "0x3"})
	if e == nil || e.Code != CodeLimitExceeded || !strings.Contains(e.Message, "query returned more than 25 results") {
		t.Fatalf("30 logs: %v, want -32005 query returned more than 25 results", e)
	}
	data, _ := json.Marshal(e.Data)
	if !strings.Contains(string(data), `"to":"0x2"`) {
		t.Fatalf("error data %s should suggest the range up to 0x2", data)
	}
	if e := httpCall(t, srv.URL, "eth_getLogs", &logs, map[string]any{"fromBlock": "0x1", "toBlock": "0x2"}); e != nil || len(logs) != 20 {
		t.Fatalf("2 blocks: %d logs, %v", len(logs), e)
	}
	// A filter that keeps the result small passes the result limit.
	if e := httpCall(t, srv.URL, "eth_getLogs", &logs, map[string]any{"fromBlock": "0x1", "toBlock": "0x5", "topics": []any{TopicSwap}}); e != nil {
		t.Fatalf("filtered 5 blocks: %v", e)
	}
}

func TestReceiptMethodIsCountedInStats(t *testing.T) {
	n, srv := startNode(t, Config{Seed: 12, LogsPerBlock: 5, FixedLogs: true})
	b := n.Mine(1)[0]
	var rc struct {
		Logs []types.Log `json:"logs"`
	}
	if e := httpCall(t, srv.URL, "eth_getTransactionReceipt", &rc, b.TxHashes[0]); e != nil {
		t.Fatal(e)
	}
	if len(rc.Logs) == 0 || rc.Logs[0].TxHash != b.TxHashes[0] {
		t.Fatalf("receipt logs %+v", rc.Logs)
	}
	httpCall(t, srv.URL, "eth_chainId", nil)
	st := n.Stats()
	if st.Requests["eth_getTransactionReceipt"] != 1 || st.Requests["eth_chainId"] != 1 {
		t.Fatalf("stats %v", st.Requests)
	}
}
