package ui

import (
	"context"
	"errors"
	"regexp"
	"time"

	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/hook"
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
	out, _, err := a.s.Create(ctx, scope, appID, endpoint.Input{
		URL: ep.URL, Description: ep.Description, Filter: ep.Filter, Confirmations: &conf,
		BatchMax: ep.BatchMax, BatchWaitMS: ep.BatchWaitMS, RateLimit: ep.RateLimit,
		RetrySchedule: ep.RetrySchedule, AllowRedirects: ep.AllowRedirects,
	})
	if err != nil {
		return out, uiErr(err)
	}
	if !ep.Enabled {
		return a.SetEnabled(ctx, scope, appID, out.ID, false)
	}
	return out, nil
}

func (a *endpointAdapter) Update(ctx context.Context, scope hook.Scope, appID, id string, ep hook.Endpoint) (hook.Endpoint, error) {
	out, err := a.s.Update(ctx, scope, appID, id, endpoint.Patch{
		URL: &ep.URL, Description: &ep.Description, Filter: &ep.Filter, Confirmations: &ep.Confirmations,
		BatchMax: &ep.BatchMax, BatchWaitMS: &ep.BatchWaitMS, RateLimit: &ep.RateLimit,
		RetrySchedule: &ep.RetrySchedule, AllowRedirects: &ep.AllowRedirects,
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
