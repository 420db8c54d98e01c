package admin

import (
	"encoding/json"
	"reflect"
	"time"

	"github.com/ethhook/ethhook/ops"
)

// The operational webhooks (package ops) in the document's webhooks
// section: one entry per type, named for it. Every body is the ops
// envelope; the data of the types with a typed data struct
// (endpoint.rate_limited, endpoint.rate_limit_cleared) is generated from
// that struct, the very type deliver encodes. The examples are encoded by
// ops.Event.Payload itself.
type webhookOps struct {
	ID         string         `json:"id"` // ops:<type>:<key>, also the webhook-id
	Type       string         `json:"type"`
	APIVersion string         `json:"api_version"`
	Timestamp  time.Time      `json:"timestamp"`
	Data       map[string]any `json:"data"`
}

func init() {
	fieldDocs["admin.webhookOps.type"] = enumOf(opsTypes())
	fieldDocs["admin.webhookOps.api_version"] = enumOf([]any{"1"})
	fieldDocs["admin.webhookOps.id"] = map[string]any{"pattern": "^ops:"}
	fieldDocs["ops.RateLimited.since"] = map[string]any{"format": "date-time"}
	fieldDocs["ops.RateLimited.rate_limit"] = map[string]any{"minimum": 1}
	fieldDocs["ops.RateLimitCleared.since"] = map[string]any{"format": "date-time", "description": "the since of the endpoint.rate_limited this ends"}
	fieldDocs["ops.RateLimitCleared.rate_limit"] = map[string]any{"minimum": 1}
	fieldDocs["ops.RateLimitCleared.reason"] = enumOf([]any{ops.ClearedDrained, ops.ClearedNotHeld},
		"description", "drained: the backlog fell below about one second of sending; not_held: the limiter no longer holds it (endpoint disabled or deleted, breaker open, limit raised)")
}

func opsTypes() []any {
	out := make([]any, len(ops.Types))
	for i, t := range ops.Types {
		out[i] = t
	}
	return out
}

var opsExampleAt = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// opsExample is the body ops sends for ev, decoded for the document.
func opsExample(ev ops.Event) any {
	b, err := ev.Payload()
	if err != nil {
		panic(err) // a fixed example: a test of the document catches it at once
	}
	var v any
	_ = json.Unmarshal(b, &v)
	return v
}

var opsSummaries = map[string]string{
	ops.EndpointDisabled:         "Operational: deliver disabled an endpoint (failing for delivery.disable_after, or a final answer such as 410)",
	ops.BreakerOpened:            "Operational: a deliver process opened an endpoint's circuit breaker",
	ops.QuotaReached:             "Operational: an application reached its monthly quota (once per application and month)",
	ops.IngestStalled:            "Operational: a chain's committed cursor did not move for admin.ingest_stall_after (once per position)",
	ops.DeadLetterCreated:        "Operational: a message ended dead (final answer or retries exhausted)",
	ops.EndpointRateLimited:      "Operational: an endpoint's rate limit holds a growing backlog back (once per episode)",
	ops.EndpointRateLimitCleared: "Operational: the backlog of an endpoint.rate_limited episode drained, or the limiter stopped holding it (once per episode)",
}

// opsWebhookDocs are the webhooks section's entries of the ops types.
func opsWebhookDocs(g *schemaGen) []struct {
	name, id, summary string
	schema            map[string]any
	example           any
} {
	env := g.schema(reflect.TypeOf(webhookOps{}), inResponse)
	since := opsExampleAt.Add(-4 * time.Minute)
	typed := map[string]struct {
		data    reflect.Type
		example ops.Event
	}{
		ops.EndpointRateLimited: {reflect.TypeOf(ops.RateLimited{}), ops.RateLimitedEvent(ops.RateLimited{EndpointID: "ep_2f1c9a", AppID: "app_9d2e4b",
			RateLimit: 10, Backlog: 1493}, since, opsExampleAt)},
		ops.EndpointRateLimitCleared: {reflect.TypeOf(ops.RateLimitCleared{}), ops.RateLimitClearedEvent(ops.RateLimitCleared{EndpointID: "ep_2f1c9a", AppID: "app_9d2e4b",
			RateLimit: 10, Backlog: 3, MaxBacklog: 2600, Reason: ops.ClearedDrained}, since, opsExampleAt.Add(17*time.Minute))},
	}
	untyped := map[string]map[string]any{
		ops.EndpointDisabled: {"endpoint_id": "ep_2f1c9a", "app_id": "app_9d2e4b", "url": "https://example.com/hooks", "reason": "HTTP 410: the endpoint is gone"},
		ops.BreakerOpened:    {"endpoint_id": "ep_2f1c9a", "consecutive_failures": 5, "process": "deliver-1"},
		ops.QuotaReached: {"app_id": "app_9d2e4b", "app_name": "demo", "plan": "free", "month": "2026-11",
			"deliveries": 10000, "monthly_quota": 10000},
		ops.IngestStalled: {"chain": "eth", "chain_id": 1, "block_number": 18000000,
			"block_hash": "0x9f2c6a1e5d0b8f3a7c4e2d1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a19", "since": "2026-11-01T11:55:00Z", "stalled_seconds": 300},
		ops.DeadLetterCreated: {"message_id": "msg_3b8e1f", "endpoint_id": "ep_2f1c9a", "app_id": "app_9d2e4b",
			"webhook_id": "1:0x9f2c6a1e5d0b8f3a7c4e2d1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a19:12", "attempts": 8, "last_status": 500, "last_error": ""},
	}
	var out []struct {
		name, id, summary string
		schema            map[string]any
		example           any
	}
	for _, typ := range ops.Types {
		data := map[string]any{"type": "object"}
		var ex ops.Event
		if t, ok := typed[typ]; ok {
			data, ex = g.schema(t.data, inResponse), t.example
		} else {
			ex = ops.Event{Type: typ, Key: "example", At: opsExampleAt, Data: untyped[typ]}
		}
		schema := map[string]any{"allOf": []any{env, map[string]any{"properties": map[string]any{
			"type": map[string]any{"const": typ}, "data": data}}}}
		out = append(out, struct {
			name, id, summary string
			schema            map[string]any
			example           any
		}{typ, "webhookOps" + opsID(typ), opsSummaries[typ], schema, opsExample(ex)})
	}
	return out
}

// opsID turns "endpoint.rate_limited" into "EndpointRateLimited" for an
// operationId.
func opsID(typ string) string {
	out := make([]byte, 0, len(typ))
	up := true
	for i := 0; i < len(typ); i++ {
		c := typ[i]
		if c == '.' || c == '_' {
			up = true
			continue
		}
		if up && c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		out = append(out, c)
		up = false
	}
	return string(out)
}
