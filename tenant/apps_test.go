package tenant

import (
	"context"
	"errors"
	"testing"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/testenv"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	return New(testenv.PG(t))
}

// insertUser adds a member user directly (the users API has its own tests).
func insertUser(t *testing.T, s *Store, email string) string {
	t.Helper()
	id := NewID("usr")
	if _, err := s.pool.Exec(context.Background(),
		`INSERT INTO users (id, email, password_hash, role) VALUES ($1, $2, 'x', 'member')`, id, email); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestMemberCreatingAnApplicationBecomesItsMember(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	u := insertUser(t, s, "a@example.com")
	scope := hook.Scope{UserID: u}
	app, err := s.CreateApplication(ctx, scope, "  shop  ", "")
	if err != nil {
		t.Fatal(err)
	}
	if app.Name != "shop" || app.PlanID != DefaultPlanID || len(app.ID) < 10 {
		t.Fatalf("unexpected app %+v", app)
	}
	if err := Visible(ctx, s.pool, scope, app.ID); err != nil {
		t.Fatalf("creator cannot see own app: %v", err)
	}
	got, err := s.GetApplication(ctx, scope, app.ID)
	if err != nil || got.ID != app.ID {
		t.Fatalf("get: %v %+v", err, got)
	}
}

func TestApplicationsAreInvisibleOutsideTheirScope(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	ua, ub := insertUser(t, s, "a@example.com"), insertUser(t, s, "b@example.com")
	a, err := s.CreateApplication(ctx, hook.Scope{UserID: ua}, "A", "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.CreateApplication(ctx, hook.Scope{UserID: ub}, "B", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range []hook.Scope{{UserID: ua}, {AppID: a.ID}, {}} {
		if err := Visible(ctx, s.pool, sc, b.ID); !errors.Is(err, hook.ErrNotFound) {
			t.Errorf("scope %+v sees B: %v", sc, err)
		}
		if _, err := s.GetApplication(ctx, sc, b.ID); !errors.Is(err, hook.ErrNotFound) {
			t.Errorf("scope %+v gets B: %v", sc, err)
		}
		n := "x"
		if _, err := s.UpdateApplication(ctx, sc, b.ID, ApplicationUpdate{Name: &n}); !errors.Is(err, hook.ErrNotFound) {
			t.Errorf("scope %+v updates B: %v", sc, err)
		}
		if err := s.DeleteApplication(ctx, sc, b.ID); !errors.Is(err, hook.ErrNotFound) {
			t.Errorf("scope %+v deletes B: %v", sc, err)
		}
		list, _, err := s.ListApplications(ctx, sc, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range list {
			if x.ID == b.ID {
				t.Errorf("scope %+v lists B", sc)
			}
		}
	}
	if err := Visible(ctx, s.pool, hook.Operator, b.ID); err != nil {
		t.Errorf("admin cannot see B: %v", err)
	}
	if err := Visible(ctx, s.pool, hook.Operator, "app_missing"); !errors.Is(err, hook.ErrNotFound) {
		t.Errorf("missing app visible: %v", err)
	}
}

func TestListApplicationsPagesWithCursorAndFilters(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	var ids []string
	for _, n := range []string{"alpha", "beta", "gamma", "alphabet", "delta"} {
		a, err := s.CreateApplication(ctx, hook.Operator, n, "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.ID)
	}
	var seen []string
	cursor := ""
	for pages := 0; ; pages++ {
		page, next, err := s.ListApplications(ctx, hook.Operator, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range page {
			seen = append(seen, a.ID)
		}
		if next == "" {
			break
		}
		cursor = next
		if pages > 5 {
			t.Fatal("cursor never ends")
		}
	}
	if len(seen) != len(ids) {
		t.Fatalf("paged %d apps, want %d", len(seen), len(ids))
	}
	for i := range ids {
		if seen[i] != ids[i] {
			t.Fatalf("order %v, want %v", seen, ids)
		}
	}
	got, _, err := s.FindApplications(ctx, hook.Operator, ApplicationFilter{Name: "ALPHA"}, "", 0)
	if err != nil || len(got) != 2 {
		t.Fatalf("name filter: %v %d", err, len(got))
	}
	var ve hook.FieldErrors
	if _, _, err := s.ListApplications(ctx, hook.Operator, "%%%", 0); !errors.As(err, &ve) || ve["cursor"] == "" {
		t.Fatalf("bad cursor: %v", err)
	}
	if _, _, err := s.ListApplications(ctx, hook.Operator, "", 1000); !errors.As(err, &ve) || ve["limit"] == "" {
		t.Fatalf("bad limit: %v", err)
	}
}

func TestOnlyAdminsChangePlans(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	u := insertUser(t, s, "a@example.com")
	app, err := s.CreateApplication(ctx, hook.Scope{UserID: u}, "A", "")
	if err != nil {
		t.Fatal(err)
	}
	p := "free"
	if _, err := s.UpdateApplication(ctx, hook.Scope{UserID: u}, app.ID, ApplicationUpdate{PlanID: &p}); !errors.Is(err, hook.ErrForbidden) {
		t.Fatalf("member changed plan: %v", err)
	}
	bad := "nope"
	var ve hook.FieldErrors
	if _, err := s.UpdateApplication(ctx, hook.Operator, app.ID, ApplicationUpdate{PlanID: &bad}); !errors.As(err, &ve) {
		t.Fatalf("unknown plan: %v", err)
	}
	if _, err := s.CreateApplication(ctx, hook.Scope{AppID: app.ID}, "x", ""); !errors.Is(err, hook.ErrForbidden) {
		t.Fatalf("api key created app: %v", err)
	}
	if err := s.DeleteApplication(ctx, hook.Scope{UserID: u}, app.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetApplication(ctx, hook.Operator, app.ID); !errors.Is(err, hook.ErrNotFound) {
		t.Fatalf("deleted app still there: %v", err)
	}
}
