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
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"weak"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/ethhook/ethhook/hook"
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
	nIdx int

	mu       sync.Mutex
	variants map[int]*abi.Event // Positional: indexed-count -> event
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
	for _, in := range ev.Inputs {
		e.Args = append(e.Args, Arg{Name: in.Name, Type: in.Type, Indexed: in.Indexed})
		if in.Indexed {
			e.nIdx++
		}
	}
	return intern(e)
}

// ParseABI reads the events of a contract ABI (JSON array). An ABI over
// the bounds (MaxABIBytes, MaxABIEntries, MaxArgs, the type bounds) is
// refused with ErrLimit before it is parsed.
func ParseABI(raw []byte) ([]*Event, error) {
	if err := checkABI(raw); err != nil {
		return nil, err
	}
	parsed, err := abi.JSON(strings.NewReader(string(raw)))
	if err != nil {
		return nil, fmt.Errorf("parse ABI JSON: %w", err)
	}
	names := make([]string, 0, len(parsed.Events))
	for n := range parsed.Events {
		names = append(names, n)
	}
	sortStrings(names)
	out := make([]*Event, 0, len(names))
	for _, n := range names {
		ev := parsed.Events[n]
		if ev.Anonymous {
			continue // no topic0 to recognise it by
		}
		for i := range ev.Inputs {
			if ev.Inputs[i].Name == "" {
				ev.Inputs[i].Name = "arg" + strconv.Itoa(i)
			}
		}
		ev = abi.NewEvent(ev.Name, ev.RawName, false, ev.Inputs)
		out = append(out, newEvent(ev, false))
	}
	return out, nil
}

// ParseEvent reads one event declaration: human-readable
// ("event Transfer(address indexed from, address indexed to, uint256 value)")
// or a bare signature ("Transfer(address,address,uint256)"). A bare
// signature that the built-in set defines takes the built-in names and
// indexed markers; any other is Positional. A declaration over the bounds
// (MaxDeclLen, MaxArgs, the type bounds) is refused with ErrLimit before
// it is parsed.
func ParseEvent(decl string) (*Event, error) {
	if len(decl) > MaxDeclLen {
		return nil, limitf("event declaration is %d characters, at most %d (MaxDeclLen)", len(decl), MaxDeclLen)
	}
	s := strings.TrimSpace(decl)
	s = strings.TrimSuffix(s, ";")
	s = strings.TrimSpace(strings.TrimPrefix(s, "event "))
	open := strings.IndexByte(s, '(')
	if open <= 0 || !strings.HasSuffix(s, ")") {
		return nil, fmt.Errorf("%q is not an event declaration like Transfer(address,address,uint256)", decl)
	}
	name := strings.TrimSpace(s[:open])
	if !isIdent(name) {
		return nil, fmt.Errorf("%q: event name %q is not an identifier", decl, name)
	}
	body := strings.TrimSpace(s[open+1 : len(s)-1])
	if strings.ContainsAny(body, "()") {
		return nil, fmt.Errorf("%q: tuple arguments are not supported in declarations; give the ABI JSON instead", decl)
	}
	var params []string
	if body != "" {
		if n := strings.Count(body, ",") + 1; n > MaxArgs {
			return nil, limitf("%.40q...: %d arguments, at most %d (MaxArgs)", decl, n, MaxArgs)
		}
		params = strings.Split(body, ",")
	}
	args := make(abi.Arguments, 0, len(params))
	named, positional := false, true
	for i, p := range params {
		fields := strings.Fields(p)
		if len(fields) == 0 {
			return nil, fmt.Errorf("%q: argument %d is empty", decl, i+1)
		}
		typ, err := parseType(fields[0])
		if err != nil {
			return nil, fmt.Errorf("%q: argument %d: %w", decl, i+1, err)
		}
		a := abi.Argument{Type: typ}
		rest := fields[1:]
		if len(rest) > 0 && rest[0] == "indexed" {
			a.Indexed = true
			positional = false
			rest = rest[1:]
		}
		switch len(rest) {
		case 0:
			a.Name = "arg" + strconv.Itoa(i)
		case 1:
			if !isIdent(rest[0]) {
				return nil, fmt.Errorf("%q: argument %d: name %q is not an identifier", decl, i+1, rest[0])
			}
			a.Name = rest[0]
			named = true
		default:
			return nil, fmt.Errorf("%q: argument %d: expected `type [indexed] [name]`, got %q", decl, i+1, strings.TrimSpace(p))
		}
		args = append(args, a)
	}
	if named {
		positional = false
	}
	seen := map[string]bool{}
	for _, a := range args {
		if seen[a.Name] {
			return nil, fmt.Errorf("%q: argument name %q is used twice", decl, a.Name)
		}
		seen[a.Name] = true
	}
	ev := abi.NewEvent(name, name, false, args)
	if positional && len(args) > 0 {
		// A bare signature: borrow names from the built-in set when it knows it.
		// (Built-in declarations are all named, so this never runs while
		// the built-ins load.)
		loadBuiltins()
		if b := builtinBySig(ev.Sig); b != nil {
			return b, nil
		}
	}
	return newEvent(ev, positional && len(args) > 0), nil
}

