package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"

	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/message"
	"github.com/ethhook/ethhook/tenant"
)

// EndpointsFrom adapts package endpoint's service to the pages. Rotated
// secrets keep signing next to the new one for overlap (0 = 24h). send,
// when not nil, sends a test event (the "Send test event" button is shown
// only then).
func EndpointsFrom(s *endpoint.Service, overlap time.Duration, send func(ctx context.Context, scope hook.Scope, appID, endpointID string) (string, error)) Endpoints {
	if overlap <= 0 {
		overlap = 24 * time.Hour
	}
	return &endpointAdapter{s: s, overlap: overlap, send: send}
}

type endpointAdapter struct {
	s       *endpoint.Service
	overlap time.Duration
	send    func(ctx context.Context, scope hook.Scope, appID, endpointID string) (string, error)
}

var indexSuffix = regexp.MustCompile(`^([a-z_]+)\[(\d+)\](.*)$`)

// uiErr turns the endpoint service's errors into the UI's: field errors
// keyed by the form's field names ("addresses[2]" -> "addresses"), and
// the plan's endpoint limit as a form error.
func uiErr(err error) error {
	var ve *endpoint.ValidationError
	if errors.As(err, &ve) {
		out := map[string]string{}
		for k, v := range ve.Fields {
			if m := indexSuffix.FindStringSubmatch(k); m != nil {
				k, v = m[1], "entry "+m[2]+m[3]+": "+v
			}
			if old, ok := out[k]; ok {
				v = old + "; " + v
			}
			out[k] = v
		}
		return &tenant.ValidationError{Fields: out}
	}
	if errors.Is(err, endpoint.ErrLimitReached) {
		return &tenant.ValidationError{Fields: map[string]string{"plan": err.Error() + "; ask an admin to raise the plan"}}
	}
	return err
}

func (a *endpointAdapter) List(ctx context.Context, scope hook.Scope, appID, cursor string, limit int) ([]hook.Endpoint, string, error) {
	eps, next, err := a.s.List(ctx, scope, appID, cursor, limit)
	return eps, next, uiErr(err)
}

func (a *endpointAdapter) Get(ctx context.Context, scope hook.Scope, appID, id string) (hook.Endpoint, error) {
	ep, err := a.s.Get(ctx, scope, appID, id)
	return ep, uiErr(err)
}

func (a *endpointAdapter) Create(ctx context.Context, scope hook.Scope, appID string, ep hook.Endpoint) (hook.Endpoint, error) {
	conf := ep.Confirmations
	fin := hook.FormatFinality(ep.Stage, ep.Confirmations)
	in := endpoint.Input{
		URL: ep.URL, Description: ep.Description, Filter: ep.Filter, Confirmations: &conf, Finality: &fin, TwoPhase: ep.TwoPhase,
		BatchMax: ep.BatchMax, BatchWaitMS: ep.BatchWaitMS, RateLimit: ep.RateLimit,
		RetrySchedule: ep.RetrySchedule, AllowRedirects: ep.AllowRedirects, Headers: ep.Headers,
		Ordering: ep.Ordering, FIFOKey: ep.FIFOKey, Signature: ep.Signature,
	}
	if ep.History != nil { // the form's from_block
		from := ep.History.FromBlock
		in.FromBlock = &from
	}
	out, _, err := a.s.Create(ctx, scope, appID, in)
	if err != nil {
		return out, uiErr(err)
	}
	if !ep.Enabled {
		return a.SetEnabled(ctx, scope, appID, out.ID, false)
	}
	return out, nil
}

func (a *endpointAdapter) Update(ctx context.Context, scope hook.Scope, appID, id string, ep hook.Endpoint) (hook.Endpoint, error) {
	fin := hook.FormatFinality(ep.Stage, ep.Confirmations)
	out, err := a.s.Update(ctx, scope, appID, id, endpoint.Patch{
		URL: &ep.URL, Description: &ep.Description, Filter: &ep.Filter, Confirmations: &ep.Confirmations, Finality: &fin, TwoPhase: &ep.TwoPhase,
		BatchMax: &ep.BatchMax, BatchWaitMS: &ep.BatchWaitMS, RateLimit: &ep.RateLimit,
		RetrySchedule: &ep.RetrySchedule, AllowRedirects: &ep.AllowRedirects, Headers: &ep.Headers,
		Ordering: &ep.Ordering, FIFOKey: &ep.FIFOKey, Signature: nonEmpty(ep.Signature),
	})
	return out, uiErr(err)
}

