// Package admin is EthHook's admin REST API under /api/v1: authentication
// (login JWTs and ethk_ application keys), tenancy, applications, API keys,
// users, plans, usage and quota, chains and recent events, an audit log of
// changes, and the OpenAPI document describing all of it. The web UI mounts
// on the same echo instance (see Echo).
package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/chainstatus"
	"github.com/ethhook/ethhook/internal/module"
	"github.com/ethhook/ethhook/internal/signin"
	"github.com/ethhook/ethhook/message"
	"github.com/ethhook/ethhook/ops"
	"github.com/ethhook/ethhook/tenant"
)

// Prefix is where the API lives.
const Prefix = "/api/v1"

// Options are the admin module's own settings beyond module.Deps; it has
// none today (its settings are d.Config.Admin, the chains it shows
// d.Config.Chains, and retention.messages bounds what messages it serves).
type Options struct{}

// Module serves the admin API and runs its background work (first-run
// bootstrap, releasing messages held at quota).
type Module struct {
	cfg       config.Admin
	pool      *pgxpool.Pool
	rdb       rueidis.Client
	keys      hook.Keys
	chains    []config.Chain
	log       *zap.Logger
	store     *tenant.Store
	limiter   *limiter
	signin    *signin.Guard
	trusted   []netip.Prefix // admin.trusted_proxies
	jwtKey    []byte
	metrics   *metrics
	e         *echo.Echo
	api       *echo.Group
	routes    []route
	endpoints *endpoint.Service
	messages  *message.Service
	openapi   map[string]any
	ready     atomic.Bool
	ops       *ops.Emitter // operational webhooks: quota.reached, ingest.stalled
	status    *chainstatus.Reader
	stalls    stallWatch // Run's goroutine only
}

// New builds the module and its router on d: Postgres and Redis are
// required; without d.Box (ETHHOOK_SECRET_KEY) the endpoints and messages
// routes are left out of the API (and of its OpenAPI document). Messages
// older than d.Config.Retention.Messages answer 410 Gone.
func New(d module.Deps, _ Options) (*Module, error) {
	if d.Pool == nil || d.Redis == nil {
		return nil, errors.New("admin: Pool and Redis are required")
	}
	cfg, keys, log := d.Config.Admin, d.Keys(), d.Logger()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	m := &Module{
		cfg:     cfg,
		pool:    d.Pool,
		rdb:     d.Redis,
		keys:    keys,
		chains:  d.Config.Chains,
		log:     log,
		store:   tenant.New(d.Pool).LimitAppsPerUser(cfg.MaxAppsPerUser).WithDefaultPlan(cfg.DefaultPlan),
		limiter: newLimiter(d.Redis, keys.Prefix),
		ops:     ops.New(d.Pool, d.Redis, keys),
		status:  chainstatus.New(d.Redis, keys),
	}
	// Validate has checked them.
	m.trusted, _ = cfg.TrustedProxyPrefixes()
	m.store.LimitPasswordHashing(cfg.MaxConcurrentLogins)
	m.signin = signin.New(m.store, d.Redis, keys,
		signin.Config{IPLimit: cfg.LoginRateLimit, AccountLimit: cfg.LoginAccountRateLimit}, log.Named("signin"))
	if d.Box != nil {
		m.endpoints = endpoint.New(d.Pool, d.Box, d.Redis, keys, d.Config.Chains)
		m.messages = message.New(d.Pool, d.Redis, keys).WithRetention(d.Config.Retention.Messages)
	} else {
		m.log.Warn("no secret key (ETHHOOK_SECRET_KEY): the endpoints and messages API routes are off")
	}
	if cfg.JWTSecret != "" {
		m.jwtKey = []byte(cfg.JWTSecret)
	} else {
		m.jwtKey = randomKey()
		m.log.Warn("admin.jwt_secret (ETHHOOK_JWT_SECRET) is not set: using a random secret, so login tokens end with this process and other replicas reject them")
	}
	met, err := newMetrics(d.Metrics(), m.store)
	if err != nil {
		return nil, err
	}
	m.metrics = met
	m.buildRouter()
	return m, nil
}

