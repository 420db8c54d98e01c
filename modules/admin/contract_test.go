package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
)

// TestOpenAPIDocumentIsWritten writes the served document to
// $ETHHOOK_OPENAPI_OUT (scripts/contract.sh lints it and generates a
// TypeScript client from it); without the variable it only checks the
// document is 3.1 and loads.
func TestOpenAPIDocumentIsWritten(t *testing.T) {
	h := newHarness(t)
	r := h.must(200, "GET", "/api/v1/openapi.json", "", nil)
	var doc map[string]any
	r.json(t, &doc)
	if doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi %v", doc["openapi"])
	}
	if strings.Contains(string(r.Body), `"nullable"`) {
		t.Fatal("3.1 has no nullable: use type arrays")
	}
	// Redocly's tag-description rule, kept here so a new route's tag
	// cannot ship without one.
	tags, _ := doc["tags"].([]any)
	for _, tg := range tags {
		tag, _ := tg.(map[string]any)
		if d, _ := tag["description"].(string); d == "" {
			t.Errorf("tag %v has no description (add it to tagDocs in openapi.go)", tag["name"])
		}
	}
	if out := os.Getenv("ETHHOOK_OPENAPI_OUT"); out != "" {
		pretty, _ := json.MarshalIndent(doc, "", "  ")
		if err := os.WriteFile(out, append(pretty, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestEveryOperationAnswersAsDocumented drives every operation to its
// success status and its main error statuses; the harness validates each
// answer (status declared, headers present, body valid against the closed
// schemas). The test then demands a 2xx of every documented operation.
func TestEveryOperationAnswersAsDocumented(t *testing.T) {
	h := newHarness(t)
	h.chainFixture(t)
	ctx := context.Background()
	userTok, appID, key := h.member("m@example.com")
	admin := h.admin

	// meta and auth
	h.must(200, "GET", "/api/v1/openapi.json", "", nil)
	h.must(401, "POST", "/api/v1/auth/login", "", loginRequest{Email: "m@example.com", Password: "wrong-password"})
	h.must(400, "POST", "/api/v1/auth/login", "", map[string]any{"email": ""})
	h.must(400, "POST", "/api/v1/auth/login", "", `{"email": "x", "colour": 1}`)
	h.must(200, "GET", "/api/v1/auth/me", userTok, nil)
	h.must(200, "GET", "/api/v1/auth/me", key, nil)
	h.must(401, "GET", "/api/v1/auth/me", "", nil)
	h.must(200, "POST", "/api/v1/auth/password", userTok, passwordChange{CurrentPassword: "member-password", NewPassword: "member-password-2"})
	userTok = h.login("m@example.com", "member-password-2")

	// applications
	h.must(200, "GET", "/api/v1/applications?limit=5&name=app", userTok, nil)
	h.must(400, "GET", "/api/v1/applications?limit=0", userTok, nil)
	h.must(400, "GET", "/api/v1/applications?colour=red", userTok, nil)
	h.must(401, "GET", "/api/v1/applications", "", nil)
	var app appView
	h.must(201, "POST", "/api/v1/applications", userTok, appCreate{Name: "second"}).json(t, &app)
	h.must(403, "POST", "/api/v1/applications", key, appCreate{Name: "by key"})
	h.must(413, "POST", "/api/v1/applications", userTok, `{"name": "`+strings.Repeat("x", int(h.m.cfg.BodyLimit))+`"}`)
	h.must(200, "GET", "/api/v1/applications/"+app.ID, userTok, nil)
	h.must(404, "GET", "/api/v1/applications/app_nope", userTok, nil)
	h.must(200, "PATCH", "/api/v1/applications/"+app.ID, userTok, map[string]any{"name": "renamed"})
	h.must(403, "PATCH", "/api/v1/applications/"+appID, key, map[string]any{"plan_id": "free"})

	// api keys
	h.must(200, "GET", "/api/v1/applications/"+app.ID+"/api-keys?revoked=false", userTok, nil)
	var k keyCreated
	h.must(201, "POST", "/api/v1/applications/"+app.ID+"/api-keys", userTok, keyCreate{Name: "k"}).json(t, &k)
	h.must(403, "POST", "/api/v1/applications/"+appID+"/api-keys", key, keyCreate{Name: "k"})
	h.must(200, "GET", "/api/v1/applications/"+app.ID+"/api-keys/"+k.ID, userTok, nil)
	h.must(204, "DELETE", "/api/v1/applications/"+app.ID+"/api-keys/"+k.ID, userTok, nil)
	h.must(403, "DELETE", "/api/v1/applications/"+appID, key, nil)
	h.must(204, "DELETE", "/api/v1/applications/"+app.ID, userTok, nil)

	// usage, chains, plans, users, audit
	h.must(200, "GET", "/api/v1/applications/"+appID+"/usage", key, nil)
	h.must(200, "GET", "/api/v1/applications/"+appID+"/usage?format=csv&from=2026-01", key, nil)
	h.must(400, "GET", "/api/v1/applications/"+appID+"/usage?from=soon", key, nil)
	h.must(200, "GET", "/api/v1/chains", key, nil)
	h.must(200, "GET", "/api/v1/chains/devnet/events?type=log&limit=2", key, nil)
	h.must(404, "GET", "/api/v1/chains/nochain/events", key, nil)
	h.must(200, "GET", "/api/v1/plans", key, nil)
	h.must(201, "POST", "/api/v1/plans", admin, map[string]any{"id": "pro", "name": "Pro", "monthly_quota": 100, "max_endpoints": 5})
	h.must(409, "POST", "/api/v1/plans", admin, map[string]any{"id": "pro", "name": "Pro", "monthly_quota": 100, "max_endpoints": 5})
	h.must(400, "POST", "/api/v1/plans", admin, map[string]any{"name": "no quota"})
	h.must(403, "POST", "/api/v1/plans", userTok, map[string]any{"name": "x", "monthly_quota": 1, "max_endpoints": 1})
	h.must(200, "GET", "/api/v1/plans/pro", key, nil)
	h.must(200, "PATCH", "/api/v1/plans/pro", admin, map[string]any{"rate_limit": 5})
	h.must(200, "GET", "/api/v1/users?role=member", admin, nil)
	var u userView
	h.must(201, "POST", "/api/v1/users", admin, userCreate{Email: "n@example.com", Password: "n-password-long", AppIDs: []string{appID}}).json(t, &u)
	h.must(409, "POST", "/api/v1/users", admin, userCreate{Email: "N@example.com", Password: "n-password-long"})
	h.must(200, "GET", "/api/v1/users/"+u.ID, admin, nil)
	h.must(200, "PATCH", "/api/v1/users/"+u.ID, admin, map[string]any{"role": "member"})
	h.must(204, "DELETE", "/api/v1/users/"+u.ID, admin, nil)
	h.must(200, "GET", "/api/v1/audit-log?action=plan.", admin, nil)

	// endpoints, messages, event types
	base := "/api/v1/applications/" + appID + "/endpoints"
	abi := `[{"type":"event","name":"Paid","anonymous":false,"inputs":[{"name":"payer","type":"address","indexed":true},{"name":"amounts","type":"uint256[]","indexed":false},{"name":"memo","type":"string","indexed":true}]}]`
	var ep endpointCreated
	h.must(201, "POST", base, key, map[string]any{"url": "https://example.com/hook", "filter": map[string]any{"chains": []int{31337}, "abi": json.RawMessage(abi)}}).json(t, &ep)
	h.must(400, "POST", base, key, map[string]any{"url": "ftp://example.com", "filter": map[string]any{"chains": []int{1}}})
	h.must(200, "GET", base+"?enabled=true&limit=10", key, nil)
	h.must(200, "GET", base+"/"+ep.ID, key, nil)
	h.must(200, "PATCH", base+"/"+ep.ID, key, map[string]any{"rate_limit": 50, "retry_schedule": []string{"0s", "30s"}})
	h.must(200, "GET", base+"/"+ep.ID+"/secret", key, nil)
	h.must(200, "POST", base+"/"+ep.ID+"/secret/rotate", key, nil)
	h.must(200, "POST", base+"/"+ep.ID+"/secret/rotate", key, map[string]any{"overlap_seconds": 60})
	var edEP endpointCreated
	h.must(201, "POST", base, key, map[string]any{"url": "https://example.com/ed", "signature": "ed25519", "filter": map[string]any{"chains": []int{31337}}}).json(t, &edEP)
	h.must(400, "POST", base, key, map[string]any{"url": "https://example.com/rsa", "signature": "rsa", "filter": map[string]any{"chains": []int{31337}}})
	h.must(200, "GET", base+"/"+edEP.ID+"/secret", key, nil)
	h.must(200, "PATCH", base+"/"+edEP.ID, key, map[string]any{"signature": "hmac"})
	h.must(204, "DELETE", base+"/"+edEP.ID, key, nil)
	var sent testSent
	h.must(202, "POST", base+"/"+ep.ID+"/test", key, nil).json(t, &sent)
	if _, err := h.store.Pool().Exec(ctx, `UPDATE message_states SET state = 'delivering' WHERE id = $1`, sent.MessageID); err != nil {
		t.Fatal(err)
	}
	h.must(409, "POST", "/api/v1/applications/"+appID+"/messages/"+sent.MessageID+"/replay", key, nil) // being delivered
	if _, err := h.store.Pool().Exec(ctx, `UPDATE message_states SET state = 'succeeded' WHERE id = $1`, sent.MessageID); err != nil {
		t.Fatal(err)
	}
	h.must(200, "GET", "/api/v1/applications/"+appID+"/messages?state=succeeded&since=2000-01-01T00:00:00Z", key, nil)
	h.must(400, "GET", "/api/v1/applications/"+appID+"/messages?since=yesterday", key, nil)
	h.must(200, "GET", "/api/v1/applications/"+appID+"/messages/"+sent.MessageID, key, nil)
	h.must(202, "POST", "/api/v1/applications/"+appID+"/messages/"+sent.MessageID+"/replay", key, nil)
	h.must(202, "POST", base+"/"+ep.ID+"/replay", key, map[string]any{"from_block": 0})
	h.must(400, "POST", base+"/"+ep.ID+"/replay", key, map[string]any{})
	var types List[eventTypeView]
	h.must(200, "GET", "/api/v1/event-types?app_id="+appID, key, nil).json(t, &types)
	found := false
	for _, et := range types.Data {
		if et.Source == "endpoint" && et.Name == "Paid" && et.EndpointID == ep.ID {
			found = true
		}
	}
	if !found {
		t.Fatalf("the endpoint's ABI event Paid is not in the catalogue: %+v", types.Data)
	}
	h.must(204, "DELETE", base+"/"+ep.ID, key, nil)
	h.must(204, "POST", "/api/v1/auth/logout", userTok, nil)

}

// TestUndocumentedMethodAnswers405InTheErrorShape: 405 has no operation
// to be declared on; it still has the one error shape.
func TestUndocumentedMethodAnswers405InTheErrorShape(t *testing.T) {
	h := newHarness(t)
	r := h.must(http.StatusMethodNotAllowed, "PUT", "/api/v1/applications", h.admin, nil)
	if e := r.errCode(t); e.Error.Code != "method_not_allowed" || r.Header.Get("X-Request-Id") == "" {
		t.Fatalf("405 answer %s", r.Body)
	}
}

// TestTestEventBodyMatchesTheWebhooksSection validates the body a test
// event queues for delivery (the bytes deliver sends) against the
// document's webhooks/test schema.
func TestTestEventBodyMatchesTheWebhooksSection(t *testing.T) {
	h := newHarness(t)
	_, appID, key := h.member("w@example.com")
	var ep endpointCreated
	h.must(201, "POST", "/api/v1/applications/"+appID+"/endpoints", key, map[string]any{"url": "https://example.com/h", "filter": map[string]any{"chains": []int{1}}}).json(t, &ep)
	var sent testSent
	h.must(202, "POST", "/api/v1/applications/"+appID+"/endpoints/"+ep.ID+"/test", key, nil).json(t, &sent)
	var body []byte
	if err := h.store.Pool().QueryRow(context.Background(), `SELECT payload FROM messages WHERE id = $1`, sent.MessageID).Scan(&body); err != nil {
		t.Fatal(err)
	}
	if err := h.contract.CheckWebhook("test", body); err != nil {
		t.Fatal(err)
	}
	if err := h.contract.CheckWebhook("log", body); err == nil {
		t.Fatal("a test body validates as a log webhook: the schemas do not tell the types apart")
	}
}

// TestEventTypesShowOnlyTheCallersEndpoints: the catalogue lists the
// built-in events for everyone, and an endpoint's ABI events only to its
// own tenant; another tenant's app_id is 404.
func TestEventTypesShowOnlyTheCallersEndpoints(t *testing.T) {
	h := newHarness(t)
	_, appA, keyA := h.member("a@example.com")
	userB, _, keyB := h.member("b@example.com")
	abi := `[{"type":"event","name":"Minted","anonymous":false,"inputs":[{"name":"to","type":"address","indexed":true},{"name":"amount","type":"uint256","indexed":false}]}]`
	h.must(201, "POST", "/api/v1/applications/"+appA+"/endpoints", keyA, map[string]any{"url": "https://example.com/h",
		"filter": map[string]any{"chains": []int{1}, "abi": json.RawMessage(abi)}})
	count := func(tok, query string) (builtin, own int) {
		var l List[eventTypeView]
		h.must(200, "GET", "/api/v1/event-types"+query, tok, nil).json(t, &l)
		for _, e := range l.Data {
			if e.Source == "builtin" {
				builtin++
			} else if e.Name == "Minted" {
				own++
				if e.ArgsSchema["required"] == nil || len(e.Args) != 2 {
					t.Fatalf("event type without its arguments: %+v", e)
				}
			}
		}
		return builtin, own
	}
	if b, own := count(keyA, ""); b == 0 || own != 1 {
		t.Fatalf("tenant A sees %d built-in and %d own events", b, own)
	}
	if b, own := count(keyB, ""); b == 0 || own != 0 {
		t.Fatalf("tenant B sees %d built-in and %d of A's events", b, own)
	}
	if _, own := count(h.admin, ""); own != 1 {
		t.Fatalf("an admin sees %d of A's events", own)
	}
	h.must(404, "GET", "/api/v1/event-types?app_id="+appA, userB, nil)
}
