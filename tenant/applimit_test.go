package tenant

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/ethhook/ethhook/hook"
)

func TestMembersAreCappedAtMaxAppsPerUserAdminsAreNot(t *testing.T) {
	s := newStore(t).LimitAppsPerUser(3)
	ctx := context.Background()
	member := hook.Scope{UserID: insertUser(t, s, "many@example.com")}

	// Ten creates at once: the cap holds under concurrency.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var made []Application
	var refused int
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := s.CreateApplication(ctx, member, fmt.Sprintf("app %d", i), "")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				made = append(made, a)
			case errors.Is(err, ErrAppLimit):
				refused++
				if !strings.Contains(err.Error(), "admin.max_apps_per_user allows 3") {
					t.Errorf("error %q does not name the limit", err)
				}
			default:
				t.Errorf("create: %v", err)
			}
		}()
	}
	wg.Wait()
	if len(made) != 3 || refused != 7 {
		t.Fatalf("%d created, %d refused; want 3 and 7", len(made), refused)
	}

	// Deleting one frees its place.
	if err := s.DeleteApplication(ctx, member, made[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateApplication(ctx, member, "again", ""); err != nil {
		t.Fatalf("create after a delete: %v", err)
	}

	admin := hook.Scope{Admin: true, UserID: insertUser(t, s, "admin@example.com")}
	for i := 0; i < 5; i++ {
		if _, err := s.CreateApplication(ctx, admin, "admin's", ""); err != nil {
			t.Fatalf("admin create %d: %v", i, err)
		}
	}
	if _, err := New(s.pool).CreateApplication(ctx, member, "uncapped store", ""); err != nil {
		t.Fatalf("a store without a cap refused: %v", err)
	}
}
