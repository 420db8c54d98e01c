package deliver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/modules/deliver/retry"
	"github.com/ethhook/ethhook/sign"
)

// endpoint is what a sender needs to know about one endpoint, cached for
// endpointTTL or until the endpoint service announces a change.
type endpoint struct {
	id             string
	appID          string
	url            string
	enabled        bool
	rateLimit      int // events/s, 0 = unlimited
	allowRedirects bool
	fifo           bool              // ordering fifo: its lane pulls in chain order (fifo.go)
	headers        map[string]string // custom static headers (validated by package endpoint)
	policy         retry.Policy
	key            sign.Signer // the current secret: whsec_ (v1) or whsk_ (v1a)
	old            []oldKey    // rotated-out secrets, newest expiry first
	loaded         time.Time
	missing        bool
}

const endpointTTL = 30 * time.Second

// oldKey is a rotated-out secret that signs until expires.
type oldKey struct {
	key     sign.Signer
	expires time.Time
}

// keys returns the signing keys valid at now: the current one, plus every
// old one until its rotation overlap ends.
func (e *endpoint) keys(now time.Time) []sign.Signer {
	out := []sign.Signer{e.key}
	for _, o := range e.old {
		if now.Before(o.expires) {
			out = append(out, o.key)
		}
	}
	return out
}

type endpointCache struct {
	m  *Module
	mu sync.Mutex
	by map[string]*endpoint
}

func (c *endpointCache) invalidate(id string) {
	c.mu.Lock()
	delete(c.by, id)
	c.mu.Unlock()
}

func (c *endpointCache) peek(id string) *endpoint {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.by[id]
}

// get returns the cached endpoint, loading it when missing or stale.
func (c *endpointCache) get(ctx context.Context, id string) (*endpoint, error) {
	c.mu.Lock()
	e := c.by[id]
	c.mu.Unlock()
	if e != nil && time.Since(e.loaded) < endpointTTL {
		return e, nil
	}
	e, err := c.load(ctx, id)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.by[id] = e
	c.mu.Unlock()
	return e, nil
}

func (c *endpointCache) load(ctx context.Context, id string) (*endpoint, error) {
	m := c.m
	e := &endpoint{id: id, loaded: time.Now()}
	var (
		epRate, planRate int
		schedule         string
		secret           []byte
	)
	err := m.pool.QueryRow(ctx, `
		SELECT e.app_id, e.url, e.enabled, e.rate_limit, p.rate_limit, e.retry_schedule, e.allow_redirects,
		       e.secret_enc, e.ordering = 'fifo', e.headers
		FROM endpoints e JOIN applications a ON a.id = e.app_id JOIN plans p ON p.id = a.plan_id
		WHERE e.id = $1`, id).Scan(&e.appID, &e.url, &e.enabled, &epRate, &planRate, &schedule, &e.allowRedirects,
		&secret, &e.fifo, &e.headers)
	if errors.Is(err, pgx.ErrNoRows) {
		e.missing = true
		return e, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load endpoint %s: %w", id, err)
	}
	e.rateLimit = epRate
	if e.rateLimit == 0 {
		e.rateLimit = planRate
	}
	sched := m.schedule
	if strings.TrimSpace(schedule) != "" {
		s, err := config.ParseSchedule(strings.Split(schedule, ","))
		if err != nil {
			m.log.Warn("endpoint retry schedule is invalid, using the global one", zapEndpoint(id), zapErr(err))
		} else {
			sched = s
		}
	}
	e.policy = retry.Policy{Schedule: sched, Jitter: 0.2, MinRetryAfter: time.Second, MaxRetryAfter: m.cfg.MaxRetryAfter, Rand: m.rand}
	if e.key, err = m.openSecret(id, secret); err != nil {
		return nil, fmt.Errorf("endpoint %s secret: %w", id, err)
	}
	// Rotation keeps at most endpoint.MaxOldSecrets; the LIMIT only
	// bounds what a hand-edited table could hold.
	rows, err := m.pool.Query(ctx, `SELECT secret_enc, expires_at FROM endpoint_old_secrets
		WHERE endpoint_id = $1 AND expires_at > now() ORDER BY expires_at DESC LIMIT 16`, id)
	if err != nil {
		return nil, fmt.Errorf("load old secrets of endpoint %s: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var sealed []byte
		var o oldKey
		if err := rows.Scan(&sealed, &o.expires); err != nil {
			return nil, fmt.Errorf("load old secrets of endpoint %s: %w", id, err)
		}
		if o.key, err = m.openSecret(id, sealed); err != nil {
			return nil, fmt.Errorf("endpoint %s old secret: %w", id, err)
		}
		e.old = append(e.old, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load old secrets of endpoint %s: %w", id, err)
	}
	return e, nil
}

// openSecret opens a sealed secret into its signer; the secret's prefix
// picks the scheme, so an old secret of another scheme (the endpoint
// switched) signs in its own until its overlap ends.
func (m *Module) openSecret(id string, sealed []byte) (sign.Signer, error) {
	plain, err := m.box.Open(id, sealed)
	if err != nil {
		return sign.Signer{}, err
	}
	return sign.NewSigner(string(plain))
}