// Name is the module's name for the supervisor.
func (m *Module) Name() string { return "admin" }

// Ready reports whether the first-run bootstrap is done.
func (m *Module) Ready() bool { return m.ready.Load() }

// Handler serves the API (and whatever the web UI mounted on Echo).
func (m *Module) Handler() http.Handler { return m.e }

// Echo is the router, for the web UI to mount its routes outside /api/v1
// (e.g. m.Echo().GET("/", ...) or m.Echo().Group("/ui")). Routes added
// there get the request id, logging and recovery middleware but no API
// authentication; the API's error handler answers their errors in JSON
// unless they write their own response.
func (m *Module) Echo() *echo.Echo { return m.e }

// Store is the tenant service the API uses (for the web UI's handlers).
func (m *Module) Store() *tenant.Store { return m.store }

// Endpoints is the endpoint service the API uses (nil without a secret
// key), for the web UI's handlers.
func (m *Module) Endpoints() *endpoint.Service { return m.endpoints }

// Messages is the message service the API uses (nil without a secret key),
// for the web UI's handlers.
func (m *Module) Messages() *message.Service { return m.messages }

// Authenticate resolves a Bearer credential (login JWT or ethk_ key) on r
// to the caller's scope, for the web UI's handlers; hook.ErrNotFound-free:
// the error is non-nil when the credentials are missing or invalid.
func (m *Module) Authenticate(c echo.Context) (hook.Scope, error) {
	p, err := m.authenticate(c)
	return p.Scope, err
}

// Run bootstraps the first admin when there are no users, then releases
// messages held at quota every admin.quota_release_interval until ctx ends.
func (m *Module) Run(ctx context.Context) error {
	if err := m.bootstrap(ctx); err != nil {
		return err
	}
	m.ready.Store(true)
	defer m.ready.Store(false)
	t := time.NewTicker(m.cfg.QuotaReleaseInterval)
	defer t.Stop()
	for {
		m.releaseOnce(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (m *Module) bootstrap(ctx context.Context) error {
	if err := m.store.CheckDefaultPlan(ctx); err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	u, pw, created, err := m.store.Bootstrap(ctx, m.cfg.BootstrapEmail)
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	if created {
		// Printed once: the only place this password ever appears.
		m.log.Warn("first run: created the bootstrap admin; sign in and change this password (web UI, or POST /api/v1/auth/password), it is not shown again and the account can do nothing else until it is changed",
			zap.String("email", u.Email), zap.String("password", pw), zap.String("user_id", u.ID))
		if err := m.store.Audit(ctx, tenant.AuditEntry{Actor: "bootstrap", ActorType: "system", Action: "user.bootstrap", ResourceID: u.ID}); err != nil {
			m.log.Error("audit bootstrap", zap.Error(err))
		}
	}
	return nil
}

// releaseBatch bounds one application's release per pass.
const releaseBatch = 1000

func (m *Module) releaseOnce(ctx context.Context) {
	n, err := m.store.ReleaseAll(ctx, m.rdb, m.keys, releaseBatch)
	if n > 0 {
		m.metrics.released.Add(float64(n))
		m.log.Info("released messages held at quota", zap.Int("messages", n))
	}
	if err != nil && ctx.Err() == nil {
		m.log.Error("release messages held at quota", zap.Error(err))
	}
	reached, err := m.store.NoteQuotaReached(ctx)
	if err != nil && ctx.Err() == nil {
		m.log.Error("look for applications at their quota", zap.Error(err))
	}
	for _, r := range reached {
		// Once per application and month (see NoteQuotaReached).
		m.log.Warn("application reached its monthly quota: new webhooks are held as quota_exceeded until the month turns or its plan is raised",
			zap.String("app", r.AppID), zap.String("app_name", r.AppName), zap.String("plan", r.PlanID),
			zap.Int64("deliveries", r.Deliveries), zap.Int64("monthly_quota", r.Quota))
		m.emitQuotaReached(ctx, r, time.Now())
	}
	full, err := m.store.NoteStorageFull(ctx)
	if err != nil && ctx.Err() == nil {
		m.log.Error("look for applications at their storage limit", zap.Error(err))
	}
	for _, f := range full {
		// Once each time the application reaches it (see NoteStorageFull).
		m.log.Warn("application reached its plan's storage limit (stored messages plus attempts): new webhooks are held as quota_exceeded until retention frees room or its plan is raised",
			zap.String("app", f.AppID), zap.String("app_name", f.AppName), zap.String("plan", f.PlanID),
			zap.Int64("stored", f.Stored), zap.Int64("max_stored", f.MaxStored))
	}
	m.checkStalls(ctx, time.Now())
	m.purgeIdempotencyKeys(ctx)
}

var requestIDRe = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

func requestID(c echo.Context) string {
	return c.Response().Header().Get(echo.HeaderXRequestID)
}

// middleware common to every route, API or UI.
func (m *Module) buildRouter() {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	// The client address is the socket's unless a trusted proxy forwarded
	// it (admin.trusted_proxies); never a header anyone can send.
	e.IPExtractor = signin.IPExtractor(m.trusted)
	e.HTTPErrorHandler = m.errorHandler
	e.Use(middleware.RequestIDWithConfig(middleware.RequestIDConfig{
		Generator: func() string { return tenant.NewID("req") },
		Skipper: func(c echo.Context) bool {
			// Honour a caller's id only when it is safe to log.
			if id := c.Request().Header.Get(echo.HeaderXRequestID); id != "" && !requestIDRe.MatchString(id) {
				c.Request().Header.Del(echo.HeaderXRequestID)
			}
			return false
		},
	}))
	e.Use(m.observe)
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{DisableStackAll: true, LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
		m.log.Error("panic in handler", zap.String("request_id", requestID(c)), zap.Error(err), zap.ByteString("stack", stack))
		return err
	}}))
	e.Use(middleware.BodyLimit(fmt.Sprintf("%dB", m.cfg.BodyLimit)))
	e.Use(cleanInput)
	m.e = e
	m.api = e.Group(Prefix)
	m.routes = m.routeTable()
	m.openapi = m.OpenAPI()
	for _, r := range m.routes {
		var mw []echo.MiddlewareFunc
		if r.auth != authNone {
			mw = append(mw, m.requireAuth(r.auth == authAdmin, r.beforePasswordChange))
		}
		mw = append(mw, onlyQuery(r.query))
		if r.idempotent {
			mw = append(mw, m.idempotency)
		}
		m.api.Add(r.method, r.path, r.h, mw...)
	}
}

