//go:build browser

package ui

import (
	"context"
	"fmt"
	"strconv"
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
	if txt := b.text("main"); !has(txt, "devnet") || !has(txt, "No delivery attempts") || has(txt, "No block committed yet") {
		t.Fatalf("dashboard (ingest is running, so the devnet has a committed block):\n%s", txt)
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
	// From here on the receiver verifies every webhook with that secret.
	if err := st.receiver.setKey(secret); err != nil {
		t.Fatal(err)
	}

	// Send a test event: it goes through deliver like any message.
	b.do("send a test event",
		chromedp.Click(chromedp.CSS(`form[action$="/test"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`#test-result .flash`)))
	b.shot("endpoint-test-sent")
	waitFor(t, "the test event at the receiver", func() bool { return st.receiver.countType("test") == 1 }, 60*time.Second)

	// The delivery list, live: the devnet mines, ingest, process and
	// deliver turn its Transfer logs into webhooks, and rows appear without
	// reloading the page.
	b.open("/apps/" + app.ID + "/messages")
	b.shot("deliveries-before")
	evalJS[bool](b, `window.__sameDocument = 'yes'; true`)
	st.startMining()
	b.eventually("three delivered Transfer logs in the live list",
		`[...document.querySelectorAll('#rows tr[data-message]')].filter(r => r.innerText.includes('log ·') && r.innerText.includes('succeeded')).length >= 3`,
		90*time.Second)
	st.stopMiningNow()
	if evalJS[string](b, `window.__sameDocument || 'reloaded'`) != "yes" {
		t.Fatal("the page was reloaded; rows must arrive by themselves")
	}
	b.shot("deliveries-live")
	st.settle(epID)
	counts := st.messageCounts(epID)
	logs := st.receiver.countType("log")
	if counts[hook.StateSucceeded] != logs+1 || len(counts) != 1 {
		t.Fatalf("messages by state %v; the receiver verified %d logs and 1 test event", counts, logs)
	}
	if bad := st.receiver.rejected(); len(bad) > 0 {
		t.Fatalf("webhooks with a bad signature: %v", bad)
	}
	b.eventually("the list shows every message succeeded",
		`[...document.querySelectorAll('#rows tr[data-message]')].every(r => r.innerText.includes('succeeded'))`, 30*time.Second)
	b.phone("deliveries-live")

	// Open one: payload, request headers, its attempt.
	var msgID string
	var block int64
	if err := st.pool.QueryRow(context.Background(), `SELECT id, block_number FROM messages WHERE endpoint_id = $1 AND type = 'log'
		ORDER BY created_at DESC, id DESC LIMIT 1`, epID).Scan(&msgID, &block); err != nil {
		t.Fatal(err)
	}
	b.do("open a message",
		chromedp.Click(chromedp.CSS(`#m-`+msgID)),
		chromedp.WaitVisible(chromedp.CSS(`#attempt-list`)))
	txt := b.text("main")
	for _, want := range []string{"Attempt 1", "HTTP 200", `"name": "Transfer"`, msgID, "devnet"} {
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
	before := st.receiver.count()
	b.do("replay", chromedp.Click(chromedp.CSS(`form[action$="/replay"] button`)), chromedp.WaitVisible(chromedp.CSS(`.flash`)))
	b.eventually("a second attempt",
		`document.querySelectorAll('#attempt-list li.attempt').length === 2 && document.querySelector('#attempt-list').innerText.includes('Attempt 2')`, 60*time.Second)
	b.eventually("the state badge follows the replay", `document.querySelector('#msg-state').innerText === 'succeeded'`, 30*time.Second)
	b.shot("message-replayed")
	if n := st.receiver.count(); n != before+1 {
		t.Fatalf("receiver got %d webhooks after the replay, want %d", n, before+1)
	}

	// Replay a range: every finished message of the endpoint from a block on.
	var from int64
	var want int
	if err := st.pool.QueryRow(context.Background(), `SELECT min(block_number) FROM messages WHERE endpoint_id = $1 AND type = 'log'`,
		epID).Scan(&from); err != nil {
		t.Fatal(err)
	}
	from = (from + block + 1) / 2 // from the middle of the delivered blocks
	if err := st.pool.QueryRow(context.Background(), `SELECT count(*) FROM message_states WHERE endpoint_id = $1 AND block_number >= $2
		AND state IN ('succeeded', 'failed', 'dead')`, epID, from).Scan(&want); err != nil {
		t.Fatal(err)
	}
	before = st.receiver.count()
	b.open("/apps/" + app.ID + "/messages?endpoint=" + epID)
	b.do("fill the range replay form",
		chromedp.SetValue(chromedp.CSS(`#r-ep`), epID),
		chromedp.SendKeys(chromedp.CSS(`#r-fb`), strconv.FormatInt(from, 10)),
		chromedp.Click(chromedp.CSS(`input[name="only_failed"]`)), // off: replay succeeded ones too
	)
	b.shot("replay-range-filled")
	b.do("replay the range",
		chromedp.Click(chromedp.CSS(`form[action$="/replay"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.flash`)))
	if flash := b.text(".flash"); !has(flash, fmt.Sprintf("Replay queued for %d messages.", want)) || want == 0 {
		t.Fatalf("range replay flash %q, want %d messages", flash, want)
	}
	waitFor(t, "the replayed range at the receiver", func() bool { return st.receiver.count() >= before+want }, 90*time.Second)
	st.settle(epID)
	if n := st.receiver.count(); n != before+want {
		t.Fatalf("receiver got %d webhooks from the range replay, want %d", n-before, want)
	}
	var replayed int
	if err := st.pool.QueryRow(context.Background(), `SELECT count(*) FROM message_states WHERE endpoint_id = $1 AND block_number >= $2
		AND attempts >= 2 AND state = 'succeeded'`, epID, from).Scan(&replayed); err != nil || replayed != want {
		t.Fatalf("%d messages from block %d delivered twice, want %d (%v)", replayed, from, want, err)
	}
	b.eventually("the list shows the replayed range succeeded again",
		`[...document.querySelectorAll('#rows tr[data-message]')].every(r => r.innerText.includes('succeeded'))`, 30*time.Second)
	b.shot("deliveries-after-range-replay")

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
	if txt := b.text("main"); !has(txt, "attempts,") || !has(txt, "published") || !has(txt, " blocks") {
		t.Fatalf("dashboard after deliveries: want the attempts chart summary, the newest event and the lag behind the head:\n%s", txt)
	}
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

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
