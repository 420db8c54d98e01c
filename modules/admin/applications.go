package admin

// Applications (tenants), their API keys and their usage against the
// plan's quota (JSON, or CSV for a spreadsheet).

import (
	"context"
	"encoding/csv"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/tenant"
)

// Request and response bodies. Response types are the tenant types (their
// JSON tags are the API's field names) under API names for the document.
type (
	appView = tenant.Application
	keyView = tenant.APIKey

	appCreate struct {
		Name   string `json:"name"`
		PlanID string `json:"plan_id,omitempty"`
	}
	appUpdate struct {
		Name   *string `json:"name,omitempty"`
		PlanID *string `json:"plan_id,omitempty"`
	}
	keyCreate struct {
		Name string `json:"name"`
	}
	keyCreated struct {
		keyView
		Key string `json:"key"` // the secret key, shown only here
	}
	usageView struct {
		Current    tenant.QuotaStatus  `json:"current"`
		History    []tenant.UsageMonth `json:"history"`
		NextCursor string              `json:"next_cursor"`
	}
)

func (m *Module) handleListApps(c echo.Context) error {
	return answerPage(c, func(ctx context.Context, cursor string, limit int) ([]appView, string, error) {
		return m.store.FindApplications(ctx, scopeOf(c),
			tenant.ApplicationFilter{Name: c.QueryParam("name"), PlanID: c.QueryParam("plan_id")}, cursor, limit)
	})
}

func (m *Module) handleCreateApp(c echo.Context) error {
	var req appCreate
	if err := bind(c, &req); err != nil {
		return err
	}
	app, err := m.store.CreateApplication(c.Request().Context(), scopeOf(c), req.Name, req.PlanID)
	if err != nil {
		return err
	}
	m.audit(c, "application.create", app.ID, app.ID, req)
	return c.JSON(http.StatusCreated, app)
}

func (m *Module) handleGetApp(c echo.Context) error {
	app, err := m.store.GetApplication(c.Request().Context(), scopeOf(c), c.Param("app_id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, app)
}

func (m *Module) handleUpdateApp(c echo.Context) error {
	id := c.Param("app_id")
	var req appUpdate
	if err := m.bindVisible(c, id, &req); err != nil {
		return err
	}
	app, err := m.store.UpdateApplication(c.Request().Context(), scopeOf(c), id, tenant.ApplicationUpdate{Name: req.Name, PlanID: req.PlanID})
	if err != nil {
		return err
	}
	m.audit(c, "application.update", id, id, req)
	if req.PlanID != nil {
		if _, err := m.store.ReleaseHeld(c.Request().Context(), m.rdb, m.keys, id, releaseBatch); err != nil {
			m.log.Error("release held messages after plan change", zap.String("app", id), zap.Error(err))
		}
	}
	return c.JSON(http.StatusOK, app)
}

func (m *Module) handleDeleteApp(c echo.Context) error {
	id := c.Param("app_id")
	if err := m.store.DeleteApplication(c.Request().Context(), scopeOf(c), id); err != nil {
		return err
	}
	m.audit(c, "application.delete", id, id, nil)
	return c.NoContent(http.StatusNoContent)
}

func (m *Module) handleListKeys(c echo.Context) error {
	return answerPage(c, func(ctx context.Context, cursor string, limit int) ([]keyView, string, error) {
		revoked, err := boolQuery(c, "revoked")
		if err != nil {
			return nil, "", err
		}
		return m.store.ListAPIKeys(ctx, scopeOf(c), c.Param("app_id"),
			tenant.APIKeyFilter{Name: c.QueryParam("name"), Revoked: revoked}, cursor, limit)
	})
}

func (m *Module) handleCreateKey(c echo.Context) error {
	appID := c.Param("app_id")
	var req keyCreate
	if err := m.bindVisible(c, appID, &req); err != nil {
		return err
	}
	k, secret, err := m.store.CreateAPIKey(c.Request().Context(), scopeOf(c), appID, req.Name)
	if err != nil {
		return err
	}
	m.audit(c, "api_key.create", appID, k.ID, map[string]string{"name": k.Name, "prefix": k.Prefix})
	return c.JSON(http.StatusCreated, keyCreated{keyView: k, Key: secret})
}

func (m *Module) handleGetKey(c echo.Context) error {
	k, err := m.store.GetAPIKey(c.Request().Context(), scopeOf(c), c.Param("app_id"), c.Param("key_id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, k)
}

func (m *Module) handleRevokeKey(c echo.Context) error {
	appID, keyID := c.Param("app_id"), c.Param("key_id")
	if err := m.store.RevokeAPIKey(c.Request().Context(), scopeOf(c), appID, keyID); err != nil {
		return err
	}
	m.audit(c, "api_key.revoke", appID, keyID, nil)
	return c.NoContent(http.StatusNoContent)
}

func (m *Module) handleUsage(c echo.Context) error {
	appID := c.Param("app_id")
	ctx := c.Request().Context()
	format := c.QueryParam("format")
	if format != "" && format != "json" && format != "csv" {
		return fieldError("format", "must be json or csv")
	}
	cursor, limit, err := page(c, 0)
	if err != nil {
		return err
	}
	cur, err := m.store.Usage(ctx, scopeOf(c), appID)
	if err != nil {
		return err
	}
	hist, next, err := m.store.UsageHistory(ctx, scopeOf(c), appID, tenant.UsageFilter{From: c.QueryParam("from"), To: c.QueryParam("to")}, cursor, limit)
	if err != nil {
		return err
	}
	if hist == nil {
		hist = []tenant.UsageMonth{}
	}
	if format == "csv" {
		h := c.Response().Header()
		h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
		h.Set(echo.HeaderContentDisposition, `attachment; filename="usage-`+appID+`.csv"`)
		if next != "" {
			h.Set("X-Next-Cursor", next)
		}
		c.Response().WriteHeader(http.StatusOK)
		w := csv.NewWriter(c.Response())
		_ = w.Write([]string{"app_id", "month", "deliveries", "plan_id", "monthly_quota"})
		for _, u := range hist {
			quota := ""
			if u.Month == cur.Month {
				quota = strconv.FormatInt(cur.Quota, 10)
			}
			_ = w.Write([]string{appID, u.Month, strconv.FormatInt(u.Deliveries, 10), planIfCurrent(u.Month, cur), quota})
		}
		w.Flush()
		return w.Error()
	}
	return c.JSON(http.StatusOK, usageView{Current: cur, History: hist, NextCursor: next})
}

func planIfCurrent(month string, cur tenant.QuotaStatus) string {
	if month == cur.Month {
		return cur.PlanID
	}
	return ""
}
