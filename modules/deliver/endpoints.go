package deliver

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

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
	fifo           bool           // ordering fifo: its lane pulls in chain order (fifo.go)
	custom         []customHeader // custom static headers (validated by package endpoint), ready to send
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

// endpointCache holds the endpoints lanes send to. Loads are batched: intake
// loads the endpoints of a whole batch of jobs in two queries (prefetch),
// while it claims their messages, instead of each new lane loading its own
// (with 10,000 endpoints that was two queries per webhook); a lane asking
// for an endpoint whose load is under way waits for it.
type endpointCache struct {
	m       *Module
	mu      sync.Mutex
	by      map[string]*endpoint
	loading map[string]*endpointLoad
	gen     uint64 // bumped by invalidate: a load that began before is not trusted
}

// endpointLoad is a load of some endpoints under way.
type endpointLoad struct {
	ids  []string
	done chan struct{}
	err  error
}

func (c *endpointCache) invalidate(id string) {
	c.mu.Lock()
	delete(c.by, id)
	c.gen++
	c.mu.Unlock()
}

func (c *endpointCache) peek(id string) *endpoint {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.by[id]
}

func (e *endpoint) fresh() bool { return e != nil && time.Since(e.loaded) < endpointTTL }

// get returns the cached endpoint, loading it when missing or stale (or
// waiting for a load of it already under way).
func (c *endpointCache) get(ctx context.Context, id string) (*endpoint, error) {
	for {
		c.mu.Lock()
		e, ld := c.by[id], c.loading[id]
		c.mu.Unlock()
		if e.fresh() {
			return e, nil
		}
		if ld == nil {
			ld = c.start([]string{id})
			if ld == nil {
				continue // another load began, or the endpoint was loaded, meanwhile
			}
			c.run(ctx, ld)
		}
		select {
		case <-ld.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if ld.err != nil {
			return nil, ld.err
		}
		c.mu.Lock()
		e = c.by[id]
		c.mu.Unlock()
		if e != nil {
			return e, nil // loaded, possibly marked stale by an invalidate: used once, reloaded next time
		}
	}
}

// prefetch loads, in the background, those of ids that are not cached or
// are stale and not being loaded already; get waits for it.
func (c *endpointCache) prefetch(ctx context.Context, ids []string) {
	if ld := c.start(ids); ld != nil {
		go c.run(ctx, ld)
	}
}

// start registers a load of the ids that need one; nil when none does.
func (c *endpointCache) start(ids []string) *endpointLoad {
	c.mu.Lock()
	defer c.mu.Unlock()
	ld := &endpointLoad{done: make(chan struct{})}
	for _, id := range ids {
		if c.by[id].fresh() || c.loading[id] != nil {
			continue
		}
		c.loading[id] = ld
		ld.ids = append(ld.ids, id)
	}
	if len(ld.ids) == 0 {
		return nil
	}
	return ld
}

// run performs a registered load and stores what it found.
func (c *endpointCache) run(ctx context.Context, ld *endpointLoad) {
	ids := ld.ids
	c.mu.Lock()
	gen := c.gen
	c.mu.Unlock()
	got, err := c.loadMany(ctx, ids)
	c.mu.Lock()
	for _, id := range ids {
		if c.loading[id] == ld {
			delete(c.loading, id)
		}
		if err != nil {
			continue
		}
		e := got[id]
		if e == nil {
			e = &endpoint{id: id, loaded: time.Now(), missing: true}
		}
		if c.gen != gen {
			e.loaded = time.Time{} // an announced change may postdate what was read
		}
		c.by[id] = e
	}
	c.mu.Unlock()
	ld.err = err
	close(ld.done)
}

// loadMany reads endpoints (with their plan's rate limit and their
// rotated-out secrets still signing) in two queries. Ids not found are
// not in the map.
func (c *endpointCache) loadMany(ctx context.Context, ids []string) (map[string]*endpoint, error) {
	m := c.m
	out := make(map[string]*endpoint, len(ids))
	rows, err := m.pool.Query(ctx, `
		SELECT e.id, e.app_id, e.url, e.enabled, e.rate_limit, p.rate_limit, e.retry_schedule, e.allow_redirects,
		       e.secret_enc, e.ordering = 'fifo', e.headers
		FROM endpoints e JOIN applications a ON a.id = e.app_id JOIN plans p ON p.id = a.plan_id
		WHERE e.id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("load %d endpoints: %w", len(ids), err)
	}
	secrets := map[string][]byte{}
	for rows.Next() {
		e := &endpoint{loaded: time.Now()}
		var (
			epRate, planRate int
			schedule         string
			secret           []byte
			headers          map[string]string
		)
		if err := rows.Scan(&e.id, &e.appID, &e.url, &e.enabled, &epRate, &planRate, &schedule, &e.allowRedirects,
			&secret, &e.fifo, &headers); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load %d endpoints: %w", len(ids), err)
		}
		e.custom = customHeaders(headers)
		e.rateLimit = epRate
		if e.rateLimit == 0 {
			e.rateLimit = planRate
		}
		sched := m.schedule
		if strings.TrimSpace(schedule) != "" {
			s, err := config.ParseSchedule(strings.Split(schedule, ","))
			if err != nil {
				m.log.Warn("endpoint retry schedule is invalid, using the global one", zapEndpoint(e.id), zapErr(err))
			} else {
				sched = s
			}
		}
		e.policy = retry.Policy{Schedule: sched, Jitter: 0.2, MinRetryAfter: time.Second, MaxRetryAfter: m.cfg.MaxRetryAfter, Rand: m.rand}
		out[e.id] = e
		secrets[e.id] = secret
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load %d endpoints: %w", len(ids), err)
	}
	for id, secret := range secrets {
		if out[id].key, err = m.openSecret(id, secret); err != nil {
			return nil, fmt.Errorf("endpoint %s secret: %w", id, err)
		}
	}
	if len(out) == 0 {
		return out, nil
	}
	// Rotation keeps at most endpoint.MaxOldSecrets; the limit of 16 only
	// bounds what a hand-edited table could hold.
	rows, err = m.pool.Query(ctx, `SELECT endpoint_id, secret_enc, expires_at FROM endpoint_old_secrets
		WHERE endpoint_id = ANY($1) AND expires_at > now() ORDER BY endpoint_id, expires_at DESC`, keys(out))
	if err != nil {
		return nil, fmt.Errorf("load old secrets of %d endpoints: %w", len(out), err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var sealed []byte
		var o oldKey
		if err := rows.Scan(&id, &sealed, &o.expires); err != nil {
			return nil, fmt.Errorf("load old secrets of %d endpoints: %w", len(out), err)
		}
		e := out[id]
		if e == nil || len(e.old) >= 16 {
			continue
		}
		if o.key, err = m.openSecret(id, sealed); err != nil {
			return nil, fmt.Errorf("endpoint %s old secret: %w", id, err)
		}
		e.old = append(e.old, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load old secrets of %d endpoints: %w", len(out), err)
	}
	return out, nil
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
