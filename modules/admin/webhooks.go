package admin

import (
	"reflect"
	"time"

	"github.com/ethhook/ethhook/decode"
	"github.com/ethhook/ethhook/hook"
)

// The webhook bodies EthHook POSTs, as the document's `webhooks` section
// (OpenAPI 3.1) publishes them so receivers can generate types. The process
// module builds log and batch bodies (modules never import each other, so
// these mirror its payload types field for field); app's contract test
// validates real deliveries against this section, so the two cannot part.
type (
	webhookLog struct {
		ID            string           `json:"id"`   // {chain_id}:{block_hash}:{log_index}
		Type          string           `json:"type"` // log or log.removed
		APIVersion    string           `json:"api_version"`
		Chain         hook.Chain       `json:"chain"`
		Block         webhookBlock     `json:"block"`
		Transaction   hook.Transaction `json:"transaction"`
		Log           hook.Log         `json:"log"`
		Decoded       *decode.Decoded  `json:"decoded,omitempty"`      // when an ABI or the built-in set knows the event
		DecodeError   string           `json:"decode_error,omitempty"` // why it could not be decoded
		Confirmations uint64           `json:"confirmations"`
		EndpointID    string           `json:"endpoint_id"`
	}
	webhookBlock struct {
		Number    uint64 `json:"number"`
		Hash      string `json:"hash"`
		Timestamp uint64 `json:"timestamp"`
	}
	webhookBatch struct {
		ID         string       `json:"id"`
		Type       string       `json:"type"` // batch
		APIVersion string       `json:"api_version"`
		EndpointID string       `json:"endpoint_id"`
		Events     []webhookLog `json:"events"`
	}
	// webhookTest is the body of a test event (POST .../endpoints/{id}/test);
	// SendTest encodes this very type.
	webhookTest struct {
		ID         string     `json:"id"` // test:<message id>
		Type       string     `json:"type"`
		APIVersion string     `json:"api_version"`
		EndpointID string     `json:"endpoint_id"`
		Chain      hook.Chain `json:"chain"`
		Message    string     `json:"message"`
		SentAt     string     `json:"sent_at"`
	}
)

func init() {
	fieldDocs["admin.webhookLog.type"] = enumOf(eventTypes)
	fieldDocs["admin.webhookLog.api_version"] = enumOf([]any{"1"})
	fieldDocs["admin.webhookBatch.type"] = enumOf([]any{hook.TypeBatch})
	fieldDocs["admin.webhookBatch.api_version"] = enumOf([]any{"1"})
	fieldDocs["admin.webhookBatch.events"] = map[string]any{"minItems": 1}
	fieldDocs["admin.webhookTest.type"] = enumOf([]any{"test"})
	fieldDocs["admin.webhookTest.api_version"] = enumOf([]any{"1"})
	fieldDocs["admin.webhookTest.sent_at"] = map[string]any{"format": "date-time"}
	fieldDocs["decode.Decoded.args"] = map[string]any{"description": "arguments by name: integers as decimal strings, addresses, bytes and hashed indexed arguments as 0x hex, bools, strings, arrays and tuples as JSON arrays and objects"}
}

var exampleLog = map[string]any{
	"id": "1:0x9f2c6a1e5d0b8f3a7c4e2d1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a19:12", "type": "log", "api_version": "1",
	"chain":       map[string]any{"id": 1, "name": "eth"},
	"block":       map[string]any{"number": 18000000, "hash": "0x9f2c6a1e5d0b8f3a7c4e2d1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a19", "timestamp": 1709876864},
	"transaction": map[string]any{"hash": "0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060", "index": 4},
	"log": map[string]any{"address": "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48",
		"topics": []any{"0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef",
			"0x000000000000000000000000f39fd6e51aad88f6f4ce6ab8827279cfffb92266",
			"0x00000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c8"},
		"data": "0x000000000000000000000000000000000000000000000000000000003b9aca00", "index": 12},
	"decoded": map[string]any{"name": "Transfer", "signature": "Transfer(address,address,uint256)",
		"args": map[string]any{"from": "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266", "to": "0x70997970c51812dc3a010c7d01b50e0d17dc79c8", "value": "1000000000"}},
	"confirmations": 3, "endpoint_id": "ep_2f1c9a",
}

