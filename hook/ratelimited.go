package hook

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// RateLimitedName is the Redis hash (under the prefix) of the endpoints
// whose rate limit holds their waiting work back: field = endpoint id,
// value = RateLimited.String(). Deliver writes it (ratelimited.lua, one key,
// so the episode is decided atomically across deliver processes); admin and
// the UI read it to show the state. It carries the {deliver} hash tag of the
// other delivery keys.
const RateLimitedName = "{deliver}:ratelimited"

// RateLimited is the hash of rate-limit backlogs.
func (k Keys) RateLimited() string { return k.Prefix + RateLimitedName }

// RateLimited is one endpoint's rate-limit backlog episode: since when its
// rate limit has held its waiting messages back, how many were waiting at
// the last check and at most, the limit, and when a deliver process last
// saw the limiter hold it. Encoded "<since ms>:<held ms>:<backlog>:<max
// backlog>:<rate limit>:<app id>" (the app id last: it is the only field
// that is not a number). ratelimited.lua reads and writes the same layout.
type RateLimited struct {
	AppID      string
	RateLimit  int // events/s that held it back: the endpoint's, else its plan's
	Since      time.Time
	HeldAt     time.Time // last time a deliver process saw the limiter hold it
	Backlog    int64     // messages due and not yet sent, at the last check
	MaxBacklog int64     // the largest Backlog of the episode
}

// String encodes r as the hash value.
func (r RateLimited) String() string {
	return fmt.Sprintf("%d:%d:%d:%d:%d:%s", r.Since.UnixMilli(), r.HeldAt.UnixMilli(), r.Backlog, r.MaxBacklog, r.RateLimit, r.AppID)
}

// ParseRateLimited parses a RateLimited hash value.
func ParseRateLimited(s string) (RateLimited, error) {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 {
		return RateLimited{}, fmt.Errorf("rate-limit backlog %q: want 6 fields", s)
	}
	var n [5]int64
	for i := range n {
		v, err := strconv.ParseInt(parts[i], 10, 64)
		if err != nil || v < 0 {
			return RateLimited{}, fmt.Errorf("rate-limit backlog %q: field %d is not a count", s, i+1)
		}
		n[i] = v
	}
	return RateLimited{Since: time.UnixMilli(n[0]), HeldAt: time.UnixMilli(n[1]), Backlog: n[2], MaxBacklog: n[3],
		RateLimit: int(n[4]), AppID: parts[5]}, nil
}
