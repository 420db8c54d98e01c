package decode

// Decoding one log with an event: topics and data unpacked by
// go-ethereum, a Positional event's indexed arguments taken from the
// log's topic count.

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"

	"github.com/ethhook/ethhook/hook"
)

// ErrUnknownEvent means no known event definition has the log's topic0 and
// topic count.
var ErrUnknownEvent = errors.New("unknown event")

// plan is what decoding a log with one abi.Event needs that is the same
// for every log, made once per event (and per Positional variant) instead
// of once per log: the arguments split into indexed and unindexed ones,
// and how each indexed one is read from its topic.
type plan struct {
	ev         *abi.Event
	indexed    abi.Arguments
	kinds      []topicKind   // per indexed argument
	viaABI     abi.Arguments // the indexed arguments of kind topicABI
	nonIndexed abi.Arguments
}

// topicKind is how an indexed argument is read from its topic: the common
// static types directly, the rest by go-ethereum.
type topicKind uint8

const (
	topicABI     topicKind = iota // abi.ParseTopicsIntoMap
	topicHash                     // a dynamic value: the topic is its keccak256
	topicAddress                  // the topic's last 20 bytes
	topicUint256                  // the topic as a big-endian number
)

func newPlan(ev *abi.Event) *plan {
	p := &plan{ev: ev, nonIndexed: ev.Inputs.NonIndexed()}
	for _, in := range ev.Inputs {
		if !in.Indexed {
			continue
		}
		k := topicABI
		switch {
		case isHashedInTopic(in.Type):
			k = topicHash
		case in.Type.T == abi.AddressTy:
			k = topicAddress
		case in.Type.T == abi.UintTy && in.Type.Size == 256:
			k = topicUint256
		default:
			p.viaABI = append(p.viaABI, in)
		}
		p.indexed = append(p.indexed, in)
		p.kinds = append(p.kinds, k)
	}
	return p
}

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
	var buf [4]common.Hash // a log's most
	topics := buf[:0]
	if len(l.Topics) > len(buf) {
		topics = make([]common.Hash, 0, len(l.Topics))
	}
	for i, t := range l.Topics {
		var h common.Hash
		if !decodeHash(&h, t) {
			return nil, fmt.Errorf("decode %s: topic %d %q is not 32 bytes of hex", e.Signature, i, t)
		}
		topics = append(topics, h)
	}
	data, err := hexBytes(l.Data)
	if err != nil {
		return nil, fmt.Errorf("decode %s: data is not hex: %w", e.Signature, err)
	}
	p := e.plan
	if e.Positional {
		p = e.variant(len(topics) - 1)
		if p == nil {
			return nil, fmt.Errorf("decode %s: log has %d topics, more than the event has arguments", e.Signature, len(topics))
		}
	} else if len(topics) != e.nIdx+1 {
		return nil, fmt.Errorf("decode %s: log has %d topics, the event has %d indexed arguments", e.Signature, len(topics), e.nIdx)
	}
	ev := p.ev
	if len(topics) == 0 || topics[0] != ev.ID {
		return nil, fmt.Errorf("decode %s: topic0 does not match", e.Signature)
	}
	d = &Decoded{Name: e.Name, Signature: e.Signature, Args: make(map[string]any, len(ev.Inputs)), Values: make(map[string]any, len(ev.Inputs))}
	var viaABI [3]common.Hash
	sub := viaABI[:0]
	for i, in := range p.indexed {
		h := topics[1+i]
		switch p.kinds[i] {
		case topicHash:
			d.Values[in.Name] = h.Bytes()
			d.Args[in.Name] = hexString(h[:])
		case topicAddress:
			a := [20]byte(h[12:])
			d.Values[in.Name] = a
			d.Args[in.Name] = hexString(a[:])
		case topicUint256:
			v := new(big.Int).SetBytes(h[:])
			d.Values[in.Name] = v
			d.Args[in.Name] = jsonValue(v)
		default:
			sub = append(sub, h)
		}
	}
	if len(p.viaABI) > 0 {
		values := make(map[string]any, len(p.viaABI))
		if err := abi.ParseTopicsIntoMap(values, p.viaABI, sub); err != nil {
			return nil, fmt.Errorf("decode %s: topics: %w", e.Signature, err)
		}
		for _, in := range p.viaABI {
			tv := typed(reflect.ValueOf(values[in.Name]), in.Type)
			d.Values[in.Name] = tv
			d.Args[in.Name] = jsonValue(tv)
		}
	}
	if len(p.nonIndexed) > 0 {
		vals, err := p.nonIndexed.UnpackValues(data)
		if err != nil {
			return nil, fmt.Errorf("decode %s: data: %w", e.Signature, err)
		}
		for i, in := range p.nonIndexed {
			tv := typed(reflect.ValueOf(vals[i]), in.Type)
			d.Values[in.Name] = tv
			d.Args[in.Name] = jsonValue(tv)
		}
	} else if len(data) > 0 {
		return nil, fmt.Errorf("decode %s: log has %d data bytes, the event has no unindexed arguments", e.Signature, len(data))
	}
	return d, nil
}

func (e *Event) variant(nIndexed int) *plan {
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
		e.variants = map[int]*plan{}
	}
	e.variants[nIndexed] = newPlan(&v)
	return e.variants[nIndexed]
}

// decodeHash reads a topic: 32 bytes of hex after an optional 0x, an odd
// digit count taken as a leading 0 (what hexBytes accepts, with no
// allocation).
func decodeHash(h *common.Hash, s string) bool {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	var digits [2 * len(common.Hash{})]byte
	switch len(s) {
	case len(digits):
		copy(digits[:], s)
	case len(digits) - 1:
		digits[0] = '0'
		copy(digits[1:], s)
	default:
		return false
	}
	for i := range h {
		hi, ok1 := fromHexChar(digits[2*i])
		lo, ok2 := fromHexChar(digits[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		h[i] = hi<<4 | lo
	}
	return true
}

func fromHexChar(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// hexString is "0x" + lower-case hex of b, in one allocation.
func hexString(b []byte) string {
	var buf [2 + 2*64]byte
	var out []byte
	if n := 2 + 2*len(b); n > len(buf) {
		out = make([]byte, n)
	} else {
		out = buf[:n]
	}
	out[0], out[1] = '0', 'x'
	hex.Encode(out[2:], b)
	return string(out)
}

func isHashedInTopic(t abi.Type) bool {
	switch t.T {
	case abi.StringTy, abi.BytesTy, abi.SliceTy, abi.ArrayTy, abi.TupleTy:
		return true
	}
	return false
}

func hexBytes(s string) ([]byte, error) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if len(s)%2 == 1 {
		s = "0" + s
	}
	return hex.DecodeString(s)
}
