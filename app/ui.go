package app

import (
	"fmt"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/rueidis"

	"github.com/ethhook/ethhook/modules/admin"
	"github.com/ethhook/ethhook/modules/admin/ui"
)

// mountUI adds the web UI's routes ("/", "/login", "/apps/...",
// "/static/...") to the admin module's router, next to /api/v1, on the
// admin module's own tenant store, endpoint and message services (the UI
// builds none). The "admin" module spec calls it right after admin.New.
func mountUI(rt *Runtime, am *admin.Module, pool *pgxpool.Pool, rdb rueidis.Client) error {
	if am == nil || pool == nil || rdb == nil || am.Endpoints() == nil {
		return fmt.Errorf("web UI: needs the admin module with its endpoint service (a secret key), Postgres and Redis")
	}
	d := rt.deps("ui")
	d.Pool, d.Redis = pool, rdb
	// Sessions last admin.jwt_ttl; the sign-in limits are the API's login
	// ones, the client address from the admin router's extractor
	// (admin.trusted_proxies).
	u, err := ui.New(d, ui.Options{
		Tenant:        am.Store(),
		Endpoints:     am.Endpoints(),
		Messages:      am.Messages(),
		SendTest:      am.SendTest,
		RotateOverlap: admin.DefaultRotateOverlap,
		SecureCookies: secureCookies(rt.Cfg.HTTPAddr),
	})
	if err != nil {
		return fmt.Errorf("web UI: %w", err)
	}
	u.Routes(am.Echo())
	return nil
}

// secureCookies decides whether the UI's cookies are marked Secure (sent
// over HTTPS only). They are, unless ETHHOOK_HTTP_ADDR listens on a
// loopback address only: then nobody reaches the UI but through this
// machine (local development over http://localhost, or a TLS-terminating
// proxy on the same host), and a Secure cookie would only break plain-HTTP
// use. Listening on every interface (":8080", the default) or a public
// address means the UI is meant to be reached from elsewhere, which must be
// over HTTPS (a proxy in front). Browsers accept Secure cookies from
// http://localhost, so `make run` still works; the login page warns when
// it is opened over plain HTTP from another host.
func secureCookies(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return true
	}
	if strings.EqualFold(host, "localhost") {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}
