package admin

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/signin"
	"github.com/ethhook/ethhook/tenant"
)

// Request and response bodies. Response types are the tenant types (their
// JSON tags are the API's field names) under API names for the document.
type (
	appView   = tenant.Application
	keyView   = tenant.APIKey
	userView  = tenant.User
	planView  = tenant.Plan
	auditView = tenant.AuditEntry

	loginRequest struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	loginResponse struct {
		Token     string    `json:"token"`
		TokenType string    `json:"token_type"` // "Bearer"
		ExpiresAt time.Time `json:"expires_at"`
		User      userView  `json:"user"`
	}
	whoami struct {
		Type  string    `json:"type"` // user or api_key
		ID    string    `json:"id"`
		Admin bool      `json:"admin"`
		AppID string    `json:"app_id,omitempty"` // for an API key
		User  *userView `json:"user,omitempty"`
	}
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
	userCreate struct {
		Email    string   `json:"email"`
		Password string   `json:"password"`
		Role     string   `json:"role,omitempty"`
		AppIDs   []string `json:"app_ids,omitempty"`
	}
	userUpdate struct {
		Role     *string `json:"role,omitempty"`
		Password *string `json:"password,omitempty"`
		// CurrentPassword is required with a change of one's own password.
		CurrentPassword *string   `json:"current_password,omitempty"`
		AppIDs          *[]string `json:"app_ids,omitempty"`
	}
	passwordChange struct {
		CurrentPassword string `json:"current_password"`
		NewPassword     string `json:"new_password"`
	}
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
	usageView struct {
		Current    tenant.QuotaStatus  `json:"current"`
		History    []tenant.UsageMonth `json:"history"`
		NextCursor string              `json:"next_cursor"`
	}
)

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

func (m *Module) handleLogin(c echo.Context) error {
	var req loginRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	fields := map[string]string{}
	if req.Email == "" {
		fields["email"] = "is required"
	}
	if req.Password == "" {
		fields["password"] = "is required"
	}
	if len(fields) > 0 {
		return hook.FieldErrors(fields)
	}
	// Limits per address and per account come before the password check
	// (and its 19 MiB hash), and hold for the web UI's sign-in too.
	u, err := m.signin.SignIn(c.Request().Context(), signin.Attempt{Email: req.Email, Password: req.Password,
		IP: signin.ClientIP(c), RequestID: requestID(c), Via: "api"})
	var le *signin.LimitError
	switch {
	case errors.Is(err, tenant.ErrBadCredentials):
		return errBadCredentials
	case errors.As(err, &le):
		m.metrics.rateLimited.Inc()
		return err
	case err != nil:
		return err
	}
	return m.tokenAnswer(c, u)
}

var errBadCredentials = &apiError{Status: http.StatusUnauthorized, Code: "invalid_credentials", Message: "invalid email or password"}

// tokenAnswer answers a fresh login token for u.
func (m *Module) tokenAnswer(c echo.Context, u tenant.User) error {
	tok, exp, err := m.issueToken(u.ID, u.CredentialVersion, time.Now())
	if err != nil {
		return err
	}
	c.Set(principalKey, userPrincipal(u))
	return c.JSON(http.StatusOK, loginResponse{Token: tok, TokenType: "Bearer", ExpiresAt: exp, User: u})
}

var errUsersOnly = &apiError{Status: http.StatusForbidden, Code: "forbidden",
	Message: "only users have passwords and sessions; an API key is revoked with DELETE " + Prefix + "/applications/{app_id}/api-keys/{key_id}"}

