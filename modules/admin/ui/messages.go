package ui

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/message"
	"github.com/ethhook/ethhook/tenant"
)

func (u *UI) messageRoutes(a *routes) {
	a.GET("/apps/:app/messages", u.messagesPage)
	a.GET("/apps/:app/messages/rows", u.messageRows)
	a.GET("/apps/:app/messages/:msg", u.messagePage)
	a.POST("/apps/:app/messages/:msg/replay", u.replayMessage)
	a.POST("/apps/:app/replay", u.replayRange)
}

// messageStates are the states the filter offers.
var messageStates = []string{hook.StatePending, hook.StateDelivering, hook.StateSucceeded, hook.StateFailed, hook.StateDead, hook.StateQuotaExceeded}

type messagesData struct {
	Messages  []message.Message
	Next      string
	Cursor    string
	Filter    messageQuery
	Endpoints []hook.Endpoint
	EPByID    map[string]hook.Endpoint
	States    []string
	Quota     *quotaBanner
	Live      bool // the list refreshes itself (first page only)
	Replayed  string
}

// messageQuery is the filter form as typed (strings), kept for the form
// and the live list's URL.
type messageQuery struct {
	Endpoint, State, Q, FromBlock, ToBlock, Since, Until string
}

func (q messageQuery) Values() string {
	v := url.Values{}
	for _, kv := range [][2]string{{"endpoint", q.Endpoint}, {"state", q.State}, {"q", q.Q}, {"from_block", q.FromBlock},
		{"to_block", q.ToBlock}, {"since", q.Since}, {"until", q.Until}} {
		if kv[1] != "" {
			v.Set(kv[0], kv[1])
		}
	}
	return v.Encode()
}

// parseMessageQuery reads the filter; bad values become field errors.
func parseMessageQuery(c echo.Context, appID string) (messageQuery, message.Filter, map[string]string) {
	q := messageQuery{Endpoint: c.QueryParam("endpoint"), State: c.QueryParam("state"), Q: strings.TrimSpace(c.QueryParam("q")),
		FromBlock: c.QueryParam("from_block"), ToBlock: c.QueryParam("to_block"), Since: c.QueryParam("since"), Until: c.QueryParam("until")}
	f := message.Filter{AppID: appID, EndpointID: q.Endpoint, State: q.State}
	fields := map[string]string{}
	// One search box: a 0x transaction hash or an event id.
	switch {
	case strings.HasPrefix(q.Q, "0x") && len(q.Q) == 66:
		f.TxHash = strings.ToLower(q.Q)
	case q.Q != "":
		f.EventID = q.Q
	}
	f.FromBlock = parseBlock(q.FromBlock, "from_block", fields)
	f.ToBlock = parseBlock(q.ToBlock, "to_block", fields)
	f.Since = parseLocalTime(q.Since, "since", fields)
	f.Until = parseLocalTime(q.Until, "until", fields)
	return q, f, fields
}

func parseBlock(s, field string, fields map[string]string) *int64 {
	if s = strings.TrimSpace(s); s == "" {
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		fields[field] = "must be a block number"
		return nil
	}
	return &n
}

// parseLocalTime reads an <input type=datetime-local> value (taken as UTC)
// or RFC 3339; empty is the zero time.
func parseLocalTime(s, field string, fields map[string]string) time.Time {
	if s = strings.TrimSpace(s); s == "" {
		return time.Time{}
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t
		}
	}
	fields[field] = "must be a date and time (UTC)"
	return time.Time{}
}

func (u *UI) messagesData(c echo.Context, a string) (messagesData, map[string]string, error) {
	ctx, scope := c.Request().Context(), sess(c).Scope()
	q, f, fields := parseMessageQuery(c, a)
	d := messagesData{Filter: q, States: messageStates, Cursor: c.QueryParam("cursor"), EPByID: map[string]hook.Endpoint{}}
	d.Live = d.Cursor == ""
	if len(fields) > 0 {
		return d, fields, nil
	}
	f.Cursor, f.Limit = d.Cursor, 50
	p, err := u.messages.List(ctx, scope, f)
	if fe := fieldErrors(err); fe != nil {
		return d, fe, nil
	}
	if err != nil {
		return d, nil, err
	}
	d.Messages, d.Next = p.Messages, p.NextCursor
	if u.endpoints != nil {
		eps, _, err := u.endpoints.List(ctx, scope, a, "", 200)
		if err != nil {
			return d, nil, err
		}
		d.Endpoints = eps
		for _, e := range eps {
			d.EPByID[e.ID] = e
		}
	}
	return d, nil, nil
}

// appMessages is the application of the request and its list of
// messages as the query filters it (or the filter's field errors).
func (u *UI) appMessages(c echo.Context) (*tenant.Application, messagesData, map[string]string, error) {
	a, err := u.app(c)
	if err != nil {
		return nil, messagesData{}, nil, err
	}
	d, fields, err := u.messagesData(c, a.ID)
	return a, d, fields, err
}

