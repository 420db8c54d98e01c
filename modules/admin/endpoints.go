package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/streams"
	"github.com/ethhook/ethhook/message"
	"github.com/ethhook/ethhook/msgstate"
	"github.com/ethhook/ethhook/sign"
	"github.com/ethhook/ethhook/tenant"
)

// DefaultRotateOverlap is how long a rotated-out secret keeps signing.
const DefaultRotateOverlap = endpoint.DefaultOverlap

// maxDisabledReason bounds the reason a user gives for disabling.
const maxDisabledReason = 1000

// maxOverlapSeconds bounds a rotation's overlap (30 days).
const maxOverlapSeconds = 30 * 86400

type (
	endpointView    = hook.Endpoint
	endpointCreated struct {
		endpointView
		Secret string `json:"secret"` // what the receiver verifies with (whsec_ or whpk_); GET .../secret shows it again
	}
	endpointPatch struct {
		endpoint.Patch
		Enabled        *bool  `json:"enabled,omitempty"`
		DisabledReason string `json:"disabled_reason,omitempty"`
	}
	secretView struct {
		Secret    string `json:"secret"`    // whsec_ secret (hmac) or whpk_ public key (ed25519)
		Signature string `json:"signature"` // the scheme it belongs to
	}
	rotateRequest struct {
		OverlapSeconds *int64 `json:"overlap_seconds,omitempty"` // default 86400
	}
	testSent struct {
		MessageID string `json:"message_id"`
	}
	replayRequest struct {
		Since      *time.Time `json:"since,omitempty"`
		Until      *time.Time `json:"until,omitempty"`
		FromBlock  *int64     `json:"from_block,omitempty"`
		ToBlock    *int64     `json:"to_block,omitempty"`
		OnlyFailed bool       `json:"only_failed,omitempty"`
	}
	replayed struct {
		Replayed int `json:"replayed"`
	}
	endpointHealth struct {
		EndpointID  string           `json:"endpoint_id"`
		Windows     []message.Health `json:"windows"` // 1h, then 24h
		RateLimited *rateLimitedView `json:"rate_limited,omitempty"`
	}
	// rateLimitedView is a rate-limit backlog under way (deliver's
	// endpoint.rate_limited episode).
	rateLimitedView struct {
		RateLimit  int       `json:"rate_limit"`
		Backlog    int64     `json:"backlog"`
		MaxBacklog int64     `json:"max_backlog"`
		Since      time.Time `json:"since"`
		CheckedAt  time.Time `json:"checked_at"`
	}
	messageView   = message.Message
	messageDetail struct {
		Message  messageView       `json:"message"`
		Attempts []message.Attempt `json:"attempts"`
	}
)

// bindOptional is bind for bodies that may be empty.
func bindOptional(c echo.Context, dst any) error {
	if c.Request().ContentLength == 0 {
		return nil
	}
	return bind(c, dst)
}

