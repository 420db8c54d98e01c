package admin

import (
	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/filter"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/ops"
	"github.com/ethhook/ethhook/sign"
	"github.com/ethhook/ethhook/tenant"
)

// What a json tag cannot say about a field, for the OpenAPI document. Keys
// are "<package>.<Type>.<json name>" (see typeKey). A field missing here is
// still documented with its type; these only sharpen it. The bounds are the
// handlers' own constants, so the document and the checks agree.

// requestRequired lists the request fields a handler refuses to do without;
// every other request field is optional.
var requestRequired = map[string]bool{
	"admin.loginRequest.email":              true,
	"admin.loginRequest.password":           true,
	"admin.passwordChange.current_password": true,
	"admin.passwordChange.new_password":     true,
	"admin.appCreate.name":                  true,
	"admin.keyCreate.name":                  true,
	"admin.userCreate.email":                true,
	"admin.userCreate.password":             true,
	"admin.planCreate.name":                 true,
	"admin.planCreate.monthly_quota":        true,
	"admin.planCreate.max_endpoints":        true,
	"endpoint.Input.url":                    true,
	"endpoint.Input.filter":                 true,
	"hook.Filter.chains":                    true,
}

var (
	messageStates = []any{hook.StatePending, hook.StateDelivering, hook.StateSucceeded, hook.StateFailed, hook.StateDead, hook.StateQuotaExceeded}
	messageTypes  = []any{hook.TypeLog, hook.TypeLogRemoved, hook.TypeBatch, "test"}
	eventTypes    = []any{hook.TypeLog, hook.TypeLogRemoved}
	roles         = []any{tenant.RoleAdmin, tenant.RoleMember}
	hexAddress    = map[string]any{"pattern": "^0x[0-9a-fA-F]{40}$", "examples": []any{"0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"}}
)

func between(lo, hi int64) map[string]any { return map[string]any{"minimum": lo, "maximum": hi} }

