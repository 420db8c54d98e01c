package admin

// The audit log: every handler records its successful changes with audit,
// and the log is listed with its filters.

import (
	"context"
	"encoding/json"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/tenant"
)

// auditView is the tenant type under its API name.
type auditView = tenant.AuditEntry

// audit records a successful change by the caller.
func (m *Module) audit(c echo.Context, action, appID, resourceID string, details any) {
	p := callerOf(c)
	e := tenant.AuditEntry{Actor: p.Actor, ActorType: p.ActorType, AppID: appID, Action: action,
		ResourceID: resourceID, RequestID: requestID(c)}
	if details != nil {
		if b, err := json.Marshal(details); err == nil {
			e.Details = b
		}
	}
	if err := m.store.Audit(c.Request().Context(), e); err != nil {
		m.log.Error("write audit log", zap.String("request_id", requestID(c)), zap.String("action", action), zap.Error(err))
	}
}

func (m *Module) handleListAudit(c echo.Context) error {
	return answerPage(c, func(ctx context.Context, cursor string, limit int) ([]auditView, string, error) {
		return m.store.ListAudit(ctx, scopeOf(c), tenant.AuditFilter{
			AppID: c.QueryParam("app_id"), Action: c.QueryParam("action"), Actor: c.QueryParam("actor")}, cursor, limit)
	})
}
