// Package decode turns raw EVM logs into named, typed event arguments with
// go-ethereum's accounts/abi, from an endpoint's ABI JSON, from
// human-readable declarations ("event Transfer(address indexed from, ...)"),
// or from a built-in set of common events that needs no ABI at all.
//
// Argument values in payloads (Decoded.Args) are JSON-friendly:
//   - uint<N>/int<N>: decimal strings ("10000000", "-5"), whatever the width;
//   - address: lower-case 0x hex (the same spelling as log.address);
//   - bool: JSON true/false; string: as is;
//   - bytes, bytes<N>, and indexed dynamic values (which a log only carries
//     as their keccak256 hash): 0x lower-case hex;
//   - arrays: JSON arrays; tuples: objects keyed by component name.
//
// Decoded.Values holds the same arguments in a typed form for conditions:
// *big.Int, [20]byte, bool, []byte, string, []any, map[string]any.
package decode

import (
	"encoding/hex"
	"runtime"
	"strings"
	"sync"
	"weak"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/crypto"
)

// Decoded is the `decoded` object of a webhook payload.
type Decoded struct {
	Name      string         `json:"name"`
	Signature string         `json:"signature"`
	Args      map[string]any `json:"args"`
	// Values are the arguments typed for comparisons (see the package doc).
	Values map[string]any `json:"-"`
}

// Arg is one event argument as conditions see it.
type Arg struct {
	Name    string
	Type    abi.Type
	Indexed bool
}

// Event is one event definition that can decode logs.
type Event struct {
	Name      string // Transfer
	Signature string // Transfer(address,address,uint256)
	Topic0    string // keccak256 of Signature, lower-case 0x hex
	Args      []Arg
	// Positional is true for a bare signature with no argument names or
	// indexed markers: arguments are named arg0, arg1, ... and, when decoding,
	// the first len(topics)-1 arguments are taken to be the indexed ones.
	Positional bool

	ev   abi.Event
	plan *plan // ev's decoding plan
	nIdx int

	mu       sync.Mutex
	variants map[int]*plan // Positional: indexed-count -> its plan
}

// Topics is how many topics a log of this event carries (topic0 included).
func (e *Event) Topics() int {
	if e.Positional {
		return -1
	}
	return e.nIdx + 1
}

// Arg returns the argument with that name.
func (e *Event) Arg(name string) (Arg, bool) {
	for _, a := range e.Args {
		if a.Name == name {
			return a, true
		}
	}
	return Arg{}, false
}

// ArgNames lists the argument names in order.
func (e *Event) ArgNames() []string {
	out := make([]string, len(e.Args))
	for i, a := range e.Args {
		out[i] = a.Name
	}
	return out
}

// key identifies an event definition completely (names and indexed
// markers included), so identical definitions from many endpoints share one
// *Event and one decoding per log.
func (e *Event) key() string {
	var b strings.Builder
	b.WriteString(e.Signature)
	for _, a := range e.Args {
		b.WriteByte('|')
		b.WriteString(a.Name)
		if a.Indexed {
			b.WriteString("!")
		}
	}
	if e.Positional {
		b.WriteString("|positional")
	}
	return b.String()
}

// interned maps a definition's key to the one *Event in use for it. The
// pointers are weak: every declaration and ABI a tenant sends is parsed
// (an endpoint refused for another reason, the web UI's ABI preview), so
// a strong map would grow with every distinct one for the life of the
// process. An entry goes when no endpoint holds its event any more.
var (
	internMu sync.Mutex
	interned = map[string]weak.Pointer[Event]{}
)

func intern(e *Event) *Event {
	k := e.key()
	internMu.Lock()
	defer internMu.Unlock()
	if old := interned[k].Value(); old != nil {
		return old
	}
	interned[k] = weak.Make(e)
	runtime.AddCleanup(e, func(k string) {
		internMu.Lock()
		defer internMu.Unlock()
		if interned[k].Value() == nil { // not replaced by a live one since
			delete(interned, k)
		}
	}, k)
	return e
}

func newEvent(ev abi.Event, positional bool) *Event {
	e := &Event{Name: ev.Name, Signature: ev.Sig, Topic0: strings.ToLower(ev.ID.Hex()), ev: ev, Positional: positional}
	e.plan = newPlan(&e.ev)
	for _, in := range ev.Inputs {
		e.Args = append(e.Args, Arg{Name: in.Name, Type: in.Type, Indexed: in.Indexed})
		if in.Indexed {
			e.nIdx++
		}
	}
	return intern(e)
}

// TopicOf returns the topic0 of a signature like Transfer(address,address,uint256).
func TopicOf(signature string) string {
	return "0x" + hex.EncodeToString(crypto.Keccak256([]byte(signature)))
}
