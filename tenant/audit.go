package tenant

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ethhook/ethhook/hook"
)

// AuditEntry is one recorded change.
type AuditEntry struct {
	ID         int64           `json:"id"`
	At         time.Time       `json:"at"`
	Actor      string          `json:"actor"`
	ActorType  string          `json:"actor_type"`
	AppID      string          `json:"app_id,omitempty"`
	Action     string          `json:"action"`
	ResourceID string          `json:"resource_id"`
	RequestID  string          `json:"request_id"`
	Details    json.RawMessage `json:"details"`
}

// AuditFilter narrows ListAudit.
type AuditFilter struct {
	AppID  string
	Action string // exact, or a prefix ending in '.' such as "application."
	Actor  string
}

// Audit records a change. details may be nil; it must not hold secrets.
func (s *Store) Audit(ctx context.Context, e AuditEntry) error {
	details := e.Details
	if len(details) == 0 {
		details = json.RawMessage(`{}`)
	}
	var app *string
	if e.AppID != "" {
		app = &e.AppID
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO audit_log (actor, actor_type, app_id, action, resource_id, request_id, details)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, e.Actor, e.ActorType, app, e.Action, e.ResourceID, e.RequestID, details)
	if err != nil {
		return fmt.Errorf("audit %s %s: %w", e.Action, e.ResourceID, err)
	}
	return nil
}

// ListAudit lists audit entries newest first: admins see all, others the
// entries of applications visible to them.
func (s *Store) ListAudit(ctx context.Context, scope hook.Scope, f AuditFilter, cursor string, limit int) ([]AuditEntry, string, error) {
	limit, err := clampLimit(limit)
	if err != nil {
		return nil, "", err
	}
	before, err := decodeCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	var conds []string
	if f.AppID != "" {
		if !scope.Admin {
			if err := Visible(ctx, s.pool, scope, f.AppID); err != nil {
				return nil, "", err
			}
		}
		conds = append(conds, "l.app_id = "+arg(f.AppID))
	}
	switch {
	case scope.Admin:
	case scope.AppID != "":
		conds = append(conds, "l.app_id = "+arg(scope.AppID))
	case scope.UserID != "":
		conds = append(conds, "l.app_id IN (SELECT app_id FROM application_members WHERE user_id = "+arg(scope.UserID)+")")
	default:
		conds = append(conds, "FALSE")
	}
	if before != "" {
		id, err := strconv.ParseInt(before, 10, 64)
		if err != nil {
			return nil, "", invalid("cursor", "is not a cursor returned by this API")
		}
		conds = append(conds, "l.id < "+arg(id))
	}
	if f.Action != "" {
		if strings.HasSuffix(f.Action, ".") {
			conds = append(conds, "starts_with(l.action, "+arg(f.Action)+")")
		} else {
			conds = append(conds, "l.action = "+arg(f.Action))
		}
	}
	if f.Actor != "" {
		conds = append(conds, "l.actor = "+arg(f.Actor))
	}
	if len(conds) == 0 {
		conds = append(conds, "TRUE")
	}
	rows, err := s.pool.Query(ctx, `SELECT l.id, l.at, l.actor, l.actor_type, COALESCE(l.app_id, ''), l.action, l.resource_id,
		l.request_id, l.details FROM audit_log l WHERE `+strings.Join(conds, " AND ")+` ORDER BY l.id DESC LIMIT `+arg(limit+1), args...)
	if err != nil {
		return nil, "", fmt.Errorf("list audit log: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditEntry, error) {
		var e AuditEntry
		err := r.Scan(&e.ID, &e.At, &e.Actor, &e.ActorType, &e.AppID, &e.Action, &e.ResourceID, &e.RequestID, &e.Details)
		return e, err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list audit log: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = encodeCursor(strconv.FormatInt(out[limit-1].ID, 10))
	}
	return out, next, nil
}