func exampleWith(kv ...any) map[string]any { return with(exampleLog, kv...) }

// webhookHeaders are the Standard Webhooks headers of every delivery.
var webhookHeaders = []any{
	map[string]any{"name": "webhook-id", "in": "header", "required": true, "schema": map[string]any{"type": "string"},
		"description": "the message id: the event id for log, <event id>:removed for log.removed, the batch or test id; kept by retries and replays (deduplicate on it)"},
	map[string]any{"name": "webhook-timestamp", "in": "header", "required": true, "schema": map[string]any{"type": "string", "pattern": "^[0-9]+$"},
		"description": "Unix seconds of this attempt"},
	map[string]any{"name": "webhook-signature", "in": "header", "required": true, "schema": map[string]any{"type": "string"},
		"description": "space-separated v1,<base64 HMAC-SHA256 of id.timestamp.body>, one per signing secret: the current one and every unexpired rotated-out one (up to " +
			"the rotation bound); a receiver accepts the body when any of them verifies"},
}

func webhooksSection(g *schemaGen) map[string]any {
	logRef := g.schema(reflect.TypeOf(webhookLog{}), inResponse)
	constType := func(ref map[string]any, typ string) map[string]any {
		return map[string]any{"allOf": []any{ref, map[string]any{"properties": map[string]any{"type": map[string]any{"const": typ}}}}}
	}
	batch := exampleWith()
	delete(batch, "confirmations")
	hooks := []struct {
		name, id, summary string
		schema            map[string]any
		example           any
	}{
		{hook.TypeLog, "webhookLog", "A matching log, decoded when its event is known", constType(logRef, hook.TypeLog), exampleLog},
		{hook.TypeLogRemoved, "webhookLogRemoved", "A log delivered before is no longer on the chain (a reorg); same id, webhook-id <id>:removed",
			constType(logRef, hook.TypeLogRemoved), exampleWith("type", hook.TypeLogRemoved, "confirmations", 0)},
		{hook.TypeBatch, "webhookBatch", "Up to batch_max events in one POST (endpoints with batch_max > 1)",
			g.schema(reflect.TypeOf(webhookBatch{}), inResponse),
			map[string]any{"id": "batch_7d1e0c", "type": "batch", "api_version": "1", "endpoint_id": "ep_2f1c9a", "events": []any{exampleLog}}},
		{"test", "webhookTest", "A test event sent with POST .../endpoints/{endpoint_id}/test",
			g.schema(reflect.TypeOf(webhookTest{}), inResponse),
			map[string]any{"id": "test:msg_3b8e1f", "type": "test", "api_version": "1", "endpoint_id": "ep_2f1c9a",
				"chain": map[string]any{"id": 1, "name": "eth"}, "message": "This is a test event from EthHook.", "sent_at": "2026-11-01T12:00:00Z"}},
	}
	hooks = append(hooks, opsWebhookDocs(g)...) // opswebhooks.go
	out := map[string]any{}
	for _, h := range hooks {
		out[h.name] = map[string]any{"post": map[string]any{
			"operationId": h.id, "summary": h.summary, "tags": []string{"webhooks"}, "security": []any{},
			"parameters": webhookHeaders,
			"requestBody": map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{
				"schema": h.schema, "example": h.example}}},
			"responses": map[string]any{
				"2XX": map[string]any{"description": "received: the message is done"},
				"4XX": map[string]any{"description": "final (not retried), except 408, 409, 425 and 429"},
				"5XX": map[string]any{"description": "retried on the endpoint's schedule (Retry-After honoured)"},
			},
		}}
	}
	return out
}

// testPayload is the body of a test event.
func testPayload(eventID, endpointID string, chain hook.Chain, now time.Time) webhookTest {
	return webhookTest{ID: eventID, Type: "test", APIVersion: "1", EndpointID: endpointID, Chain: chain,
		Message: "This is a test event from EthHook.", SentAt: now.UTC().Format(time.RFC3339)}
}