func (a *endpointAdapter) Delete(ctx context.Context, scope hook.Scope, appID, id string) error {
	return uiErr(a.s.Delete(ctx, scope, appID, id))
}

func (a *endpointAdapter) SetEnabled(ctx context.Context, scope hook.Scope, appID, id string, enabled bool) (hook.Endpoint, error) {
	if enabled {
		ep, err := a.s.Enable(ctx, scope, appID, id)
		return ep, uiErr(err)
	}
	ep, err := a.s.Disable(ctx, scope, appID, id, "disabled in the web UI")
	return ep, uiErr(err)
}

func (a *endpointAdapter) Secret(ctx context.Context, scope hook.Scope, appID, id string) (string, error) {
	s, err := a.s.Secret(ctx, scope, appID, id)
	return s, uiErr(err)
}

func (a *endpointAdapter) RotateSecret(ctx context.Context, scope hook.Scope, appID, id string) (string, error) {
	s, err := a.s.RotateSecret(ctx, scope, appID, id, a.overlap)
	return s, uiErr(err)
}

// ErrNoTestSender is returned by SendTest when no sender was wired.
var ErrNoTestSender = errors.New("sending test events is not available in this build")

func (a *endpointAdapter) SendTest(ctx context.Context, scope hook.Scope, appID, id string) (string, error) {
	if a.send == nil {
		return "", ErrNoTestSender
	}
	id, err := a.send(ctx, scope, appID, id)
	return id, uiErr(err)
}

// CanSendTest reports whether the test button is useful.
func (a *endpointAdapter) CanSendTest() bool { return a.send != nil }

// ErrCannotReplay is returned by Messages.Replay for a message that is
// being delivered or held at quota right now.
var ErrCannotReplay = errors.New("this message cannot be replayed now: it is being delivered or held at the quota; try again shortly")

// MessagesFrom adapts package message's service to the delivery pages.
// Every call is narrowed to the page's application: a message or endpoint
// of another application is hook.ErrNotFound, even for an admin who may
// see both.
func MessagesFrom(s *message.Service) Messages { return &messageAdapter{s: s} }

type messageAdapter struct{ s *message.Service }

// appScope narrows scope to the one application appID: message's queries
// then require app_id = appID on top of the caller's own visibility (an
// admin's every application, a member's memberships, a key's one app).
func appScope(scope hook.Scope, appID string) (hook.Scope, error) {
	switch {
	case appID == "":
		return hook.Scope{}, hook.ErrNotFound
	case scope.AppID != "" && scope.AppID != appID:
		return hook.Scope{}, hook.ErrNotFound
	case scope.Admin:
		return hook.Scope{AppID: appID}, nil
	case scope.UserID == "" && scope.AppID == "":
		return hook.Scope{}, hook.ErrNotFound
	}
	return hook.Scope{AppID: appID, UserID: scope.UserID}, nil
}

// messageErr turns the message service's errors into the UI's.
func messageErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, message.ErrConflict), errors.Is(err, message.ErrEndpointDisabled):
		return fmt.Errorf("%w (%v)", ErrCannotReplay, err)
	case errors.Is(err, message.ErrInvalid):
		field := "filter"
		msg := err.Error()
		for _, f := range []string{"state", "cursor", "endpoint"} {
			if strings.Contains(msg, f) {
				field = f
				break
			}
		}
		if strings.Contains(msg, "range") {
			field = "since"
		}
		return &tenant.ValidationError{Fields: map[string]string{field: strings.TrimPrefix(msg, message.ErrInvalid.Error()+": ")}}
	}
	return err
}

func blockPtr(n *uint64) *int64 {
	if n == nil {
		return nil
	}
	v := int64(min(*n, math.MaxInt64))
	return &v
}

