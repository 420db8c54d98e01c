package tenant

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/msgstate"
)

// An always-failing endpoint: dead messages never count toward the
// monthly quota, but they and their attempts count toward the plan's
// storage limit. At the limit new messages are held, the status says so,
// the release pass keeps them held, and the operator is told once.
func TestStorageLimitHoldsNewMessagesAndIsNotedOnce(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if _, err := s.pool.Exec(ctx, `INSERT INTO plans (id, name, monthly_quota, max_endpoints, max_stored) VALUES ('small', 'Small', 0, 0, 10)`); err != nil {
		t.Fatal(err)
	}
	app, err := s.CreateApplication(ctx, hook.Operator, "failing", "small")
	if err != nil {
		t.Fatal(err)
	}
	seedMessages(t, s, app.ID, hook.StateDead, 3)
	if over, err := s.QuotaExceeded(ctx, app.ID); err != nil || over {
		t.Fatalf("3 rows of 10: exceeded=%v %v", over, err)
	}
	// Each dead message was tried twice: 3 messages + 6 attempts, then one
	// more message reaches 10.
	if _, err := s.pool.Exec(ctx, `UPDATE message_states SET attempts = 2 WHERE app_id = $1`, app.ID); err != nil {
		t.Fatal(err)
	}
	seedMessages(t, s, app.ID, hook.StateQuotaExceeded, 1)
	s.quota.reset()
	if over, err := s.QuotaExceeded(ctx, app.ID); err != nil || !over {
		t.Fatalf("10 rows of 10: exceeded=%v %v, want held", over, err)
	}
	st, err := s.Usage(ctx, hook.Operator, app.ID)
	if err != nil || !st.StorageFull || st.StoredRows != 10 || st.MaxStored != 10 || !st.Exceeded {
		t.Fatalf("usage %+v %v, want storage_full with 10 of 10 rows", st, err)
	}
	if n, err := s.ReleaseHeld(ctx, nil, hook.Keys{}, app.ID, 100); err != nil || n != 0 {
		t.Fatalf("released %d (%v) while storage is full", n, err)
	}
	full, err := s.NoteStorageFull(ctx)
	if err != nil || len(full) != 1 || full[0].AppID != app.ID || full[0].Stored != 10 {
		t.Fatalf("noted %+v %v, want the application once", full, err)
	}
	if again, err := s.NoteStorageFull(ctx); err != nil || len(again) != 0 {
		t.Fatalf("noted again %+v %v", again, err)
	}
	// Retention frees room: noted again only when it fills up again.
	if _, err := s.pool.Exec(ctx, `WITH s AS (DELETE FROM message_states WHERE app_id = $1 AND state = 'dead' RETURNING id)
		DELETE FROM messages WHERE id IN (SELECT id FROM s)`, app.ID); err != nil {
		t.Fatal(err)
	}
	if again, err := s.NoteStorageFull(ctx); err != nil || len(again) != 0 {
		t.Fatalf("noted while under: %+v %v", again, err)
	}
	var at *string
	if err := s.pool.QueryRow(ctx, `SELECT storage_full_at::text FROM applications WHERE id = $1`, app.ID).Scan(&at); err != nil || at != nil {
		t.Fatalf("storage_full_at %v (%v), want cleared", at, err)
	}
}

// Deleting an endpoint frees its room under the storage limit at once,
// though its history is deleted later by the retention role's purge
// (migration 00090).
func TestDeletingAnEndpointFreesItsStorageAtOnce(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if _, err := s.pool.Exec(ctx, `INSERT INTO plans (id, name, monthly_quota, max_endpoints, max_stored) VALUES ('small', 'Small', 0, 0, 10)`); err != nil {
		t.Fatal(err)
	}
	app, err := s.CreateApplication(ctx, hook.Operator, "full", "small")
	if err != nil {
		t.Fatal(err)
	}
	doomed := seedMessages(t, s, app.ID, hook.StateDead, 6)
	seedMessages(t, s, app.ID, hook.StateDead, 4)
	if over, err := s.QuotaExceeded(ctx, app.ID); err != nil || !over {
		t.Fatalf("10 rows of 10: exceeded=%v %v, want held", over, err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM endpoints WHERE id = $1`, doomed); err != nil {
			return err
		}
		return msgstate.Forget(ctx, tx, app.ID, []string{doomed})
	})
	if err != nil {
		t.Fatal(err)
	}
	s.quota.reset()
	st, err := s.Usage(ctx, hook.Operator, app.ID)
	if err != nil || st.StorageFull || st.StoredRows != 4 {
		t.Fatalf("usage after deleting the endpoint of 6 rows: %+v %v, want 4 rows stored and room", st, err)
	}
}
