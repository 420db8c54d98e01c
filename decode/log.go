package decode

// Decoding one log with an event: topics and data unpacked by
// go-ethereum, a Positional event's indexed arguments taken from the
// log's topic count.

import (
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"

	"github.com/ethhook/ethhook/hook"
)

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

func hexBytes(s string) ([]byte, error) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if len(s)%2 == 1 {
		s = "0" + s
	}
	return hex.DecodeString(s)
}
