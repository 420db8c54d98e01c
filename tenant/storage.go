package tenant

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ethhook/ethhook/msgstate"
)

// storedRows is what an application stores: its messages plus their
// delivery attempts (message_states.attempts counts each attempt row, so one
// read of the application's messages counts both; attempts dropped earlier by
// a shorter retention.attempts are still counted, which errs on the safe
// side). Only messages of endpoints that exist count (msgstate.FromLive):
// deleting an endpoint frees its room at once, though the retention role's
// purge deletes its history later (migration 00090). It reads every message of the
// application (messages_app_created) and its state, so it runs only for
// plans with a limit, and QuotaExceeded caches the answer.
func storedRows(ctx context.Context, q Querier, appID string) (int64, error) {
	var n int64
	if err := q.QueryRow(ctx, `SELECT count(*) + COALESCE(sum(s.attempts), 0)`+msgstate.FromLive+` WHERE m.app_id = $1`,
		appID).Scan(&n); err != nil {
		return 0, fmt.Errorf("count stored rows of %s: %w", appID, err)
	}
	return n, nil
}

// StorageFull is an application that reached its plan's storage limit.
type StorageFull struct {
	AppID, AppName, PlanID string
	Stored, MaxStored      int64
}

// NoteStorageFull returns the applications that reached their plan's
// max_stored since the last call in any process (applications.storage_full_at
// records it, and is cleared once they are under again, e.g. after
// retention dropped a day), so the caller logs each once, not per message.
func (s *Store) NoteStorageFull(ctx context.Context) ([]StorageFull, error) {
	rows, err := s.pool.Query(ctx, `SELECT a.id, a.name, p.id, p.max_stored, a.storage_full_at IS NOT NULL
		FROM applications a JOIN plans p ON p.id = a.plan_id WHERE p.max_stored > 0 OR a.storage_full_at IS NOT NULL`)
	if err != nil {
		return nil, fmt.Errorf("find applications with a storage limit: %w", err)
	}
	type app struct {
		StorageFull
		noted bool
	}
	apps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (app, error) {
		var a app
		return a, r.Scan(&a.AppID, &a.AppName, &a.PlanID, &a.MaxStored, &a.noted)
	})
	if err != nil {
		return nil, fmt.Errorf("find applications with a storage limit: %w", err)
	}
	var out []StorageFull
	for _, a := range apps {
		if a.MaxStored > 0 {
			if a.Stored, err = storedRows(ctx, s.pool, a.AppID); err != nil {
				return out, err
			}
		}
		full := a.MaxStored > 0 && a.Stored >= a.MaxStored
		switch {
		case full && !a.noted:
			tag, err := s.pool.Exec(ctx, `UPDATE applications SET storage_full_at = now() WHERE id = $1 AND storage_full_at IS NULL`, a.AppID)
			if err != nil {
				return out, fmt.Errorf("note storage limit of %s: %w", a.AppID, err)
			}
			if tag.RowsAffected() == 1 { // not noted by another process meanwhile
				out = append(out, a.StorageFull)
			}
		case !full && a.noted:
			if _, err := s.pool.Exec(ctx, `UPDATE applications SET storage_full_at = NULL WHERE id = $1`, a.AppID); err != nil {
				return out, fmt.Errorf("clear storage limit of %s: %w", a.AppID, err)
			}
		}
	}
	return out, nil
}