func parseType(t string) (abi.Type, error) {
	if _, err := checkTypeString(t); err != nil {
		return abi.Type{}, err
	}
	base, suffix := t, ""
	if i := strings.IndexByte(t, '['); i >= 0 {
		base, suffix = t[:i], t[i:]
	}
	switch base {
	case "uint":
		base = "uint256"
	case "int":
		base = "int256"
	case "byte":
		base = "bytes1"
	}
	for _, p := range []string{"uint", "int", "bytes"} {
		if n, ok := strings.CutPrefix(base, p); ok && n != "" {
			bits, err := strconv.Atoi(n)
			max, step := 256, 8
			if p == "bytes" {
				max, step = 32, 1
			}
			if err != nil || bits < step || bits > max || bits%step != 0 {
				return abi.Type{}, fmt.Errorf("unknown type %q", t)
			}
		}
	}
	typ, err := abi.NewType(base+suffix, "", nil)
	if err != nil {
		return abi.Type{}, fmt.Errorf("unknown type %q", t)
	}
	return typ, nil
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r == '_' || r == '$' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9' {
			continue
		}
		return false
	}
	return true
}

// TopicOf returns the topic0 of a signature like Transfer(address,address,uint256).
func TopicOf(signature string) string {
	return "0x" + hex.EncodeToString(crypto.Keccak256([]byte(signature)))
}

// ErrUnknownEvent means no known event definition has the log's topic0 and
// topic count.
var ErrUnknownEvent = errors.New("unknown event")

// Decode decodes a log with this event. The log must have e's topic0.
func (e *Event) Decode(l *hook.Log) (d *Decoded, err error) {
	// go-ethereum's unpacking panics on some types (reflect.ArrayOf on a
	// huge fixed array); the bounds keep such types out, and this keeps
	// one log from taking the process down if another slips through: the
	// log is delivered raw with the reason instead.
	defer func() {
		if v := recover(); v != nil {
			d, err = nil, fmt.Errorf("decode %s: %v", e.Signature, v)
		}
	}()
	topics := make([]common.Hash, len(l.Topics))
	for i, t := range l.Topics {
		b, err := hexBytes(t)
		if err != nil || len(b) != 32 {
			return nil, fmt.Errorf("decode %s: topic %d %q is not 32 bytes of hex", e.Signature, i, t)
		}
		topics[i] = common.BytesToHash(b)
	}
	data, err := hexBytes(l.Data)
	if err != nil {
		return nil, fmt.Errorf("decode %s: data is not hex: %w", e.Signature, err)
	}
	ev := &e.ev
	if e.Positional {
		ev = e.variant(len(topics) - 1)
		if ev == nil {
			return nil, fmt.Errorf("decode %s: log has %d topics, more than the event has arguments", e.Signature, len(topics))
		}
	} else if len(topics) != e.nIdx+1 {
		return nil, fmt.Errorf("decode %s: log has %d topics, the event has %d indexed arguments", e.Signature, len(topics), e.nIdx)
	}
	if len(topics) == 0 || topics[0] != ev.ID {
		return nil, fmt.Errorf("decode %s: topic0 does not match", e.Signature)
	}
	values := make(map[string]any, len(ev.Inputs))
	var indexed abi.Arguments
	for _, in := range ev.Inputs {
		if in.Indexed {
			indexed = append(indexed, in)
		}
	}
	if err := abi.ParseTopicsIntoMap(values, indexed, topics[1:]); err != nil {
		return nil, fmt.Errorf("decode %s: topics: %w", e.Signature, err)
	}
	if nonIdx := ev.Inputs.NonIndexed(); len(nonIdx) > 0 {
		vals, err := nonIdx.UnpackValues(data)
		if err != nil {
			return nil, fmt.Errorf("decode %s: data: %w", e.Signature, err)
		}
		for i, in := range nonIdx {
			values[in.Name] = vals[i]
		}
	} else if len(data) > 0 {
		return nil, fmt.Errorf("decode %s: log has %d data bytes, the event has no unindexed arguments", e.Signature, len(data))
	}
	d = &Decoded{Name: e.Name, Signature: e.Signature, Args: make(map[string]any, len(values)), Values: make(map[string]any, len(values))}
	for _, in := range ev.Inputs {
		v := values[in.Name]
		typ := in.Type
		if in.Indexed && isHashedInTopic(typ) {
			h := v.(common.Hash)
			d.Values[in.Name] = h.Bytes()
			d.Args[in.Name] = "0x" + hex.EncodeToString(h.Bytes())
			continue
		}
		tv := typed(reflect.ValueOf(v), typ)
		d.Values[in.Name] = tv
		d.Args[in.Name] = jsonValue(tv)
	}
	return d, nil
}

