package decode

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi"

	"github.com/ethhook/ethhook/hook"
)

// tupleABI is an ABI with one event whose argument is inner wrapped in
// depth tuples.
func tupleABI(depth int, inner string) string {
	p := `{"name":"v","type":"` + inner + `"}`
	for i := 0; i < depth; i++ {
		p = `{"name":"t","type":"tuple","components":[` + p + `]}`
	}
	return `[{"type":"event","name":"E","anonymous":false,"inputs":[` + p + `]}]`
}

func manyComponents(n int) string {
	c := make([]string, n)
	for i := range c {
		c[i] = fmt.Sprintf(`{"name":"f%d","type":"uint8"}`, i)
	}
	return `[{"type":"event","name":"E","inputs":[{"name":"t","type":"tuple","components":[` + strings.Join(c, ",") + `]}]}]`
}

func manyEntries(n int) string {
	e := make([]string, n)
	for i := range e {
		e[i] = fmt.Sprintf(`{"type":"event","name":"E%d","inputs":[]}`, i)
	}
	return "[" + strings.Join(e, ",") + "]"
}

func TestParseRefusesInputsOverTheBoundsBeforeParsing(t *testing.T) {
	events := map[string]string{
		"200,000 array levels":  "E(uint256" + strings.Repeat("[]", 200000) + ")",
		"9 array levels":        "E(uint256" + strings.Repeat("[]", 9) + ")",
		"long type":             "E(uint256" + strings.Repeat("[1]", 400) + ")",
		"huge fixed array":      "event E(uint256[2305843009213693952] x)",
		"fixed arrays multiply": "E(uint256[128][64])",
		"65 arguments":          "E(" + strings.TrimSuffix(strings.Repeat("uint8,", 65), ",") + ")",
		"long declaration":      "event E(uint256 " + strings.Repeat("x", MaxDeclLen) + ")",
	}
	for name, decl := range events {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseEvent(decl); !errors.Is(err, ErrLimit) {
				t.Fatalf("ParseEvent: got %v, want ErrLimit", err)
			}
		})
	}
	abis := map[string]string{
		"too big":             "[" + strings.Repeat(" ", MaxABIBytes) + "]",
		"too many entries":    manyEntries(MaxABIEntries + 1),
		"tuples 9 deep":       tupleABI(MaxTupleDepth+1, "uint8"),
		"65 components":       manyComponents(MaxComponents + 1),
		"deep array in tuple": tupleABI(2, "uint256"+strings.Repeat("[]", 9)),
		"tuple array cells":   strings.Replace(tupleABI(1, "uint256[4096]"), `"type":"tuple"`, `"type":"tuple[2]"`, 1),
		"200,000 levels":      `[{"type":"event","name":"E","inputs":[{"name":"v","type":"uint256` + strings.Repeat("[]", 200000) + `"}]}]`,
		"function outputs":    `[{"type":"function","name":"f","outputs":[{"name":"v","type":"uint256` + strings.Repeat("[]", 9) + `"}]}]`,
	}
	for name, raw := range abis {
		t.Run("ABI "+name, func(t *testing.T) {
			if _, err := ParseABI([]byte(raw)); !errors.Is(err, ErrLimit) {
				t.Fatalf("ParseABI: got %v, want ErrLimit", err)
			}
		})
	}
}

func TestParseAcceptsInputsAtTheBounds(t *testing.T) {
	for _, decl := range []string{
		"E(uint256" + strings.Repeat("[]", MaxArrayDepth) + ")",
		"E(uint256[64][64])",
		"E(" + strings.TrimSuffix(strings.Repeat("uint8,", MaxArgs), ",") + ")",
	} {
		if _, err := ParseEvent(decl); err != nil {
			t.Errorf("ParseEvent(%.60q): %v", decl, err)
		}
	}
	for name, raw := range map[string]string{
		"tuples at depth": tupleABI(MaxTupleDepth, "uint8[2]"),
		"components":      manyComponents(MaxComponents),
		"entries":         manyEntries(500),
	} {
		if evs, err := ParseABI([]byte(raw)); err != nil || len(evs) == 0 {
			t.Errorf("ParseABI(%s): %d events, %v", name, len(evs), err)
		}
	}
}

// TestWorstSignatureIsRefusedWithBoundedMemory sends the input that took
// the process to 17 GB: it must cost next to nothing now.
func TestWorstSignatureIsRefusedWithBoundedMemory(t *testing.T) {
	sig := "E(uint256" + strings.Repeat("[]", 200000) + ")"
	abiJSON := []byte(`[{"type":"event","name":"E","inputs":[{"name":"v","type":"uint256` + strings.Repeat("[]", 100000) + `"}]}]`)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < 10; i++ {
		if _, err := ParseEvent(sig); !errors.Is(err, ErrLimit) {
			t.Fatalf("ParseEvent: %v", err)
		}
		if _, err := ParseABI(abiJSON); !errors.Is(err, ErrLimit) {
			t.Fatalf("ParseABI: %v", err)
		}
	}
	runtime.ReadMemStats(&after)
	// Reading the ABI into small structs copies its 200 KB type string once
	// or twice; 10 rounds of both stay far below 16 MB (one unbounded parse
	// of the signature allocated ~17 GB).
	if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
		t.Fatalf("allocated %d bytes for 10 refusals, want < 16 MiB", got)
	}
}

// TestDecodeTurnsAPanicIntoAnError builds, past the bounds, a type whose
// unpacking panics in go-ethereum: the log must come back as an error.
func TestDecodeTurnsAPanicIntoAnError(t *testing.T) {
	typ, err := abi.NewType("uint256[2305843009213693952]", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	e := newEvent(abi.NewEvent("Huge", "Huge", false, abi.Arguments{{Name: "x", Type: typ}}), false)
	_, err = e.Decode(&hook.Log{Topics: []string{e.Topic0}, Data: "0x" + strings.Repeat("00", 64)})
	if err == nil || !strings.Contains(err.Error(), "decode Huge(") {
		t.Fatalf("Decode: %v, want an error", err)
	}
}

// TestInternedEventsGoWhenNothingHoldsThem parses many distinct events
// and drops them: the intern table must not keep them all.
func TestInternedEventsGoWhenNothingHoldsThem(t *testing.T) {
	kept, err := ParseEvent("event Kept(uint256 indexed a, bytes b)")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10000; i++ {
		if _, err := ParseEvent(fmt.Sprintf("event Dropped%d(uint256 a)", i)); err != nil {
			t.Fatal(err)
		}
	}
	size := func() int {
		internMu.Lock()
		defer internMu.Unlock()
		return len(interned)
	}
	for tries := 0; size() > 1000; tries++ {
		if tries == 100 {
			t.Fatalf("intern table still holds %d events after 100 collections", size())
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond) // cleanups run on their own goroutine
	}
	again, err := ParseEvent("event Kept(uint256 indexed a, bytes b)")
	if err != nil || again != kept {
		t.Fatalf("a live event is not shared any more: %p %p %v", again, kept, err)
	}
}
