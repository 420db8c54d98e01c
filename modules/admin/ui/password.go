package ui

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/ethhook/ethhook/internal/signin"
	"github.com/ethhook/ethhook/tenant"
)

// passwordPath is the page where a signed-in user changes their own
// password (and where an account that must change it is sent).
const passwordPath = "/account/password"

type passwordData struct {
	Next string
	Must bool // the account must change its password before anything else
}

func (u *UI) passwordPage(c echo.Context) error {
	return u.showPassword(c, http.StatusOK, view{})
}

func (u *UI) showPassword(c echo.Context, status int, v view) error {
	next := c.QueryParam("next")
	if c.Request().Method == http.MethodPost {
		next = c.FormValue("next")
	}
	v.Title, v.Data = "Change password", passwordData{Next: safeNext(next), Must: sess(c).User.MustChangePassword}
	return u.render(c, status, "password", v)
}

// changePassword changes the signed-in user's own password, which needs the
// current one. The user's credential version moves on, which ends every
// other session and API token of theirs; this browser gets a new session.
func (u *UI) changePassword(c echo.Context) error {
	s := sess(c)
	ctx := c.Request().Context()
	cur, pw := c.FormValue("current_password"), c.FormValue("password")
	if pw != c.FormValue("password_again") {
		return u.showPassword(c, http.StatusUnprocessableEntity, view{Fields: map[string]string{"password_again": "does not match the new password"},
			Error: "The password was not changed."})
	}
	var le *signin.LimitError
	if err := u.signin.CountAccountAttempt(ctx, s.User.Email); errors.As(err, &le) {
		return u.showPassword(c, http.StatusTooManyRequests, view{Error: "Too many attempts. Wait a minute and try again."})
	}
	_, err := u.tenant.UpdateUser(ctx, s.Scope(), s.User.ID, tenant.UserUpdate{Password: &pw, CurrentPassword: &cur})
	if fe := fieldErrors(err); fe != nil {
		return u.showPassword(c, http.StatusUnprocessableEntity, view{Fields: fe, Error: "The password was not changed."})
	}
	if err != nil {
		return u.fail(c, err)
	}
	u.audit(c, "", "user.password_change", s.User.ID, nil)
	if err := u.renewSession(c, s); err != nil {
		return u.fail(c, err)
	}
	u.flash(c, "Password changed. Your other sessions and API login tokens were signed out.")
	return redirect(c, safeNext(c.FormValue("next")))
}

// renewSession replaces session s with a new one for its user's current
// state (after a change that moved the credential version on).
func (u *UI) renewSession(c echo.Context, s *session) error {
	user, err := u.tenant.UserByID(c.Request().Context(), s.User.ID)
	if err != nil {
		return err
	}
	if err := u.endSession(c, s); err != nil {
		return err
	}
	return u.startSession(c, user)
}
