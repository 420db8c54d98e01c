package process

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"

	"github.com/ethhook/ethhook/decode"
	"github.com/ethhook/ethhook/filter"
	"github.com/ethhook/ethhook/hook"
)

// newPayload is the payload as a struct: encoding/json of it is the
// reference encodePayload must match byte for byte (and what release.go
// reads a held payload back into).
func newPayload(ev *hook.Event, typ, endpointID string, r filter.Result, confirmations uint64) *Payload {
	p := &Payload{
		ID: ev.ID, Type: typ, APIVersion: APIVersion, Chain: ev.Chain,
		Block:       PayloadBlock{Number: ev.Block.Number, Hash: ev.Block.Hash, Timestamp: ev.Block.Timestamp},
		Transaction: ev.Transaction, Log: ev.Log, Decoded: r.Decoded,
		Confirmations: confirmations, EndpointID: endpointID,
	}
	if p.Log.Topics == nil {
		p.Log.Topics = []string{}
	}
	if r.DecodeErr != nil {
		p.DecodeError = r.DecodeErr.Error()
	}
	return p
}

// hostile is a string of pieces encoding/json escapes or rewrites:
// quotes, backslashes, control characters, HTML, U+2028/9, invalid UTF-8.
func hostile(rng *rand.Rand) string {
	pieces := []string{"a", "Z", "0x", "\"", "\\", "\x00", "\x1f", "\b", "\f", "\n", "\r", "\t", "\x7f",
		"<", ">", "&", "\u2028", "\u2029", "é", "日本", "😀", "\xff", "\xfe\xfd", "\xe2\x80", "/", " "}
	var b strings.Builder
	for n := rng.IntN(12); n > 0; n-- {
		b.WriteString(pieces[rng.IntN(len(pieces))])
	}
	return b.String()
}

// randomArg is a decoded argument's payload form: strings, bools, arrays
// and objects of them, nested.
func randomArg(rng *rand.Rand, depth int) any {
	switch k := rng.IntN(6); {
	case k == 0 && depth < 3:
		out := make([]any, rng.IntN(4))
		for i := range out {
			out[i] = randomArg(rng, depth+1)
		}
		return out
	case k == 1 && depth < 3:
		out := map[string]any{}
		for n := rng.IntN(5); n > 0; n-- {
			out[hostile(rng)] = randomArg(rng, depth+1)
		}
		return out
	case k == 2:
		return rng.IntN(2) == 0
	default:
		return hostile(rng)
	}
}

func hexWord(rng *rand.Rand) string {
	var b [32]byte
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return common.Hash(b).Hex()
}

// decodedLogs are real decodings: the built-in Transfer and an event with
// every kind of scalar, indexed hashed values and hostile strings.
func decodedLogs(t *testing.T, rng *rand.Rand) []filter.Result {
	t.Helper()
	note, err := decode.ParseEvent("event Note(address indexed who, string indexed tag, bytes data, string text, bool ok, int8 small, bytes4 sel, uint256[] ids)")
	if err != nil {
		t.Fatal(err)
	}
	var out []filter.Result
	for i := 0; i < 50; i++ {
		tr := transfer("pp", uint64(i), uint(i), token, alice, bob, rng.Int64())
		_, d, err := decode.Builtin().Decode(&tr.Log)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, filter.Result{Decoded: d})

		var nonIdx abi.Arguments
		for _, a := range note.Args {
			if !a.Indexed {
				nonIdx = append(nonIdx, abi.Argument{Name: a.Name, Type: a.Type})
			}
		}
		ids := make([]*big.Int, rng.IntN(4))
		for j := range ids {
			ids[j] = new(big.Int).SetUint64(rng.Uint64())
		}
		data, err := nonIdx.Pack([]byte(hostile(rng)), hostile(rng), rng.IntN(2) == 0, int8(rng.IntN(256)-128), [4]byte{1, 2, 3, byte(i)}, ids)
		if err != nil {
			t.Fatal(err)
		}
		l := hook.Log{Topics: []string{note.Topic0, addrWord(alice), hexWord(rng)}, Data: "0x" + common.Bytes2Hex(data)}
		d, err = note.Decode(&l)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, filter.Result{Decoded: d})
	}
	return out
}

func TestPayloadIsByteIdenticalToEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	results := decodedLogs(t, rng)
	for i := 0; i < 300; i++ {
		args := map[string]any{}
		for n := rng.IntN(6); n > 0; n-- {
			args[hostile(rng)] = randomArg(rng, 0)
		}
		if i%50 == 0 {
			args = nil
		}
		results = append(results, filter.Result{Decoded: &decode.Decoded{Name: hostile(rng), Signature: hostile(rng), Args: args}})
	}
	results = append(results, filter.Result{},
		filter.Result{DecodeErr: decode.ErrUnknownEvent},
		filter.Result{DecodeErr: errors.New("")},
		filter.Result{DecodeErr: fmt.Errorf("decode <X>: topic %q & more \u2028 \xff", "\x00")})
	for i, r := range results {
		ev := transfer("pq", rng.Uint64(), uint(rng.Uint32()), token, alice, bob, int64(i))
		ev.Transaction.Index = uint(rng.Uint32())
		switch i % 5 {
		case 0:
			ev.Log.Topics = nil
		case 1:
			ev.Log.Topics = []string{}
		case 2:
			ev.ID, ev.Chain.Name, ev.Block.Hash, ev.Log.Data = hostile(rng), hostile(rng), hostile(rng), hostile(rng)
			ev.Log.Topics = []string{hostile(rng), hostile(rng)}
		}
		typ := []string{hook.TypeLog, hook.TypeLogRemoved, hook.TypeLogFinalized}[i%3]
		epID := "ep_" + hostile(rng)
		conf := rng.Uint64()
		want, err := json.Marshal(newPayload(&ev, typ, epID, r, conf))
		if err != nil {
			t.Fatal(err)
		}
		prefix := []byte("keep")
		got, err := encodePayload(prefix, &ev, typ, epID, r, conf)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(got, prefix) || !bytes.Equal(got[len(prefix):], want) {
			t.Fatalf("event %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

// TestBatchOfHandWrittenPayloadsIsUnchanged releases held payloads as one
// batch and as single messages: the bodies must be those of payloads
// written by encoding/json.
func TestBatchOfHandWrittenPayloadsIsUnchanged(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var mine, ref []heldRow
	for i, r := range decodedLogs(t, rng)[:20] {
		ev := transfer("pb", uint64(100+i), uint(i), token, alice, bob, int64(i))
		b, err := encodePayload(nil, &ev, hook.TypeLog, "ep_b", r, 0)
		if err != nil {
			t.Fatal(err)
		}
		w, _ := json.Marshal(newPayload(&ev, hook.TypeLog, "ep_b", r, 0))
		mine = append(mine, heldRow{endpointID: "ep_b", eventID: ev.ID, appID: "app", blockNumber: int64(ev.Block.Number), payload: b})
		ref = append(ref, heldRow{endpointID: "ep_b", eventID: ev.ID, appID: "app", blockNumber: int64(ev.Block.Number), payload: w})
	}
	ep := &hook.Endpoint{ID: "ep_b"}
	a, err := batchMessage(testChain, ep, mine, 130)
	if err != nil {
		t.Fatal(err)
	}
	b, err := batchMessage(testChain, ep, ref, 130)
	if err != nil {
		t.Fatal(err)
	}
	// The batch ids differ (fresh ULIDs): compare the events.
	var pa, pb BatchPayload
	if err := json.Unmarshal(a.payload, &pa); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b.payload, &pb); err != nil {
		t.Fatal(err)
	}
	if len(pa.Events) != len(pb.Events) {
		t.Fatalf("%d events, want %d", len(pa.Events), len(pb.Events))
	}
	for i := range pa.Events {
		if !bytes.Equal(pa.Events[i], pb.Events[i]) {
			t.Fatalf("batch event %d:\n got %s\nwant %s", i, pa.Events[i], pb.Events[i])
		}
	}
	for i := range mine {
		sa, err := singleMessage(testChain, ep, mine[i], 130)
		if err != nil {
			t.Fatal(err)
		}
		sb, _ := singleMessage(testChain, ep, ref[i], 130)
		if !bytes.Equal(sa.payload, sb.payload) {
			t.Fatalf("released %d:\n got %s\nwant %s", i, sa.payload, sb.payload)
		}
	}
}
