// Package ui is the admin web UI: server-rendered html/template pages with
// htmx, embedded from package web, on the same service layer, auth and
// tenancy as the REST API. Every page runs with the signed-in user's
// hook.Scope, so a member sees only their applications.
package ui

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/chainstatus"
	"github.com/ethhook/ethhook/internal/module"
	"github.com/ethhook/ethhook/internal/signin"
	"github.com/ethhook/ethhook/message"
	"github.com/ethhook/ethhook/tenant"
	"github.com/ethhook/ethhook/web"
)

// Options are the UI's own settings beyond module.Deps: the admin module's
// services it calls (the same ones the API calls) and what the app decides
// about cookies. Its other settings come from d.Config.Admin: the session
// length (jwt_ttl, default 12h), the sign-in limits (login_rate_limit and
// login_account_rate_limit per minute, 0 = off, counters shared with the
// API's POST /auth/login) and trusted_proxies (for Handler's own router
// only: mounted with Routes, the router's IPExtractor decides).
type Options struct {
	Tenant *tenant.Store
	// Endpoints and Messages are the endpoint and message services, the
	// same ones the admin API calls; the endpoint and delivery pages are
	// served only when they are set.
	Endpoints *endpoint.Service
	Messages  *message.Service
	// SendTest, when set, sends a test event to an endpoint (the admin
	// module's SendTest); the "Send test event" button is shown only then.
	SendTest func(ctx context.Context, scope hook.Scope, appID, endpointID string) (string, error)
	// RotateOverlap is how long a rotated-out secret keeps signing (0 = 24h).
	RotateOverlap time.Duration
	// SecureCookies marks cookies Secure (set it when served over HTTPS).
	SecureCookies bool
}

// UI serves the HTML pages.
type UI struct {
	pool       *pgxpool.Pool
	redis      rueidis.Client
	keys       hook.Keys
	tenant     *tenant.Store
	endpoints  *endpoint.Service
	messages   *message.Service
	testSender func(ctx context.Context, scope hook.Scope, appID, endpointID string) (string, error)
	overlap    time.Duration
	chains     []config.Chain
	ttl        time.Duration
	secure     bool
	log        *zap.Logger

	signin  *signin.Guard
	trusted []netip.Prefix
	rates   rates // events/s per chain, between dashboard reads
	status  *chainstatus.Reader

	pages map[string]*template.Template
}

// New parses the embedded templates and returns the UI on d (Postgres and
// Redis) and o (Tenant is required).
func New(d module.Deps, o Options) (*UI, error) {
	if d.Pool == nil || d.Redis == nil || o.Tenant == nil {
		return nil, errors.New("ui: Pool, Redis and Tenant are required")
	}
	ac := d.Config.Admin
	trusted, err := ac.TrustedProxyPrefixes()
	if err != nil {
		return nil, fmt.Errorf("ui: admin.trusted_proxies: %w", err)
	}
	u := &UI{
		pool: d.Pool, redis: d.Redis, keys: d.Keys(), tenant: o.Tenant, chains: d.Config.Chains,
		endpoints: o.Endpoints, messages: o.Messages, testSender: o.SendTest, overlap: o.RotateOverlap,
		ttl: ac.JWTTTL, secure: o.SecureCookies, log: d.Logger(), trusted: trusted,
	}
	u.status = chainstatus.New(d.Redis, u.keys)
	if u.ttl <= 0 {
		u.ttl = 12 * time.Hour
	}
	if u.overlap <= 0 {
		u.overlap = 24 * time.Hour
	}
	u.signin = signin.New(o.Tenant, d.Redis, u.keys, signin.Config{IPLimit: ac.LoginRateLimit, AccountLimit: ac.LoginAccountRateLimit}, u.log)
	pages, err := parsePages(web.Templates())
	if err != nil {
		return nil, err
	}
	if len(pages) == 0 {
		return nil, errors.New("ui: no page templates embedded")
	}
	u.pages = pages
	return u, nil
}

// parsePages parses every page template together with layout.html and
// parts.html, so each page is one template set.
func parsePages(fsys fs.FS) (map[string]*template.Template, error) {
	names, err := fs.Glob(fsys, "*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		if n == "layout.html" || n == "parts.html" {
			continue
		}
		t, err := template.New(n).Funcs(funcs).ParseFS(fsys, "layout.html", "parts.html", n)
		if err != nil {
			return nil, fmt.Errorf("parse template %s: %w", n, err)
		}
		pages[strings.TrimSuffix(n, ".html")] = t
	}
	return pages, nil
}

// Handler returns the UI as an http.Handler on its own echo instance, to
// be mounted at "/" (it serves "/", "/login", "/apps/...", "/static/...").
func (u *UI) Handler() http.Handler {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.IPExtractor = signin.IPExtractor(u.trusted)
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		var he *echo.HTTPError
		if !errors.As(err, &he) || he.Code >= 500 {
			u.log.Error("ui request failed", zap.String("path", c.Request().URL.Path), zap.Error(err))
		}
		e.DefaultHTTPErrorHandler(err, c)
	}
	u.Routes(e)
	return e
}

