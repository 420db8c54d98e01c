package rpc

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// floodServer is a hostile node: it answers eth_subscribe with "0x1" and
// every other call only after flooding the socket with n notifications
// of size bytes each, so they all arrive while the call is pending.
func floodServer(t *testing.T, n, size int) string {
	t.Helper()
	big := strings.Repeat("a", size)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			var req struct {
				ID     json.RawMessage `json:"id"`
				Method string          `json:"method"`
			}
			if json.Unmarshal(b, &req) != nil {
				return
			}
			if req.Method != "eth_subscribe" {
				for i := 0; i < n; i++ {
					f := `{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0x1","result":{"pad":"` + big + `"}}}`
					if c.Write(ctx, websocket.MessageText, []byte(f)) != nil {
						return
					}
				}
			}
			if c.Write(ctx, websocket.MessageText, []byte(`{"jsonrpc":"2.0","id":`+string(req.ID)+`,"result":"0x1"}`)) != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// TestNotificationFloodStaysWithinTheByteBudget: 300 notifications of
// 1 MiB arrive while a call waits and nobody reads the subscription. The
// queue never holds more than SubBufferBytes (it held 256 MiB before the
// byte bound), the surplus is dropped and counted, the newest survive and
// the call still gets its answer.
func TestNotificationFloodStaysWithinTheByteBudget(t *testing.T) {
	const (
		n      = 300
		size   = 1 << 20
		budget = 4 << 20
	)
	url := floodServer(t, n, size)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ctx := context.Background()
	w, err := DialWS(ctx, url, Options{ReadLimit: 2 << 20, CallTimeout: 5 * time.Minute, SubBufferBytes: budget})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	sub, err := w.Subscribe(ctx, "newHeads")
	if err != nil {
		t.Fatal(err)
	}
	var res string
	if err := w.Call(ctx, &res, "eth_blockNumber"); err != nil || res != "0x1" {
		t.Fatalf("call behind the flood: %q %v", res, err)
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	peak, queued := sub.PeakBytes(), sub.QueuedBytes()
	if peak > budget || queued > budget {
		t.Fatalf("queue held %d bytes (now %d), budget %d", peak, queued, budget)
	}
	kept := 0
	for _, ok := sub.Next(); ok; _, ok = sub.Next() {
		kept++
	}
	if kept == 0 || uint64(kept)+sub.Dropped.Load() != n {
		t.Fatalf("kept %d + dropped %d, want %d in all, some kept", kept, sub.Dropped.Load(), n)
	}
	// Secondary and generous: the heap grew by far less than the flood
	// (300 MiB; 260 MiB stayed queued before the byte bound).
	grew := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("peak queue %d bytes, kept %d, dropped %d, heap in use %d -> %d MiB", peak, kept, sub.Dropped.Load(), before.HeapInuse>>20, after.HeapInuse>>20)
	if grew > 64<<20 {
		t.Fatalf("heap grew by %d MiB under the flood", grew>>20)
	}
}

// TestNotificationLargerThanTheBudgetIsDropped: one notification above the
// whole budget is dropped and counted; smaller ones still arrive.
func TestNotificationLargerThanTheBudgetIsDropped(t *testing.T) {
	url := floodServer(t, 1, 64<<10)
	ctx := context.Background()
	w, err := DialWS(ctx, url, Options{SubBufferBytes: 32 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	sub, err := w.Subscribe(ctx, "newHeads")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Call(ctx, nil, "eth_blockNumber"); err != nil {
		t.Fatal(err)
	}
	if _, ok := sub.Next(); ok || sub.Dropped.Load() != 1 || sub.PeakBytes() != 0 {
		t.Fatalf("oversized notification: queued %v, dropped %d, peak %d", ok, sub.Dropped.Load(), sub.PeakBytes())
	}
}
