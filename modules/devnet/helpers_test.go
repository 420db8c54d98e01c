package devnet

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func startNode(t testing.TB, cfg Config) (*Node, *httptest.Server) {
	t.Helper()
	n := New(cfg)
	srv := httptest.NewServer(n.Handler())
	t.Cleanup(srv.Close)
	return n, srv
}

type rpcResp struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   *rpcError       `json:"error"`
	Method  string          `json:"method"`
	Params  struct {
		Subscription string          `json:"subscription"`
		Result       json.RawMessage `json:"result"`
	} `json:"params"`
}

// httpCall posts one raw body and returns status and body.
func httpPost(t testing.TB, url, body string) (int, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return resp.StatusCode, b
}

var idSeq atomic.Int64

// httpCall calls method over HTTP and decodes the result into out.
func httpCall(t testing.TB, url, method string, out any, params ...any) *rpcError {
	t.Helper()
	if params == nil {
		params = []any{}
	}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": idSeq.Add(1), "method": method, "params": params})
	_, b := httpPost(t, url, string(body))
	var r rpcResp
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: decode %q: %v", method, b, err)
	}
	if r.Error != nil {
		return r.Error
	}
	if out != nil {
		if err := json.Unmarshal(r.Result, out); err != nil {
			t.Fatalf("%s: decode result %s: %v", method, r.Result, err)
		}
	}
	return nil
}

type wsClient struct {
	t    testing.TB
	c    *websocket.Conn
	raw  chan []byte
	errc chan error
}

func dialWS(t testing.TB, srv *httptest.Server) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/"
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.SetReadLimit(64 << 20)
	w := &wsClient{t: t, c: c, raw: make(chan []byte, 100000), errc: make(chan error, 1)}
	go func() {
		for {
			_, data, err := c.Read(context.Background())
			if err != nil {
				w.errc <- err
				close(w.raw)
				return
			}
			w.raw <- data
		}
	}()
	t.Cleanup(func() { c.CloseNow() })
	return w
}

func (w *wsClient) send(s string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.c.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		w.t.Fatalf("write: %v", err)
	}
}

// next returns the next raw frame, failing after 20 s.
func (w *wsClient) next() []byte {
	w.t.Helper()
	select {
	case b, ok := <-w.raw:
		if !ok {
			w.t.Fatalf("connection closed: %v", <-w.errc)
		}
		return b
	case <-time.After(20 * time.Second):
		w.t.Fatalf("no frame within 20s")
	}
	return nil
}

func (w *wsClient) nextResp() rpcResp {
	w.t.Helper()
	b := w.next()
	var r rpcResp
	if err := json.Unmarshal(b, &r); err != nil {
		w.t.Fatalf("decode frame %q: %v", b, err)
	}
	return r
}

// call sends a request and waits for its response, keeping notifications
// that arrive meanwhile in notes.
func (w *wsClient) call(method string, params ...any) (rpcResp, []rpcResp) {
	w.t.Helper()
	if params == nil {
		params = []any{}
	}
	id := idSeq.Add(1)
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	w.send(string(body))
	var notes []rpcResp
	for {
		r := w.nextResp()
		if r.Method == "eth_subscription" {
			notes = append(notes, r)
			continue
		}
		if string(r.ID) != fmt.Sprint(id) {
			w.t.Fatalf("response id %s, want %d", r.ID, id)
		}
		return r, notes
	}
}

func mustResult(t testing.TB, r rpcResp, out any) {
	t.Helper()
	if r.Error != nil {
		t.Fatalf("rpc error: %v", r.Error)
	}
	if out != nil {
		if err := json.Unmarshal(r.Result, out); err != nil {
			t.Fatalf("decode %s: %v", r.Result, err)
		}
	}
}

var _ = bytes.Equal
