//go:build browser

package ui

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/tenant"
)

func (s *stack) user(email, role string, apps ...string) {
	s.t.Helper()
	if _, err := s.store.CreateUser(context.Background(), hook.Operator, tenant.NewUser{Email: email, Password: testPassword, Role: role, AppIDs: apps}); err != nil {
		s.t.Fatal(err)
	}
}

func (s *stack) app(name string) tenant.Application {
	s.t.Helper()
	a, err := s.store.CreateApplication(context.Background(), hook.Operator, name, "")
	if err != nil {
		s.t.Fatal(err)
	}
	return a
}

func TestBrowserAdminCreatesEndpointSeesDeliveriesArriveLiveAndReplaysOne(t *testing.T) {
	st := newStack(t)
	st.user("admin@example.com", tenant.RoleAdmin)
	app := st.app("Payments")
	b := newBrowser(t, st.srv.URL)

	b.login("admin@example.com", testPassword)
	b.shot("dashboard")
	b.phone("dashboard")
	if txt := b.text("main"); !has(txt, "devnet") || !has(txt, "No delivery attempts") {
		t.Fatalf("dashboard:\n%s", txt)
	}

	b.open("/apps")
	b.shot("applications")
	b.open("/apps/" + app.ID + "/endpoints")
	b.shot("endpoints-empty")
	if txt := b.text("main"); !has(txt, "No endpoints yet") {
		t.Fatalf("empty endpoint list:\n%s", txt)
	}

	// Create an endpoint with the filter builder: the devnet chain, the
	// ERC-20 Transfer from the event picker, and a condition row.
	b.do("open the new endpoint form",
		chromedp.Click(chromedp.CSS(`a[href$="/endpoints/new"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#ep-url`)))
	erc20 := `input[name="events"][value="event Transfer(address indexed from, address indexed to, uint256 value)"]`
	b.do("fill the endpoint form",
		chromedp.SendKeys(chromedp.CSS(`#ep-url`), st.receiver.srv.URL+"/hooks"),
		chromedp.SendKeys(chromedp.CSS(`#ep-desc`), "payments to the shop"),
		chromedp.Click(chromedp.CSS(erc20)),
		chromedp.SendKeys(chromedp.CSS(`#cond-arg-0`), "value"),
		chromedp.SetValue(chromedp.CSS(`#cond-op-0`), ">="),
		chromedp.SendKeys(chromedp.CSS(`#cond-val-0`), "1"),
	)
	if !evalJS[bool](b, `document.querySelector('input[name="chains"][value="31337"]').checked`) {
		b.do("tick devnet", chromedp.Click(chromedp.CSS(`input[name="chains"][value="31337"]`)))
	}
	b.shot("endpoint-new-filled")
	b.do("create the endpoint",
		chromedp.Click(chromedp.CSS(`#endpoint-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#secret-h`)))
	b.shot("endpoint-created")
	loc := evalJS[string](b, `location.pathname`)
	epID := loc[strings.LastIndex(loc, "/")+1:]
	ep, err := st.eps.Get(context.Background(), hook.Operator, app.ID, epID)
	if err != nil {
		t.Fatalf("endpoint %q from %s: %v", epID, loc, err)
	}
	if ep.URL != st.receiver.srv.URL+"/hooks" || len(ep.Filter.Events) != 1 || len(ep.Filter.Where) != 1 || ep.Filter.Where[0] != "value >= 1" {
		t.Fatalf("stored endpoint %+v", ep)
	}

	// Reveal the signing secret in place (htmx, CSRF-checked POST).
	b.do("reveal the secret",
		chromedp.Click(chromedp.CSS(`form[action$="/secret"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`#secret-value`)))
	secret := evalJS[string](b, `document.querySelector('#secret-value').value`)
	if want, _ := st.eps.Secret(context.Background(), hook.Operator, app.ID, epID); secret == "" || secret != want || !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("revealed secret %q, want the endpoint's whsec_ secret", secret)
	}
	b.shot("endpoint-secret")

	// The delivery list, live: rows appear without reloading the page.
	b.open("/apps/" + app.ID + "/messages")
	b.shot("deliveries-empty")
	evalJS[bool](b, `window.__sameDocument = 'yes'; true`)
	ids := st.emit(context.Background(), app.ID, epID, 3, 100)
	b.eventually("three delivered messages in the live list",
		`document.querySelectorAll('#rows tr[data-message]').length === 3 &&
		 [...document.querySelectorAll('#rows tr[data-message]')].every(r => r.innerText.includes('succeeded'))`, 60*time.Second)
	if evalJS[string](b, `window.__sameDocument || 'reloaded'`) != "yes" {
		t.Fatal("the page was reloaded; rows must arrive by themselves")
	}
	b.shot("deliveries-live")
	b.phone("deliveries-live")
	if n := st.receiver.count(); n != 3 {
		t.Fatalf("receiver got %d webhooks, want 3", n)
	}

	// Open one: payload, request headers, its attempt.
	b.do("open a message",
		chromedp.Click(chromedp.CSS(`#m-`+ids[0])),
		chromedp.WaitVisible(chromedp.CSS(`#attempt-list`)))
	txt := b.text("main")
	for _, want := range []string{"Attempt 1", "HTTP 200", `"name": "Transfer"`, ids[0]} {
		if !has(txt, want) {
			t.Fatalf("message page lacks %q:\n%s", want, txt)
		}
	}
	headers := evalJS[string](b, `document.querySelector('#attempt-list li.attempt details pre').textContent`)
	if !has(strings.ToLower(headers), "webhook-signature") {
		t.Fatalf("request headers lack the signature: %s", headers)
	}
	b.shot("message")

	// Replay it and watch the second attempt appear.
	b.do("replay", chromedp.Click(chromedp.CSS(`form[action$="/replay"] button`)), chromedp.WaitVisible(chromedp.CSS(`.flash`)))
	b.eventually("a second attempt",
		`document.querySelectorAll('#attempt-list li.attempt').length === 2 && document.querySelector('#attempt-list').innerText.includes('Attempt 2')`, 60*time.Second)
	b.eventually("the state badge follows the replay", `document.querySelector('#msg-state').innerText === 'succeeded'`, 30*time.Second)
	b.shot("message-replayed")
	if n := st.receiver.count(); n != 4 {
		t.Fatalf("receiver got %d webhooks after the replay, want 4", n)
	}

	// Disable the endpoint: the state is clear on its page and in the list.
	b.open("/apps/" + app.ID + "/endpoints/" + epID)
	b.do("disable", chromedp.Click(chromedp.CSS(`form[action$="/disable"] button`)), chromedp.WaitVisible(chromedp.CSS(`form[action$="/enable"]`)))
	if txt := b.text("main"); !has(txt, "Disabled.") {
		t.Fatalf("disabled endpoint page:\n%s", txt)
	}
	b.shot("endpoint-disabled")
	b.open("/apps/" + app.ID + "/keys")
	b.shot("api-keys")
	b.open("/apps/" + app.ID + "/usage")
	b.shot("usage")
	b.open("/users")
	b.shot("users")
	b.open("/")
	b.shot("dashboard-after")
	b.logout()
	b.shot("signed-out")
}

func TestBrowserMemberCannotSeeAnotherApplicationsEndpoint(t *testing.T) {
	st := newStack(t)
	theirs, mine := st.app("Theirs"), st.app("Mine")
	st.user("member@example.com", tenant.RoleMember, mine.ID)
	secretURL := "https://hidden.example.com/theirs"
	ep, _, err := st.eps.Create(context.Background(), hook.Operator, theirs.ID, endpoint.Input{URL: secretURL, Filter: hook.Filter{Chains: []uint64{31337}}})
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, st.srv.URL)
	b.login("member@example.com", testPassword)
	b.open("/apps")
	b.shot("member-applications")
	if txt := b.text("main"); !has(txt, "Mine") || has(txt, "Theirs") {
		t.Fatalf("member's applications:\n%s", txt)
	}
	for _, p := range []string{
		"/apps/" + theirs.ID + "/endpoints/" + ep.ID,
		"/apps/" + theirs.ID + "/endpoints",
		"/apps/" + theirs.ID + "/messages",
		"/apps/" + mine.ID + "/endpoints/" + ep.ID, // their endpoint under my application
	} {
		b.open(p)
		html := evalJS[string](b, `document.documentElement.outerHTML`)
		if !has(html, "Not found") || has(html, secretURL) || has(html, "Theirs") {
			t.Fatalf("%s as a member: want a bare not-found page, got:\n%s", p, html)
		}
	}
	b.shot("member-not-found")
	b.open("/users")
	if txt := b.text("main"); !has(txt, "does not allow") {
		t.Fatalf("users page as a member:\n%s", txt)
	}
}