// Routes registers the UI's routes on e (next to the API under /api/v1).
// Middleware is attached per route, not to a group, so the UI adds no
// catch-all: unknown paths (under /api/v1 too) keep e's own not-found.
func (u *UI) Routes(e *echo.Echo) {
	pub := func(method, path string, h echo.HandlerFunc) { e.Add(method, path, h, u.headers) }
	pub(http.MethodGet, "/static/*", echo.WrapHandler(http.StripPrefix("/static/", staticHandler())))
	pub(http.MethodGet, "/favicon.ico", func(c echo.Context) error { return c.Redirect(http.StatusMovedPermanently, "/static/favicon.svg") })
	pub(http.MethodGet, "/login", u.loginPage)
	pub(http.MethodPost, "/login", u.login)

	a := &routes{e: e, mw: []echo.MiddlewareFunc{u.headers, u.requireSession}}
	a.POST("/logout", u.logout)
	a.GET(passwordPath, u.passwordPage)
	a.POST(passwordPath, u.changePassword)
	a.GET("/", u.dashboard)
	a.GET("/dashboard/live", u.dashboardLive)
	a.GET("/apps", u.appsPage)
	a.POST("/apps", u.createApp)
	a.GET("/apps/:app", u.appPage)
	a.POST("/apps/:app", u.updateApp)
	a.POST("/apps/:app/delete", u.deleteApp)
	a.GET("/apps/:app/keys", u.keysPage)
	a.POST("/apps/:app/keys", u.createKey)
	a.POST("/apps/:app/keys/:key/revoke", u.revokeKey)
	a.GET("/apps/:app/usage", u.usagePage)
	a.GET("/users", u.usersPage)
	a.POST("/users", u.createUser)
	a.POST("/users/:user", u.updateUser)
	a.POST("/users/:user/delete", u.deleteUser)
	u.deadLetterRoutes(a)
	if u.endpoints != nil {
		u.endpointRoutes(a)
	}
	if u.messages != nil {
		u.messageRoutes(a)
	}
}

// routes adds routes to e with the same middleware on each.
type routes struct {
	e  *echo.Echo
	mw []echo.MiddlewareFunc
}

func (r *routes) GET(path string, h echo.HandlerFunc)  { r.e.GET(path, h, r.mw...) }
func (r *routes) POST(path string, h echo.HandlerFunc) { r.e.POST(path, h, r.mw...) }

func staticHandler() http.Handler {
	fsrv := http.FileServerFS(web.Static())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		fsrv.ServeHTTP(w, r)
	})
}

// headers sets the security headers of every UI response: scripts and
// styles only from this origin (htmx's inline indicator styles are off),
// no framing, no MIME sniffing.
func (u *UI) headers(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		if !strings.HasPrefix(c.Request().URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		err := next(c)
		if err == nil || c.Response().Committed {
			return err
		}
		// Errors become HTML pages here, not the API's JSON.
		var he *echo.HTTPError
		if errors.As(err, &he) && he.Code < 500 {
			return u.errorPage(c, he.Code, fmt.Sprint(he.Message))
		}
		return u.fail(c, err)
	}
}

// view is what every page template receives.
type view struct {
	Title   string
	Nav     string // which top-level section is active
	S       *session
	App     *tenant.Application // the application a page belongs to, if any
	AppNav  string              // which application tab is active
	Flash   string
	Error   string
	Fields  map[string]string // field errors of the submitted form
	Data    any
	Request *http.Request
}

// CSRF is the session's token for forms and htmx headers.
func (v view) CSRF() string {
	if v.S == nil {
		return ""
	}
	return v.S.CSRF
}

// render writes a whole page.
func (u *UI) render(c echo.Context, status int, page string, v view) error {
	return u.renderTemplate(c, status, page, "layout", v)
}

// renderPart writes one named template of a page (an htmx fragment).
func (u *UI) renderPart(c echo.Context, status int, page, name string, v view) error {
	return u.renderTemplate(c, status, page, name, v)
}

func (u *UI) renderTemplate(c echo.Context, status int, page, name string, v view) error {
	t, ok := u.pages[page]
	if !ok {
		return fmt.Errorf("ui: no page template %q", page)
	}
	if v.S == nil {
		v.S = sess(c)
	}
	v.Request = c.Request()
	if v.Flash == "" {
		v.Flash = u.takeFlash(c)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, v); err != nil {
		return fmt.Errorf("render %s/%s: %w", page, name, err)
	}
	return c.HTMLBlob(status, buf.Bytes())
}

