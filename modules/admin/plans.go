package admin

// Plans: quotas, endpoint caps, rate limits and retention (admin only).

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/tenant"
)

// Request and response bodies; planView is the tenant type under its API name.
type (
	planView = tenant.Plan

	planCreate struct {
		ID           string `json:"id,omitempty"`
		Name         string `json:"name"`
		MonthlyQuota *int64 `json:"monthly_quota"`
		MaxEndpoints *int   `json:"max_endpoints"`
		RateLimit    int    `json:"rate_limit,omitempty"`
		// RetentionDays: 0 = retention.messages; MaxStored: 0 = unlimited.
		RetentionDays int   `json:"retention_days,omitempty"`
		MaxStored     int64 `json:"max_stored,omitempty"`
	}
	planUpdate struct {
		Name          *string `json:"name,omitempty"`
		MonthlyQuota  *int64  `json:"monthly_quota,omitempty"`
		MaxEndpoints  *int    `json:"max_endpoints,omitempty"`
		RateLimit     *int    `json:"rate_limit,omitempty"`
		RetentionDays *int    `json:"retention_days,omitempty"`
		MaxStored     *int64  `json:"max_stored,omitempty"`
	}
)

func (m *Module) handleListPlans(c echo.Context) error {
	return answerPage(c, func(ctx context.Context, cursor string, limit int) ([]planView, string, error) {
		return m.store.ListPlans(ctx, c.QueryParam("name"), cursor, limit)
	})
}

func (m *Module) handleCreatePlan(c echo.Context) error {
	var req planCreate
	if err := bind(c, &req); err != nil {
		return err
	}
	fields := map[string]string{}
	if req.MonthlyQuota == nil {
		fields["monthly_quota"] = "is required (0 = unlimited)"
	}
	if req.MaxEndpoints == nil {
		fields["max_endpoints"] = "is required (0 = unlimited)"
	}
	if len(fields) > 0 {
		return hook.FieldErrors(fields)
	}
	p, err := m.store.CreatePlan(c.Request().Context(), scopeOf(c), tenant.Plan{ID: req.ID, Name: req.Name,
		MonthlyQuota: *req.MonthlyQuota, MaxEndpoints: *req.MaxEndpoints, RateLimit: req.RateLimit,
		RetentionDays: req.RetentionDays, MaxStored: req.MaxStored})
	if err != nil {
		return err
	}
	m.audit(c, "plan.create", "", p.ID, req)
	return c.JSON(http.StatusCreated, p)
}

func (m *Module) handleGetPlan(c echo.Context) error {
	p, err := m.store.GetPlan(c.Request().Context(), c.Param("plan_id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

func (m *Module) handleUpdatePlan(c echo.Context) error {
	var req planUpdate
	if err := bind(c, &req); err != nil {
		return err
	}
	p, err := m.store.UpdatePlan(c.Request().Context(), scopeOf(c), c.Param("plan_id"), tenant.PlanUpdate{
		Name: req.Name, MonthlyQuota: req.MonthlyQuota, MaxEndpoints: req.MaxEndpoints, RateLimit: req.RateLimit,
		RetentionDays: req.RetentionDays, MaxStored: req.MaxStored})
	if err != nil {
		return err
	}
	m.audit(c, "plan.update", "", p.ID, req)
	if req.MonthlyQuota != nil || req.MaxStored != nil {
		m.releaseOnce(c.Request().Context())
	}
	return c.JSON(http.StatusOK, p)
}
