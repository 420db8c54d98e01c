// Package hook is EthHook's shared vocabulary: the event that ingest publishes
// and process consumes, the Redis key layout they meet in, message states, and
// the delivery job that process hands to deliver. Every module imports it;
// it imports nothing of theirs.
package hook

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Event types carried in the stream's `type` field and in webhook payloads.
const (
	TypeLog        = "log"
	TypeLogRemoved = "log.removed"
	TypeBatch      = "batch"
)

// Event is one contract log as it sits in a chain's events stream. It is
// the public, documented wire format of `<prefix>{<chain_id>}:events`:
// each stream entry has the fields `id`, `type` and `event` (this struct as JSON).
type Event struct {
	ID          string      `json:"id"`   // EventID(chain, block hash, log index)
	Type        string      `json:"type"` // TypeLog or TypeLogRemoved
	Chain       Chain       `json:"chain"`
	Block       Block       `json:"block"`
	Transaction Transaction `json:"transaction"`
	Log         Log         `json:"log"`
}

// Chain names the chain an event came from.
type Chain struct {
	ID   uint64 `json:"id"`
	Name string `json:"name"`
}

// Block is the header data an event carries.
type Block struct {
	Number     uint64 `json:"number"`
	Hash       string `json:"hash"`
	ParentHash string `json:"parent_hash,omitempty"`
	Timestamp  uint64 `json:"timestamp"`
}

// Transaction identifies the transaction that emitted the log.
type Transaction struct {
	Hash  string `json:"hash"`
	Index uint   `json:"index"`
}

// Log is the raw EVM log: lower-case 0x hex strings throughout.
type Log struct {
	Address string   `json:"address"`
	Topics  []string `json:"topics"`
	Data    string   `json:"data"`
	Index   uint     `json:"index"`
}

// EventID is the idempotency key of a log instance: unique per block hash, so
// a transaction re-mined by a reorg gets a new id, and stable across retries
// and replicas.
func EventID(chainID uint64, blockHash string, logIndex uint) string {
	return strconv.FormatUint(chainID, 10) + ":" + strings.ToLower(blockHash) + ":" + strconv.FormatUint(uint64(logIndex), 10)
}

// WebhookID is the Standard Webhooks message id for a single-event message:
// the event id for a log, "<event id>:removed" for its retraction and
// "<event id>:finalized" for its finality confirmation (two-phase), so that a
// receiver deduplicating on webhook-id still sees both.
func WebhookID(eventID, typ string) string {
	switch typ {
	case TypeLogRemoved:
		return eventID + ":removed"
	case TypeLogFinalized:
		return eventID + ":finalized"
	}
	return eventID
}

// Fields returns the stream entry fields for e (XADD ... id <id> type <type> event <json>).
func (e *Event) Fields() (map[string]string, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", e.ID, err)
	}
	return map[string]string{"id": e.ID, "type": e.Type, "event": string(b)}, nil
}

// ParseEntry decodes a stream entry's fields back into an Event. The `type`
// field wins over the JSON's, so a producer can reuse one encoded body for
// both the log and its removal. A body as Fields writes it is read by a
// strict scanner (scan.go); any other is read by encoding/json, which
// decides what the format accepts. The Event's strings may share the
// body's memory.
func ParseEntry(fields map[string]string) (Event, error) {
	var e Event
	body, ok := fields["event"]
	if !ok {
		return e, fmt.Errorf("stream entry has no event field")
	}
	if !scanEvent(body, &e) {
		var err error
		if e, err = unmarshalEvent(body); err != nil {
			return e, fmt.Errorf("decode event %q: %w", fields["id"], err)
		}
	}
	if id := fields["id"]; id != "" {
		e.ID = id
	}
	if t := fields["type"]; t != "" {
		e.Type = t
	}
	if e.ID == "" || (e.Type != TypeLog && e.Type != TypeLogRemoved) {
		return e, fmt.Errorf("stream entry %q: bad id or type %q", e.ID, e.Type)
	}
	return e, nil
}

// unmarshalEvent is encoding/json's reading of an event body (apart, so
// that ParseEntry's Event stays on the stack when the scanner reads it).
func unmarshalEvent(body string) (Event, error) {
	var e Event
	err := json.Unmarshal([]byte(body), &e)
	return e, err
}
