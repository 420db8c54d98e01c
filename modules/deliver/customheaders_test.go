package deliver

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/ethhook/ethhook/hook"
)

// TestCustomHeadersAreSentButNeverReplaceTheSignatureHeaders: an
// endpoint's static headers go out with the webhook; a reserved name
// written straight into the row (past the endpoint service's check) is
// not sent, the Standard Webhooks headers are EthHook's; the attempt log
// masks a credential-looking value.
func TestCustomHeadersAreSentButNeverReplaceTheSignatureHeaders(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, nil)
	app := e.app(t, "")
	ep, _ := e.endpoint(t, app, rc.URL, epOpt{})
	hdrs, _ := json.Marshal(map[string]string{"X-Tenant": "acme", "Authorization": "Bearer s3cret",
		"Webhook-Id": "forged", "Webhook-Signature": "v1,forged", "Content-Type": "text/plain", "Connection": "close"})
	if _, err := e.pool.Exec(context.Background(), `UPDATE endpoints SET headers = $2 WHERE id = $1`, ep, hdrs); err != nil {
		t.Fatal(err)
	}
	id, wid := e.message(t, app, ep, "")
	e.start(t)
	e.waitState(t, id, hook.StateSucceeded)
	r := rc.got()[0]
	if r.header.Get("X-Tenant") != "acme" || r.header.Get("Authorization") != "Bearer s3cret" {
		t.Fatalf("custom headers not sent: %v", r.header)
	}
	if r.header.Get("webhook-id") != wid || r.header.Get("webhook-signature") == "v1,forged" || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("a custom header replaced a reserved one: %v", r.header)
	}
	var stored string
	if err := e.pool.QueryRow(context.Background(), `SELECT request_headers::text FROM delivery_history WHERE message_id = $1`, id).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	var h map[string]string
	json.Unmarshal([]byte(stored), &h)
	if h["x-tenant"] != "acme" || h["authorization"] != "***" || h["webhook-id"] != wid {
		t.Fatalf("attempt log headers %v", h)
	}
}
