package ui

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/ethhook/ethhook/deadletter"
	"github.com/ethhook/ethhook/internal/testenv"
	"github.com/ethhook/ethhook/tenant"
)

type testErr string

func (e testErr) Error() string { return string(e) }

// TestDeadLettersPageListsAndReplaysForAdminsOnly: an admin sees the dead
// letter with its error and replays it (it leaves the list); a member is
// refused.
func TestDeadLettersPageListsAndReplaysForAdminsOnly(t *testing.T) {
	h := newHarness(t)
	h.user("root@example.com", tenant.RoleAdmin)
	h.user("member@example.com", tenant.RoleMember)
	fields := map[string]string{"id": "31337:0xfeed:7", "type": "log", "event": "{}"}
	entry := testenv.PendingEvent(t, h.ui.redis, h.keys.Events(31337), fields)
	if err := deadletter.Move(context.Background(), h.ui.redis, h.keys, 31337, entry, testErr("rejected by a trigger"), 5); err != nil {
		t.Fatal(err)
	}
	m := h.client()
	m.login("member@example.com")
	resp, body := m.get("/dead-letters")
	wantStatus(t, resp, body, http.StatusForbidden)

	a := h.client()
	a.login("root@example.com")
	resp, body = a.get("/dead-letters")
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, "31337:0xfeed:7") || !strings.Contains(body, "rejected by a trigger") {
		t.Fatalf("dead letters page lacks the letter:\n%s", body)
	}
	act := regexp.MustCompile(`action="(/dead-letters/[0-9-]+/replay)"`).FindStringSubmatch(body)
	if act == nil {
		t.Fatalf("no replay form:\n%s", body)
	}
	resp, body = a.post(act[1], nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("replay: %d %s", resp.StatusCode, body)
	}
	resp, body = a.get("/dead-letters")
	wantStatus(t, resp, body, http.StatusOK)
	if strings.Contains(body, "31337:0xfeed:7") {
		t.Fatal("replayed letter still listed")
	}
	// Replayed already: the letter is not found (hook.ErrNotFound), a 404
	// page saying so, not an error.
	resp, body = a.post(act[1], nil)
	wantStatus(t, resp, body, http.StatusNotFound)
	if !strings.Contains(body, "No such dead letter") {
		t.Fatalf("second replay's page does not say the letter is gone:\n%s", body)
	}
}
