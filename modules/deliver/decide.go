package deliver

import (
	"net/http"
	"time"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/modules/deliver/retry"
)

// health is what an attempt says about its endpoint, for the breaker.
type health int

const (
	healthUnknown health = iota // the attempt says nothing (refused before sending: SSRF, bad URL)
	healthUp                    // the endpoint answered with a final HTTP status
	healthDown                  // timeout, connection error, 5xx, 429, ...
)

// outcome is what an attempt leads to: the message's next state, and what
// the lane and the endpoint learn from it.
type outcome struct {
	state   string        // hook.StateSucceeded, StateFailed or StateDead
	after   time.Duration // delay before the next attempt when state is failed
	disable string        // reason to disable the endpoint (410 Gone), "" to keep it
	health  health
}

// metricOutcome is the outcome label of ethhook_deliver_attempts_total.
func (o outcome) metricOutcome() string {
	switch o.state {
	case hook.StateSucceeded:
		return "success"
	case hook.StateFailed:
		return "retry"
	}
	return "dead"
}

// decide is the one place that turns an attempt into the message's next
// state: done is the attempts made since the retry schedule began (this one
// included), policy the endpoint's retry policy. It is pure: the caller
// applies the outcome (writer, breaker, endpoint cache).
func decide(a attempt, done int, policy retry.Policy) outcome {
	if a.status >= 200 && a.status < 300 && a.errClass == "" {
		return outcome{state: hook.StateSucceeded, health: healthUp}
	}
	if a.status == http.StatusGone {
		return outcome{state: hook.StateDead, disable: "endpoint answered 410 Gone", health: healthUp}
	}
	var retryable bool
	o := outcome{state: hook.StateDead}
	switch {
	case a.status != 0:
		retryable = retry.Retryable(a.status)
		o.health = healthUp // any final HTTP answer shows the endpoint is up
	default:
		// Refused before anything was sent: retrying cannot help, and it
		// says nothing about the endpoint's health.
		retryable = a.errClass != "ssrf" && a.errClass != "redirect" && a.errClass != "request"
	}
	if retryable {
		o.health = healthDown
		if d, more := policy.Next(done, a.retryAfter); more {
			o.state, o.after = hook.StateFailed, d
		}
	}
	return o
}
