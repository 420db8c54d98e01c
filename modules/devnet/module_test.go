package devnet

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/internal/module"
)

func TestModuleServesUntilCancelledAndClosesClients(t *testing.T) {
	cfg := config.DefaultDevnet()
	cfg.Addr = "127.0.0.1:0"
	cfg.BlockTime = 5 * time.Millisecond
	m := NewModule(module.Deps{Config: config.Config{Devnet: cfg}}, Options{})
	if m.Name() != "devnet" || m.Ready() {
		t.Fatalf("name %q ready %v before Run", m.Name(), m.Ready())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for !m.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("not ready")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !strings.HasPrefix(m.URL(), "ws://127.0.0.1:") || strings.HasSuffix(m.URL(), ":0/") {
		t.Fatalf("URL %q", m.URL())
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer dcancel()
	c, _, err := websocket.Dial(dctx, m.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.Write(dctx, websocket.MessageText, []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`)); err != nil {
		t.Fatal(err)
	}
	_, data, err := c.Read(dctx)
	if err != nil || !strings.Contains(string(data), `"result":"0x7a69"`) {
		t.Fatalf("eth_chainId: %s %v", data, err)
	}
	for m.Node().Head().Number < 3 {
		if time.Now().After(deadline) {
			t.Fatal("not mining")
		}
		time.Sleep(5 * time.Millisecond)
	}
	readErr := make(chan error, 1)
	go func() {
		for {
			if _, _, err := c.Read(dctx); err != nil {
				readErr <- err
				return
			}
		}
	}()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := <-readErr; websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("client got %v, want a normal close frame", err)
	}
	if m.Ready() {
		t.Fatal("ready after stop")
	}
}

func TestControlAPIInjectsEveryFault(t *testing.T) {
	n, srv := startNode(t, Config{Seed: 30, LogsPerBlock: 4, FixedLogs: true})
	post := func(action, body string) map[string]any {
		t.Helper()
		resp, err := http.Post(srv.URL+"/control/"+action, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", action, resp.StatusCode, b)
		}
		var out map[string]any
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s: %s", action, b)
		}
		return out
	}
	post("mine", `{"n":5}`)
	if n.Head().Number != 5 {
		t.Fatalf("head %d after mine 5", n.Head().Number)
	}
	post("reorg", `{"depth":2}`)
	if n.Head().Number != 6 || len(n.Orphaned()) != 2 {
		t.Fatalf("after reorg: head %d, orphaned %d", n.Head().Number, len(n.Orphaned()))
	}
	post("skip", `{"n":3}`)
	resp, err := http.Get(srv.URL + "/control/head")
	if err != nil {
		t.Fatal(err)
	}
	var head BlockInfo
	_ = json.NewDecoder(resp.Body).Decode(&head)
	resp.Body.Close()
	if head.Number != 9 || head.Hash != n.Head().Hash.Hex() {
		t.Fatalf("control head %+v", head)
	}
	post("ratelimit", `{"n":1}`)
	if code, _ := httpPost(t, srv.URL, `{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`); code != 429 {
		t.Fatalf("after /control/ratelimit: status %d", code)
	}
	post("emptylogs", ``)
	b := n.Mine(1)[0]
	var logs []any
	if e := httpCall(t, srv.URL, "eth_getLogs", &logs, map[string]any{"blockHash": b.Hash}); e != nil || len(logs) != 0 {
		t.Fatalf("after /control/emptylogs: %d logs", len(logs))
	}
	w := dialWS(t, srv)
	post("malformed", `{"n":1}`)
	w.send(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`)
	if f := w.next(); strings.Contains(string(f), `"id":1,"result":"0x7a69"}`) {
		t.Fatalf("frame after /control/malformed is intact: %s", f)
	}
	post("stall", `{"ms":0}`)
	post("drop", ``)
	select {
	case <-w.errc:
	case <-time.After(20 * time.Second):
		t.Fatal("/control/drop did not drop the connection")
	}
	st := n.Stats()
	if st.Malformed != 1 || st.RateLimited != 1 || st.EmptyLogsServed != 1 || st.Reorgs != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestControlPauseStopsMiningUntilResume(t *testing.T) {
	n, srv := startNode(t, Config{Seed: 31, BlockTime: 5 * time.Millisecond, LogsPerBlock: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.Run(ctx)
	post := func(action string) {
		t.Helper()
		resp, err := http.Post(srv.URL+"/control/"+action, "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d", action, resp.StatusCode)
		}
	}
	waitHead := func(above uint64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for n.Head().Number <= above {
			if time.Now().After(deadline) {
				t.Fatalf("head stayed at %d, want above %d", n.Head().Number, above)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitHead(2)
	post("pause")
	// A tick already past the paused check may still mine one block.
	time.Sleep(20 * time.Millisecond)
	paused := n.Head().Number
	time.Sleep(100 * time.Millisecond)
	if h := n.Head().Number; h != paused {
		t.Fatalf("head moved from %d to %d while paused", paused, h)
	}
	if len(n.Mine(1)) != 1 || n.Head().Number != paused+1 {
		t.Fatalf("Mine while paused: head %d, want %d", n.Head().Number, paused+1)
	}
	post("resume")
	waitHead(paused + 1)
}
