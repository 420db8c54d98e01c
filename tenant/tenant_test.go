package tenant

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/testenv"
)

func TestPasswordHashRoundTripsAndRejectsWrongPasswords(t *testing.T) {
	h := HashPassword("correct horse battery")
	if !strings.HasPrefix(h, "$argon2id$") {
		t.Fatalf("not argon2id: %s", h)
	}
	if !CheckPassword(h, "correct horse battery") {
		t.Fatal("right password rejected")
	}
	for _, bad := range []string{"", "correct horse batterY", "x"} {
		if CheckPassword(h, bad) {
			t.Fatalf("wrong password %q accepted", bad)
		}
	}
	for _, enc := range []string{"", "$argon2id$", "$argon2id$v=19$m=0,t=1,p=1$AA$AA", "$bcrypt$x$y$z$w"} {
		if CheckPassword(enc, "x") {
			t.Fatalf("malformed hash %q accepted", enc)
		}
	}
}

func TestUsersAuthenticateAndOnlyAdminsManageThem(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	app, err := s.CreateApplication(ctx, hook.Operator, "A", "")
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.CreateUser(ctx, hook.Operator, NewUser{Email: "Bob@Example.com", Password: "0123456789", AppIDs: []string{app.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if u.Role != RoleMember || len(u.AppIDs) != 1 {
		t.Fatalf("user %+v", u)
	}
	got, err := s.Authenticate(ctx, "bob@example.com", "0123456789")
	if err != nil || got.ID != u.ID {
		t.Fatalf("login: %v %+v", err, got)
	}
	if _, err := s.Authenticate(ctx, "bob@example.com", "wrong-password"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := s.Authenticate(ctx, "nobody@example.com", "0123456789"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("unknown user: %v", err)
	}
	var ve hook.FieldErrors
	// A duplicate is a conflict (409 in the API), not a bad request.
	if _, err := s.CreateUser(ctx, hook.Operator, NewUser{Email: "BOB@example.com", Password: "0123456789"}); !errors.Is(err, hook.ErrConflict) || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("duplicate email: %v", err)
	}
	if _, err := s.CreateUser(ctx, hook.Operator, NewUser{Email: "not-an-email", Password: "short"}); !errors.As(err, &ve) {
		t.Fatalf("bad input: %v", err)
	}
	if _, err := s.CreateUser(ctx, hook.Scope{UserID: u.ID}, NewUser{Email: "c@example.com", Password: "0123456789"}); !errors.Is(err, hook.ErrForbidden) {
		t.Fatalf("member created a user: %v", err)
	}
	if _, _, err := s.ListUsers(ctx, hook.Scope{UserID: u.ID}, UserFilter{}, "", 0); !errors.Is(err, hook.ErrForbidden) {
		t.Fatalf("member listed users: %v", err)
	}
	list, _, err := s.ListUsers(ctx, hook.Operator, UserFilter{AppID: app.ID}, "", 0)
	if err != nil || len(list) != 1 || list[0].ID != u.ID {
		t.Fatalf("list by app: %v %+v", err, list)
	}
	pw := "new-password-1"
	cur := "0123456789"
	if _, err := s.UpdateUser(ctx, hook.Scope{UserID: u.ID}, u.ID, UserUpdate{Password: &pw, CurrentPassword: &cur}); err != nil {
		t.Fatalf("own password change: %v", err)
	}
	if _, err := s.Authenticate(ctx, "bob@example.com", pw); err != nil {
		t.Fatalf("login with new password: %v", err)
	}
	admin := RoleAdmin
	if _, err := s.UpdateUser(ctx, hook.Scope{UserID: u.ID}, u.ID, UserUpdate{Role: &admin}); !errors.Is(err, hook.ErrForbidden) {
		t.Fatalf("member promoted themself: %v", err)
	}
}

func TestBootstrapCreatesOneAdminOnlyWhenNoUsersExist(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	u, pw, created, err := s.Bootstrap(ctx, "admin@ethhook.local")
	if err != nil || !created || u.Role != RoleAdmin || len(pw) < 20 {
		t.Fatalf("bootstrap: %v %v %+v", err, created, u)
	}
	if _, err := s.Authenticate(ctx, "admin@ethhook.local", pw); err != nil {
		t.Fatalf("bootstrap password does not log in: %v", err)
	}
	if _, _, created, err := s.Bootstrap(ctx, "admin2@ethhook.local"); err != nil || created {
		t.Fatalf("second bootstrap created=%v err=%v", created, err)
	}
	if err := s.DeleteUser(ctx, hook.Operator, u.ID); !errors.Is(err, hook.ErrConflict) {
		t.Fatalf("deleted the last admin: %v", err)
	}
}

func TestAPIKeyLifecycle(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	app, _ := s.CreateApplication(ctx, hook.Operator, "A", "")
	other, _ := s.CreateApplication(ctx, hook.Operator, "B", "")
	k, secret, err := s.CreateAPIKey(ctx, hook.Operator, app.ID, "ci")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, KeyPrefix) || !strings.HasPrefix(secret, k.Prefix) || len(secret) < 40 {
		t.Fatalf("key %q prefix %q", secret, k.Prefix)
	}
	var stored int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM api_keys WHERE hash = $1 AND position($2 in encode(hash, 'escape')) = 0`,
		hashKey(secret), secret).Scan(&stored); err != nil || stored != 1 {
		t.Fatalf("key not stored as hash: %v %d", err, stored)
	}
	got, err := s.AuthenticateKey(ctx, secret)
	if err != nil || got.ID != k.ID || got.AppID != app.ID || got.LastUsedAt == nil {
		t.Fatalf("authenticate: %v %+v", err, got)
	}
	first := *got.LastUsedAt
	again, err := s.AuthenticateKey(ctx, secret)
	if err != nil || !again.LastUsedAt.Equal(first) {
		t.Fatalf("last_used_at moved within a minute: %v %v -> %v", err, first, again.LastUsedAt)
	}
	if _, err := s.pool.Exec(ctx, `UPDATE api_keys SET last_used_at = now() - interval '2 minutes' WHERE id = $1`, k.ID); err != nil {
		t.Fatal(err)
	}
	later, err := s.AuthenticateKey(ctx, secret)
	if err != nil || time.Since(*later.LastUsedAt) > time.Minute {
		t.Fatalf("last_used_at not refreshed after a minute: %v %v", err, later.LastUsedAt)
	}
	if _, err := s.GetAPIKey(ctx, hook.Scope{AppID: other.ID}, app.ID, k.ID); !errors.Is(err, hook.ErrNotFound) {
		t.Fatalf("other app sees key: %v", err)
	}
	if err := s.RevokeAPIKey(ctx, hook.Scope{AppID: other.ID}, app.ID, k.ID); !errors.Is(err, hook.ErrNotFound) {
		t.Fatalf("other app revokes key: %v", err)
	}
	if err := s.RevokeAPIKey(ctx, hook.Operator, other.ID, k.ID); !errors.Is(err, hook.ErrNotFound) {
		t.Fatalf("key revoked through the wrong app: %v", err)
	}
	if err := s.RevokeAPIKey(ctx, hook.Operator, app.ID, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AuthenticateKey(ctx, secret); !errors.Is(err, ErrBadKey) {
		t.Fatalf("revoked key works: %v", err)
	}
	revoked := true
	list, _, err := s.ListAPIKeys(ctx, hook.Operator, app.ID, APIKeyFilter{Revoked: &revoked}, "", 0)
	if err != nil || len(list) != 1 || list[0].RevokedAt == nil {
		t.Fatalf("revoked list: %v %+v", err, list)
	}
	for _, bad := range []string{"", "ethk_", "ethk_nope", secret + "x", "Bearer " + secret} {
		if _, err := s.AuthenticateKey(ctx, bad); !errors.Is(err, ErrBadKey) {
			t.Fatalf("key %q: %v", bad, err)
		}
	}
}

// seedMessages inserts an endpoint and n messages in state for app.
func seedMessages(t *testing.T, s *Store, appID, state string, n int) string {
	t.Helper()
	ctx := context.Background()
	ep := NewID("ep")
	if _, err := s.pool.Exec(ctx, `INSERT INTO endpoints (id, app_id, url, secret_enc) VALUES ($1, $2, 'https://example.com/h', '\x00')`, ep, appID); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if _, err := s.pool.Exec(ctx, `WITH m AS (INSERT INTO messages (id, app_id, endpoint_id, event_id, type, webhook_id, chain_id, block_number, payload)
			VALUES ($1, $2, $3, $4, 'log', $4, 31337, $5, '{}') RETURNING *)
			INSERT INTO message_states (id, app_id, endpoint_id, state, attempts, created_at, type, block_number, log_index, fifo_key)
			SELECT id, app_id, endpoint_id, $6, 0, created_at, type, block_number, log_index, fifo_key FROM m`, NewID("msg"), appID, ep, NewID("evt"), i, state); err != nil {
			t.Fatal(err)
		}
	}
	return ep
}

func setUsage(t *testing.T, s *Store, appID string, month time.Time, n int64) {
	t.Helper()
	if _, err := s.pool.Exec(context.Background(), `INSERT INTO usage (app_id, month, deliveries) VALUES ($1, $2, $3)
		ON CONFLICT (app_id, month) DO UPDATE SET deliveries = EXCLUDED.deliveries`, appID, monthStart(month), n); err != nil {
		t.Fatal(err)
	}
}

func TestHeldMessagesAreReleasedWhenThePlanIsRaised(t *testing.T) {
	s := newStore(t)
	rdb, prefix := testenv.Redis(t)
	keys := hook.Keys{Prefix: prefix}
	ctx := context.Background()
	if _, err := s.CreatePlan(ctx, hook.Operator, Plan{ID: "tiny", Name: "Tiny", MonthlyQuota: 3, MaxEndpoints: 1}); err != nil {
		t.Fatal(err)
	}
	app, err := s.CreateApplication(ctx, hook.Operator, "A", "tiny")
	if err != nil {
		t.Fatal(err)
	}
	setUsage(t, s, app.ID, time.Now(), 3)
	if ex, err := s.QuotaExceeded(ctx, app.ID); err != nil || !ex {
		t.Fatalf("at quota, exceeded=%v err=%v", ex, err)
	}
	seedMessages(t, s, app.ID, hook.StateQuotaExceeded, 5)
	if n, err := s.ReleaseHeld(ctx, rdb, keys, app.ID, 100); err != nil || n != 0 {
		t.Fatalf("released %d at quota (err %v)", n, err)
	}
	st, err := s.Usage(ctx, hook.Operator, app.ID)
	if err != nil || !st.Exceeded || st.Held != 5 || st.Deliveries != 3 {
		t.Fatalf("usage %+v %v", st, err)
	}
	q := int64(6) // room for 3 more this month
	if _, err := s.UpdatePlan(ctx, hook.Operator, "tiny", PlanUpdate{MonthlyQuota: &q}); err != nil {
		t.Fatal(err)
	}
	if ex, err := s.QuotaExceeded(ctx, app.ID); err != nil || ex {
		t.Fatalf("after raise, exceeded=%v err=%v", ex, err)
	}
	n, err := s.ReleaseAll(ctx, rdb, keys, 100)
	if err != nil || n != 3 {
		t.Fatalf("released %d, want 3 (err %v)", n, err)
	}
	if n, _ := s.ReleaseAll(ctx, rdb, keys, 100); n != 0 {
		t.Fatalf("released %d more while 3 are in flight", n)
	}
	entries, err := rdb.Do(ctx, rdb.B().Xrange().Key(keys.DeliverJobs()).Start("-").End("+").Build()).AsXRange()
	if err != nil || len(entries) != 3 {
		t.Fatalf("jobs %d %v", len(entries), err)
	}
	for _, e := range entries {
		var state string
		if err := s.pool.QueryRow(ctx, `SELECT state FROM message_states WHERE id = $1 AND endpoint_id = $2`,
			e.FieldValues["message_id"], e.FieldValues["endpoint_id"]).Scan(&state); err != nil || state != hook.StatePending {
			t.Fatalf("job %v: state %q err %v", e.FieldValues, state, err)
		}
	}
	if held, _ := s.HeldMessages(ctx); held != 2 {
		t.Fatalf("held %d, want 2", held)
	}
}

func TestHeldMessagesAreReleasedWhenTheMonthTurns(t *testing.T) {
	s := newStore(t)
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	app, _ := s.CreateApplication(ctx, hook.Operator, "A", "")
	// Last month used the whole free quota; this month nothing yet.
	setUsage(t, s, app.ID, monthStart(time.Now()).AddDate(0, -1, 0), 10000) // from the month's start: Mar 31 less a month is Mar 3
	seedMessages(t, s, app.ID, hook.StateQuotaExceeded, 4)
	if ex, err := s.QuotaExceeded(ctx, app.ID); err != nil || ex {
		t.Fatalf("new month still exceeded: %v %v", ex, err)
	}
	if n, err := s.ReleaseAll(ctx, rdb, hook.Keys{Prefix: prefix}, 100); err != nil || n != 4 {
		t.Fatalf("released %d (err %v)", n, err)
	}
	hist, _, err := s.UsageHistory(ctx, hook.Operator, app.ID, UsageFilter{}, "", 0)
	if err != nil || len(hist) != 1 || hist[0].Deliveries != 10000 {
		t.Fatalf("history %+v %v", hist, err)
	}
}

func TestAuditLogIsScopedToTheCallersApplications(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	a, _ := s.CreateApplication(ctx, hook.Operator, "A", "")
	b, _ := s.CreateApplication(ctx, hook.Operator, "B", "")
	for _, app := range []string{a.ID, b.ID} {
		if err := s.Audit(ctx, AuditEntry{Actor: "operator", ActorType: "operator", AppID: app, Action: "application.create", ResourceID: app}); err != nil {
			t.Fatal(err)
		}
	}
	list, _, err := s.ListAudit(ctx, hook.Scope{AppID: a.ID}, AuditFilter{}, "", 0)
	if err != nil || len(list) != 1 || list[0].AppID != a.ID {
		t.Fatalf("scoped audit: %v %+v", err, list)
	}
	if _, _, err := s.ListAudit(ctx, hook.Scope{AppID: a.ID}, AuditFilter{AppID: b.ID}, "", 0); !errors.Is(err, hook.ErrNotFound) {
		t.Fatalf("audit of B through A: %v", err)
	}
	all, _, err := s.ListAudit(ctx, hook.Operator, AuditFilter{Action: "application."}, "", 0)
	if err != nil || len(all) != 2 {
		t.Fatalf("admin audit: %v %d", err, len(all))
	}
}
