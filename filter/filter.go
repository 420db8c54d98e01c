// Package filter validates an endpoint's hook.Filter, compiles it, and
// matches events against it.
//
// A filter matches a log when every non-empty part matches: its chain is
// listed, its address is one of Addresses, topic i is one of Topics[i], its
// topic0 is one of Events' topic0s, and every Where condition holds on the
// decoded arguments. Conditions compare decoded arguments with literals:
// ==, !=, <, <=, >, >= and `in (a, b, ...)`, combined with and, or, not and
// parentheses. Types: uint/int of any width (decimal or 0x literals,
// negative for int), address, bool, bytes/bytesN (0x literals), string
// (quoted literals; an indexed string compares by its keccak256 hash). An
// argument that the decoded event does not have makes its comparison false.
package filter

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/ethhook/ethhook/decode"
	"github.com/ethhook/ethhook/hook"
)

// FieldError is one problem with one part of a filter. Field is the path of
// the part: chains, addresses[2], topics[1][0], events[0], abi, where[1].
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Errors is every problem found in a filter (returned as error by Compile).
type Errors []*FieldError

func (e Errors) Error() string {
	parts := make([]string, len(e))
	for i, fe := range e {
		parts[i] = fe.Error()
	}
	return strings.Join(parts, "; ")
}

// Bounds on one filter, checked by Compile before any part is parsed, so
// neither the API nor process (which compiles every stored filter when it
// starts) does unbounded work for one endpoint. Event declarations and the
// ABI have their own bounds in package decode (decode.MaxDeclLen,
// decode.MaxABIBytes, ...).
const (
	// MaxChains bounds the chain ids; the built-in registry has a dozen.
	MaxChains = 32
	// MaxAddresses bounds the contract addresses: enough to watch a token
	// list, each is a key in process's in-memory index.
	MaxAddresses = 1000
	// MaxTopicValues bounds the accepted values of one topic position.
	MaxTopicValues = 1000
	// MaxEvents bounds the event selectors; each may be a declaration that
	// is parsed (and for a bare name may match several ABI events).
	MaxEvents = 64
	// MaxConditions bounds the where conditions (they are ANDed).
	MaxConditions = 32
	// MaxConditionLen bounds one condition: room for an `in` list of
	// about 90 addresses.
	MaxConditionLen = 4096
	// MaxConditionDepth bounds nested parentheses and `not`s in one
	// condition; the parser recurses once per level.
	MaxConditionDepth = 16
	// MaxIndexKeys bounds the keys an endpoint adds to process's index
	// (chains × addresses × topic0s, each at least 1): 1000 addresses on
	// one chain with 16 events is 16,000.
	MaxIndexKeys = 16384
)

// Matcher is a compiled filter.
type Matcher struct {
	// Chains, Addresses and Topic0s are what an index keys on; an empty
	// Addresses or Topic0s means any.
	Chains    []uint64
	Addresses []string
	Topic0s   []string

	chains    map[uint64]bool
	addresses map[string]bool
	topics    [4]map[string]bool // nil = any
	topic0    map[string]bool    // from Topics[0] and Events together; nil = any
	own       *decode.Set        // the endpoint's events (declared and ABI)
	cond      node               // nil = no conditions
}

// Normalize lower-cases and trims a filter's addresses and topics in place.
func Normalize(f *hook.Filter) {
	for i, a := range f.Addresses {
		f.Addresses[i] = strings.ToLower(strings.TrimSpace(a))
	}
	for i := range f.Topics {
		for j, t := range f.Topics[i] {
			f.Topics[i][j] = strings.ToLower(strings.TrimSpace(t))
		}
	}
	for i, e := range f.Events {
		f.Events[i] = strings.TrimSpace(e)
	}
}

