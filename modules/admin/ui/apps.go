package ui

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/tenant"
)

// audit records a change made through the UI, like the API does; a failed
// write is logged, not shown (the change itself succeeded).
func (u *UI) audit(c echo.Context, appID, action, resource string, details map[string]any) {
	var raw json.RawMessage
	if details != nil {
		raw, _ = json.Marshal(details)
	}
	s := sess(c)
	err := u.tenant.Audit(c.Request().Context(), tenant.AuditEntry{
		Actor: s.User.ID, ActorType: "user", AppID: appID, Action: action, ResourceID: resource,
		RequestID: c.Response().Header().Get(echo.HeaderXRequestID), Details: raw,
	})
	if err != nil {
		u.log.Warn("ui audit", zap.String("action", action), zap.Error(err))
	}
}

// app loads the :app of the path within the session's scope.
func (u *UI) app(c echo.Context) (*tenant.Application, error) {
	a, err := u.tenant.GetApplication(c.Request().Context(), sess(c).Scope(), c.Param("app"))
	if err != nil {
		return nil, err
	}
	return &a, nil
}

type appsData struct {
	Apps  []tenant.Application
	Next  string
	Name  string
	Plans []tenant.Plan
	Form  struct{ Name, PlanID string }
}

func (u *UI) appsPage(c echo.Context) error {
	return u.showApps(c, http.StatusOK, view{})
}

func (u *UI) showApps(c echo.Context, status int, v view) error {
	ctx := c.Request().Context()
	var d appsData
	if prev, ok := v.Data.(appsData); ok {
		d.Form = prev.Form
	}
	d.Name = c.QueryParam("name")
	var err error
	d.Apps, d.Next, err = u.tenant.FindApplications(ctx, sess(c).Scope(), tenant.ApplicationFilter{Name: d.Name}, c.QueryParam("cursor"), 50)
	if err != nil {
		return u.fail(c, err)
	}
	if sess(c).IsAdmin() {
		if d.Plans, _, err = u.tenant.ListPlans(ctx, "", "", 200); err != nil {
			return u.fail(c, err)
		}
	}
	v.Title, v.Nav, v.Data = "Applications", "apps", d
	return u.render(c, status, "apps", v)
}

func (u *UI) createApp(c echo.Context) error {
	name, plan := c.FormValue("name"), c.FormValue("plan_id")
	a, err := u.tenant.CreateApplication(c.Request().Context(), sess(c).Scope(), name, plan)
	if fe := fieldErrors(err); fe != nil {
		var d appsData
		d.Form.Name, d.Form.PlanID = name, plan
		return u.showApps(c, http.StatusUnprocessableEntity, view{Fields: fe, Error: "The application was not created.", Data: d})
	}
	if err != nil {
		return u.fail(c, err)
	}
	u.audit(c, a.ID, "application.create", a.ID, map[string]any{"name": a.Name, "plan_id": a.PlanID})
	u.flash(c, "Application "+a.Name+" created.")
	return redirect(c, "/apps/"+a.ID+"/endpoints")
}

type appData struct {
	Plans []tenant.Plan
	Usage tenant.QuotaStatus
}

// appPage shows an application's settings: name, plan and deletion.
func (u *UI) appPage(c echo.Context) error {
	return u.showApp(c, http.StatusOK, view{})
}

func (u *UI) showApp(c echo.Context, status int, v view) error {
	a, err := u.app(c)
	if err != nil {
		return u.fail(c, err)
	}
	ctx := c.Request().Context()
	var d appData
	if d.Usage, err = u.tenant.Usage(ctx, sess(c).Scope(), a.ID); err != nil {
		return u.fail(c, err)
	}
	if sess(c).IsAdmin() {
		if d.Plans, _, err = u.tenant.ListPlans(ctx, "", "", 200); err != nil {
			return u.fail(c, err)
		}
	}
	v.Title, v.Nav, v.App, v.AppNav, v.Data = a.Name+" settings", "apps", a, "settings", d
	return u.render(c, status, "app", v)
}

func (u *UI) updateApp(c echo.Context) error {
	var up tenant.ApplicationUpdate
	if n := c.FormValue("name"); n != "" || c.Request().PostForm.Has("name") {
		up.Name = &n
	}
	if p := c.FormValue("plan_id"); p != "" && sess(c).IsAdmin() {
		up.PlanID = &p
	}
	ctx := c.Request().Context()
	a, err := u.tenant.UpdateApplication(ctx, sess(c).Scope(), c.Param("app"), up)
	if fe := fieldErrors(err); fe != nil {
		return u.showApp(c, http.StatusUnprocessableEntity, view{Fields: fe, Error: "The application was not saved."})
	}
	if err != nil {
		return u.fail(c, err)
	}
	u.audit(c, a.ID, "application.update", a.ID, map[string]any{"name": a.Name, "plan_id": a.PlanID})
	msg := "Saved."
	if up.PlanID != nil {
		// A raised plan lifts the quota: send what was held, as the API does.
		if n, err := u.tenant.ReleaseHeld(ctx, u.redis, u.keys, a.ID, 10000); err != nil {
			u.log.Warn("ui release held messages", zap.String("app", a.ID), zap.Error(err))
		} else if n > 0 {
			msg += " Released messages held at quota: " + itoa(n) + "."
		}
	}
	u.flash(c, msg)
	return redirect(c, "/apps/"+a.ID)
}

func (u *UI) deleteApp(c echo.Context) error {
	a, err := u.app(c)
	if err != nil {
		return u.fail(c, err)
	}
	if strings.TrimSpace(c.FormValue("confirm")) != a.Name {
		return u.showApp(c, http.StatusUnprocessableEntity, view{
			Fields: map[string]string{"confirm": "type the application's name to delete it"},
			Error:  "The application was not deleted."})
	}
	if err := u.tenant.DeleteApplication(c.Request().Context(), sess(c).Scope(), a.ID); err != nil {
		return u.fail(c, err)
	}
	u.audit(c, "", "application.delete", a.ID, map[string]any{"name": a.Name})
	u.flash(c, "Application "+a.Name+" deleted.")
	return redirect(c, "/apps")
}
