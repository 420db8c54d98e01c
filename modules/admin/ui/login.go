package ui

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/signin"
	"github.com/ethhook/ethhook/tenant"
)

type loginData struct {
	Email     string
	Next      string
	LoginCSRF string
	// InsecureTransport: cookies are Secure but the page came over plain
	// HTTP from another host, so the browser drops them and sign-in fails.
	InsecureTransport bool
}

// insecureTransport reports whether this request cannot keep a Secure
// cookie: plain HTTP (no TLS, no X-Forwarded-Proto: https) to a host other
// than localhost, which browsers treat as secure.
func (u *UI) insecureTransport(c echo.Context) bool {
	if !u.secure || c.Scheme() == "https" {
		return false
	}
	host := c.Request().Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

// loginPage shows the sign-in form. Before a session exists, CSRF is a
// double-submit token: a cookie and the same value in the form, so another
// site cannot sign a browser into an account of its choosing.
func (u *UI) loginPage(c echo.Context) error {
	if s, err := u.loadSession(c.Request().Context(), c.Request()); err == nil && s != nil {
		return c.Redirect(http.StatusSeeOther, safeNext(c.QueryParam("next")))
	}
	return u.showLogin(c, http.StatusOK, "", "")
}

func (u *UI) showLogin(c echo.Context, status int, email, msg string) error {
	// Keep an existing token: another tab's form (or a stray request that
	// was sent to the login page) must not invalidate this one.
	tok := ""
	if ck, err := c.Cookie(loginCSRFCookie); err == nil && len(ck.Value) == 43 {
		tok = ck.Value
	} else {
		tok = randomToken()
	}
	c.SetCookie(u.cookie(loginCSRFCookie, tok, 3600))
	next := c.QueryParam("next")
	if c.Request().Method == http.MethodPost {
		next = c.FormValue("next")
	}
	return u.render(c, status, "login", view{
		Title: "Sign in", Error: msg,
		Data: loginData{Email: email, Next: safeNext(next), LoginCSRF: tok, InsecureTransport: u.insecureTransport(c)},
	})
}

func (u *UI) login(c echo.Context) error {
	ck, err := c.Cookie(loginCSRFCookie)
	if err != nil || !csrfOK(c, ck.Value) {
		return u.showLogin(c, http.StatusForbidden, c.FormValue("email"),
			"The sign-in form expired. Try again.")
	}
	email := c.FormValue("email")
	// The same limits (per address, per account), password-check cap and
	// audit entries as the API's POST /auth/login.
	user, err := u.signin.SignIn(c.Request().Context(), signin.Attempt{Email: email, Password: c.FormValue("password"),
		IP: signin.ClientIP(c), RequestID: c.Response().Header().Get(echo.HeaderXRequestID), Via: "ui"})
	var le *signin.LimitError
	switch {
	case errors.As(err, &le):
		c.Response().Header().Set("Retry-After", strconv.Itoa(le.RetryAfterSeconds()))
		return u.showLogin(c, http.StatusTooManyRequests, email, "Too many sign-in attempts. Wait a minute and try again.")
	case errors.Is(err, tenant.ErrBusy):
		c.Response().Header().Set("Retry-After", "1")
		return u.showLogin(c, http.StatusServiceUnavailable, email, "Too many sign-ins at this moment. Try again in a few seconds.")
	case errors.Is(err, tenant.ErrBadCredentials):
		return u.showLogin(c, http.StatusUnauthorized, email, "Wrong email or password.")
	case err != nil:
		return u.fail(c, err)
	}
	if err := u.startSession(c, user); err != nil {
		return u.fail(c, err)
	}
	c.SetCookie(u.cookie(loginCSRFCookie, "", -1))
	u.log.Info("ui sign-in", zap.String("user", user.ID))
	if user.MustChangePassword {
		return c.Redirect(http.StatusSeeOther, passwordPath+"?next="+url.QueryEscape(safeNext(c.FormValue("next"))))
	}
	return c.Redirect(http.StatusSeeOther, safeNext(c.FormValue("next")))
}

// logout signs the user out everywhere: this session ends and the user's
// credential version moves on, so their other sessions and their API login
// tokens stop working too.
func (u *UI) logout(c echo.Context) error {
	s := sess(c)
	if err := u.tenant.RevokeCredentials(c.Request().Context(), s.User.ID); err != nil && !errors.Is(err, hook.ErrNotFound) {
		return u.fail(c, err)
	}
	u.audit(c, "", "auth.logout", s.User.ID, nil)
	if err := u.endSession(c, s); err != nil {
		return u.fail(c, err)
	}
	return c.Redirect(http.StatusSeeOther, "/login")
}
