package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethhook/ethhook/modules/devnet"
)

func serve(t *testing.T) (*devnet.Node, string, string) {
	n := devnet.New(devnet.Config{Seed: 1, LogsPerBlock: 3})
	srv := httptest.NewServer(n.Handler())
	t.Cleanup(srv.Close)
	return n, "ws" + strings.TrimPrefix(srv.URL, "http") + "/", srv.URL + "/"
}

func TestWSCallsBatchesAndSubscriptions(t *testing.T) {
	n, ws, _ := serve(t)
	ctx := context.Background()
	var malformed atomic.Int64
	c, err := DialWS(ctx, ws, Options{CallTimeout: time.Second, Malformed: func(error) { malformed.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var id string
	if err := c.Call(ctx, &id, "eth_chainId"); err != nil || id != "0x7a69" {
		t.Fatalf("eth_chainId = %q, %v", id, err)
	}
	var bad json.RawMessage
	if err := c.Call(ctx, &bad, "no_such_method"); Code(err) != -32601 {
		t.Fatalf("unknown method error = %v", err)
	}
	sub, err := c.Subscribe(ctx, "newHeads")
	if err != nil {
		t.Fatal(err)
	}
	n.Mine(3)
	for got := 0; got < 3; {
		select {
		case <-sub.C:
			for _, ok := sub.Next(); ok; _, ok = sub.Next() {
				got++
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("notification %d missing", got)
		}
	}
	elems := make([]BatchElem, 3)
	nums := make([]json.RawMessage, 3)
	for i := range elems {
		elems[i] = BatchElem{Method: "eth_getBlockByNumber", Params: []any{"0x" + string(rune('1'+i)), false}, Result: &nums[i]}
	}
	if err := c.Batch(ctx, elems); err != nil {
		t.Fatal(err)
	}
	for i, e := range elems {
		if e.Error != nil || !strings.Contains(string(nums[i]), `"number":"0x`+string(rune('1'+i))) {
			t.Fatalf("batch elem %d: %v %s", i, e.Error, nums[i])
		}
	}
	// A corrupted response: counted, and the call times out instead of hanging.
	n.MalformedNext(1)
	err = c.Call(ctx, &id, "eth_chainId")
	if err == nil || malformed.Load() == 0 {
		t.Fatalf("malformed answer: err %v, counted %d", err, malformed.Load())
	}
	if err := c.Call(ctx, &id, "eth_chainId"); err != nil {
		t.Fatalf("connection unusable after a malformed frame: %v", err)
	}
	n.DropConnections()
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("dropped connection not noticed")
	}
	if err := c.Call(ctx, &id, "eth_chainId"); !errors.Is(err, ErrClosed) {
		t.Fatalf("call on a dead connection: %v", err)
	}
}

func TestHTTPCallAndBatch(t *testing.T) {
	n, _, url := serve(t)
	n.Mine(2)
	ctx := context.Background()
	h := NewHTTP(url, Options{})
	var num string
	if err := h.Call(ctx, &num, "eth_blockNumber"); err != nil || num != "0x2" {
		t.Fatalf("eth_blockNumber = %q %v", num, err)
	}
	var a, b string
	elems := []BatchElem{{Method: "eth_chainId", Result: &a}, {Method: "net_version", Result: &b}}
	if err := h.Batch(ctx, elems); err != nil || a != "0x7a69" || b != "31337" {
		t.Fatalf("batch: %q %q %v", a, b, err)
	}
	n.RateLimitNext(1)
	if err := h.Call(ctx, &num, "eth_blockNumber"); !IsRateLimit(err) {
		t.Fatalf("rate limit not recognised: %v", err)
	}
}

func TestReadLimitRefusesOversizedMessage(t *testing.T) {
	n, ws, url := serve(t)
	n.Mine(400)
	ctx := context.Background()
	c, err := DialWS(ctx, ws, Options{ReadLimit: 4096})
	if err != nil {
		t.Fatal(err)
	}
	var logs json.RawMessage
	if err := c.Call(ctx, &logs, "eth_getLogs", map[string]any{"fromBlock": "0x1", "toBlock": "0x190"}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("ws oversized: %v", err)
	}
	h := NewHTTP(url, Options{ReadLimit: 4096})
	if err := h.Call(ctx, &logs, "eth_getLogs", map[string]any{"fromBlock": "0x1", "toBlock": "0x190"}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("http oversized: %v", err)
	}
}