func timeOf(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

func uiMessage(m message.Message) Message {
	return Message{
		ID: m.ID, AppID: m.AppID, EndpointID: m.EndpointID, EventID: m.EventID, Type: m.Type, WebhookID: m.WebhookID,
		ChainID: uint64(m.ChainID), BlockNumber: uint64(m.BlockNumber), BlockHash: m.BlockHash, TxHash: m.TxHash,
		Payload: m.Payload, State: m.State, Attempts: m.Attempts, NextAttemptAt: m.NextAttemptAt,
		LastStatus: m.LastStatus, LastError: m.LastError, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt,
	}
}

func headersJSON(h map[string]string) json.RawMessage {
	if h == nil {
		return nil
	}
	b, err := json.Marshal(h)
	if err != nil {
		return nil
	}
	return b
}

func (a *messageAdapter) List(ctx context.Context, scope hook.Scope, appID string, f MessageFilter, cursor string, limit int) ([]Message, string, error) {
	sc, err := appScope(scope, appID)
	if err != nil {
		return nil, "", err
	}
	p, err := a.s.List(ctx, sc, message.Filter{
		AppID: appID, EndpointID: f.EndpointID, State: f.State, EventID: f.EventID, TxHash: f.TxHash,
		FromBlock: blockPtr(f.FromBlock), ToBlock: blockPtr(f.ToBlock), Since: timeOf(f.Since), Until: timeOf(f.Until),
		Cursor: cursor, Limit: limit,
	})
	if err != nil {
		return nil, "", messageErr(err)
	}
	out := make([]Message, 0, len(p.Messages))
	for _, m := range p.Messages {
		if m.AppID != appID {
			continue // never: the scope requires it; kept as a second lock
		}
		out = append(out, uiMessage(m))
	}
	return out, p.NextCursor, nil
}

// Get returns the message with its attempts newest first.
func (a *messageAdapter) Get(ctx context.Context, scope hook.Scope, appID, id string) (Message, []Attempt, error) {
	sc, err := appScope(scope, appID)
	if err != nil {
		return Message{}, nil, err
	}
	m, atts, err := a.s.Get(ctx, sc, id)
	if err != nil {
		return Message{}, nil, messageErr(err)
	}
	if m.AppID != appID {
		return Message{}, nil, hook.ErrNotFound
	}
	out := make([]Attempt, len(atts))
	for i, at := range atts {
		out[len(atts)-1-i] = Attempt{
			Attempt: at.Attempt, StatusCode: at.StatusCode, ErrorClass: at.ErrorClass, Error: at.Error,
			RequestHeaders: headersJSON(at.RequestHeaders), ResponseHeaders: headersJSON(at.ResponseHeaders),
			ResponseExcerpt: at.ResponseExcerpt, LatencyMS: at.LatencyMS, CreatedAt: at.CreatedAt,
		}
	}
	return uiMessage(m), out, nil
}

// Health is the endpoint's health over the last hour and day.
func (a *messageAdapter) Health(ctx context.Context, scope hook.Scope, appID, id string) ([]message.Health, error) {
	hs, err := a.s.Health(ctx, scope, appID, id, time.Now())
	return hs, uiErr(err)
}

func (a *messageAdapter) Replay(ctx context.Context, scope hook.Scope, appID, id string) error {
	sc, err := appScope(scope, appID)
	if err != nil {
		return err
	}
	_, err = a.s.Replay(ctx, sc, id)
	return messageErr(err)
}

func (a *messageAdapter) ReplayRange(ctx context.Context, scope hook.Scope, appID string, r ReplayRange) (int, error) {
	sc, err := appScope(scope, appID)
	if err != nil {
		return 0, err
	}
	n, err := a.s.ReplayRange(ctx, sc, message.Range{
		EndpointID: r.EndpointID, Since: timeOf(r.Since), Until: timeOf(r.Until),
		FromBlock: blockPtr(r.FromBlock), ToBlock: blockPtr(r.ToBlock), OnlyFailed: r.OnlyFailed,
	})
	if errors.Is(err, message.ErrEndpointDisabled) {
		return 0, &tenant.ValidationError{Fields: map[string]string{"endpoint": err.Error()}}
	}
	if errors.Is(err, hook.ErrNotFound) {
		// The endpoint is not this application's: say so on the form.
		return 0, &tenant.ValidationError{Fields: map[string]string{"endpoint": "no such endpoint in this application"}}
	}
	return n, messageErr(err)
}

// nonEmpty is nil for "": a form without the field changes nothing (an
// empty signature would switch an ed25519 endpoint back to hmac).
func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
