package devnet

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestFinalityTagsLagStallJumpAndGoBackThroughTheControlAPI: the safe and
// finalized tags lag by their distances, stop on stall, jump on jump
// (clamped to the head) and fall back to their distances on resume.
func TestFinalityTagsLagStallJumpAndGoBackThroughTheControlAPI(t *testing.T) {
	n, srv := startNode(t, Config{Seed: 31, SafeDepth: 2, FinalizedDepth: 5})
	tag := func(name string) string {
		t.Helper()
		var blk map[string]any
		if e := httpCall(t, srv.URL, "eth_getBlockByNumber", &blk, name, false); e != nil {
			t.Fatalf("%s: %v", name, e)
		}
		return blk["number"].(string)
	}
	post := func(action, body string) FinalityState {
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
		var s FinalityState
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatalf("%s: %s", action, b)
		}
		return s
	}
	n.Mine(20)
	if s, f := tag("safe"), tag("finalized"); s != "0x12" || f != "0xf" {
		t.Fatalf("safe %s finalized %s, want 0x12 0xf", s, f)
	}
	if s := post("finality/stall", ""); !s.Pinned || s.Finalized != 15 {
		t.Fatalf("stall: %+v", s)
	}
	n.Mine(10)
	if s, f := tag("safe"), tag("finalized"); s != "0x12" || f != "0xf" {
		t.Fatalf("stalled: safe %s finalized %s, want 0x12 0xf", s, f)
	}
	if s := post("finality/jump", `{"n":1000}`); s.Finalized != 30 || s.Safe != 30 {
		t.Fatalf("jump past the head: %+v, want both clamped to 30", s)
	}
	if f := tag("finalized"); f != "0x1e" {
		t.Fatalf("jumped finalized %s, want 0x1e", f)
	}
	if s := post("finality/resume", ""); s.Pinned || s.Finalized != 25 {
		t.Fatalf("resume: %+v, want finalized back at 25", s)
	}
	if s := post("finality", `{"safe_depth":1,"finalized_depth":3}`); s.Safe != 29 || s.Finalized != 27 {
		t.Fatalf("new depths: %+v", s)
	}
	resp, err := http.Post(srv.URL+"/control/finality/jump", "application/json", strings.NewReader(`{"n":-1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("negative jump: status %d, want 400", resp.StatusCode)
	}
}
