package endpoint

import (
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi"

	"github.com/ethhook/ethhook/decode"
	"github.com/ethhook/ethhook/filter"
	"github.com/ethhook/ethhook/hook"
)

// FuzzValidateFilter feeds endpoint validation (what Create and Update run
// before anything is stored, and what process's compile repeats) an ABI,
// event declarations and conditions (one per line). It fails on a panic,
// on an error that is not a *ValidationError naming fields, on more than
// 64 MiB allocated for one endpoint, and on an accepted filter that breaks
// a bound. In CI it runs the seeds; run it longer with
//
//	go test -run '^$' -fuzz FuzzValidateFilter -fuzztime 60s ./endpoint/
func FuzzValidateFilter(f *testing.F) {
	tuple := `[{"type":"event","name":"Swap","inputs":[{"name":"p","type":"tuple[2][]","indexed":false,"components":[` +
		`{"name":"a","type":"address"},{"name":"q","type":"tuple","components":[{"name":"v","type":"uint256[3]"},{"name":"s","type":"string"}]}]}]}]`
	f.Add(``, "Transfer(address,address,uint256)", "value >= 1000")
	f.Add(``, "event Transfer(address indexed from, address indexed to, uint256 value)", "from == 0x9c0649d7325990d98375f7864ea167b5eadcd46a or value > 5")
	f.Add(``, "E(uint256[][][][][][][][])", "")
	f.Add(``, "E(uint256"+strings.Repeat("[]", 9)+")", "")
	f.Add(``, "E(uint256"+strings.Repeat("[]", 600)+")", "")
	f.Add(``, "E(uint256[2305843009213693952])", "")
	f.Add(``, "event E(uint8[64][64] a, bytes32[2] b, int24 indexed t)", "t < -5\nnot (t == 1)")
	f.Add(tuple, "Swap", "")
	f.Add(`[{"type":"event","name":"E","inputs":[{"name":"t","type":"tuple","components":[{"name":"t","type":"tuple","components":[{"name":"t","type":"tuple","components":[{"name":"t","type":"tuple","components":[{"name":"t","type":"tuple","components":[{"name":"t","type":"tuple","components":[{"name":"t","type":"tuple","components":[{"name":"t","type":"tuple","components":[{"name":"t","type":"tuple","components":[{"name":"v","type":"uint8"}]}]}]}]}]}]}]}]}]}]}]`, "E", "")
	f.Add(`[{"type":"event","name":"Transfer","inputs":[{"name":"from","type":"address","indexed":true},{"name":"to","type":"address","indexed":true},{"name":"value","type":"uint256"}]},{"type":"function","name":"f","inputs":[],"outputs":[{"name":"","type":"uint256[]"}]}]`,
		"Transfer", "value in (1, 2, 0x03) and to != 0x0000000000000000000000000000000000000000")
	f.Add(`[{"type":"event","name":"E","inputs":[{"name":"v","type":"uint256`+strings.Repeat("[]", 600)+`"}]}]`, "", "")
	f.Add(`{"not":"an array"}`, "", "")
	f.Add(``, "Transfer", strings.Repeat("(", 40)+"value > 1"+strings.Repeat(")", 40))
	f.Add(``, "Transfer", strings.Repeat("not ", 30)+"value > 1")
	f.Add(``, "Transfer", "value >= 1 and\nvalue <\n'unterminated")
	f.Fuzz(func(t *testing.T, abiJSON, events, where string) {
		ep := hook.Endpoint{URL: "https://receiver.example/hook", Filter: hook.Filter{Chains: []uint64{1}}}
		if abiJSON != "" {
			ep.Filter.ABI = []byte(abiJSON)
		}
		if events != "" {
			ep.Filter.Events = strings.Split(events, "\n")
		}
		if where != "" {
			ep.Filter.Where = strings.Split(where, "\n")
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		err := validate(&ep)
		runtime.ReadMemStats(&after)
		if got := after.TotalAlloc - before.TotalAlloc; got > 64<<20 {
			t.Fatalf("validation allocated %d MiB", got>>20)
		}
		if err != nil {
			var ve hook.FieldErrors
			if !errors.As(err, &ve) || len(ve) == 0 {
				t.Fatalf("error %T %v is not a ValidationError naming fields", err, err)
			}
			return
		}
		checkWithinBounds(t, ep.Filter)
	})
}

// checkWithinBounds fails if an accepted filter breaks a bound.
func checkWithinBounds(t *testing.T, f hook.Filter) {
	t.Helper()
	if len(f.Events) > filter.MaxEvents || len(f.Where) > filter.MaxConditions || len(f.ABI) > decode.MaxABIBytes {
		t.Fatalf("accepted %d events, %d conditions, a %d-byte ABI", len(f.Events), len(f.Where), len(f.ABI))
	}
	for _, w := range f.Where {
		if len(w) > filter.MaxConditionLen {
			t.Fatalf("accepted a %d-character condition", len(w))
		}
	}
	var evs []*decode.Event
	for _, d := range f.Events {
		if e, err := decode.ParseEvent(d); err == nil {
			evs = append(evs, e)
		}
	}
	if len(f.ABI) > 0 {
		abiEvs, err := decode.ParseABI(f.ABI)
		if err != nil {
			t.Fatalf("accepted ABI does not parse again: %v", err)
		}
		evs = append(evs, abiEvs...)
	}
	for _, e := range evs {
		if len(e.Args) > decode.MaxArgs {
			t.Fatalf("%s: %d arguments", e.Signature, len(e.Args))
		}
		for _, a := range e.Args {
			checkType(t, e.Signature, a.Type, 0, 0)
		}
	}
}

func checkType(t *testing.T, sig string, typ abi.Type, arrays, tuples int) {
	t.Helper()
	if len(typ.String()) > decode.MaxTypeLen*decode.MaxTupleDepth*decode.MaxComponents {
		t.Fatalf("%s: type string of %d characters", sig, len(typ.String()))
	}
	switch typ.T {
	case abi.SliceTy, abi.ArrayTy:
		if arrays+1 > decode.MaxArrayDepth {
			t.Fatalf("%s: arrays nest %d deep", sig, arrays+1)
		}
		if typ.T == abi.ArrayTy && typ.Size > decode.MaxTypeCells {
			t.Fatalf("%s: fixed array of %d", sig, typ.Size)
		}
		checkType(t, sig, *typ.Elem, arrays+1, tuples)
	case abi.TupleTy:
		if tuples+1 > decode.MaxTupleDepth || len(typ.TupleElems) > decode.MaxComponents {
			t.Fatalf("%s: tuple at depth %d with %d components", sig, tuples+1, len(typ.TupleElems))
		}
		for _, el := range typ.TupleElems {
			checkType(t, sig, *el, 0, tuples+1)
		}
	}
}
