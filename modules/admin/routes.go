package admin

import (
	"context"
	"crypto/rand"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
)

type authLevel int

const (
	authNone  authLevel = iota // public
	authUser                   // any authenticated caller (user JWT or API key)
	authAdmin                  // admin users only
)

// qparam documents (and permits) one query parameter.
type qparam struct {
	name, typ, desc string
}

// route is one API operation: its handler and its OpenAPI description come
// from the same entry, so the document cannot drift from the router.
type route struct {
	method, path string // path relative to Prefix, echo syntax (:app_id)
	id, summary  string
	tag          string
	auth         authLevel
	query        []qparam
	body         any // sample of the request body type, nil for none
	resp         any // sample of the success response type, nil for none
	status       int
	csv          bool // also answers text/csv
	// beforePasswordChange: open to a user who must change their password
	// first (whoami, change password, logout); every other route answers
	// them 403 password_change_required.
	beforePasswordChange bool
	// checksPassword: the route computes a password hash, so it may answer
	// 503 busy when too many are being computed.
	checksPassword bool
	// idempotent: a POST that creates something; it takes an
	// Idempotency-Key header (see idempotency.go).
	idempotent bool
	// bodyOptional: the body may be left out (every field has a default).
	bodyOptional bool
	// errs are the route's own error statuses beyond those its middleware
	// and path imply (see route.statuses), such as 409.
	errs        []int
	description string
	h           echo.HandlerFunc
}

var (
	pageQuery = []qparam{
		{"cursor", "string", "opaque cursor from a previous page's next_cursor"},
		{"limit", "integer", "page size, 1-200 (default 50)"},
	}
)

func withPage(q ...qparam) []qparam { return append(append([]qparam{}, q...), pageQuery...) }

// onlyQuery rejects query parameters the route does not document, so a
// misspelt filter is a 400 rather than silently ignored.
func onlyQuery(allowed []qparam) echo.MiddlewareFunc {
	ok := map[string]bool{}
	for _, q := range allowed {
		ok[q.name] = true
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			for k := range c.QueryParams() {
				if !ok[k] {
					names := make([]string, 0, len(allowed))
					for _, q := range allowed {
						names = append(names, q.name)
					}
					msg := "unknown query parameter"
					if len(names) > 0 {
						msg += "; allowed: " + strings.Join(names, ", ")
					}
					return fieldError(k, msg)
				}
			}
			return next(c)
		}
	}
}

// page reads cursor and limit; def is the limit when the request names
// none (0: the service's default).
func page(c echo.Context, def int) (string, int, error) {
	limit := def
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			return "", 0, fieldError("limit", "must be an integer between 1 and 200")
		}
		limit = n
	}
	return c.QueryParam("cursor"), limit, nil
}

// boolQuery parses an optional boolean filter.
func boolQuery(c echo.Context, name string) (*bool, error) {
	v := c.QueryParam(name)
	if v == "" {
		return nil, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return nil, fieldError(name, "must be true or false")
	}
	return &b, nil
}

// List is the shape of every list answer.
type List[T any] struct {
	Data       []T    `json:"data"`
	NextCursor string `json:"next_cursor"` // empty on the last page
}

func listOf[T any](data []T, next string) List[T] {
	if data == nil {
		data = []T{}
	}
	return List[T]{Data: data, NextCursor: next}
}

// answerPage answers one page of a list: fetch gets the request's cursor
// and limit (see page) and returns the page's items and the next cursor.
func answerPage[T any](c echo.Context, fetch func(ctx context.Context, cursor string, limit int) ([]T, string, error)) error {
	cursor, limit, err := page(c, 0)
	if err != nil {
		return err
	}
	data, next, err := fetch(c.Request().Context(), cursor, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, listOf(data, next))
}

func randomKey() []byte {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return b
}