func (u *UI) messagesPage(c echo.Context) error {
	a, d, fields, err := u.appMessages(c)
	if err != nil {
		return u.fail(c, err)
	}
	d.Quota = u.quotaBanner(c, a.ID)
	v := view{Title: "Deliveries", Nav: "apps", App: a, AppNav: "messages", Data: d, Fields: fields}
	status := http.StatusOK
	if len(fields) > 0 {
		v.Error, status = "The filter has errors.", http.StatusUnprocessableEntity
	}
	return u.render(c, status, "messages", v)
}

// messageRows is the list body the page polls every few seconds, so new
// deliveries and state changes appear without a reload.
func (u *UI) messageRows(c echo.Context) error {
	a, d, fields, err := u.appMessages(c)
	if err != nil {
		return u.fail(c, err)
	}
	if len(fields) > 0 {
		return c.NoContent(http.StatusNoContent)
	}
	return u.renderPart(c, http.StatusOK, "messages", "rows", view{App: a, Data: d})
}

type messageData struct {
	Message  message.Message
	Attempts []message.Attempt // newest first
	Endpoint *hook.Endpoint
	Part     bool // rendering the polled attempts fragment
}

func (u *UI) messagePage(c echo.Context) error {
	a, err := u.app(c)
	if err != nil {
		return u.fail(c, err)
	}
	ctx, scope := c.Request().Context(), sess(c).Scope()
	m, attempts, err := u.messages.GetIn(ctx, scope, a.ID, c.Param("msg"))
	if err != nil {
		return u.fail(c, err)
	}
	slices.Reverse(attempts)
	d := messageData{Message: m, Attempts: attempts}
	if u.endpoints != nil {
		if ep, err := u.endpoints.Get(ctx, scope, a.ID, m.EndpointID); err == nil {
			d.Endpoint = &ep
		}
	}
	if c.Request().Header.Get("HX-Request") != "" && c.QueryParam("part") == "attempts" {
		d.Part = true
		return u.renderPart(c, http.StatusOK, "message", "attempts", view{App: a, Data: d})
	}
	return u.render(c, http.StatusOK, "message", view{Title: "Message " + m.ID, Nav: "apps", App: a, AppNav: "messages", Data: d})
}

func (u *UI) replayMessage(c echo.Context) error {
	ctx, scope, app, id := c.Request().Context(), sess(c).Scope(), c.Param("app"), c.Param("msg")
	if _, _, err := u.messages.GetIn(ctx, scope, app, id); err != nil {
		return u.fail(c, err)
	}
	if _, err := u.messages.Replay(ctx, scope, id); err != nil {
		return u.fail(c, err)
	}
	u.audit(c, app, "message.replay", id, nil)
	u.flash(c, "Replay queued: the new attempt appears below when it is made.")
	return redirect(c, "/apps/"+app+"/messages/"+id)
}

func (u *UI) replayRange(c echo.Context) error {
	a, err := u.app(c)
	if err != nil {
		return u.fail(c, err)
	}
	fields := map[string]string{}
	r := message.Range{
		EndpointID: c.FormValue("endpoint"),
		Since:      parseLocalTime(c.FormValue("since"), "since", fields),
		Until:      parseLocalTime(c.FormValue("until"), "until", fields),
		FromBlock:  parseBlock(c.FormValue("from_block"), "from_block", fields),
		ToBlock:    parseBlock(c.FormValue("to_block"), "to_block", fields),
		OnlyFailed: c.FormValue("only_failed") != "",
	}
	if r.EndpointID == "" {
		fields["endpoint"] = "choose the endpoint to replay"
	}
	if r.Since.IsZero() && r.FromBlock == nil {
		fields["since"] = "give a start time or a start block"
	}
	ctx, scope := c.Request().Context(), sess(c).Scope()
	var n int
	if len(fields) == 0 && u.endpoints != nil {
		// As the API's replay: the endpoint must be this application's.
		if _, err := u.endpoints.Get(ctx, scope, a.ID, r.EndpointID); errors.Is(err, hook.ErrNotFound) {
			fields["endpoint"] = "no such endpoint in this application"
		} else if err != nil {
			return u.fail(c, err)
		}
	}
	if len(fields) == 0 {
		n, err = u.messages.ReplayRange(ctx, scope, r)
		switch fe := fieldErrors(err); {
		case fe != nil:
			fields = fe
		case errors.Is(err, message.ErrEndpointDisabled):
			fields["endpoint"] = err.Error()
		case err != nil:
			return u.fail(c, err)
		}
	}
	if len(fields) > 0 {
		d, _, err := u.messagesData(c, a.ID)
		if err != nil {
			return u.fail(c, err)
		}
		return u.render(c, http.StatusUnprocessableEntity, "messages", view{Title: "Deliveries", Nav: "apps", App: a, AppNav: "messages",
			Data: d, Fields: fields, Error: "Nothing was replayed: fix the replay form."})
	}
	u.audit(c, a.ID, "message.replay_range", r.EndpointID, map[string]any{"messages": n, "only_failed": r.OnlyFailed})
	u.flash(c, "Replay queued for "+strconv.Itoa(n)+" messages.")
	return redirect(c, "/apps/"+a.ID+"/messages?endpoint="+r.EndpointID)
}