func (m *Module) endpointRoutes() []route {
	if m.endpoints == nil {
		return nil
	}
	base := "/applications/:app_id/endpoints"
	return []route{
		{method: http.MethodGet, path: base, id: "listEndpoints", summary: "List an application's endpoints", tag: "endpoints",
			auth: authUser, query: withPage(qparam{"enabled", "boolean", "only enabled (true) or disabled (false) endpoints, within each page"}),
			resp: List[endpointView]{}, status: 200, h: m.handleListEndpoints},
		{method: http.MethodPost, path: base, id: "createEndpoint", summary: "Create an endpoint; the answer holds its signing secret", tag: "endpoints",
			auth: authUser, body: endpoint.Input{}, resp: endpointCreated{}, status: 201, idempotent: true, errs: []int{403}, h: m.handleCreateEndpoint},
		{method: http.MethodGet, path: base + "/:endpoint_id", id: "getEndpoint", summary: "Get an endpoint", tag: "endpoints",
			auth: authUser, resp: endpointView{}, status: 200, h: m.handleGetEndpoint},
		{method: http.MethodPatch, path: base + "/:endpoint_id", id: "updateEndpoint", summary: "Change an endpoint, enable or disable it", tag: "endpoints",
			auth: authUser, body: endpointPatch{}, resp: endpointView{}, status: 200, h: m.handleUpdateEndpoint},
		{method: http.MethodDelete, path: base + "/:endpoint_id", id: "deleteEndpoint", summary: "Delete an endpoint and its messages", tag: "endpoints",
			auth: authUser, status: 204, h: m.handleDeleteEndpoint},
		{method: http.MethodGet, path: base + "/:endpoint_id/secret", id: "getEndpointSecret", summary: "Reveal the signing secret", tag: "endpoints",
			auth: authUser, resp: secretView{}, status: 200, h: m.handleGetSecret},
		{method: http.MethodPost, path: base + "/:endpoint_id/secret/rotate", id: "rotateEndpointSecret", summary: "Rotate the signing secret (the old one keeps signing for the overlap)", tag: "endpoints",
			auth: authUser, body: rotateRequest{}, bodyOptional: true, resp: secretView{}, status: 200, h: m.handleRotateSecret},
		{method: http.MethodGet, path: base + "/:endpoint_id/health", id: "getEndpointHealth", summary: "Success rate, p50/p99 latency and last error over the last hour and day; whether its rate limit holds a backlog back", tag: "endpoints",
			auth: authUser, resp: endpointHealth{}, status: 200, h: m.handleEndpointHealth},
		{method: http.MethodPost, path: base + "/:endpoint_id/test", id: "testEndpoint", summary: "Send a test event through real delivery", tag: "endpoints",
			auth: authUser, resp: testSent{}, status: 202, idempotent: true, errs: []int{409}, h: m.handleTestEndpoint},
		{method: http.MethodPost, path: base + "/:endpoint_id/replay", id: "replayEndpoint", summary: "Replay the endpoint's finished messages in a time and/or block range", tag: "endpoints",
			auth: authUser, body: replayRequest{}, resp: replayed{}, status: 202, idempotent: true, errs: []int{409}, h: m.handleReplayEndpoint},
	}
}

func (m *Module) messageRoutes() []route {
	if m.messages == nil {
		return nil
	}
	base := "/applications/:app_id/messages"
	return []route{
		{method: http.MethodGet, path: base, id: "listMessages", summary: "List and search messages, newest first", tag: "messages",
			auth: authUser, query: withPage(
				qparam{"endpoint_id", "string", "endpoint"}, qparam{"state", "string", "pending, delivering, succeeded, failed, dead, quota_exceeded"},
				qparam{"event_id", "string", "event id"}, qparam{"tx_hash", "string", "transaction hash"},
				qparam{"from_block", "integer", "first block (inclusive)"}, qparam{"to_block", "integer", "last block (inclusive)"},
				qparam{"since", "string", "created at or after (RFC 3339)"}, qparam{"until", "string", "created before (RFC 3339)"},
				qparam{"status_code", "integer", "HTTP status of the last attempt (100..599)"},
				qparam{"arg", "string", "decoded argument name:value, e.g. to:0xabc (repeatable, at most 3, all must hold; searches at most 7 days of since..until, default the last 24 h)"}),
			resp: List[messageView]{}, status: 200, h: m.handleListMessages},
		{method: http.MethodGet, path: base + "/:message_id", id: "getMessage", summary: "A message with its payload and every attempt", tag: "messages",
			auth: authUser, resp: messageDetail{}, status: 200, h: m.handleGetMessage},
		{method: http.MethodPost, path: base + "/:message_id/replay", id: "replayMessage", summary: "Send a message again (same webhook-id)", tag: "messages",
			auth: authUser, resp: messageView{}, status: 202, idempotent: true, errs: []int{409}, h: m.handleReplayMessage},
	}
}

