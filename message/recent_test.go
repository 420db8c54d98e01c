package message

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/testenv"
)

// The fixture's failed and dead states, moved to distinct times: app A's
// at their created_at (A02 dead, A03 failed, A05 dead, A08 dead at +2, +3,
// +5, +8 minutes), app B's three dead ones 30 s before theirs.
func failuresFixture(t *testing.T) *fixture {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.svc.pool.Exec(ctx, `UPDATE message_states SET updated_at = created_at - CASE WHEN app_id = 'app_B' THEN interval '30 seconds' ELSE interval '0' END`); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestRecentFailuresAreNewestFirstAndScoped(t *testing.T) {
	f := failuresFixture(t)
	ctx := context.Background()
	cases := []struct {
		name  string
		scope hook.Scope
		limit int
		want  []string
	}{
		{"admin", hook.Scope{Admin: true}, 10, []string{"msg_A08", "msg_A05", "msg_A03", "msg_A02", "msg_B02", "msg_B01", "msg_B00"}},
		{"admin, limit", hook.Scope{Admin: true}, 3, []string{"msg_A08", "msg_A05", "msg_A03"}},
		{"member", hook.Scope{UserID: "usr_1"}, 10, []string{"msg_A08", "msg_A05", "msg_A03", "msg_A02"}},
		{"api key", hook.Scope{AppID: "app_B"}, 10, []string{"msg_B02", "msg_B01", "msg_B00"}},
		{"non-member", hook.Scope{UserID: "usr_2"}, 10, nil},
	}
	for _, c := range cases {
		got, err := RecentFailures(ctx, f.svc.pool, c.scope, c.limit)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var ids []string
		for _, x := range got {
			ids = append(ids, x.MessageID)
			if x.State != hook.StateFailed && x.State != hook.StateDead {
				t.Errorf("%s: %s is %s", c.name, x.MessageID, x.State)
			}
		}
		if !slices.Equal(ids, c.want) {
			t.Errorf("%s: %v, want %v", c.name, ids, c.want)
		}
	}
}

// The dashboard asks for the ten newest failures on every load; over 30
// days of states that must be an index read in updated_at order
// (message_states_failures, migration 00088), not a sort of all of them.
// Sequential scans and sorts are priced out so the small test tables do
// not hide which index serves the order.
func TestRecentFailuresReadTheirIndexInOrder(t *testing.T) {
	f := failuresFixture(t)
	ctx := context.Background()
	for _, scope := range []hook.Scope{{Admin: true}, {AppID: "app_B"}} {
		sql, args := recentFailuresQuery(scope, 10)
		var plan []string
		var tree []byte
		err := pgx.BeginFunc(ctx, f.svc.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off; SET LOCAL enable_sort = off`); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, "EXPLAIN "+sql, args...)
			if err != nil {
				return err
			}
			if plan, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
				return err
			}
			return tx.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+sql, args...).Scan(&tree)
		})
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Join(plan, "\n")
		// Each partition's copy of the index is named after its column.
		if !strings.Contains(text, "Index Scan Backward using message_states_") || !strings.Contains(text, "_updated_at_idx") ||
			strings.Contains(text, "Sort  (") {
			t.Errorf("scope %+v: the recent failures are not read from message_states_failures in order:\n%s", scope, text)
		}
		// Each failure's endpoint and application are looked up by key: message_states'
		// ids are in the "C" collation and theirs in the database's,
		// so a plain join could use neither primary key and read every
		// endpoint and application for ten rows.
		for _, table := range []string{"endpoints", "applications"} {
			if bad, _ := testenv.ParsePlan(t, tree).ReadsNotByKey(table, table+"_pkey"); len(bad) > 0 {
				t.Errorf("scope %+v: %s read other than by key (%+v):\n%s", scope, table, bad, text)
			}
		}
	}
}

// TestAttemptsPerMinuteLeaveOutDeletedEndpoints: the dashboard's chart
// counts the attempts of endpoints that exist, in the caller's scope; a
// deleted endpoint's attempts are gone from it at once, not when
// retention purges them.
func TestAttemptsPerMinuteLeaveOutDeletedEndpoints(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Minute)
	if _, err := f.svc.pool.Exec(ctx, `DELETE FROM delivery_history;
		INSERT INTO endpoints (id, app_id, url, secret_enc) VALUES ('ep_A2', 'app_A', 'https://a2.example', '\x00')`); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.pool.Exec(ctx, `INSERT INTO delivery_history (message_id, endpoint_id, app_id, attempt, status_code, created_at) VALUES
			('msg_A00', 'ep_A', 'app_A', 1, 200, $1), ('msg_A01', 'ep_A', 'app_A', 1, 500, $1),
			('msg_A02', 'ep_A2', 'app_A', 1, 200, $1), ('msg_B00', 'ep_B', 'app_B', 1, 200, $1)`, now.Add(-5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	total := func(scope hook.Scope) (n, ok int64) {
		t.Helper()
		mins, err := AttemptsPerMinute(ctx, f.svc.pool, scope, now.Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mins {
			n, ok = n+m.Total, ok+m.Succeeded
		}
		return n, ok
	}
	if n, ok := total(hook.Operator); n != 4 || ok != 3 {
		t.Fatalf("operator: %d attempts, %d succeeded; want 4, 3", n, ok)
	}
	if n, _ := total(hook.Scope{AppID: "app_B"}); n != 1 {
		t.Fatalf("app_B's key: %d attempts, want its 1", n)
	}
	if _, err := f.svc.pool.Exec(ctx, `DELETE FROM endpoints WHERE id = 'ep_A'`); err != nil {
		t.Fatal(err)
	}
	if n, ok := total(hook.Operator); n != 2 || ok != 2 {
		t.Fatalf("after deleting ep_A: %d attempts, %d succeeded; want ep_A2's and ep_B's 2, 2", n, ok)
	}
}
