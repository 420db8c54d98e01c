package ui

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"github.com/redis/rueidis"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/tenant"
)

// Sessions are server-side: the cookie holds a random id, Redis holds
// `<prefix>ui:session:<sha256 of id>` -> {user, ver, csrf} with the session
// TTL, so logout really ends a session and a Redis dump reveals no usable
// id. ver is the user's credential version at sign-in: a session of an
// older version (the password or role changed since, or the user signed
// out elsewhere) is no session.
const (
	sessionCookie    = "ethhook_session"
	loginCSRFCookie  = "ethhook_login_csrf"
	csrfField        = "_csrf"
	csrfHeader       = "X-CSRF-Token"
	sessionKeyPrefix = "ui:session:"
)

// session is the signed-in user of one request.
type session struct {
	id   string // cookie value
	User tenant.User
	CSRF string
}

// Scope is the tenancy scope of the session's user, the same one the API
// gives the same user's JWT.
func (s *session) Scope() hook.Scope {
	if s.User.Role == tenant.RoleAdmin {
		return hook.Scope{Admin: true, UserID: s.User.ID}
	}
	return hook.Scope{UserID: s.User.ID}
}

// IsAdmin reports whether the user is an admin (templates use it).
func (s *session) IsAdmin() bool { return s.User.Role == tenant.RoleAdmin }

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func (u *UI) sessionKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return u.keys.Key(sessionKeyPrefix + hex.EncodeToString(sum[:]))
}

// startSession stores a new session for user and sets its cookie.
func (u *UI) startSession(c echo.Context, user tenant.User) error {
	id, csrf := randomToken(), randomToken()
	ctx := c.Request().Context()
	key := u.sessionKey(id)
	cmds := rueidis.Commands{
		u.redis.B().Hset().Key(key).FieldValue().FieldValue("user", user.ID).
			FieldValue("ver", strconv.FormatInt(user.CredentialVersion, 10)).FieldValue("csrf", csrf).Build(),
		u.redis.B().Expire().Key(key).Seconds(int64(u.ttl / time.Second)).Build(),
	}
	for _, r := range u.redis.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			return fmt.Errorf("store session: %w", err)
		}
	}
	c.SetCookie(u.cookie(sessionCookie, id, int(u.ttl/time.Second)))
	return nil
}

// loadSession returns the request's session, or nil when there is none or
// it expired, or its user no longer exists or has a newer credential
// version.
func (u *UI) loadSession(ctx context.Context, r *http.Request) (*session, error) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || ck.Value == "" || len(ck.Value) > 100 {
		return nil, nil
	}
	m, err := u.redis.Do(ctx, u.redis.B().Hgetall().Key(u.sessionKey(ck.Value)).Build()).AsStrMap()
	if err != nil {
		return nil, fmt.Errorf("load session: %w", err)
	}
	if m["user"] == "" || m["csrf"] == "" {
		return nil, nil
	}
	user, err := u.tenant.UserByID(ctx, m["user"])
	if errors.Is(err, hook.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load session user: %w", err)
	}
	if m["ver"] != strconv.FormatInt(user.CredentialVersion, 10) {
		return nil, nil // revoked; the Redis key expires with its TTL
	}
	return &session{id: ck.Value, User: user, CSRF: m["csrf"]}, nil
}

// endSession deletes the session and its cookie.
func (u *UI) endSession(c echo.Context, s *session) error {
	if err := u.redis.Do(c.Request().Context(), u.redis.B().Del().Key(u.sessionKey(s.id)).Build()).Error(); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	c.SetCookie(u.cookie(sessionCookie, "", -1))
	return nil
}

// cookie builds an HttpOnly, SameSite=Lax cookie for the whole site;
// maxAge < 0 deletes it.
func (u *UI) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: u.secure, SameSite: http.SameSiteLaxMode,
	}
}

// csrfOK reports whether the request carries want as its CSRF token, in the
// form field or the htmx header.
func csrfOK(c echo.Context, want string) bool {
	got := c.Request().Header.Get(csrfHeader)
	if got == "" {
		got = c.FormValue(csrfField)
	}
	return want != "" && got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

const ctxSession = "ui.session"

// requireSession loads the session of every page except the public ones;
// without one, GETs go to the login page (htmx requests are told to
// redirect the whole page) and anything else is 401. Every unsafe method
// must carry the session's CSRF token.
func (u *UI) requireSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		s, err := u.loadSession(c.Request().Context(), c.Request())
		if err != nil {
			return err
		}
		if s == nil {
			if c.Request().Header.Get("HX-Request") != "" {
				c.Response().Header().Set("HX-Redirect", "/login")
				return c.NoContent(http.StatusUnauthorized)
			}
			if c.Request().Method == http.MethodGet {
				return c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(safeNext(c.Request().URL.RequestURI())))
			}
			return u.errorPage(c, http.StatusUnauthorized, "Your session has ended. Sign in again.")
		}
		switch c.Request().Method {
		case http.MethodGet, http.MethodHead:
		default:
			if !csrfOK(c, s.CSRF) {
				return u.errorPage(c, http.StatusForbidden, "The form has expired or did not come from this site (CSRF check failed). Reload the page and try again.")
			}
		}
		c.Set(ctxSession, s)
		// An account that must change its password (the bootstrap admin)
		// sees nothing but the password page until it has.
		if s.User.MustChangePassword && c.Path() != passwordPath && c.Path() != "/logout" {
			if c.Request().Method == http.MethodGet && c.Request().Header.Get("HX-Request") == "" {
				return c.Redirect(http.StatusSeeOther, passwordPath+"?next="+url.QueryEscape(safeNext(c.Request().URL.RequestURI())))
			}
			return u.errorPage(c, http.StatusForbidden, "Change your password first.")
		}
		return next(c)
	}
}

func sess(c echo.Context) *session {
	s, _ := c.Get(ctxSession).(*session)
	return s
}

// safeNext keeps a post-login redirect on this site: it returns next only
// when it is a path on this origin ("/apps?x=1"), and "/" otherwise.
// Browsers drop tabs and newlines from URLs and read a backslash as a
// slash, so "/\t/evil.example" or "/\\evil.example" would leave the site:
// any control character, space or backslash, raw or percent-encoded, is
// refused, and so is anything that parses with a scheme or host or whose
// path, once decoded, starts with "//".
func safeNext(next string) string {
	if next == "" || len(next) > 500 || next[0] != '/' {
		return "/"
	}
	for _, r := range next {
		if r <= ' ' || r == 0x7f || r == '\\' || (r >= 0x80 && r <= 0x9f) || r == utf8.RuneError {
			return "/"
		}
	}
	dec, err := url.PathUnescape(next)
	if err != nil {
		return "/"
	}
	for _, r := range dec {
		if r < ' ' || r == 0x7f || r == '\\' {
			return "/"
		}
	}
	if strings.HasPrefix(dec, "//") || strings.HasPrefix(dec, "/\\") {
		return "/"
	}
	p, err := url.Parse(next)
	if err != nil || p.Scheme != "" || p.Host != "" || p.User != nil || p.Opaque != "" || !strings.HasPrefix(p.Path, "/") ||
		strings.HasPrefix(p.Path, "//") {
		return "/"
	}
	return next
}
