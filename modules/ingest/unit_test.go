package ingest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/modules/ingest/rpc"
)

func TestEventJSONMatchesHookEvent(t *testing.T) {
	h := header{Number: 1234, Hash: hash(7), ParentHash: hash(6), Timestamp: 1700000000}
	cases := []ethLog{
		{Address: "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", Topics: []string{"0xDDF252AD1BE2C89B69C2B068FC378DAA952BA7F163C4A11628F55A4DF523B3EF", hash(1)}, Data: "0x00ff", TxHash: hash(9), TxIndex: 3, LogIndex: 17},
		{Address: "0x0000000000000000000000000000000000000001", Topics: []string{}, Data: "0x", TxHash: hash(2)},
		{Address: "0x0000000000000000000000000000000000000001", Data: "0x", TxHash: hash(2)},
	}
	for i, l := range cases {
		for _, name := range []string{"devnet", "odd<&>\"name\\é"} {
			id := hook.EventID(5, h.Hash, uint(l.LogIndex))
			got := appendEventJSON(nil, id, hook.TypeLog, 5, name, &h, &l)
			topics := l.Topics
			for j := range topics {
				topics[j] = toLower(topics[j])
			}
			ev := hook.Event{ID: id, Type: hook.TypeLog, Chain: hook.Chain{ID: 5, Name: name},
				Block:       hook.Block{Number: 1234, Hash: h.Hash, ParentHash: h.ParentHash, Timestamp: 1700000000},
				Transaction: hook.Transaction{Hash: l.TxHash, Index: uint(l.TxIndex)},
				Log:         hook.Log{Address: toLower(l.Address), Topics: topics, Data: l.Data, Index: uint(l.LogIndex)}}
			f, err := ev.Fields()
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != f["event"] {
				t.Fatalf("case %d %q:\n got %s\nwant %s", i, name, got, f["event"])
			}
		}
	}
}

func toLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

func TestAsRemovedKeepsIDAndBody(t *testing.T) {
	line := []byte(`{"id":"1:0xab:3","type":"log","chain":{"id":1,"name":"eth"}}`)
	ev, id, err := asRemoved(line)
	if err != nil || id != "1:0xab:3" || ev != `{"id":"1:0xab:3","type":"log.removed","chain":{"id":1,"name":"eth"}}` {
		t.Fatalf("asRemoved = %q %q %v", ev, id, err)
	}
	if _, _, err := asRemoved([]byte(`{"type":"log"}`)); err == nil {
		t.Fatal("accepted an entry without id")
	}
}

func TestProviderRangeErrorsAreRecognised(t *testing.T) {
	shrink := []rpc.Error{
		{Code: -32005, Message: "query returned more than 10000 results. Try with this block range [0x1, 0x2]."},                                               // Infura / geth
		{Code: -32602, Message: "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range and no limit on the response size"}, // Alchemy
		{Code: -32614, Message: "eth_getLogs is limited to a 10,000 range"},                                                                                    // QuickNode
		{Code: -32000, Message: "block range is too wide"},                                                                                                     // Ankr
		{Code: -32000, Message: "exceed maximum block range: 5000"},                                                                                            // Erigon-style
		{Code: -32005, Message: "block range too large: requested 2000 blocks, max is 1000"},                                                                   // devnet
		{Code: -32000, Message: "Exceeded max range limit for eth_getLogs: 800"},                                                                               // Cloudflare-style
		{Code: -32602, Message: "query exceeds max results 20000, retry with the range 1-5"},
		{Code: -32000, Message: "response size exceeded"},
		{Code: -32005, Message: "limit exceeded"},
	}
	for _, e := range shrink {
		if !rpc.IsRangeError(&e) {
			t.Errorf("not a range error: %d %q", e.Code, e.Message)
		}
	}
	keep := []rpc.Error{
		{Code: -32005, Message: "rate limit exceeded"},
		{Code: 429, Message: "Your app has exceeded its compute units per second capacity"},
		{Code: -32000, Message: "unknown block"},
		{Code: -32602, Message: "invalid argument 0: hex string without 0x prefix"},
	}
	for _, e := range keep {
		if rpc.IsRangeError(&e) {
			t.Errorf("wrongly a range error: %d %q", e.Code, e.Message)
		}
	}
	if !rpc.IsRangeError(rpc.ErrTooLarge) || !rpc.IsRateLimit(&keep[0]) || !rpc.IsRateLimit(&keep[1]) {
		t.Error("too-large / rate-limit classification")
	}
}

func TestBreakerSkipsFailingURL(t *testing.T) {
	now := time.Now()
	eps := []*endpoint{{url: "a"}, {url: "b"}}
	for i := 0; i < breakerThreshold; i++ {
		eps[0].failure(now)
	}
	if got := pick(eps, 0, now); got != 1 {
		t.Fatalf("picked %d, want the healthy URL 1", got)
	}
	eps[1].refuse(now, wrongChainOpen)
	if got := pick(eps, 0, now); got != 0 {
		t.Fatalf("picked %d, want 0 (opens first)", got)
	}
	if got := pick(eps, 0, now.Add(breakerBaseOpen+time.Second)); got != 0 {
		t.Fatalf("after cooldown picked %d", got)
	}
}

func TestHeaderBloom(t *testing.T) {
	var h header
	if err := json.Unmarshal([]byte(`{"number":"0x10","hash":"`+hash(1)+`","parentHash":"`+hash(0)+`","logsBloom":"0x`+string(make0(512))+`","timestamp":"0x5"}`), &h); err != nil {
		t.Fatal(err)
	}
	if h.Number != 16 || h.Timestamp != 5 || !h.bloomEmpty() {
		t.Fatalf("header %+v", h)
	}
	h.LogsBloom = "0x" + string(make0(511)) + "1"
	if h.bloomEmpty() {
		t.Fatal("non-empty bloom taken as empty")
	}
}

func make0(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = '0'
	}
	return b
}
