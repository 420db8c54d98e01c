package deliver

import (
	"testing"
	"time"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/modules/deliver/retry"
)

func TestDecideTurnsEachAttemptIntoTheMessagesNextState(t *testing.T) {
	policy := retry.Policy{Schedule: []time.Duration{0, 5 * time.Second, time.Minute}, MinRetryAfter: time.Second,
		MaxRetryAfter: time.Hour}
	for _, c := range []struct {
		name string
		a    attempt
		done int
		want outcome
	}{
		{"2xx succeeds", attempt{status: 204}, 1, outcome{state: hook.StateSucceeded, health: healthUp}},
		{"2xx with a body cut short still succeeds", attempt{status: 200, errText: "response body cut short"}, 1,
			outcome{state: hook.StateSucceeded, health: healthUp}},
		{"410 is dead and disables", attempt{status: 410, errClass: "http_4xx"}, 1,
			outcome{state: hook.StateDead, disable: "endpoint answered 410 Gone", health: healthUp}},
		{"final 4xx is dead, endpoint up", attempt{status: 400, errClass: "http_4xx"}, 1,
			outcome{state: hook.StateDead, health: healthUp}},
		{"unfollowed redirect is dead, endpoint up", attempt{status: 302, errClass: "redirect"}, 1,
			outcome{state: hook.StateDead, health: healthUp}},
		{"5xx retries on the schedule", attempt{status: 503, errClass: "http_5xx"}, 1,
			outcome{state: hook.StateFailed, after: 5 * time.Second, health: healthDown}},
		{"409 retries", attempt{status: 409, errClass: "http_4xx"}, 2,
			outcome{state: hook.StateFailed, after: time.Minute, health: healthDown}},
		{"429 honours Retry-After", attempt{status: 429, errClass: "http_4xx", retryAfter: 2 * time.Minute}, 1,
			outcome{state: hook.StateFailed, after: 2 * time.Minute, health: healthDown}},
		{"Retry-After below the floor is raised", attempt{status: 503, errClass: "http_5xx", retryAfter: time.Millisecond}, 1,
			outcome{state: hook.StateFailed, after: time.Second, health: healthDown}},
		{"schedule exhausted is dead", attempt{status: 500, errClass: "http_5xx"}, 3,
			outcome{state: hook.StateDead, health: healthDown}},
		{"timeout retries", attempt{errClass: "timeout"}, 1,
			outcome{state: hook.StateFailed, after: 5 * time.Second, health: healthDown}},
		{"connection refused retries", attempt{errClass: "connect"}, 1,
			outcome{state: hook.StateFailed, after: 5 * time.Second, health: healthDown}},
		{"ssrf refusal is dead, says nothing of health", attempt{errClass: "ssrf"}, 1, outcome{state: hook.StateDead}},
		{"too many redirects is dead", attempt{errClass: "redirect"}, 1, outcome{state: hook.StateDead}},
		{"a request that cannot be built is dead", attempt{errClass: "request"}, 1, outcome{state: hook.StateDead}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := decide(c.a, c.done, policy); got != c.want {
				t.Fatalf("decide = %+v, want %+v", got, c.want)
			}
		})
	}
}