// apiRoutes is the whole API.
func (m *Module) apiRoutes() []route {
	return []route{
		{method: http.MethodGet, path: "/openapi.json", id: "getOpenAPI", summary: "This OpenAPI document", tag: "meta",
			auth: authNone, resp: map[string]any{}, status: 200, h: m.handleOpenAPI},
		{method: http.MethodPost, path: "/auth/login", id: "login", summary: "Log in with email and password; returns a JWT", tag: "auth",
			auth: authNone, body: loginRequest{}, resp: loginResponse{}, status: 200, checksPassword: true, h: m.handleLogin},
		{method: http.MethodGet, path: "/auth/me", id: "whoami", summary: "The authenticated caller", tag: "auth",
			auth: authUser, resp: whoami{}, status: 200, beforePasswordChange: true, h: m.handleWhoami},
		{method: http.MethodPost, path: "/auth/password", id: "changePassword",
			summary: "Change your own password (users only; needs the current one); revokes all your tokens and sessions and returns a new token", tag: "auth",
			auth: authUser, body: passwordChange{}, resp: loginResponse{}, status: 200, beforePasswordChange: true, checksPassword: true, h: m.handleChangePassword},
		{method: http.MethodPost, path: "/auth/logout", id: "logout", summary: "Log out: revoke every token and web UI session of the calling user", tag: "auth",
			auth: authUser, status: 204, beforePasswordChange: true, h: m.handleLogout},

		{method: http.MethodGet, path: "/applications", id: "listApplications", summary: "List applications visible to the caller", tag: "applications",
			auth: authUser, query: withPage(qparam{"name", "string", "name contains (case-insensitive)"}, qparam{"plan_id", "string", "on this plan"}),
			resp: List[appView]{}, status: 200, h: m.handleListApps},
		{method: http.MethodPost, path: "/applications", id: "createApplication", summary: "Create an application (users only)", tag: "applications",
			auth: authUser, body: appCreate{}, resp: appView{}, status: 201, idempotent: true, h: m.handleCreateApp},
		{method: http.MethodGet, path: "/applications/:app_id", id: "getApplication", summary: "Get an application", tag: "applications",
			auth: authUser, resp: appView{}, status: 200, h: m.handleGetApp},
		{method: http.MethodPatch, path: "/applications/:app_id", id: "updateApplication", summary: "Rename an application or (admin) change its plan", tag: "applications",
			auth: authUser, body: appUpdate{}, resp: appView{}, status: 200, h: m.handleUpdateApp},
		{method: http.MethodDelete, path: "/applications/:app_id", id: "deleteApplication", summary: "Delete an application and everything it owns", tag: "applications",
			auth: authUser, status: 204, h: m.handleDeleteApp},

		{method: http.MethodGet, path: "/applications/:app_id/api-keys", id: "listAPIKeys", summary: "List an application's API keys", tag: "api-keys",
			auth: authUser, query: withPage(qparam{"name", "string", "name contains"}, qparam{"revoked", "boolean", "only revoked (true) or active (false) keys"}),
			resp: List[keyView]{}, status: 200, h: m.handleListKeys},
		{method: http.MethodPost, path: "/applications/:app_id/api-keys", id: "createAPIKey", summary: "Create an API key (users only, not API keys); the key is shown only in this answer", tag: "api-keys",
			auth: authUser, body: keyCreate{}, resp: keyCreated{}, status: 201, h: m.handleCreateKey},
		{method: http.MethodGet, path: "/applications/:app_id/api-keys/:key_id", id: "getAPIKey", summary: "Get an API key (without the key)", tag: "api-keys",
			auth: authUser, resp: keyView{}, status: 200, h: m.handleGetKey},
		{method: http.MethodDelete, path: "/applications/:app_id/api-keys/:key_id", id: "revokeAPIKey", summary: "Revoke an API key (users only, not API keys)", tag: "api-keys",
			auth: authUser, status: 204, h: m.handleRevokeKey},

		{method: http.MethodGet, path: "/applications/:app_id/usage", id: "getUsage", summary: "Usage this month and by month (JSON, or CSV with format=csv)", tag: "usage",
			auth: authUser, query: withPage(qparam{"from", "string", "first month, YYYY-MM"}, qparam{"to", "string", "last month, YYYY-MM"},
				qparam{"format", "string", "json (default) or csv"}),
			resp: usageView{}, status: 200, csv: true, h: m.handleUsage},

		{method: http.MethodGet, path: "/chains", id: "listChains", summary: "Chains: head, committed block, lag, active writer (its lease holder for admins)", tag: "chains",
			auth: authUser, query: withPage(qparam{"name", "string", "chain name contains"}), resp: List[chainView]{}, status: 200, h: m.handleListChains},
		{method: http.MethodGet, path: "/chains/:chain_id/events", id: "listChainEvents", summary: "Recent events of a chain, newest first", tag: "chains",
			auth: authUser, query: withPage(qparam{"type", "string", "log or log.removed"}, qparam{"address", "string", "emitting contract address"}),
			resp: List[eventView]{}, status: 200, h: m.handleChainEvents},

		{method: http.MethodGet, path: "/plans", id: "listPlans", summary: "List plans", tag: "plans",
			auth: authUser, query: withPage(qparam{"name", "string", "name contains"}), resp: List[planView]{}, status: 200, h: m.handleListPlans},
		{method: http.MethodPost, path: "/plans", id: "createPlan", summary: "Create a plan (admin)", tag: "plans",
			auth: authAdmin, body: planCreate{}, resp: planView{}, status: 201, errs: []int{409}, h: m.handleCreatePlan},
		{method: http.MethodGet, path: "/plans/:plan_id", id: "getPlan", summary: "Get a plan", tag: "plans",
			auth: authUser, resp: planView{}, status: 200, h: m.handleGetPlan},
		{method: http.MethodPatch, path: "/plans/:plan_id", id: "updatePlan", summary: "Change a plan (admin); raised quotas release held messages", tag: "plans",
			auth: authAdmin, body: planUpdate{}, resp: planView{}, status: 200, h: m.handleUpdatePlan},

		{method: http.MethodGet, path: "/users", id: "listUsers", summary: "List users (admin)", tag: "users",
			auth: authAdmin, query: withPage(qparam{"email", "string", "email contains"}, qparam{"role", "string", "admin or member"}, qparam{"app_id", "string", "members of this application"}),
			resp: List[userView]{}, status: 200, h: m.handleListUsers},
		{method: http.MethodPost, path: "/users", id: "createUser", summary: "Create a user (admin)", tag: "users",
			auth: authAdmin, body: userCreate{}, resp: userView{}, status: 201, checksPassword: true, errs: []int{409}, h: m.handleCreateUser},
		{method: http.MethodGet, path: "/users/:user_id", id: "getUser", summary: "Get a user (admin, or yourself)", tag: "users",
			auth: authUser, resp: userView{}, status: 200, h: m.handleGetUser},
		{method: http.MethodPatch, path: "/users/:user_id", id: "updateUser",
			summary: "Change a user (admin; members only their own password, with current_password); a new password or role revokes the user's tokens", tag: "users",
			auth: authUser, body: userUpdate{}, resp: userView{}, status: 200, checksPassword: true, errs: []int{409}, h: m.handleUpdateUser},
		{method: http.MethodDelete, path: "/users/:user_id", id: "deleteUser", summary: "Delete a user (admin)", tag: "users",
			auth: authAdmin, status: 204, errs: []int{409}, h: m.handleDeleteUser},

		{method: http.MethodGet, path: "/event-types", id: "listEventTypes", summary: "Event types: the built-in decoded events and your endpoints' ABI events, with argument schemas", tag: "event-types",
			auth: authUser, query: withPage(qparam{"app_id", "string", "only this application's endpoints"}), resp: List[eventTypeView]{}, status: 200, h: m.handleEventTypes},
		{method: http.MethodGet, path: "/audit-log", id: "listAudit", summary: "Audit log of changes, newest first (admins: all; others: their applications)", tag: "audit",
			auth: authUser, query: withPage(qparam{"app_id", "string", "application"}, qparam{"action", "string", "action, or a prefix ending in '.'"}, qparam{"actor", "string", "usr_ or key_ id"}),
			resp: List[auditView]{}, status: 200, h: m.handleListAudit},
	}
}
