package deliver

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/ethhook/ethhook/hook"
)

func (e *env) lastAttempt(t *testing.T, id string) (class, text string) {
	t.Helper()
	if err := e.pool.QueryRow(context.Background(), `SELECT error_class, error FROM delivery_history WHERE message_id = $1 ORDER BY attempt DESC LIMIT 1`, id).Scan(&class, &text); err != nil {
		t.Fatal(err)
	}
	return class, text
}

func TestSSRFGuardRefusesInternalTargetsWithoutAllowList(t *testing.T) {
	e := newEnv(t)
	e.cfg.Delivery.AllowCIDRs = nil
	rc := newReceiver(t, nil)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(rc.URL, "http://"))
	app := e.app(t, "")
	targets := []string{
		rc.URL,                                    // 127.0.0.1
		"http://localhost:" + port,                // a hostname resolving to 127.0.0.1
		"http://[::1]:" + port,                    // IPv6 loopback
		"http://[::ffff:127.0.0.1]:" + port,       // IPv4-mapped loopback
		"http://169.254.169.254/latest/meta-data", // cloud metadata
		"http://10.0.0.1/", "http://172.16.5.4/", "http://192.168.0.1/",
		"http://100.64.0.1/", "http://0.0.0.0:" + port, "http://[fd00::1]/", "http://[fe80::1]/",
	}
	ids := map[string]string{}
	for _, u := range targets {
		ep, _ := e.endpoint(t, app, u, epOpt{})
		id, _ := e.message(t, app, ep, "")
		ids[u] = id
	}
	e.start(t)
	for u, id := range ids {
		m := e.waitState(t, id, hook.StateDead)
		class, text := e.lastAttempt(t, id)
		if class != "ssrf" || m.Attempts != 1 {
			t.Errorf("%s: class %q (%s), attempts %d; want a final ssrf refusal", u, class, text, m.Attempts)
		}
	}
	if n := rc.count(); n != 0 {
		t.Fatalf("the loopback receiver was reached %d times", n)
	}
}

func TestRedirectsAreRefusedUnlessAllowedAndThenGuarded(t *testing.T) {
	e := newEnv(t)
	target := newReceiver(t, nil)
	redirect := func(to string) *receiver {
		return newReceiver(t, func(int, *http.Request) (int, http.Header) {
			return http.StatusTemporaryRedirect, http.Header{"Location": {to}}
		})
	}
	toTarget := redirect(target.URL + "/moved")
	toMetadata := redirect("http://169.254.169.254/latest/meta-data")
	app := e.app(t, "")
	epNo, _ := e.endpoint(t, app, toTarget.URL, epOpt{})
	epYes, _ := e.endpoint(t, app, toTarget.URL, epOpt{allowRedirects: true})
	epPriv, _ := e.endpoint(t, app, toMetadata.URL, epOpt{allowRedirects: true})
	idNo, _ := e.message(t, app, epNo, "")
	idYes, _ := e.message(t, app, epYes, "")
	idPriv, _ := e.message(t, app, epPriv, "")
	e.start(t)

	e.waitState(t, idNo, hook.StateDead)
	if class, _ := e.lastAttempt(t, idNo); class != "redirect" {
		t.Fatalf("redirect without allow_redirects: class %q", class)
	}
	e.waitState(t, idYes, hook.StateSucceeded)
	if got := target.got(); len(got) != 1 || got[0].header.Get("webhook-id") == "" {
		t.Fatalf("followed redirect: target got %d requests", len(got))
	}
	e.waitState(t, idPriv, hook.StateDead)
	if class, text := e.lastAttempt(t, idPriv); class != "ssrf" {
		t.Fatalf("redirect to metadata address: class %q (%s), want ssrf", class, text)
	}
}