// Compile validates f and compiles it. The error, when not nil, is Errors.
func Compile(f hook.Filter) (*Matcher, error) {
	Normalize(&f)
	var errs Errors
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	m := &Matcher{chains: map[uint64]bool{}, own: decode.NewSet()}
	// Counts first, so an oversized part is refused before anything in it
	// is parsed (and yields one error, not one per entry).
	over := func(field string, n, max int, name string) bool {
		if n > max {
			bad(field, "%d entries, at most %d (%s)", n, max, name)
			return true
		}
		return false
	}
	if over("chains", len(f.Chains), MaxChains, "MaxChains") {
		f.Chains = nil
	} else if len(f.Chains) == 0 {
		bad("chains", "at least one chain id is required")
	}
	if over("addresses", len(f.Addresses), MaxAddresses, "MaxAddresses") {
		f.Addresses = nil
	}
	if len(f.Topics) > 4 {
		bad("topics", "a log has at most 4 topics, got %d positions", len(f.Topics))
		f.Topics = f.Topics[:4]
	}
	f.Topics = slices.Clone(f.Topics) // an oversized position is dropped below, not in the caller's filter
	for i := range f.Topics {
		if over(fmt.Sprintf("topics[%d]", i), len(f.Topics[i]), MaxTopicValues, "MaxTopicValues") {
			f.Topics[i] = nil
		}
	}
	if over("events", len(f.Events), MaxEvents, "MaxEvents") {
		f.Events = nil
	}
	if over("where", len(f.Where), MaxConditions, "MaxConditions") {
		f.Where = nil
	}
	for i, c := range f.Chains {
		if c == 0 {
			bad(fmt.Sprintf("chains[%d]", i), "chain id must be positive")
			continue
		}
		if !m.chains[c] {
			m.chains[c] = true
			m.Chains = append(m.Chains, c)
		}
	}
	if len(f.Addresses) > 0 {
		m.addresses = map[string]bool{}
	}
	for i, a := range f.Addresses {
		if !isHex(a, 20) {
			bad(fmt.Sprintf("addresses[%d]", i), "%q is not a 0x address of 40 hex digits", a)
			continue
		}
		if !m.addresses[a] {
			m.addresses[a] = true
			m.Addresses = append(m.Addresses, a)
		}
	}
	for i := range f.Topics {
		if len(f.Topics[i]) == 0 {
			continue
		}
		m.topics[i] = map[string]bool{}
		for j, t := range f.Topics[i] {
			if !isHex(t, 32) {
				bad(fmt.Sprintf("topics[%d][%d]", i, j), "%q is not a 0x topic of 64 hex digits", t)
				continue
			}
			m.topics[i][t] = true
		}
	}

	// The endpoint's own events: ABI first, then declarations.
	var abiEvents []*decode.Event
	if len(f.ABI) > 0 && string(f.ABI) != "null" {
		evs, err := decode.ParseABI(f.ABI)
		if err != nil {
			bad("abi", "%v", err)
		} else {
			abiEvents = evs
			m.own.Add(evs...)
		}
	}
	var selected []*decode.Event
	eventTopics := map[string]bool{}
	for i, decl := range f.Events {
		evs, err := resolveEvent(decl, abiEvents)
		if err != nil {
			bad(fmt.Sprintf("events[%d]", i), "%v", err)
			continue
		}
		for _, e := range evs {
			selected = append(selected, e)
			eventTopics[e.Topic0] = true
			if !fromBuiltin(e) {
				m.own.Add(e)
			}
		}
	}

	// topic0 set: explicit topics[0] intersected with the events' topic0s.
	switch {
	case m.topics[0] != nil && len(f.Events) > 0:
		m.topic0 = map[string]bool{}
		for t := range m.topics[0] {
			if eventTopics[t] {
				m.topic0[t] = true
			}
		}
		if len(m.topic0) == 0 && len(errs) == 0 {
			bad("topics[0]", "no topic0 listed is the topic0 of any of the events, so nothing can match")
		}
	case m.topics[0] != nil:
		m.topic0 = m.topics[0]
	case len(f.Events) > 0:
		m.topic0 = eventTopics
	}
	for t := range m.topic0 {
		m.Topic0s = append(m.Topic0s, t)
	}
	sort.Strings(m.Topic0s)
	if n := len(m.Chains) * max(1, len(m.Addresses)) * max(1, len(m.Topic0s)); n > MaxIndexKeys {
		bad("filter", "chains × addresses × topic0s is %d, at most %d (MaxIndexKeys)", n, MaxIndexKeys)
	}

	// Conditions are type-checked against the events they can see.
	if len(f.Where) > 0 {
		cands := candidates(selected, m.topic0, abiEvents)
		var nodes []node
		for i, w := range f.Where {
			field := fmt.Sprintf("where[%d]", i)
			if len(cands) == 0 {
				bad(field, "conditions need the event's argument names: give --event, a known topic0, or an ABI")
				break
			}
			if len(w) > MaxConditionLen {
				bad(field, "condition is %d characters, at most %d (MaxConditionLen)", len(w), MaxConditionLen)
				continue
			}
			a, err := parseExpr(w)
			if err != nil {
				bad(field, "%v", err)
				continue
			}
			n, err := check(a, cands)
			if err != nil {
				bad(field, "%v", err)
				continue
			}
			nodes = append(nodes, n)
		}
		if len(nodes) == 1 {
			m.cond = nodes[0]
		} else if len(nodes) > 1 {
			m.cond = andNode(nodes)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return m, nil
}

// resolveEvent turns one Events entry into event definitions.
func resolveEvent(decl string, abiEvents []*decode.Event) ([]*decode.Event, error) {
	if decl == "" {
		return nil, errors.New("empty event")
	}
	if strings.Contains(decl, "(") {
		e, err := decode.ParseEvent(decl)
		if err != nil {
			return nil, err
		}
		if e.Positional || fromBuiltin(e) {
			// A bare signature: the ABI's definition names its arguments best.
			for _, a := range abiEvents {
				if a.Signature == e.Signature {
					return []*decode.Event{a}, nil
				}
			}
		}
		return []*decode.Event{e}, nil
	}
	var out []*decode.Event
	for _, a := range abiEvents {
		if a.Name == decl {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		out = decode.BuiltinByName(decl)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no event named %q in the ABI or the built-in set; give its signature like %s(address,uint256)", decl, decl)
	}
	return out, nil
}

func fromBuiltin(e *decode.Event) bool {
	for _, b := range decode.Builtin().Events(e.Topic0) {
		if b == e {
			return true
		}
	}
	return false
}

// candidates are the events whose arguments conditions may name.
func candidates(selected []*decode.Event, topic0 map[string]bool, abiEvents []*decode.Event) []*decode.Event {
	if len(selected) > 0 {
		var out []*decode.Event
		for _, e := range selected {
			if topic0 == nil || topic0[e.Topic0] {
				out = append(out, e)
			}
		}
		return out
	}
	if topic0 != nil {
		var out []*decode.Event
		for t := range topic0 {
			for _, e := range abiEvents {
				if e.Topic0 == t {
					out = append(out, e)
				}
			}
			out = append(out, decode.Builtin().Events(t)...)
		}
		return out
	}
	return abiEvents
}

func isHex(s string, n int) bool {
	if len(s) != 2+2*n || !strings.HasPrefix(s, "0x") {
		return false
	}
	_, err := hex.DecodeString(s[2:])
	return err == nil
}

// Result is the outcome of decoding for a matched log: Decoded, or
// DecodeErr saying why the log is delivered raw.
type Result struct {
	Decoded   *decode.Decoded
	DecodeErr error
}

// Cache remembers decodings of one log across endpoints: identical event
// definitions are shared, so a log is decoded once per definition. Reset it
// (or use a new one) for every log.
type Cache struct {
	m map[*decode.Event]Result
}

// Reset empties the cache for the next log.
func (c *Cache) Reset() { clear(c.m) }

func (c *Cache) decode(e *decode.Event, l *hook.Log) Result {
	if c == nil {
		d, err := e.Decode(l)
		return Result{Decoded: d, DecodeErr: err}
	}
	if r, ok := c.m[e]; ok {
		return r
	}
	d, err := e.Decode(l)
	r := Result{Decoded: d, DecodeErr: err}
	if c.m == nil {
		c.m = map[*decode.Event]Result{}
	}
	c.m[e] = r
	return r
}

// MatchRaw checks everything that needs no decoding: chain, address, topics.
func (m *Matcher) MatchRaw(ev *hook.Event) bool {
	if !m.chains[ev.Chain.ID] {
		return false
	}
	if m.addresses != nil && !m.addresses[ev.Log.Address] {
		return false
	}
	if m.topic0 != nil && (len(ev.Log.Topics) == 0 || !m.topic0[ev.Log.Topics[0]]) {
		return false
	}
	for i := 1; i < 4; i++ {
		if m.topics[i] == nil {
			continue
		}
		if len(ev.Log.Topics) <= i || !m.topics[i][ev.Log.Topics[i]] {
			return false
		}
	}
	return true
}

// Decode decodes a log the way this endpoint sees it: with its own events
// first, then the built-in set.
func (m *Matcher) Decode(l *hook.Log, c *Cache) Result {
	e := m.own.Lookup(l.Topics)
	if e == nil {
		e = decode.Builtin().Lookup(l.Topics)
	}
	if e == nil {
		t0 := "none"
		if len(l.Topics) > 0 {
			t0 = l.Topics[0]
		}
		return Result{DecodeErr: fmt.Errorf("%w: topic0 %s with %d topics is in neither the endpoint's ABI nor the built-in set", decode.ErrUnknownEvent, t0, len(l.Topics))}
	}
	return c.decode(e, l)
}

// Match reports whether ev matches and, if so, its decoding. A log that
// cannot be decoded still matches when the filter has no conditions.
func (m *Matcher) Match(ev *hook.Event, c *Cache) (Result, bool) {
	if !m.MatchRaw(ev) {
		return Result{}, false
	}
	r := m.Decode(&ev.Log, c)
	if m.cond != nil {
		if r.Decoded == nil || !m.cond.eval(r.Decoded.Values) {
			return Result{}, false
		}
	}
	return r, true
}

// HasConditions reports whether the filter has Where conditions.
func (m *Matcher) HasConditions() bool { return m.cond != nil }
