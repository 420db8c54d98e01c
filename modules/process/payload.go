package process

import (
	"encoding/json"

	"github.com/ethhook/ethhook/decode"
	"github.com/ethhook/ethhook/filter"
	"github.com/ethhook/ethhook/hook"
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

// encodePayload appends the JSON body of the payload of ev for an endpoint
// to dst.
func encodePayload(dst []byte, ev *hook.Event, typ, endpointID string, r filter.Result, confirmations uint64) ([]byte, error) {
	b, err := json.Marshal(newPayload(ev, typ, endpointID, r, confirmations))
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}
