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
	l, err := newList(cursor, limit)
	if err != nil {
		return nil, "", err
	}
	if f.AppID != "" {
		if !scope.Admin {
			if err := Visible(ctx, s.pool, scope, f.AppID); err != nil {
				return nil, "", err
			}
		}
		l.where("l.app_id = " + l.arg(f.AppID))
	}
	l.scope(scope, "l.app_id")
	if l.after != "" {
		id, err := strconv.ParseInt(l.after, 10, 64)
		if err != nil {
			return nil, "", invalid("cursor", "is not a cursor returned by this API")
		}
		l.where("l.id < " + l.arg(id))
	}
	if f.Action != "" {
		if strings.HasSuffix(f.Action, ".") {
			l.where("starts_with(l.action, " + l.arg(f.Action) + ")")
		} else {
			l.where("l.action = " + l.arg(f.Action))
		}
	}
	if f.Actor != "" {
		l.where("l.actor = " + l.arg(f.Actor))
	}
	q := `SELECT l.id, l.at, l.actor, l.actor_type, COALESCE(l.app_id, ''), l.action, l.resource_id,
		l.request_id, l.details FROM audit_log l WHERE ` + l.sql() + ` ORDER BY l.id DESC LIMIT ` + l.limitArg()
	return queryPage(ctx, s.pool, "list audit log", q, l.args, l.limit, func(r pgx.Row) (AuditEntry, error) {
		var e AuditEntry
		err := r.Scan(&e.ID, &e.At, &e.Actor, &e.ActorType, &e.AppID, &e.Action, &e.ResourceID, &e.RequestID, &e.Details)
		return e, err
	}, func(e AuditEntry) string { return strconv.FormatInt(e.ID, 10) })
}