func (m *Module) handleListEndpoints(c echo.Context) error {
	return answerPage(c, func(ctx context.Context, cursor string, limit int) ([]hook.Endpoint, string, error) {
		enabled, err := boolQuery(c, "enabled")
		if err != nil {
			return nil, "", err
		}
		eps, next, err := m.endpoints.List(ctx, scopeOf(c), c.Param("app_id"), cursor, limit)
		if err != nil {
			return nil, "", err
		}
		if enabled != nil {
			kept := eps[:0]
			for _, e := range eps {
				if e.Enabled == *enabled {
					kept = append(kept, e)
				}
			}
			eps = kept
		}
		return eps, next, nil
	})
}

func (m *Module) handleCreateEndpoint(c echo.Context) error {
	appID := c.Param("app_id")
	var in endpoint.Input
	if err := m.bindVisible(c, appID, &in); err != nil {
		return err
	}
	ep, secret, err := m.endpoints.Create(c.Request().Context(), scopeOf(c), appID, in)
	if err != nil {
		return err
	}
	m.audit(c, "endpoint.create", appID, ep.ID, map[string]any{"url": ep.URL, "filter": ep.Filter})
	return c.JSON(http.StatusCreated, endpointCreated{endpointView: ep, Secret: secret})
}

func (m *Module) handleGetEndpoint(c echo.Context) error {
	ep, err := m.endpoints.Get(c.Request().Context(), scopeOf(c), c.Param("app_id"), c.Param("endpoint_id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ep)
}

func (m *Module) handleUpdateEndpoint(c echo.Context) error {
	ctx := c.Request().Context()
	appID, id := c.Param("app_id"), c.Param("endpoint_id")
	ep, err := m.endpoints.Get(ctx, scopeOf(c), appID, id)
	if err != nil {
		return err
	}
	var p endpointPatch
	if err := bind(c, &p); err != nil {
		return err
	}
	if len(p.DisabledReason) > maxDisabledReason {
		return fieldError("disabled_reason", fmt.Sprintf("at most %d characters", maxDisabledReason))
	}
	if p.Patch != (endpoint.Patch{}) {
		if ep, err = m.endpoints.Update(ctx, scopeOf(c), appID, id, p.Patch); err != nil {
			return err
		}
	}
	disabling := p.Enabled != nil && !*p.Enabled
	if p.DisabledReason != "" && !disabling {
		if p.Enabled != nil || ep.Enabled {
			return fieldError("disabled_reason", "only with \"enabled\": false, or to change the reason of a disabled endpoint")
		}
		// A new reason for an endpoint that stays disabled.
		if ep, err = m.endpoints.Disable(ctx, scopeOf(c), appID, id, p.DisabledReason); err != nil {
			return err
		}
	}
	if p.Enabled != nil && (*p.Enabled != ep.Enabled || (disabling && p.DisabledReason != "" && p.DisabledReason != ep.DisabledReason)) {
		if *p.Enabled {
			ep, err = m.endpoints.Enable(ctx, scopeOf(c), appID, id)
		} else {
			ep, err = m.endpoints.Disable(ctx, scopeOf(c), appID, id, p.DisabledReason)
		}
		if err != nil {
			return err
		}
	}
	m.audit(c, "endpoint.update", appID, id, p)
	return c.JSON(http.StatusOK, ep)
}

func (m *Module) handleDeleteEndpoint(c echo.Context) error {
	appID, id := c.Param("app_id"), c.Param("endpoint_id")
	if err := m.endpoints.Delete(c.Request().Context(), scopeOf(c), appID, id); err != nil {
		return err
	}
	m.audit(c, "endpoint.delete", appID, id, nil)
	return c.NoContent(http.StatusNoContent)
}

func (m *Module) handleGetSecret(c echo.Context) error {
	appID, id := c.Param("app_id"), c.Param("endpoint_id")
	s, err := m.endpoints.Secret(c.Request().Context(), scopeOf(c), appID, id)
	if err != nil {
		return err
	}
	m.audit(c, "endpoint.secret_reveal", appID, id, nil)
	return c.JSON(http.StatusOK, newSecretView(s))
}

func (m *Module) handleRotateSecret(c echo.Context) error {
	appID, id, err := m.visibleEndpoint(c)
	if err != nil {
		return err
	}
	var req rotateRequest
	if err := bindOptional(c, &req); err != nil {
		return err
	}
	overlap := DefaultRotateOverlap
	if req.OverlapSeconds != nil {
		if *req.OverlapSeconds < 0 || *req.OverlapSeconds > maxOverlapSeconds {
			return fieldError("overlap_seconds", "must be between 0 and 2592000 (30 days)")
		}
		overlap = time.Duration(*req.OverlapSeconds) * time.Second
	}
	s, err := m.endpoints.RotateSecret(c.Request().Context(), scopeOf(c), appID, id, overlap)
	if err != nil {
		return err
	}
	m.audit(c, "endpoint.secret_rotate", appID, id, map[string]any{"overlap_seconds": int64(overlap.Seconds())})
	return c.JSON(http.StatusOK, newSecretView(s))
}

func (m *Module) handleTestEndpoint(c echo.Context) error {
	appID, id := c.Param("app_id"), c.Param("endpoint_id")
	msgID, err := m.SendTest(c.Request().Context(), scopeOf(c), appID, id)
	if err != nil {
		return err
	}
	m.audit(c, "endpoint.test", appID, id, map[string]string{"message_id": msgID})
	return c.JSON(http.StatusAccepted, testSent{MessageID: msgID})
}

// SendTest queues a test webhook for an endpoint through the real delivery
// path (signed, retried, logged as a message of type "test") and returns
// the message id. Its signature fits the web UI's send function.
func (m *Module) SendTest(ctx context.Context, scope hook.Scope, appID, endpointID string) (string, error) {
	if m.endpoints == nil {
		return "", errors.New("endpoint service not configured")
	}
	ep, err := m.endpoints.Get(ctx, scope, appID, endpointID)
	if err != nil {
		return "", err
	}
	var chain hook.Chain
	if len(ep.Filter.Chains) > 0 {
		chain.ID = ep.Filter.Chains[0]
		for _, ch := range m.chains {
			if ch.ID == chain.ID {
				chain.Name = ch.Name
			}
		}
	}
	id := tenant.NewID("msg")
	eventID := "test:" + id
	payload, err := json.Marshal(testPayload(eventID, ep.ID, chain, time.Now()))
	if err != nil {
		return "", fmt.Errorf("encode test payload: %w", err)
	}
	created, err := msgstate.CreateOne(ctx, m.pool, msgstate.One{ID: id, AppID: appID, EndpointID: ep.ID, EventID: eventID,
		Type: "test", ChainID: int64(chain.ID), Payload: payload})
	if err == nil && !created {
		err = errors.New("a message with this id exists already")
	}
	if err != nil {
		return "", fmt.Errorf("queue test message for endpoint %s: %w", ep.ID, err)
	}
	if err := streams.Offer(ctx, m.rdb, m.keys, hook.Job{MessageID: id, EndpointID: ep.ID}); err != nil {
		// The message is pending in Postgres; deliver's sweep sends it.
		m.log.Warn("queue test message job (deliver's sweep will send it): " + err.Error())
	}
	return id, nil
}

func (m *Module) handleReplayEndpoint(c echo.Context) error {
	appID, id, err := m.visibleEndpoint(c)
	if err != nil {
		return err
	}
	var req replayRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	r := message.Range{EndpointID: id, FromBlock: req.FromBlock, ToBlock: req.ToBlock, OnlyFailed: req.OnlyFailed}
	if req.Since != nil {
		r.Since = *req.Since
	}
	if req.Until != nil {
		r.Until = *req.Until
	}
	if r.Since.IsZero() && r.Until.IsZero() && r.FromBlock == nil && r.ToBlock == nil {
		return hook.Invalid("since", "give since/until or from_block/to_block")
	}
	n, err := m.messages.ReplayRange(c.Request().Context(), scopeOf(c), r)
	if err != nil {
		return err
	}
	m.audit(c, "endpoint.replay", appID, id, map[string]any{"request": req, "replayed": n})
	return c.JSON(http.StatusAccepted, replayed{Replayed: n})
}

func int64Query(c echo.Context, name string) (*int64, error) {
	v := c.QueryParam(name)
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return nil, fieldError(name, "must be a non-negative integer")
	}
	return &n, nil
}

func timeQuery(c echo.Context, name string) (time.Time, error) {
	v := c.QueryParam(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fieldError(name, "must be an RFC 3339 time such as 2024-05-01T00:00:00Z")
	}
	return t, nil
}

func (m *Module) handleListMessages(c echo.Context) error {
	appID := c.Param("app_id")
	if err := m.store.Visible(c.Request().Context(), scopeOf(c), appID); err != nil {
		return err
	}
	cursor, limit, err := page(c, 0)
	if err != nil {
		return err
	}
	f := message.Filter{AppID: appID, EndpointID: c.QueryParam("endpoint_id"), State: c.QueryParam("state"),
		EventID: c.QueryParam("event_id"), TxHash: c.QueryParam("tx_hash"), Cursor: cursor, Limit: limit}
	if f.FromBlock, err = int64Query(c, "from_block"); err != nil {
		return err
	}
	if f.ToBlock, err = int64Query(c, "to_block"); err != nil {
		return err
	}
	if f.Since, err = timeQuery(c, "since"); err != nil {
		return err
	}
	if f.Until, err = timeQuery(c, "until"); err != nil {
		return err
	}
	if sc, err := int64Query(c, "status_code"); err != nil {
		return err
	} else if sc != nil {
		if *sc < 100 || *sc > 599 {
			return fieldError("status_code", fmt.Sprintf("must be an HTTP status 100..599, got %d", *sc))
		}
		f.StatusCode = int(*sc)
	}
	for _, v := range c.QueryParams()["arg"] {
		a, err := message.ParseArg(v)
		if err != nil {
			return fieldError("arg", err.Error())
		}
		f.Args = append(f.Args, a)
	}
	p, err := m.messages.List(c.Request().Context(), scopeOf(c), f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, listOf(p.Messages, p.NextCursor))
}

// messageOf fetches a message of the path's application.
func (m *Module) messageOf(c echo.Context) (message.Message, []message.Attempt, error) {
	return m.messages.GetIn(c.Request().Context(), scopeOf(c), c.Param("app_id"), c.Param("message_id"))
}

func (m *Module) handleGetMessage(c echo.Context) error {
	msg, atts, err := m.messageOf(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, messageDetail{Message: msg, Attempts: atts})
}

func (m *Module) handleReplayMessage(c echo.Context) error {
	msg, _, err := m.messageOf(c)
	if err != nil {
		return err
	}
	out, err := m.messages.Replay(c.Request().Context(), scopeOf(c), msg.ID)
	if err != nil {
		return err
	}
	m.audit(c, "message.replay", msg.AppID, msg.ID, nil)
	return c.JSON(http.StatusAccepted, out)
}

func (m *Module) handleEndpointHealth(c echo.Context) error {
	appID, id := c.Param("app_id"), c.Param("endpoint_id")
	ws, err := m.messages.Health(c.Request().Context(), scopeOf(c), appID, id, time.Now())
	if err != nil {
		return err
	}
	out := endpointHealth{EndpointID: id, Windows: ws}
	// Health checked the endpoint is the caller's; Redis trouble leaves
	// the backlog out rather than failing the health answer.
	if r, err := endpoint.RateLimitedNow(c.Request().Context(), m.rdb, m.keys, appID, id); err == nil && r != nil {
		out.RateLimited = &rateLimitedView{RateLimit: r.RateLimit, Backlog: r.Backlog, MaxBacklog: r.MaxBacklog,
			Since: r.Since.UTC(), CheckedAt: r.HeldAt.UTC()}
	}
	return c.JSON(http.StatusOK, out)
}

// newSecretView shows a verify key with its scheme.
func newSecretView(key string) secretView {
	return secretView{Secret: key, Signature: sign.SchemeOf(key)}
}
