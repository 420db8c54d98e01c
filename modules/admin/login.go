package admin

// The caller's own session: sign-in with a password (a login token),
// whoami, changing one's own password, and signing out everywhere.

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/signin"
	"github.com/ethhook/ethhook/tenant"
)

// Request and response bodies of the session routes.
type (
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
	passwordChange struct {
		CurrentPassword string `json:"current_password"`
		NewPassword     string `json:"new_password"`
	}
)

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
