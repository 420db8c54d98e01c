package admin

// Users: operators and customers, their roles and the applications they see.

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/ethhook/ethhook/tenant"
)

// Request and response bodies; userView is the tenant type under its API name.
type (
	userView = tenant.User

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
)

func (m *Module) handleListUsers(c echo.Context) error {
	return answerPage(c, func(ctx context.Context, cursor string, limit int) ([]userView, string, error) {
		return m.store.ListUsers(ctx, scopeOf(c), tenant.UserFilter{
			Email: c.QueryParam("email"), Role: c.QueryParam("role"), AppID: c.QueryParam("app_id")}, cursor, limit)
	})
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