// observe logs each request with its id and counts it.
func (m *Module) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		status := c.Response().Status
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		method := metricMethod(c.Request().Method)
		m.metrics.requests.WithLabelValues(method, route, fmt.Sprint(status)).Inc()
		m.metrics.latency.WithLabelValues(method, route).Observe(time.Since(start).Seconds())
		p := callerOf(c)
		m.log.Info("request", zap.String("request_id", requestID(c)), zap.String("method", c.Request().Method),
			zap.String("route", route), zap.Int("status", status), zap.Duration("latency", time.Since(start)),
			zap.String("actor", p.Actor))
		return nil
	}
}

// cleanInput rejects path and query values Postgres cannot store (NUL,
// invalid UTF-8) or that are absurdly long, before any handler sees them.
func cleanInput(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		for i, v := range c.ParamValues() {
			if !cleanString(v) || len(v) > 200 {
				name := "path"
				if i < len(c.ParamNames()) {
					name = c.ParamNames()[i]
				}
				return fieldError(name, "is not a valid identifier")
			}
		}
		for k, vs := range c.QueryParams() {
			for _, v := range vs {
				if !cleanString(k) || !cleanString(v) || len(v) > 1000 {
					return fieldError(k, "must be valid UTF-8 without NUL characters and at most 1000 bytes")
				}
			}
		}
		return next(c)
	}
}

func cleanString(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return false
		}
	}
	return true
}

// routeTable lists every API route: the one table that registers the
// handlers and writes the OpenAPI document.
func (m *Module) routeTable() []route {
	rs := append(m.apiRoutes(), m.endpointRoutes()...)
	rs = append(rs, m.messageRoutes()...)
	rs = append(rs, m.previewRoutes()...)
	return append(rs, m.historyRoutes()...)
}
