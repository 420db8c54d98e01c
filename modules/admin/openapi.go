package admin

import (
	"maps"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
)

// OpenAPIPath turns an echo path (/applications/:app_id) into an OpenAPI
// one (/applications/{app_id}).
func OpenAPIPath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if strings.HasPrefix(s, ":") {
			parts[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(parts, "/")
}

// tagDocs describes each route tag (the document's top-level tags).
var tagDocs = map[string]string{
	"meta":         "The API's own description",
	"auth":         "Sign-in, the caller, passwords and logout",
	"applications": "Applications: the tenants that own endpoints, keys and messages",
	"api-keys":     "Application API keys (ethk_...)",
	"usage":        "Deliveries this month and by month, against the plan's quota",
	"chains":       "Configured chains and their recent events",
	"plans":        "Plans: monthly quotas, endpoint caps, rate limits",
	"users":        "Users (admin)",
	"audit":        "The audit log of changes",
	"endpoints":    "Webhook endpoints: filters, signing secrets, tests, replays",
	"messages":     "Messages (one per matched event and endpoint) and their attempts",
	"event-types":  "The events endpoints can receive, with their argument schemas",
	"dead-letters": "Stream entries process gave up on, and putting them back (admin)",
	"webhooks":     "What EthHook POSTs to your endpoints",
}

// errorStatus is one error answer of the API, as components/responses.
type errorStatus struct {
	name, desc, code, example string
	retryAfter                bool
}

var errorStatuses = map[int]errorStatus{
	400: {"BadRequest", "the request is invalid: a field, a query parameter or the JSON", "invalid_request", "limit: must be an integer between 1 and 200", false},
	401: {"Unauthorized", "missing or invalid credentials (unauthorized), or a wrong email or password (invalid_credentials)", "unauthorized", "missing or invalid credentials: send Authorization: Bearer <token or ethk_ key>", false},
	403: {"Forbidden", "not allowed for this caller (forbidden: an API key on a users-only route, a member on an admin route), password_change_required, or plan_limit", "forbidden", "API keys cannot create or delete applications; log in as a user", false},
	404: {"NotFound", "no such resource, or another tenant's", "not_found", "not found", false},
	409: {"Conflict", "the change collides with the resource's state or an existing one (conflict), or a replay to a disabled endpoint (endpoint_disabled: enable it first)", "conflict", `plan "pro" already exists`, false},
	413: {"PayloadTooLarge", "the request body is larger than admin.body_limit", "body_too_large", "request body is larger than the limit", false},
	422: {"IdempotencyKeyReused", "the Idempotency-Key was used within 24 h for a request with another body or route", "idempotency_key_reused", "Idempotency-Key \"k1\" was used for another request body; use a new key", false},
	429: {"TooManyRequests", "a request or sign-in limit is reached; retry after Retry-After seconds", "rate_limited", "rate limit reached; retry after 12 s", true},
	503: {"ServiceUnavailable", "too many password checks at once (busy); retry after Retry-After seconds", "busy", "too many password checks in progress; retry in a moment", true},
	500: {"InternalError", "an unexpected error; the message names the request id of the server log line", "internal", "internal error; see the server log for request id req_...", false},
}

// MethodNotAllowed (405) has no operation to hang on: it is the answer to a
// method a documented path does not serve, described in info.

func refResponse(status int) map[string]any {
	return map[string]any{"$ref": "#/components/responses/" + errorStatuses[status].name}
}

// statuses lists the error answers a route can give; each comes from a
// check the route's middleware or handler makes.
func (r route) statuses() []int {
	// Every route: unknown or malformed query parameters, bad path values.
	out := []int{400}
	if r.auth != authNone || r.checksPassword {
		out = append(out, 401, 429) // credentials; rate or sign-in limits
	}
	if r.auth != authNone {
		out = append(out, 403)
	}
	if strings.Contains(r.path, ":") {
		out = append(out, 404)
	}
	for _, q := range r.query {
		if q.name == "app_id" {
			out = append(out, 404) // an application the caller cannot see
		}
	}
	if r.body != nil {
		out = append(out, 413)
	}
	if r.checksPassword {
		out = append(out, 503)
	}
	if r.idempotent {
		out = append(out, 409, 422)
	}
	out = append(out, r.errs...)
	sort.Ints(out)
	return dedupInts(out)
}

func dedupInts(s []int) []int {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// OpenAPI returns the OpenAPI 3.1 document of the API, built from the same
// route table that registers the handlers.
func (m *Module) OpenAPI() map[string]any {
	g := &schemaGen{schemas: map[string]any{}}
	g.schema(reflect.TypeOf(ErrorBody{}), inResponse)
	paths := map[string]any{}
	tags := map[string]bool{}
	for _, r := range m.routes {
		p := OpenAPIPath(Prefix + r.path)
		item, _ := paths[p].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[p] = item
		}
		item[strings.ToLower(r.method)] = m.operation(g, r)
		tags[r.tag] = true
	}
	tags["webhooks"] = true
	var tagList []any
	for _, t := range slices.Sorted(maps.Keys(tags)) {
		tagList = append(tagList, map[string]any{"name": t, "description": tagDocs[t]})
	}
	responses := map[string]any{}
	for status, e := range errorStatuses {
		responses[e.name] = errorResponse(status, e)
	}
	doc := map[string]any{
		"openapi":           "3.1.0",
		"jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
		"info": map[string]any{
			"title":   "EthHook admin API",
			"version": "1",
			"description": "Webhooks for EVM contract events. Authenticate with `Authorization: Bearer <token>` where the token is a JWT from POST /api/v1/auth/login or an application API key (ethk_...). " +
				"Lists take cursor and limit and answer {data, next_cursor}. Errors are {\"error\": {\"code\", \"message\", \"fields\"}}; codes: invalid_request, invalid_json, unauthorized, invalid_credentials, forbidden, password_change_required (the account, such as the first-run bootstrap admin, must change its password with POST /api/v1/auth/password before anything else), plan_limit, not_found, conflict, endpoint_disabled (409: a replay to a disabled endpoint), idempotency_key_reused, rate_limited, busy (503: too many password checks at once; retry), body_too_large, method_not_allowed (405: a documented path asked with a method it does not serve), internal. " +
				"Only users create and revoke API keys; an API key cannot. Every answer carries X-Request-Id. POSTs that create things take an Idempotency-Key header: the same key and body within 24 h answer the first response again. " +
				"The webhooks section describes the bodies EthHook POSTs to endpoints, signed per Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature).",
		},
		"servers":  []any{map[string]any{"url": "/", "description": "the server that serves this document (ETHHOOK_HTTP_ADDR)"}},
		"security": []any{map[string]any{"bearerAuth": []any{}}},
		"tags":     tagList,
		"paths":    paths,
		"webhooks": webhooksSection(g),
		"components": map[string]any{
			"schemas":   g.schemas,
			"responses": responses,
			"headers": map[string]any{
				"X-Request-Id": map[string]any{"description": "the request's id (yours when you sent a safe one), in the server and audit logs",
					"schema": map[string]any{"type": "string", "maxLength": 64}},
				"Retry-After": map[string]any{"description": "seconds to wait before retrying", "schema": map[string]any{"type": "integer", "minimum": 1}},
			},
			"securitySchemes": map[string]any{
				"bearerAuth": map[string]any{"type": "http", "scheme": "bearer", "description": "login JWT or ethk_ API key"},
			},
		},
	}
	return doc
}

func requestIDHeader() map[string]any {
	return map[string]any{"X-Request-Id": map[string]any{"$ref": "#/components/headers/X-Request-Id"}}
}

func errorResponse(status int, e errorStatus) map[string]any {
	headers := requestIDHeader()
	if e.retryAfter {
		headers["Retry-After"] = map[string]any{"$ref": "#/components/headers/Retry-After"}
	}
	ex := map[string]any{"error": map[string]any{"code": e.code, "message": e.example}}
	if status == 400 {
		ex = map[string]any{"error": map[string]any{"code": e.code, "message": e.example, "fields": map[string]any{"limit": "must be an integer between 1 and 200"}}}
	}
	return map[string]any{
		"description": e.desc,
		"headers":     headers,
		"content": map[string]any{"application/json": map[string]any{
			"schema":  map[string]any{"$ref": "#/components/schemas/ErrorBody"},
			"example": ex,
		}},
	}
}

func (m *Module) operation(g *schemaGen, r route) map[string]any {
	var params []any
	for _, seg := range strings.Split(r.path, "/") {
		if strings.HasPrefix(seg, ":") {
			params = append(params, map[string]any{"name": seg[1:], "in": "path", "required": true,
				"schema": map[string]any{"type": "string", "maxLength": 200}})
		}
	}
	for _, q := range r.query {
		s := map[string]any{"type": q.typ}
		for k, v := range queryDocs[q.name] {
			s[k] = v
		}
		params = append(params, map[string]any{"name": q.name, "in": "query", "required": false, "description": q.desc, "schema": s})
	}
	if r.idempotent {
		params = append(params, map[string]any{"name": "Idempotency-Key", "in": "header", "required": false,
			"description": "makes a retried create safe: the same key and body within 24 h answer the first response again (scoped to the caller's tenant)",
			"schema":      map[string]any{"type": "string", "minLength": 1, "maxLength": maxIdempotencyKey}})
	}
	op := map[string]any{
		"operationId": r.id,
		"summary":     r.summary,
		"tags":        []string{r.tag},
	}
	if r.description != "" {
		op["description"] = r.description
	}
	if len(params) > 0 {
		op["parameters"] = params
	}
	if r.body != nil {
		media := map[string]any{"schema": g.schema(reflect.TypeOf(r.body), inRequest)}
		if ex, ok := bodyExamples[r.id]; ok {
			media["example"] = ex
		}
		op["requestBody"] = map[string]any{"required": !r.bodyOptional, "content": map[string]any{"application/json": media}}
	}
	resps := map[string]any{"default": refResponse(500)}
	ok := map[string]any{"description": http.StatusText(r.status), "headers": requestIDHeader()}
	if r.resp != nil {
		content := map[string]any{"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(r.resp), inResponse)}}
		if r.csv {
			content["text/csv"] = map[string]any{"schema": map[string]any{"type": "string"}}
		}
		ok["content"] = content
	}
	resps[strconv.Itoa(r.status)] = ok
	for _, s := range r.statuses() {
		resps[strconv.Itoa(s)] = refResponse(s)
	}
	if r.auth != authNone {
		op["security"] = []any{map[string]any{"bearerAuth": []any{}}}
	} else {
		op["security"] = []any{}
	}
	op["responses"] = resps
	return op
}

func (m *Module) handleOpenAPI(c echo.Context) error {
	return c.JSON(http.StatusOK, m.openapi)
}
