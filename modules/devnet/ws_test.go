package devnet

import (
	"encoding/json"
	"testing"

	"github.com/ethereum/go-ethereum/core/types"
)

func TestNewHeadsAnnouncesEveryMinedBlock(t *testing.T) {
	n, srv := startNode(t, Config{Seed: 4, LogsPerBlock: 5})
	w := dialWS(t, srv)
	r, _ := w.call("eth_subscribe", "newHeads")
	var id string
	mustResult(t, r, &id)
	bs := n.Mine(3)
	for _, b := range bs {
		note := w.nextResp()
		if note.Method != "eth_subscription" || note.Params.Subscription != id {
			t.Fatalf("unexpected frame %+v", note)
		}
		var h types.Header
		if err := json.Unmarshal(note.Params.Result, &h); err != nil {
			t.Fatalf("decode header: %v", err)
		}
		if h.Hash() == b.Hash {
			t.Logf("header rlp hash matches (unexpected but fine)")
		}
		var m map[string]string
		if err := json.Unmarshal(note.Params.Result, &m); err != nil {
			t.Fatal(err)
		}
		if m["hash"] != b.Hash.Hex() || h.Number.Uint64() != b.Number {
			t.Fatalf("head %v, want %d %s", m["number"], b.Number, b.Hash)
		}
	}
}
