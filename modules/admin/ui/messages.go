package ui

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ethhook/ethhook/hook"
)

// Message is one webhook message as the delivery pages show it.
type Message struct {
	ID, AppID, EndpointID string
	EventID, Type         string
	WebhookID             string
	ChainID               uint64
	BlockNumber           uint64
	BlockHash, TxHash     string
	Payload               json.RawMessage
	State                 string
	Attempts              int
	NextAttemptAt         *time.Time
	LastStatus            *int
	LastError             string
	CreatedAt, UpdatedAt  time.Time
}

// Attempt is one delivery attempt of a message.
type Attempt struct {
	Attempt         int
	StatusCode      *int
	ErrorClass      string
	Error           string
	RequestHeaders  json.RawMessage
	ResponseHeaders json.RawMessage
	ResponseExcerpt string
	LatencyMS       int
	CreatedAt       time.Time
}

// MessageFilter narrows the delivery list.
type MessageFilter struct {
	EndpointID string
	State      string
	EventID    string
	TxHash     string
	FromBlock  *uint64
	ToBlock    *uint64
	Since      *time.Time
	Until      *time.Time
}

// ReplayRange selects an endpoint's messages to send again.
type ReplayRange struct {
	EndpointID string
	Since      *time.Time
	Until      *time.Time
	FromBlock  *uint64
	ToBlock    *uint64
	OnlyFailed bool // only failed and dead messages
}

// Messages is the message service the delivery pages need; package
// message's service satisfies it through a small adapter.
type Messages interface {
	List(ctx context.Context, scope hook.Scope, appID string, f MessageFilter, cursor string, limit int) ([]Message, string, error)
	Get(ctx context.Context, scope hook.Scope, appID, id string) (Message, []Attempt, error)
	Replay(ctx context.Context, scope hook.Scope, appID, id string) error
	ReplayRange(ctx context.Context, scope hook.Scope, appID string, r ReplayRange) (int, error)
}

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
	Messages  []Message
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
func parseMessageQuery(c echo.Context) (messageQuery, MessageFilter, map[string]string) {
	q := messageQuery{Endpoint: c.QueryParam("endpoint"), State: c.QueryParam("state"), Q: strings.TrimSpace(c.QueryParam("q")),
		FromBlock: c.QueryParam("from_block"), ToBlock: c.QueryParam("to_block"), Since: c.QueryParam("since"), Until: c.QueryParam("until")}
	f := MessageFilter{EndpointID: q.Endpoint, State: q.State}
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

func parseBlock(s, field string, fields map[string]string) *uint64 {
	if s = strings.TrimSpace(s); s == "" {
		return nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		fields[field] = "must be a block number"
		return nil
	}
	return &n
}

// parseLocalTime reads an <input type=datetime-local> value (taken as UTC)
// or RFC 3339.
func parseLocalTime(s, field string, fields map[string]string) *time.Time {
	if s = strings.TrimSpace(s); s == "" {
		return nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return &t
		}
	}
	fields[field] = "must be a date and time (UTC)"
	return nil
}

func (u *UI) messagesData(c echo.Context, a string) (messagesData, map[string]string, error) {
	ctx, scope := c.Request().Context(), sess(c).Scope()
	q, f, fields := parseMessageQuery(c)
	d := messagesData{Filter: q, States: messageStates, Cursor: c.QueryParam("cursor"), EPByID: map[string]hook.Endpoint{}}
	d.Live = d.Cursor == ""
	if len(fields) > 0 {
		return d, fields, nil
	}
	var err error
	d.Messages, d.Next, err = u.messages.List(ctx, scope, a, f, d.Cursor, 50)
	if fe := fieldErrors(err); fe != nil {
		return d, fe, nil
	}
	if err != nil {
		return d, nil, err
	}
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

func (u *UI) messagesPage(c echo.Context) error {
	a, err := u.app(c)
	if err != nil {
		return u.fail(c, err)
	}
	d, fields, err := u.messagesData(c, a.ID)
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
	a, err := u.app(c)
	if err != nil {
		return u.fail(c, err)
	}
	d, fields, err := u.messagesData(c, a.ID)
	if err != nil {
		return u.fail(c, err)
	}
	if len(fields) > 0 {
		return c.NoContent(http.StatusNoContent)
	}
	return u.renderPart(c, http.StatusOK, "messages", "rows", view{App: a, Data: d})
}

type messageData struct {
	Message  Message
	Attempts []Attempt
	Endpoint *hook.Endpoint
	Part     bool // rendering the polled attempts fragment
}

func (u *UI) messagePage(c echo.Context) error {
	a, err := u.app(c)
	if err != nil {
		return u.fail(c, err)
	}
	ctx, scope := c.Request().Context(), sess(c).Scope()
	m, attempts, err := u.messages.Get(ctx, scope, a.ID, c.Param("msg"))
	if err != nil {
		return u.fail(c, err)
	}
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
	app, id := c.Param("app"), c.Param("msg")
	if err := u.messages.Replay(c.Request().Context(), sess(c).Scope(), app, id); err != nil {
		if errors.Is(err, ErrCannotReplay) {
			return u.errorPage(c, http.StatusConflict, err.Error())
		}
		if fe := fieldErrors(err); fe != nil {
			return u.errorPage(c, http.StatusUnprocessableEntity, err.Error())
		}
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
	r := ReplayRange{
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
	if r.Since == nil && r.FromBlock == nil {
		fields["since"] = "give a start time or a start block"
	}
	var n int
	if len(fields) == 0 {
		n, err = u.messages.ReplayRange(c.Request().Context(), sess(c).Scope(), a.ID, r)
		if fe := fieldErrors(err); fe != nil {
			fields = fe
		} else if err != nil {
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
