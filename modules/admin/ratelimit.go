package admin

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/rueidis"
)

var (
	//go:embed ratelimit.lua
	rateLimitSrc    string
	rateLimitScript = rueidis.NewLuaScript(rateLimitSrc)
)

// limiter counts requests per identity in fixed one-minute windows in
// Redis, so a limit holds across every process serving the API.
type limiter struct {
	rdb    rueidis.Client
	prefix string
	window time.Duration
}

func newLimiter(rdb rueidis.Client, prefix string) *limiter {
	return &limiter{rdb: rdb, prefix: prefix, window: time.Minute}
}

// allow counts one request of ident against limit per window. When over,
// it returns false and how long until the window ends.
func (l *limiter) allow(ctx context.Context, ident string, limit int) (bool, time.Duration, error) {
	if limit <= 0 {
		return true, 0, nil
	}
	win := time.Now().UnixMilli() / l.window.Milliseconds()
	key := l.prefix + "api:ratelimit:{" + ident + "}:" + strconv.FormatInt(win, 10)
	res, err := rateLimitScript.Exec(ctx, l.rdb, []string{key}, []string{strconv.FormatInt(l.window.Milliseconds(), 10)}).ToArray()
	if err != nil {
		return false, 0, fmt.Errorf("rate limit %s: %w", ident, err)
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("rate limit %s: unexpected reply", ident)
	}
	n, err := res[0].AsInt64()
	if err != nil {
		return false, 0, fmt.Errorf("rate limit %s: %w", ident, err)
	}
	ttl, err := res[1].AsInt64()
	if err != nil {
		return false, 0, fmt.Errorf("rate limit %s: %w", ident, err)
	}
	if n > int64(limit) {
		return false, time.Duration(ttl) * time.Millisecond, nil
	}
	return true, 0, nil
}
