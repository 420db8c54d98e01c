// Package signin checks email-and-password sign-ins for the admin API and
// the web UI alike: attempt limits per client address and per account,
// counted in Redis so they hold across processes and across both front
// doors; the client address taken from the socket unless a trusted proxy
// forwarded it; and an audit entry for every attempt that was checked.
// Password hashing itself is bounded by the tenant store.
package signin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/tenant"
)

// Config sets the limits; 0 turns one off.
type Config struct {
	// IPLimit is attempts per minute per client address (IPv6: per /64).
	IPLimit int
	// AccountLimit is failed attempts per minute per account (email), from
	// any number of addresses.
	AccountLimit int
}

// Guard checks sign-ins.
type Guard struct {
	store  *tenant.Store
	rdb    rueidis.Client
	keys   hook.Keys
	cfg    Config
	log    *zap.Logger
	window time.Duration
}

// New returns a Guard on the tenant store and Redis.
func New(store *tenant.Store, rdb rueidis.Client, keys hook.Keys, cfg Config, log *zap.Logger) *Guard {
	if log == nil {
		log = zap.NewNop()
	}
	return &Guard{store: store, rdb: rdb, keys: keys, cfg: cfg, log: log, window: time.Minute}
}

// Attempt is one sign-in.
type Attempt struct {
	Email, Password string
	IP              string // the client address, from ClientIP
	RequestID       string
	Via             string // "api" or "ui", for the audit log
}

// LimitError is returned when an attempt is over a limit; the password was
// not checked.
type LimitError struct {
	Account    bool // the per-account limit (else the per-address one)
	Limit      int
	RetryAfter time.Duration
}

func (e *LimitError) Error() string {
	what := "from this address"
	if e.Account {
		what = "for this account"
	}
	return fmt.Sprintf("more than %d sign-in attempts a minute %s", e.Limit, what)
}

// RetryAfterSeconds is RetryAfter rounded up, at least 1.
func (e *LimitError) RetryAfterSeconds() int {
	s := int((e.RetryAfter + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}

// SignIn checks an attempt against the limits, then the password. It
// returns the user, or a *LimitError, tenant.ErrBadCredentials,
// tenant.ErrBusy (too many password checks at once) or another error.
//
// Every checked attempt is audited (auth.login, auth.login_failed) with the
// client address, never the password. Failed attempts naming no account
// also get a row; they cannot fill the table without bound because every
// row costs an attempt under the per-address limit.
func (g *Guard) SignIn(ctx context.Context, a Attempt) (tenant.User, error) {
	now := time.Now()
	if err := g.count(ctx, now, "ip", bucket(a.IP), g.cfg.IPLimit, false); err != nil {
		return tenant.User{}, err
	}
	acct := accountKey(a.Email)
	if err := g.count(ctx, now, "account", acct, g.cfg.AccountLimit, true); err != nil {
		return tenant.User{}, err
	}
	u, err := g.store.Authenticate(ctx, a.Email, a.Password)
	switch {
	case err == nil:
		// Only failures count against the account: its owner signing in
		// often is no attack.
		g.refund(ctx, now, acct)
		g.audit(ctx, a, tenant.AuditEntry{Actor: u.ID, ActorType: "user", Action: "auth.login", ResourceID: u.ID})
		return u, nil
	case errors.Is(err, tenant.ErrBadCredentials):
		e := tenant.AuditEntry{Actor: "anonymous", ActorType: "anonymous", Action: "auth.login_failed"}
		if id, lerr := g.store.UserIDByEmail(ctx, a.Email); lerr == nil {
			e.ResourceID = id
		}
		g.audit(ctx, a, e)
		g.log.Info("sign-in failed", zap.String("ip", a.IP), zap.String("via", a.Via), zap.String("user", e.ResourceID),
			zap.String("request_id", a.RequestID))
		return tenant.User{}, err
	default:
		g.refund(ctx, now, acct) // not checked: no attempt spent
		return tenant.User{}, err
	}
}

// CountAccountAttempt counts a password check for an account outside
// sign-in (changing one's own password needs the current one), so it cannot
// be used to guess passwords past the per-account limit.
func (g *Guard) CountAccountAttempt(ctx context.Context, email string) error {
	return g.count(ctx, time.Now(), "account", accountKey(email), g.cfg.AccountLimit, true)
}

func (g *Guard) key(kind, ident string, now time.Time) string {
	win := now.UnixMilli() / g.window.Milliseconds()
	return g.keys.Key("login:" + kind + ":{" + ident + "}:" + strconv.FormatInt(win, 10))
}

// count adds one attempt to ident's counter of this window and fails with a
// LimitError once it is over limit. Redis trouble is logged, not fatal:
// an outage must not lock everyone out, and the tenant store still bounds
// how many passwords are checked at once.
func (g *Guard) count(ctx context.Context, now time.Time, kind, ident string, limit int, account bool) error {
	if limit <= 0 {
		return nil
	}
	key := g.key(kind, ident, now)
	res := g.rdb.DoMulti(ctx,
		g.rdb.B().Incr().Key(key).Build(),
		g.rdb.B().Pexpire().Key(key).Milliseconds(2*g.window.Milliseconds()).Build())
	n, err := res[0].AsInt64()
	if err != nil {
		g.log.Warn("sign-in limiter unavailable", zap.String("limit", kind), zap.Error(err))
		return nil
	}
	if n > int64(limit) {
		win := g.window.Milliseconds()
		left := time.Duration(win-now.UnixMilli()%win) * time.Millisecond
		return &LimitError{Account: account, Limit: limit, RetryAfter: left}
	}
	return nil
}

func (g *Guard) refund(ctx context.Context, now time.Time, acct string) {
	if g.cfg.AccountLimit <= 0 {
		return
	}
	key := g.key("account", acct, now)
	res := g.rdb.DoMulti(ctx, g.rdb.B().Decr().Key(key).Build(),
		g.rdb.B().Pexpire().Key(key).Milliseconds(2*g.window.Milliseconds()).Build())
	if err := res[0].Error(); err != nil {
		g.log.Warn("sign-in limiter unavailable", zap.String("limit", "account"), zap.Error(err))
	}
}

func (g *Guard) audit(ctx context.Context, a Attempt, e tenant.AuditEntry) {
	e.RequestID = a.RequestID
	e.Details, _ = json.Marshal(map[string]string{"ip": a.IP, "via": a.Via})
	if err := g.store.Audit(ctx, e); err != nil {
		g.log.Error("audit sign-in", zap.String("action", e.Action), zap.Error(err))
	}
}

// accountKey names an account's counter: a hash of the normalised email,
// so whatever a client sends, the key has a fixed length.
func accountKey(email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
	return hex.EncodeToString(sum[:16])
}
