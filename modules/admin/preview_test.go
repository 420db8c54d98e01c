package admin

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/deadletter"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/testenv"
	"github.com/ethhook/ethhook/modules/devnet"
)

// TestPreviewCountsMatchTheChain runs a preview against a devnet over a
// real socket whose node refuses ranges over 50 blocks: the counts are the
// chain's own, the sample is of matching events, and the bounds answer 400
// naming the limit.
func TestPreviewCountsMatchTheChain(t *testing.T) {
	h := newHarness(t)
	node := devnet.New(devnet.Config{ChainID: config.DevnetChainID, Seed: 9, LogsPerBlock: 4, MaxLogRange: 50})
	node.Mine(300)
	srv := httptest.NewServer(node.Handler())
	t.Cleanup(srv.Close)
	h.m.chains = []config.Chain{{Name: "devnet", ID: config.DevnetChainID, WSURLs: []string{"ws" + strings.TrimPrefix(srv.URL, "http") + "/"}}}
	token, appID, _ := h.member("preview@example.com")
	addr := strings.ToLower(node.Contracts()[1].Hex())
	want := map[string]bool{}
	for _, l := range node.CanonicalLogs(1, 300) {
		if strings.EqualFold(l.Address.Hex(), addr) {
			want[hook.EventID(config.DevnetChainID, l.BlockHash.Hex(), l.Index)] = true
		}
	}
	from, to := uint64(1), uint64(300)
	path := "/api/v1/applications/" + appID + "/endpoints/preview"
	var out previewView
	h.must(200, "POST", path, token, previewRequest{Filter: hook.Filter{Chains: []uint64{config.DevnetChainID}, Addresses: []string{addr}},
		FromBlock: &from, ToBlock: &to, Sample: 3}).json(t, &out)
	if out.Matches != len(want) || out.Logs != len(want) || out.Truncated || out.ScannedTo != to || len(want) == 0 {
		t.Fatalf("preview: %d matches of %d logs (truncated %v, scanned to %d), want %d", out.Matches, out.Logs, out.Truncated, out.ScannedTo, len(want))
	}
	if len(out.Sample) != 3 {
		t.Fatalf("sample of %d, want 3", len(out.Sample))
	}
	for _, s := range out.Sample {
		if !want[s.Event.ID] || s.Event.Block.Timestamp == 0 || s.Event.Log.Address != addr {
			t.Fatalf("sample event %+v is not a matching event with its block time", s.Event)
		}
	}
	// Bounds: 400 naming the key and the limit.
	far := from + MaxPreviewBlocks
	r := h.must(400, "POST", path, token, previewRequest{Filter: hook.Filter{Chains: []uint64{config.DevnetChainID}}, FromBlock: &from, ToBlock: &far})
	if e := r.errCode(t); !strings.Contains(e.Error.Message, "to_block") || !strings.Contains(e.Error.Message, "MaxPreviewBlocks") {
		t.Fatalf("range bound: %s", r.Body)
	}
	r = h.must(400, "POST", path, token, previewRequest{Filter: hook.Filter{Chains: []uint64{config.DevnetChainID, 1}}, FromBlock: &from, ToBlock: &to})
	if e := r.errCode(t); !strings.Contains(e.Error.Message, "filter.chains") {
		t.Fatalf("two chains: %s", r.Body)
	}
	r = h.must(400, "POST", path, token, previewRequest{Filter: hook.Filter{Chains: []uint64{config.DevnetChainID}}, FromBlock: &from, ToBlock: &to, Sample: 21})
	if e := r.errCode(t); !strings.Contains(e.Error.Message, "sample") {
		t.Fatalf("sample bound: %s", r.Body)
	}
}

