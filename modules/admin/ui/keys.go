package ui

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/ethhook/ethhook/tenant"
)

func itoa(n int) string { return strconv.Itoa(n) }

type keysData struct {
	Keys []tenant.APIKey
	Next string
	// Created is the key just made: shown once, on this response only.
	Created    *tenant.APIKey
	CreatedKey string
	Name       string
}

func (u *UI) keysPage(c echo.Context) error {
	return u.showKeys(c, http.StatusOK, view{}, keysData{})
}

func (u *UI) showKeys(c echo.Context, status int, v view, d keysData) error {
	a, err := u.app(c)
	if err != nil {
		return u.fail(c, err)
	}
	d.Keys, d.Next, err = u.tenant.ListAPIKeys(c.Request().Context(), sess(c).Scope(), a.ID, tenant.APIKeyFilter{}, c.QueryParam("cursor"), 100)
	if err != nil {
		return u.fail(c, err)
	}
	v.Title, v.Nav, v.App, v.AppNav, v.Data = "API keys", "apps", a, "keys", d
	return u.render(c, status, "keys", v)
}

// createKey makes a key and shows it in the response itself (never in a
// redirect, a cookie or a log): it cannot be shown again.
func (u *UI) createKey(c echo.Context) error {
	name := c.FormValue("name")
	k, secret, err := u.tenant.CreateAPIKey(c.Request().Context(), sess(c).Scope(), c.Param("app"), name)
	if fe := fieldErrors(err); fe != nil {
		return u.showKeys(c, http.StatusUnprocessableEntity, view{Fields: fe, Error: "The key was not created."}, keysData{Name: name})
	}
	if err != nil {
		return u.fail(c, err)
	}
	u.audit(c, k.AppID, "api_key.create", k.ID, map[string]any{"name": k.Name, "prefix": k.Prefix})
	return u.showKeys(c, http.StatusCreated, view{}, keysData{Created: &k, CreatedKey: secret})
}

func (u *UI) revokeKey(c echo.Context) error {
	if err := u.tenant.RevokeAPIKey(c.Request().Context(), sess(c).Scope(), c.Param("app"), c.Param("key")); err != nil {
		return u.fail(c, err)
	}
	u.audit(c, c.Param("app"), "api_key.revoke", c.Param("key"), nil)
	u.flash(c, "Key revoked: requests with it now get 401.")
	return redirect(c, "/apps/"+c.Param("app")+"/keys")
}

type usageData struct {
	Status  tenant.QuotaStatus
	Plan    tenant.Plan
	History []tenant.UsageMonth
	Percent int // of the quota used this month, capped at 100
}

func (u *UI) usagePage(c echo.Context) error {
	a, err := u.app(c)
	if err != nil {
		return u.fail(c, err)
	}
	ctx := c.Request().Context()
	var d usageData
	if d.Status, err = u.tenant.Usage(ctx, sess(c).Scope(), a.ID); err != nil {
		return u.fail(c, err)
	}
	if d.Plan, err = u.tenant.GetPlan(ctx, a.PlanID); err != nil {
		return u.fail(c, err)
	}
	if d.History, _, err = u.tenant.UsageHistory(ctx, sess(c).Scope(), a.ID, tenant.UsageFilter{}, "", 24); err != nil {
		return u.fail(c, err)
	}
	if d.Status.Quota > 0 {
		d.Percent = int(min(100, d.Status.Deliveries*100/d.Status.Quota))
	}
	return u.render(c, http.StatusOK, "usage", view{Title: "Usage and plan", Nav: "apps", App: a, AppNav: "usage", Data: d})
}

type usersData struct {
	Users []tenant.User
	Next  string
	Apps  []tenant.Application
	Form  struct{ Email, Role string }
}

func (u *UI) usersPage(c echo.Context) error {
	return u.showUsers(c, http.StatusOK, view{}, usersData{})
}

func (u *UI) showUsers(c echo.Context, status int, v view, d usersData) error {
	ctx := c.Request().Context()
	var err error
	d.Users, d.Next, err = u.tenant.ListUsers(ctx, sess(c).Scope(), tenant.UserFilter{Email: c.QueryParam("email")}, c.QueryParam("cursor"), 100)
	if err != nil {
		return u.fail(c, err)
	}
	if d.Apps, _, err = u.tenant.ListApplications(ctx, sess(c).Scope(), "", 200); err != nil {
		return u.fail(c, err)
	}
	v.Title, v.Nav, v.Data = "Users", "users", d
	return u.render(c, status, "users", v)
}

func (u *UI) createUser(c echo.Context) error {
	form, _ := c.FormParams()
	nu := tenant.NewUser{Email: c.FormValue("email"), Password: c.FormValue("password"), Role: c.FormValue("role"), AppIDs: form["app_ids"]}
	usr, err := u.tenant.CreateUser(c.Request().Context(), sess(c).Scope(), nu)
	if fe := fieldErrors(err); fe != nil {
		var d usersData
		d.Form.Email, d.Form.Role = nu.Email, nu.Role
		return u.showUsers(c, http.StatusUnprocessableEntity, view{Fields: fe, Error: "The user was not created."}, d)
	}
	if err != nil {
		return u.fail(c, err)
	}
	u.audit(c, "", "user.create", usr.ID, map[string]any{"email": usr.Email, "role": usr.Role, "app_ids": usr.AppIDs})
	u.flash(c, "User "+usr.Email+" created.")
	return redirect(c, "/users")
}

func (u *UI) updateUser(c echo.Context) error {
	form, _ := c.FormParams()
	var up tenant.UserUpdate
	if r := c.FormValue("role"); r != "" {
		up.Role = &r
	}
	if p := c.FormValue("password"); p != "" {
		up.Password = &p
		cur := c.FormValue("current_password")
		up.CurrentPassword = &cur
	}
	if form.Has("memberships") { // the form lists memberships (possibly none)
		ids := form["app_ids"]
		up.AppIDs = &ids
	}
	usr, err := u.tenant.UpdateUser(c.Request().Context(), sess(c).Scope(), c.Param("user"), up)
	if fe := fieldErrors(err); fe != nil {
		return u.showUsers(c, http.StatusUnprocessableEntity, view{Fields: fe, Error: "The user was not saved."}, usersData{})
	}
	if err != nil {
		return u.fail(c, err)
	}
	u.audit(c, "", "user.update", usr.ID, map[string]any{"role": usr.Role, "app_ids": usr.AppIDs, "password_changed": up.Password != nil})
	if s := sess(c); usr.ID == s.User.ID && usr.CredentialVersion != s.User.CredentialVersion {
		// Changing one's own password or role ends one's sessions; keep
		// this one signed in.
		if err := u.renewSession(c, s); err != nil {
			return u.fail(c, err)
		}
	}
	u.flash(c, "User "+usr.Email+" saved.")
	return redirect(c, "/users")
}

func (u *UI) deleteUser(c echo.Context) error {
	if c.Param("user") == sess(c).User.ID {
		return u.errorPage(c, http.StatusConflict, "You cannot delete yourself while signed in.")
	}
	if err := u.tenant.DeleteUser(c.Request().Context(), sess(c).Scope(), c.Param("user")); err != nil {
		return u.fail(c, err)
	}
	u.audit(c, "", "user.delete", c.Param("user"), nil)
	u.flash(c, "User deleted.")
	return redirect(c, "/users")
}
