package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ethhook/ethhook/modules/devnet"
)

// fakeNode is a hostile (or broken) JSON-RPC node over WebSocket. It
// answers every call from a devnet behind it (through the devnet's HTTP
// JSON-RPC handler) and announces the devnet's head as newHeads, and it
// lets a test rewrite answers and heads, flood the socket before an
// answer, or put another devnet (another chain) behind the same
// connection mid-session.
type fakeNode struct {
	t       testing.TB
	srv     *httptest.Server
	backend atomic.Pointer[devnet.Node]

	mu sync.Mutex
	// answer, when set, may replace the result of method (nil keeps it).
	answer func(method string, params, result json.RawMessage) json.RawMessage
	// head, when set, may replace a newHeads header (nil keeps it).
	head func(h json.RawMessage) json.RawMessage
	// before, when set, runs before a call is answered; send writes a
	// frame on the socket.
	before func(method string, send func(frame []byte))

	calls sync.Map // method -> *atomic.Int64
}

func newFakeNode(t testing.TB, n *devnet.Node) *fakeNode {
	f := &fakeNode{t: t}
	f.backend.Store(n)
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeNode) url() string { return wsURL(f.srv) }

func (f *fakeNode) set(fn func(f *fakeNode)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeNode) count(method string) int64 {
	v, ok := f.calls.Load(method)
	if !ok {
		return 0
	}
	return v.(*atomic.Int64).Load()
}

type fakeReq struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

type fakeResp struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   json.RawMessage `json:"error,omitempty"`
}

// backendCall runs one call on the devnet behind the node.
func (f *fakeNode) backendCall(method string, params json.RawMessage) fakeResp {
	if len(params) == 0 {
		params = json.RawMessage("[]")
	}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	rec := httptest.NewRecorder()
	f.backend.Load().Handler().ServeHTTP(rec, req)
	var r fakeResp
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
		r.Error = json.RawMessage(`{"code":-32603,"message":"fake node: bad backend answer"}`)
	}
	return r
}

func (f *fakeNode) serve(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(32 << 20)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	var wmu sync.Mutex
	send := func(frame []byte) {
		wmu.Lock()
		defer wmu.Unlock()
		_ = c.Write(ctx, websocket.MessageText, frame)
	}
	var subscribed atomic.Bool
	go f.announce(ctx, &subscribed, send)
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		var reqs []fakeReq
		batch := len(b) > 0 && b[0] == '['
		if batch {
			err = json.Unmarshal(b, &reqs)
		} else {
			var one fakeReq
			err = json.Unmarshal(b, &one)
			reqs = []fakeReq{one}
		}
		if err != nil {
			return
		}
		subscribe := false
		resps := make([]fakeResp, len(reqs))
		for i, q := range reqs {
			v, _ := f.calls.LoadOrStore(q.Method, new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
			f.mu.Lock()
			before, answer := f.before, f.answer
			f.mu.Unlock()
			if before != nil {
				before(q.Method, send)
			}
			var resp fakeResp
			switch q.Method {
			case "eth_subscribe":
				resp.Result = json.RawMessage(`"0x1"`)
				subscribe = true
			case "eth_unsubscribe":
				resp.Result = json.RawMessage(`true`)
			default:
				resp = f.backendCall(q.Method, q.Params)
				if answer != nil && resp.Result != nil {
					if res := answer(q.Method, q.Params, resp.Result); res != nil {
						resp.Result = res
					}
				}
			}
			resp.JSONRPC, resp.ID = "2.0", q.ID
			resps[i] = resp
		}
		var out []byte
		if batch {
			out, _ = json.Marshal(resps)
		} else {
			out, _ = json.Marshal(resps[0])
		}
		send(out)
		if subscribe { // heads only after the subscription id, as geth does
			subscribed.Store(true)
		}
	}
}

// announce sends the backend's head as a newHeads notification whenever
// it changes.
func (f *fakeNode) announce(ctx context.Context, subscribed *atomic.Bool, send func([]byte)) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	var last string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !subscribed.Load() {
			continue
		}
		n := f.backend.Load()
		key := n.Head().Hash.Hex()
		if key == last {
			continue
		}
		last = key
		h := f.backendCall("eth_getBlockByNumber", json.RawMessage(`["latest",false]`)).Result
		f.mu.Lock()
		rewrite := f.head
		f.mu.Unlock()
		if rewrite != nil {
			if x := rewrite(h); x != nil {
				h = x
			}
		}
		send(headFrame(h))
	}
}

func headFrame(h json.RawMessage) []byte {
	return []byte(`{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0x1","result":` + string(h) + `}}`)
}

// editJSON decodes an object, lets edit change it, encodes it again.
func editJSON(raw json.RawMessage, edit func(m map[string]any)) json.RawMessage {
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil || m == nil {
		return nil
	}
	edit(m)
	b, _ := json.Marshal(m)
	return b
}