// TestDeadLettersAreListedAndReplayedByAdminsOnly lists a dead letter and
// replays it through the API: members are refused, the replay puts the
// original entry back on the events stream, a second replay is 404.
func TestDeadLettersAreListedAndReplayedByAdminsOnly(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	rdb := h.m.rdb
	fields := map[string]string{"id": "31337:0xab:1", "type": "log", "event": `{"id":"31337:0xab:1"}`}
	key := h.keys.Events(config.DevnetChainID)
	entry := testenv.PendingEvent(t, rdb, key, fields)
	id := entry.ID
	if err := deadletter.Move(ctx, rdb, h.keys, config.DevnetChainID, entry, errString("boom"), 5); err != nil {
		t.Fatal(err)
	}
	token, _, _ := h.member("dl@example.com")
	h.must(403, "GET", "/api/v1/dead-letters", token, nil)
	var list List[deadLetterView]
	h.must(200, "GET", "/api/v1/dead-letters", h.admin, nil).json(t, &list)
	if len(list.Data) != 1 || list.Data[0].Error != "boom" || list.Data[0].EntryID != id || list.Data[0].Fields["event"] != fields["event"] {
		t.Fatalf("dead letters: %+v", list.Data)
	}
	dl := list.Data[0].ID
	h.must(403, "POST", "/api/v1/dead-letters/"+dl+"/replay", token, nil)
	h.must(400, "POST", "/api/v1/dead-letters/nonsense/replay", h.admin, nil)
	h.must(202, "POST", "/api/v1/dead-letters/"+dl+"/replay", h.admin, nil)
	h.must(404, "POST", "/api/v1/dead-letters/"+dl+"/replay", h.admin, nil)
	es, err := rdb.Do(ctx, rdb.B().Xrange().Key(key).Start("-").End("+").Build()).AsXRange()
	if err != nil || len(es) != 2 || es[1].FieldValues["event"] != fields["event"] || es[1].FieldValues["id"] != fields["id"] {
		t.Fatalf("events stream after the replay: %+v %v", es, err)
	}
	h.must(200, "GET", "/api/v1/dead-letters?chain_id=31337", h.admin, nil).json(t, &list)
	if len(list.Data) != 0 {
		t.Fatalf("dead letters after the replay: %+v", list.Data)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// historyPreviewAndDeadLetters walks the history, preview and dead-letter
// routes (TestEveryRouteHappyPath).
func (h *harness) historyPreviewAndDeadLetters(t *testing.T, appID, tok string) {
	ctx := context.Background()
	node := devnet.New(devnet.Config{ChainID: config.DevnetChainID, Seed: 3, LogsPerBlock: 2})
	node.Mine(20)
	srv := httptest.NewServer(node.Handler())
	defer srv.Close()
	saved := h.m.chains
	h.m.chains = []config.Chain{{Name: "devnet", ID: config.DevnetChainID, WSURLs: []string{"ws" + strings.TrimPrefix(srv.URL, "http") + "/"}}}
	defer func() { h.m.chains = saved }()
	base := "/api/v1/applications/" + appID + "/endpoints"
	var pv previewView
	h.must(200, "POST", base+"/preview", tok, map[string]any{"filter": map[string]any{"chains": []int{31337}}, "from_block": 1}).json(t, &pv)
	if pv.ToBlock != 20 || pv.Matches == 0 {
		t.Fatalf("preview %+v", pv)
	}
	var ep endpointCreated
	h.must(201, "POST", base, tok, map[string]any{"url": "https://example.com/hist", "from_block": 5,
		"filter": map[string]any{"chains": []int{31337}}}).json(t, &ep)
	var hv historyView
	h.must(200, "GET", base+"/"+ep.ID+"/history", tok, nil).json(t, &hv)
	if hv.FromBlock != 5 || hv.State != "pending" {
		t.Fatalf("history %+v", hv)
	}
	fields := map[string]string{"id": "31337:0xcd:0", "type": "log", "event": "{}"}
	entry := testenv.PendingEvent(t, h.m.rdb, h.keys.Events(config.DevnetChainID), fields)
	if err := deadletter.Move(ctx, h.m.rdb, h.keys, config.DevnetChainID, entry, errString("x"), 5); err != nil {
		t.Fatal(err)
	}
	var list List[deadLetterView]
	h.must(200, "GET", "/api/v1/dead-letters?limit=10", h.admin, nil).json(t, &list)
	if len(list.Data) != 1 {
		t.Fatalf("dead letters %+v", list)
	}
	h.must(202, "POST", "/api/v1/dead-letters/"+list.Data[0].ID+"/replay", h.admin, nil)
}
