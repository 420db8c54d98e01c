package ops

import (
	"strconv"
	"time"
)

// RateLimited is the data of endpoint.rate_limited: the endpoint's rate
// limit has held its waiting messages back for a while and the backlog is
// large enough to matter (deliver's rule: modules/deliver/ratebacklog.go).
type RateLimited struct {
	EndpointID string `json:"endpoint_id"`
	AppID      string `json:"app_id"`
	RateLimit  int    `json:"rate_limit"` // events/s: the endpoint's own, else its plan's
	Backlog    int64  `json:"backlog"`    // messages due and not yet sent when it was noticed
	Since      string `json:"since"`      // RFC 3339: when the limiter started holding them back
}

// Reasons a rate-limit episode ends.
const (
	ClearedDrained = "drained"  // the backlog fell below about one second of sending
	ClearedNotHeld = "not_held" // the limiter no longer holds it: the endpoint was disabled or deleted, its breaker opened, or its limit raised
)

// RateLimitCleared is the data of endpoint.rate_limit_cleared, the end of
// the episode an endpoint.rate_limited began (same since).
type RateLimitCleared struct {
	EndpointID      string `json:"endpoint_id"`
	AppID           string `json:"app_id"`
	RateLimit       int    `json:"rate_limit"`
	Backlog         int64  `json:"backlog"`     // messages still waiting at the end
	MaxBacklog      int64  `json:"max_backlog"` // the most held back at once during the episode
	Since           string `json:"since"`       // RFC 3339, as in endpoint.rate_limited
	DurationSeconds int64  `json:"duration_seconds"`
	Reason          string `json:"reason"` // drained or not_held
}

// rateKey is the events' key: the endpoint and the episode's start, so
// every deliver process reporting one episode makes one webhook of each.
func rateKey(endpointID string, since time.Time) string {
	return endpointID + ":" + strconv.FormatInt(since.UnixMilli(), 10)
}

// RateLimitedEvent is the endpoint.rate_limited event of an episode.
func RateLimitedEvent(d RateLimited, since, at time.Time) Event {
	d.Since = since.UTC().Format(time.RFC3339)
	return Event{Type: EndpointRateLimited, Key: rateKey(d.EndpointID, since), Subject: d.EndpointID, At: at, Data: d}
}

// RateLimitClearedEvent is the endpoint.rate_limit_cleared event of an
// episode that started at since.
func RateLimitClearedEvent(d RateLimitCleared, since, at time.Time) Event {
	d.Since = since.UTC().Format(time.RFC3339)
	d.DurationSeconds = int64(at.Sub(since).Seconds())
	return Event{Type: EndpointRateLimitCleared, Key: rateKey(d.EndpointID, since), Subject: d.EndpointID, At: at, Data: d}
}