func with(m map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func enumOf(vals []any, kv ...any) map[string]any { return with(map[string]any{"enum": vals}, kv...) }

var endpointDocs = map[string]map[string]any{
	"url":           {"format": "uri", "maxLength": 2048, "examples": []any{"https://example.com/hooks"}},
	"description":   {"maxLength": 1000},
	"confirmations": with(between(0, endpoint.MaxConfirmations), "description", "blocks deep before delivery; 0 = at once (may see log.removed); omitted: the highest default of the endpoint's chains"),
	"batch_max":     with(between(0, endpoint.MaxBatch), "description", ">1 batches up to this many events per POST"),
	"batch_wait_ms": with(between(0, endpoint.MaxBatchWaitMS), "description", "longest an event waits for its batch to fill"),
	"rate_limit":    with(between(0, endpoint.MaxRateLimit), "description", "events/s; 0 = the plan's"),
	"signature": enumOf([]any{sign.SchemeHMAC, sign.SchemeEd25519}, "default", sign.SchemeHMAC,
		"description", "signature scheme (Standard Webhooks): hmac signs v1 with a shared whsec_ secret; ed25519 signs v1a with a private key that never leaves EthHook, receivers verify with its whpk_ public key. Changing it in a PATCH rotates: a new secret of the new scheme signs at once, the current one keeps signing for 24 h"),
	"ops_events": {"maxItems": len(ops.Types), "items": map[string]any{"type": "string", "enum": opsTypes()},
		"description": "makes an operational endpoint (admins only): it receives EthHook's own events of these types (the webhooks section's ops:* bodies), never chain logs"},
	"retry_schedule": {"maxItems": endpoint.MaxRetries, "description": "delays between attempts as Go durations (\"5s\", \"5m\"); empty = the configured default", "examples": []any{[]any{"0s", "30s", "5m", "1h"}}},
}

var fieldDocs = func() map[string]map[string]any {
	d := map[string]map[string]any{
		"admin.loginRequest.email":       {"format": "email", "examples": []any{"admin@ethhook.local"}},
		"admin.loginResponse.token_type": enumOf([]any{"Bearer"}),
		"admin.whoami.type":              enumOf([]any{"user", "api_key"}),
		"admin.userCreate.role":          enumOf(roles, "default", tenant.RoleMember),
		"admin.userUpdate.role":          enumOf(roles),
		"admin.userCreate.email":         {"format": "email"},
		"tenant.User.role":               enumOf(roles),
		"tenant.AuditEntry.actor_type":   enumOf([]any{"user", "api_key", "system", "anonymous"}),
		"admin.planCreate.id":            {"pattern": "^[a-z0-9_-]{1,40}$", "examples": []any{"pro"}},
		"admin.planCreate.monthly_quota": with(between(0, tenant.MaxPlanQuota), "description", "successful deliveries a month; 0 = unlimited"),
		"admin.planCreate.max_endpoints": with(between(0, tenant.MaxPlanEndpoints), "description", "0 = unlimited"),
		"admin.planCreate.rate_limit":    with(between(0, tenant.MaxPlanRateLimit), "description", "events/s per endpoint; 0 = unlimited"),
		"admin.planUpdate.monthly_quota": between(0, tenant.MaxPlanQuota),
		"admin.planUpdate.max_endpoints": between(0, tenant.MaxPlanEndpoints),
		"admin.planUpdate.rate_limit":    between(0, tenant.MaxPlanRateLimit),
		"admin.rotateRequest.overlap_seconds": with(between(0, maxOverlapSeconds), "default", int64(DefaultRotateOverlap.Seconds()),
			"description", "how long the current secret keeps signing next to the new one"),
		"admin.secretView.secret": {"description": "what the receiver verifies with: the whsec_ secret (hmac), or the whpk_ public key (ed25519; the whsk_ private key is never shown)",
			"pattern": "^(whsec_|whpk_)[A-Za-z0-9+/=]+$"},
		"admin.secretView.signature": enumOf([]any{sign.SchemeHMAC, sign.SchemeEd25519}),
		"admin.endpointCreated.secret": {"description": "what the receiver verifies with: the whsec_ secret (hmac), or the whpk_ public key (ed25519); GET .../secret shows it again",
			"pattern": "^(whsec_|whpk_)[A-Za-z0-9+/=]+$"},
		"admin.replayRequest.from_block": {"minimum": 0},
		"admin.replayRequest.to_block":   {"minimum": 0},
		"message.Message.state":          enumOf(messageStates),
		"message.Message.type":           enumOf(messageTypes),
		"hook.Event.type":                enumOf(eventTypes),
		"hook.Filter.chains": {"maxItems": filter.MaxChains, "examples": []any{[]any{1}},
			"description": "chain ids to watch: at least one for a chain endpoint (a 400 names filter.chains otherwise); empty for an operational endpoint (ops_events)"},
		"hook.Filter.addresses": {"maxItems": filter.MaxAddresses, "items": with(map[string]any{"type": "string"}, "pattern", hexAddress["pattern"])},
		"hook.Filter.topics":    {"maxItems": 4, "description": "topics[i] lists the accepted values of topic i; an empty list accepts anything"},
		"hook.Filter.events":    {"maxItems": filter.MaxEvents, "examples": []any{[]any{"Transfer(address,address,uint256)"}}},
		"hook.Filter.where":     {"maxItems": filter.MaxConditions, "items": map[string]any{"type": "string", "maxLength": filter.MaxConditionLen}, "examples": []any{[]any{"value >= 1000000000"}}},
		"hook.Filter.abi":       {"description": "a contract ABI (JSON array) that decodes and names arguments"},
	}
	for k, v := range endpointDocs {
		d["endpoint.Input."+k] = v
		d["endpoint.Patch."+k] = v
		d["hook.Endpoint."+k] = v
	}
	d["admin.endpointPatch.disabled_reason"] = map[string]any{"maxLength": maxDisabledReason,
		"description": "with \"enabled\": false, why (shown with the endpoint); on a disabled endpoint, a new reason"}
	return d
}()

// queryDocs sharpen query parameters by name (every route's "state" is a
// message state, every "limit" a page size).
var queryDocs = map[string]map[string]any{
	"limit":      {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
	"cursor":     {"type": "string", "maxLength": 1000},
	"state":      enumOf(messageStates, "type", "string"),
	"type":       enumOf(eventTypes, "type", "string"),
	"role":       enumOf(roles, "type", "string"),
	"format":     enumOf([]any{"json", "csv"}, "type", "string", "default", "json"),
	"since":      {"type": "string", "format": "date-time"},
	"until":      {"type": "string", "format": "date-time"},
	"from_block": {"type": "integer", "minimum": 0},
	"to_block":   {"type": "integer", "minimum": 0},
	"from":       {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"},
	"to":         {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"},
}

// bodyExamples are request examples by operation id, the README's own.
var bodyExamples = map[string]any{
	"login":             map[string]any{"email": "admin@ethhook.local", "password": "correct-horse-battery"},
	"createApplication": map[string]any{"name": "shop"},
	"createAPIKey":      map[string]any{"name": "ci"},
	"createEndpoint": map[string]any{
		"url": "https://example.com/hooks", "description": "large USDC transfers",
		"filter": map[string]any{"chains": []any{1}, "addresses": []any{"0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"},
			"events": []any{"Transfer(address,address,uint256)"}, "where": []any{"value >= 1000000000"}},
		"confirmations": 3,
	},
	"updateEndpoint":       map[string]any{"rate_limit": 50, "retry_schedule": []any{"0s", "30s", "5m", "1h"}},
	"rotateEndpointSecret": map[string]any{"overlap_seconds": 3600},
	"replayEndpoint":       map[string]any{"since": "2026-11-01T00:00:00Z", "from_block": 0, "to_block": 99999999, "only_failed": true},
	"createPlan":           map[string]any{"id": "pro", "name": "Pro", "monthly_quota": 1000000, "max_endpoints": 50, "rate_limit": 100},
	"createUser":           map[string]any{"email": "dev@example.com", "password": "correct-horse-battery", "role": "member"},
}