func (e *Event) variant(nIndexed int) *abi.Event {
	if nIndexed < 0 || nIndexed > len(e.ev.Inputs) {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if v, ok := e.variants[nIndexed]; ok {
		return v
	}
	args := make(abi.Arguments, len(e.ev.Inputs))
	copy(args, e.ev.Inputs)
	for i := range args {
		args[i].Indexed = i < nIndexed
	}
	v := abi.NewEvent(e.ev.Name, e.ev.RawName, false, args)
	if e.variants == nil {
		e.variants = map[int]*abi.Event{}
	}
	e.variants[nIndexed] = &v
	return &v
}

func isHashedInTopic(t abi.Type) bool {
	switch t.T {
	case abi.StringTy, abi.BytesTy, abi.SliceTy, abi.ArrayTy, abi.TupleTy:
		return true
	}
	return false
}

// typed converts go-ethereum's Go value for an ABI type into the comparison
// form documented in the package comment.
func typed(v reflect.Value, t abi.Type) any {
	switch t.T {
	case abi.IntTy, abi.UintTy:
		switch x := v.Interface().(type) {
		case *big.Int:
			return new(big.Int).Set(x)
		case int8:
			return big.NewInt(int64(x))
		case int16:
			return big.NewInt(int64(x))
		case int32:
			return big.NewInt(int64(x))
		case int64:
			return big.NewInt(x)
		case uint8:
			return new(big.Int).SetUint64(uint64(x))
		case uint16:
			return new(big.Int).SetUint64(uint64(x))
		case uint32:
			return new(big.Int).SetUint64(uint64(x))
		case uint64:
			return new(big.Int).SetUint64(x)
		}
	case abi.AddressTy:
		return [20]byte(v.Interface().(common.Address))
	case abi.BoolTy:
		return v.Bool()
	case abi.StringTy:
		return v.String()
	case abi.BytesTy:
		return append([]byte(nil), v.Bytes()...)
	case abi.FixedBytesTy, abi.HashTy, abi.FunctionTy:
		out := make([]byte, v.Len())
		for i := range out {
			out[i] = byte(v.Index(i).Uint())
		}
		return out
	case abi.SliceTy, abi.ArrayTy:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = typed(v.Index(i), *t.Elem)
		}
		return out
	case abi.TupleTy:
		out := make(map[string]any, len(t.TupleElems))
		for i, el := range t.TupleElems {
			name := t.TupleRawNames[i]
			if name == "" {
				name = strconv.Itoa(i)
			}
			out[name] = typed(v.Field(i), *el)
		}
		return out
	}
	return fmt.Sprint(v.Interface())
}

// jsonValue turns a typed value into its payload form.
func jsonValue(v any) any {
	switch x := v.(type) {
	case *big.Int:
		return x.String()
	case [20]byte:
		return "0x" + hex.EncodeToString(x[:])
	case []byte:
		return "0x" + hex.EncodeToString(x)
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = jsonValue(x[i])
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonValue(e)
		}
		return out
	}
	return v
}

func hexBytes(s string) ([]byte, error) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if len(s)%2 == 1 {
		s = "0" + s
	}
	return hex.DecodeString(s)
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// Set finds the event definition for a log among several, by topic0 and,
// where two events share a topic0 (ERC-20 and ERC-721 Transfer), by the
// number of topics.
type Set struct {
	byTopic map[string][]*Event
}