// errorPage renders a full error page (or, for htmx, a fragment).
func (u *UI) errorPage(c echo.Context, status int, msg string) error {
	v := view{Title: http.StatusText(status), Error: msg, Data: status}
	if c.Request().Header.Get("HX-Request") != "" {
		return u.renderPart(c, status, "error", "error-box", v)
	}
	return u.render(c, status, "error", v)
}

// fail turns a service error into a page: the one mapping of the service
// packages' errors to the UI's answers. Not found (or not visible) is 404,
// bad input 422 with the message, a conflict 409, a role or plan limit 403;
// anything else is logged and 500.
func (u *UI) fail(c echo.Context, err error) error {
	var fe hook.FieldErrors
	switch {
	case errors.Is(err, hook.ErrNotFound):
		return u.errorPage(c, http.StatusNotFound, "Not found: it does not exist or you have no access to it.")
	case errors.Is(err, message.ErrPastRetention):
		return u.errorPage(c, http.StatusGone, "Past retention: "+err.Error())
	case errors.Is(err, message.ErrEndpointDisabled):
		return u.errorPage(c, http.StatusConflict, "This message cannot be replayed now: "+err.Error())
	case errors.Is(err, hook.ErrConflict):
		return u.errorPage(c, http.StatusConflict, "That conflicts with existing data: "+strings.TrimSuffix(err.Error(), ": "+hook.ErrConflict.Error()))
	case errors.Is(err, endpoint.ErrAdminOnly):
		return u.errorPage(c, http.StatusForbidden, err.Error())
	case errors.Is(err, hook.ErrForbidden):
		return u.errorPage(c, http.StatusForbidden, "Your role does not allow this.")
	case errors.Is(err, tenant.ErrBusy):
		c.Response().Header().Set("Retry-After", "1")
		return u.errorPage(c, http.StatusServiceUnavailable, "Too many password checks at this moment. Try again in a few seconds.")
	case errors.Is(err, tenant.ErrAppLimit):
		return u.errorPage(c, http.StatusForbidden, err.Error())
	case errors.Is(err, endpoint.ErrLimitReached):
		return u.errorPage(c, http.StatusForbidden, err.Error()+"; ask an admin to raise the plan")
	case errors.As(err, &fe):
		return u.errorPage(c, http.StatusUnprocessableEntity, fe.Error())
	}
	u.log.Error("ui request failed", zap.String("path", c.Request().URL.Path), zap.Error(err))
	return u.errorPage(c, http.StatusInternalServerError, "Something went wrong on our side. The error has been logged.")
}

// indexSuffix is a field key naming a list entry: "addresses[2]",
// "topics[1][0]", "ops_events[0]".
var indexSuffix = regexp.MustCompile(`^([a-z_]+)\[(\d+)\](.*)$`)

// fieldErrors is the per-field messages of a service's hook.FieldErrors
// keyed by the form's field names, or nil for any other error. A form has
// one box per list ("addresses[2]" is shown under "addresses" as "entry
// 2: ...") and one headers box ("headers.X-Token"); the endpoint plan limit
// is shown on the form too.
func fieldErrors(err error) map[string]string {
	var fe hook.FieldErrors
	if errors.Is(err, endpoint.ErrLimitReached) {
		return map[string]string{"plan": err.Error() + "; ask an admin to raise the plan"}
	}
	if !errors.As(err, &fe) {
		return nil
	}
	out := map[string]string{}
	add := func(k, v string) {
		if old, ok := out[k]; ok {
			v = old + "; " + v
		}
		out[k] = v
	}
	keys := make([]string, 0, len(fe))
	for k := range fe {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := fe[k]
		if m := indexSuffix.FindStringSubmatch(k); m != nil {
			k, v = m[1], "entry "+m[2]+m[3]+": "+v
		}
		if name, ok := strings.CutPrefix(k, "headers."); ok {
			k, v = "headers", name+": "+v
		}
		add(k, v)
	}
	return out
}

const flashCookie = "ethhook_flash"

// flash shows msg on the next page the browser loads.
func (u *UI) flash(c echo.Context, msg string) {
	c.SetCookie(u.cookie(flashCookie, url.QueryEscape(msg), 60))
}

func (u *UI) takeFlash(c echo.Context) string {
	ck, err := c.Cookie(flashCookie)
	if err != nil || ck.Value == "" {
		return ""
	}
	c.SetCookie(u.cookie(flashCookie, "", -1))
	msg, err := url.QueryUnescape(ck.Value)
	if err != nil {
		return ""
	}
	return msg
}

// redirect answers a form POST: a 303 for plain forms, HX-Redirect for htmx.
func redirect(c echo.Context, to string) error {
	if c.Request().Header.Get("HX-Request") != "" {
		c.Response().Header().Set("HX-Redirect", to)
		return c.NoContent(http.StatusNoContent)
	}
	return c.Redirect(http.StatusSeeOther, to)
}
