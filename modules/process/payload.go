package process

import (
	"encoding/json"
	"slices"
	"strconv"

	"github.com/ethhook/ethhook/decode"
	"github.com/ethhook/ethhook/filter"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/jsonw"
)

// APIVersion is the webhook payload version.
const APIVersion = "1"

// Payload is a webhook body for one event (DESIGN.md, "Payload (version 1)").
type Payload struct {
	ID            string           `json:"id"`
	Type          string           `json:"type"`
	APIVersion    string           `json:"api_version"`
	Chain         hook.Chain       `json:"chain"`
	Block         PayloadBlock     `json:"block"`
	Transaction   hook.Transaction `json:"transaction"`
	Log           hook.Log         `json:"log"`
	Decoded       *decode.Decoded  `json:"decoded,omitempty"`
	DecodeError   string           `json:"decode_error,omitempty"`
	Confirmations uint64           `json:"confirmations"`
	EndpointID    string           `json:"endpoint_id"`
}

// PayloadBlock is the block part of a payload.
type PayloadBlock struct {
	Number    uint64 `json:"number"`
	Hash      string `json:"hash"`
	Timestamp uint64 `json:"timestamp"`
}

// BatchPayload is the body of a batch message.
type BatchPayload struct {
	ID         string            `json:"id"`
	Type       string            `json:"type"` // "batch"
	APIVersion string            `json:"api_version"`
	EndpointID string            `json:"endpoint_id"`
	Events     []json.RawMessage `json:"events"`
}

// encodePayload appends the JSON body of the payload of ev for an endpoint
// to dst: byte for byte what encoding/json makes of the same Payload
// (payload_test.go builds that reference and compares on many events),
// written by hand because reflection was a fifth of process's CPU per
// event. Payload stays the type a stored body is read back into.
func encodePayload(dst []byte, ev *hook.Event, typ, endpointID string, r filter.Result, confirmations uint64) ([]byte, error) {
	dst = append(dst, `{"id":`...)
	dst = jsonw.AppendString(dst, ev.ID)
	dst = append(dst, `,"type":`...)
	dst = jsonw.AppendString(dst, typ)
	dst = append(dst, `,"api_version":"`+APIVersion+`","chain":{"id":`...)
	dst = strconv.AppendUint(dst, ev.Chain.ID, 10)
	dst = append(dst, `,"name":`...)
	dst = jsonw.AppendString(dst, ev.Chain.Name)
	dst = append(dst, `},"block":{"number":`...)
	dst = strconv.AppendUint(dst, ev.Block.Number, 10)
	dst = append(dst, `,"hash":`...)
	dst = jsonw.AppendString(dst, ev.Block.Hash)
	dst = append(dst, `,"timestamp":`...)
	dst = strconv.AppendUint(dst, ev.Block.Timestamp, 10)
	dst = append(dst, `},"transaction":{"hash":`...)
	dst = jsonw.AppendString(dst, ev.Transaction.Hash)
	dst = append(dst, `,"index":`...)
	dst = strconv.AppendUint(dst, uint64(ev.Transaction.Index), 10)
	dst = append(dst, `},"log":{"address":`...)
	dst = jsonw.AppendString(dst, ev.Log.Address)
	dst = append(dst, `,"topics":[`...)
	for i, t := range ev.Log.Topics {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonw.AppendString(dst, t)
	}
	dst = append(dst, `],"data":`...)
	dst = jsonw.AppendString(dst, ev.Log.Data)
	dst = append(dst, `,"index":`...)
	dst = strconv.AppendUint(dst, uint64(ev.Log.Index), 10)
	dst = append(dst, '}')
	if d := r.Decoded; d != nil {
		dst = append(dst, `,"decoded":{"name":`...)
		dst = jsonw.AppendString(dst, d.Name)
		dst = append(dst, `,"signature":`...)
		dst = jsonw.AppendString(dst, d.Signature)
		dst = append(dst, `,"args":`...)
		var err error
		if dst, err = appendJSONValue(dst, d.Args); err != nil {
			return dst, err
		}
		dst = append(dst, '}')
	}
	if r.DecodeErr != nil {
		if msg := r.DecodeErr.Error(); msg != "" {
			dst = append(dst, `,"decode_error":`...)
			dst = jsonw.AppendString(dst, msg)
		}
	}
	dst = append(dst, `,"confirmations":`...)
	dst = strconv.AppendUint(dst, confirmations, 10)
	dst = append(dst, `,"endpoint_id":`...)
	dst = jsonw.AppendString(dst, endpointID)
	return append(dst, '}'), nil
}

// appendJSONValue appends a decoded argument's payload form (see package
// decode: strings, bools, arrays and objects of them) as encoding/json
// writes it: object keys sorted, nil maps and slices as null. Anything
// else goes through encoding/json.
func appendJSONValue(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		return jsonw.AppendString(dst, x), nil
	case bool:
		return strconv.AppendBool(dst, x), nil
	case nil:
		return append(dst, "null"...), nil
	case []any:
		if x == nil {
			return append(dst, "null"...), nil
		}
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = appendJSONValue(dst, e); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	case map[string]any:
		if x == nil {
			return append(dst, "null"...), nil
		}
		var buf [16]string
		keys := buf[:0]
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = jsonw.AppendString(dst, k)
			dst = append(dst, ':')
			var err error
			if dst, err = appendJSONValue(dst, x[k]); err != nil {
				return dst, err
			}
		}
		return append(dst, '}'), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}