// NewSet indexes events; later duplicates of a (topic0, topic count) are ignored.
func NewSet(events ...*Event) *Set {
	s := &Set{byTopic: map[string][]*Event{}}
	s.Add(events...)
	return s
}

// Add indexes more events.
func (s *Set) Add(events ...*Event) {
	for _, e := range events {
		dup := false
		for _, o := range s.byTopic[e.Topic0] {
			if o == e || o.Topics() == e.Topics() {
				dup = true
				break
			}
		}
		if !dup {
			s.byTopic[e.Topic0] = append(s.byTopic[e.Topic0], e)
		}
	}
}

// Events returns every event with that topic0.
func (s *Set) Events(topic0 string) []*Event { return s.byTopic[topic0] }

// All lists every event of the set.
func (s *Set) All() []*Event {
	var out []*Event
	for _, es := range s.byTopic {
		out = append(out, es...)
	}
	return out
}

// Lookup returns the event that fits the log's topic0 and topic count, or nil.
func (s *Set) Lookup(topics []string) *Event {
	if s == nil || len(topics) == 0 {
		return nil
	}
	var positional *Event
	for _, e := range s.byTopic[topics[0]] {
		if e.Topics() == len(topics) {
			return e
		}
		if e.Positional {
			positional = e
		}
	}
	return positional
}

// Decode decodes a log with the fitting event of the set.
func (s *Set) Decode(l *hook.Log) (*Event, *Decoded, error) {
	e := s.Lookup(l.Topics)
	if e == nil {
		t0 := "none"
		if len(l.Topics) > 0 {
			t0 = l.Topics[0]
		}
		return nil, nil, fmt.Errorf("%w: no known event has topic0 %s with %d topics", ErrUnknownEvent, t0, len(l.Topics))
	}
	d, err := e.Decode(l)
	return e, d, err
}

// builtinDecls is the built-in set: decoded with no ABI.
var builtinDecls = []string{
	"event Transfer(address indexed from, address indexed to, uint256 value)",           // ERC-20
	"event Approval(address indexed owner, address indexed spender, uint256 value)",     // ERC-20
	"event Transfer(address indexed from, address indexed to, uint256 indexed tokenId)", // ERC-721
	"event Approval(address indexed owner, address indexed approved, uint256 indexed tokenId)",
	"event ApprovalForAll(address indexed owner, address indexed operator, bool approved)",
	"event TransferSingle(address indexed operator, address indexed from, address indexed to, uint256 id, uint256 value)",
	"event TransferBatch(address indexed operator, address indexed from, address indexed to, uint256[] ids, uint256[] values)",
	"event Swap(address indexed sender, uint256 amount0In, uint256 amount1In, uint256 amount0Out, uint256 amount1Out, address indexed to)",               // Uniswap V2
	"event Swap(address indexed sender, address indexed recipient, int256 amount0, int256 amount1, uint160 sqrtPriceX96, uint128 liquidity, int24 tick)", // Uniswap V3
}

var (
	builtinOnce sync.Once
	builtinSet  *Set
	builtinSigs map[string]*Event
)

func loadBuiltins() {
	builtinOnce.Do(func() {
		builtinSet = NewSet()
		builtinSigs = map[string]*Event{}
		for _, d := range builtinDecls {
			e, err := ParseEvent(d)
			if err != nil {
				panic("decode: bad built-in " + d + ": " + err.Error())
			}
			builtinSet.Add(e)
			if _, ok := builtinSigs[e.Signature]; !ok {
				builtinSigs[e.Signature] = e // ERC-20 Transfer wins for the bare signature
			}
		}
	})
}

func builtinBySig(sig string) *Event { return builtinSigs[sig] }

// Builtin is the built-in event set: ERC-20 Transfer/Approval, ERC-721
// Transfer/Approval/ApprovalForAll, ERC-1155 TransferSingle/TransferBatch,
// Uniswap V2 Swap and Uniswap V3 Swap.
func Builtin() *Set {
	loadBuiltins()
	return builtinSet
}

// BuiltinByName returns the built-in events with that name.
func BuiltinByName(name string) []*Event {
	loadBuiltins()
	var out []*Event
	for _, d := range builtinDecls {
		e, _ := ParseEvent(d)
		if e.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// MarshalArgs is json.Marshal of the decoded arguments (for tests and logs).
func (d *Decoded) MarshalArgs() string {
	b, _ := json.Marshal(d.Args)
	return string(b)
}
