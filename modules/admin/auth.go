package admin

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/tenant"
)

// principal is the authenticated caller.
type principal struct {
	Scope     hook.Scope
	Actor     string // usr_... or key_...
	ActorType string // "user" or "api_key"
	// MustChangePassword: a user who may only change their password (the
	// bootstrap admin), see requireAuth.
	MustChangePassword bool
}

const principalKey = "ethhook.principal"

func callerOf(c echo.Context) principal {
	p, _ := c.Get(principalKey).(principal)
	return p
}

func scopeOf(c echo.Context) hook.Scope { return callerOf(c).Scope }

// tokenClaims are a login token's claims: the user and the credential
// version it was issued under (tenant.User.CredentialVersion); a token of
// an older version is refused.
type tokenClaims struct {
	jwt.RegisteredClaims
	Version int64 `json:"ver"`
}

// issueToken signs a login token for user id at credential version ver.
func (m *Module) issueToken(userID string, ver int64, now time.Time) (string, time.Time, error) {
	exp := now.Add(m.cfg.JWTTTL)
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, tokenClaims{RegisteredClaims: jwt.RegisteredClaims{
		Issuer:    "ethhook",
		Subject:   userID,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(exp),
	}, Version: ver})
	s, err := tok.SignedString(m.jwtKey)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	return s, exp, nil
}

// parseToken verifies a login token and returns its user id and
// credential version.
func (m *Module) parseToken(s string) (string, int64, error) {
	var claims tokenClaims
	_, err := jwt.ParseWithClaims(s, &claims, func(*jwt.Token) (any, error) { return m.jwtKey, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithIssuer("ethhook"),
		jwt.WithExpirationRequired(), jwt.WithLeeway(5*time.Second))
	if err != nil {
		return "", 0, err
	}
	if claims.Subject == "" {
		return "", 0, errors.New("token has no subject")
	}
	return claims.Subject, claims.Version, nil
}

// authenticate resolves the Authorization header to a principal: a JWT from
// login or an ethk_ API key.
func (m *Module) authenticate(c echo.Context) (principal, error) {
	h := c.Request().Header.Get(echo.HeaderAuthorization)
	scheme, cred, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || cred == "" {
		return principal{}, errUnauthorized
	}
	cred = strings.TrimSpace(cred)
	ctx := c.Request().Context()
	if strings.HasPrefix(cred, tenant.KeyPrefix) {
		k, err := m.store.AuthenticateKey(ctx, cred)
		if errors.Is(err, tenant.ErrBadKey) {
			return principal{}, errUnauthorized
		}
		if err != nil {
			return principal{}, err
		}
		return principal{Scope: hook.Scope{AppID: k.AppID}, Actor: k.ID, ActorType: "api_key"}, nil
	}
	uid, ver, err := m.parseToken(cred)
	if err != nil {
		return principal{}, errUnauthorized
	}
	// The user row is read on every request anyway (role, existence), so
	// revocation costs nothing more: a token issued before the last
	// password change, role change or logout is refused.
	u, err := m.store.UserByID(ctx, uid)
	if errors.Is(err, hook.ErrNotFound) {
		return principal{}, errUnauthorized // deleted since the token was issued
	}
	if err != nil {
		return principal{}, err
	}
	if ver != u.CredentialVersion {
		return principal{}, errUnauthorized
	}
	return userPrincipal(u), nil
}

func userPrincipal(u tenant.User) principal {
	return principal{Scope: hook.Scope{Admin: u.Role == tenant.RoleAdmin, UserID: u.ID}, Actor: u.ID, ActorType: "user",
		MustChangePassword: u.MustChangePassword}
}

// errPasswordChangeRequired answers a user who must change their password
// first (the bootstrap admin) on every route but the few that let them.
var errPasswordChangeRequired = &apiError{Status: http.StatusForbidden, Code: "password_change_required",
	Message: "this account must change its password first: POST " + Prefix + "/auth/password with current_password and new_password"}

// requireAuth authenticates and rate-limits the caller; admin routes also
// demand the admin role. A user who must change their password gets 403
// password_change_required except on routes marked beforePasswordChange.
func (m *Module) requireAuth(adminOnly, beforePasswordChange bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p, err := m.authenticate(c)
			if err != nil {
				return err
			}
			c.Set(principalKey, p)
			if err := m.rateLimit(c, p.ActorType+":"+p.Actor, m.cfg.RateLimit); err != nil {
				return err
			}
			if p.MustChangePassword && !beforePasswordChange {
				return errPasswordChangeRequired
			}
			if adminOnly && !p.Scope.Admin {
				return &apiError{Status: http.StatusForbidden, Code: "forbidden", Message: "admin role required"}
			}
			return next(c)
		}
	}
}

// rateLimit answers 429 with Retry-After once ident is over limit this minute.
func (m *Module) rateLimit(c echo.Context, ident string, limit int) error {
	ok, wait, err := m.limiter.allow(c.Request().Context(), ident, limit)
	if err != nil {
		// Redis trouble must not lock everyone out of the API: log and serve.
		m.log.Warn("rate limiter unavailable", zap.String("request_id", requestID(c)), zap.Error(err))
		return nil
	}
	if ok {
		return nil
	}
	m.metrics.rateLimited.Inc()
	secs := int(math.Ceil(wait.Seconds()))
	if secs < 1 {
		secs = 1
	}
	return &apiError{Status: http.StatusTooManyRequests, Code: "rate_limited",
		Message:    fmt.Sprintf("rate limit of %d requests per minute exceeded; retry after %d s", limit, secs),
		RetryAfter: secs}
}