// handleChangePassword changes the caller's own password. The new version
// revokes every token and UI session of the user, this one included, so
// the answer carries a new token.
func (m *Module) handleChangePassword(c echo.Context) error {
	p := callerOf(c)
	if p.ActorType != "user" {
		return errUsersOnly
	}
	var req passwordChange
	if err := bind(c, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	if req.CurrentPassword == "" {
		return fieldError("current_password", "is required")
	}
	if err := m.countPasswordCheck(c, p.Actor); err != nil {
		return err
	}
	if _, err := m.store.UpdateUser(ctx, p.Scope, p.Actor, tenant.UserUpdate{Password: &req.NewPassword, CurrentPassword: &req.CurrentPassword}); err != nil {
		return renameField(err, "password", "new_password")
	}
	m.audit(c, "user.password_change", "", p.Actor, nil)
	u, err := m.store.UserByID(ctx, p.Actor)
	if err != nil {
		return err
	}
	return m.tokenAnswer(c, u)
}

// countPasswordCheck counts a check of user id's current password against
// the per-account sign-in limit, so a stolen token cannot guess it faster
// than a sign-in could.
func (m *Module) countPasswordCheck(c echo.Context, id string) error {
	u, err := m.store.UserByID(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return m.signin.CountAccountAttempt(c.Request().Context(), u.Email)
}

// renameField reports the tenant's password field under the request's name.
func renameField(err error, from, to string) error {
	var ve hook.FieldErrors
	if !errors.As(err, &ve) {
		return err
	}
	if msg, ok := ve[from]; ok {
		fields := hook.FieldErrors{to: msg}
		for k, v := range ve {
			if k != from {
				fields[k] = v
			}
		}
		return hook.FieldErrors(fields)
	}
	return err
}

// handleLogout revokes every login token and web UI session of the caller.
func (m *Module) handleLogout(c echo.Context) error {
	p := callerOf(c)
	if p.ActorType != "user" {
		return errUsersOnly
	}
	if err := m.store.RevokeCredentials(c.Request().Context(), p.Actor); err != nil {
		return err
	}
	m.audit(c, "auth.logout", "", p.Actor, nil)
	return c.NoContent(http.StatusNoContent)
}

func (m *Module) handleWhoami(c echo.Context) error {
	p := callerOf(c)
	w := whoami{Type: p.ActorType, ID: p.Actor, Admin: p.Scope.Admin, AppID: p.Scope.AppID}
	if p.ActorType == "user" {
		u, err := m.store.UserByID(c.Request().Context(), p.Actor)
		if err != nil {
			return err
		}
		w.User = &u
	}
	return c.JSON(http.StatusOK, w)
}

func (m *Module) handleListApps(c echo.Context) error {
	cursor, limit, err := page(c)
	if err != nil {
		return err
	}
	apps, next, err := m.store.FindApplications(c.Request().Context(), scopeOf(c),
		tenant.ApplicationFilter{Name: c.QueryParam("name"), PlanID: c.QueryParam("plan_id")}, cursor, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, listOf(apps, next))
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
	// Visibility first, so a caller learns nothing about others' ids from
	// validation errors.
	if err := m.store.Visible(c.Request().Context(), scopeOf(c), id); err != nil {
		return err
	}
	var req appUpdate
	if err := bind(c, &req); err != nil {
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
	cursor, limit, err := page(c)
	if err != nil {
		return err
	}
	revoked, err := boolQuery(c, "revoked")
	if err != nil {
		return err
	}
	keys, next, err := m.store.ListAPIKeys(c.Request().Context(), scopeOf(c), c.Param("app_id"),
		tenant.APIKeyFilter{Name: c.QueryParam("name"), Revoked: revoked}, cursor, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, listOf(keys, next))
}

func (m *Module) handleCreateKey(c echo.Context) error {
	appID := c.Param("app_id")
	if err := m.store.Visible(c.Request().Context(), scopeOf(c), appID); err != nil {
		return err
	}
	var req keyCreate
	if err := bind(c, &req); err != nil {
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
	cursor, limit, err := page(c)
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

func (m *Module) handleListPlans(c echo.Context) error {
	cursor, limit, err := page(c)
	if err != nil {
		return err
	}
	plans, next, err := m.store.ListPlans(c.Request().Context(), c.QueryParam("name"), cursor, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, listOf(plans, next))
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

func (m *Module) handleListUsers(c echo.Context) error {
	cursor, limit, err := page(c)
	if err != nil {
		return err
	}
	users, next, err := m.store.ListUsers(c.Request().Context(), scopeOf(c), tenant.UserFilter{
		Email: c.QueryParam("email"), Role: c.QueryParam("role"), AppID: c.QueryParam("app_id")}, cursor, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, listOf(users, next))
}

func (m *Module) handleCreateUser(c echo.Context) error {
	var req userCreate
	if err := bind(c, &req); err != nil {
		return err
	}
	u, err := m.store.CreateUser(c.Request().Context(), scopeOf(c), tenant.NewUser{Email: req.Email, Password: req.Password, Role: req.Role, AppIDs: req.AppIDs})
	if err != nil {
		return err
	}
	m.audit(c, "user.create", "", u.ID, map[string]any{"email": u.Email, "role": u.Role, "app_ids": u.AppIDs})
	return c.JSON(http.StatusCreated, u)
}

func (m *Module) handleGetUser(c echo.Context) error {
	u, err := m.store.GetUser(c.Request().Context(), scopeOf(c), c.Param("user_id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, u)
}

func (m *Module) handleUpdateUser(c echo.Context) error {
	id := c.Param("user_id")
	if _, err := m.store.GetUser(c.Request().Context(), scopeOf(c), id); err != nil {
		return err
	}
	var req userUpdate
	if err := bind(c, &req); err != nil {
		return err
	}
	if p := callerOf(c); req.Password != nil && p.Actor == id && req.CurrentPassword != nil {
		if err := m.countPasswordCheck(c, id); err != nil {
			return err
		}
	}
	u, err := m.store.UpdateUser(c.Request().Context(), scopeOf(c), id, tenant.UserUpdate{Role: req.Role, Password: req.Password,
		CurrentPassword: req.CurrentPassword, AppIDs: req.AppIDs})
	if err != nil {
		return err
	}
	m.audit(c, "user.update", "", id, map[string]any{"role": req.Role, "app_ids": req.AppIDs, "password_changed": req.Password != nil})
	return c.JSON(http.StatusOK, u)
}

func (m *Module) handleDeleteUser(c echo.Context) error {
	id := c.Param("user_id")
	if err := m.store.DeleteUser(c.Request().Context(), scopeOf(c), id); err != nil {
		return err
	}
	m.audit(c, "user.delete", "", id, nil)
	return c.NoContent(http.StatusNoContent)
}

func (m *Module) handleListAudit(c echo.Context) error {
	cursor, limit, err := page(c)
	if err != nil {
		return err
	}
	out, next, err := m.store.ListAudit(c.Request().Context(), scopeOf(c), tenant.AuditFilter{
		AppID: c.QueryParam("app_id"), Action: c.QueryParam("action"), Actor: c.QueryParam("actor")}, cursor, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, listOf(out, next))
}
