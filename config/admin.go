package config

import (
	"errors"
	"fmt"
	"net/mail"
	"net/netip"
	"time"
)

// Admin configures the admin API and web UI (owned by modules/admin).
type Admin struct {
	// JWTSecret signs login tokens (HS256); also read from ETHHOOK_JWT_SECRET.
	// Empty: a random secret per process (tokens die with the process and
	// are not accepted by other replicas).
	JWTSecret string        `mapstructure:"jwt_secret" secret:"true"`
	JWTTTL    time.Duration `mapstructure:"jwt_ttl"`
	// BodyLimit caps request bodies, in bytes.
	BodyLimit int64 `mapstructure:"body_limit"`
	// RateLimit is the API requests per minute allowed per API key or user,
	// counted in Redis so it holds across processes; 0 turns it off.
	RateLimit int `mapstructure:"rate_limit"`
	// LoginRateLimit is the login attempts per minute allowed per client IP
	// (an IPv6 client counts per /64); 0 turns it off.
	LoginRateLimit int `mapstructure:"login_rate_limit"`
	// LoginAccountRateLimit is the failed login attempts per minute allowed
	// per account (email), from any number of addresses; 0 turns it off.
	LoginAccountRateLimit int `mapstructure:"login_account_rate_limit"`
	// MaxConcurrentLogins caps the password hashes (argon2id, 19 MiB each)
	// computed at once; further sign-ins wait briefly, then get 503.
	MaxConcurrentLogins int `mapstructure:"max_concurrent_logins"`
	// TrustedProxies are the CIDRs of reverse proxies whose X-Forwarded-For
	// is believed. Empty (the default): the client address is the socket's,
	// and X-Forwarded-For / X-Real-IP are ignored.
	TrustedProxies []string `mapstructure:"trusted_proxies"`
	// BootstrapEmail is the admin created on a first run with no users; its
	// random password is printed once to the log.
	BootstrapEmail string `mapstructure:"bootstrap_email"`
	// QuotaReleaseInterval is how often messages held at quota are checked
	// for release (plan raised, month turned).
	QuotaReleaseInterval time.Duration `mapstructure:"quota_release_interval"`
	// IngestStallAfter: a chain whose committed cursor did not move for
	// this long is reported once as an ingest.stalled operational webhook
	// (checked every quota_release_interval); 0 turns the check off.
	IngestStallAfter time.Duration `mapstructure:"ingest_stall_after"`
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout bound
	// every connection to the process's HTTP listeners (API, web UI,
	// health and metrics) in time, so a client that trickles its headers
	// or body, reads its answer slowly or idles on keep-alive cannot hold
	// a connection (and its buffers) open: ReadTimeout covers headers and
	// body, WriteTimeout the time from the end of the headers to the end
	// of the answer, IdleTimeout a keep-alive connection between requests.
	ReadHeaderTimeout time.Duration `mapstructure:"read_header_timeout"`
	ReadTimeout       time.Duration `mapstructure:"read_timeout"`
	WriteTimeout      time.Duration `mapstructure:"write_timeout"`
	IdleTimeout       time.Duration `mapstructure:"idle_timeout"`
	// MaxAppsPerUser caps the applications one member may create (each
	// holds endpoints, messages and attempts); 0 means no cap. Admins are
	// not capped: they create applications for others.
	MaxAppsPerUser int `mapstructure:"max_apps_per_user"`
	// DefaultPlan is the plan (an id in the plans table) of new
	// applications that name none, the demo's included. The default,
	// "unlimited", has no quota and no rate limit: a self-hosted operator
	// is not a free-tier customer. Checked against the plans at start.
	DefaultPlan string `mapstructure:"default_plan"`
}

// DefaultAdmin holds the admin defaults.
func DefaultAdmin() Admin {
	return Admin{
		JWTTTL:                12 * time.Hour,
		BodyLimit:             1 << 20,
		RateLimit:             600,
		LoginRateLimit:        20,
		LoginAccountRateLimit: 10,
		MaxConcurrentLogins:   4,
		BootstrapEmail:        "admin@ethhook.local",
		QuotaReleaseInterval:  10 * time.Second,
		IngestStallAfter:      5 * time.Minute,
		ReadHeaderTimeout:     5 * time.Second,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          60 * time.Second,
		IdleTimeout:           120 * time.Second,
		MaxAppsPerUser:        20,
		DefaultPlan:           "unlimited",
	}
}

// Validate checks the admin settings.
func (c Admin) Validate() error {
	var errs []error
	if c.JWTSecret != "" && len(c.JWTSecret) < 32 {
		errs = append(errs, fmt.Errorf("admin.jwt_secret (ETHHOOK_JWT_SECRET): must be at least 32 characters"))
	}
	errs = append(errs,
		atLeast("admin.jwt_ttl", c.JWTTTL, time.Minute),
		failIf(c.BodyLimit < 1024 || c.BodyLimit > 64<<20, "admin.body_limit: must be between 1024 and %d bytes, got %d", 64<<20, c.BodyLimit),
		orMore("admin.rate_limit", c.RateLimit, "off"),
		orMore("admin.login_rate_limit", c.LoginRateLimit, "off"),
		orMore("admin.login_account_rate_limit (ETHHOOK_ADMIN_LOGIN_ACCOUNT_RATE_LIMIT)", c.LoginAccountRateLimit, "off"),
		failIf(c.MaxConcurrentLogins < 1 || c.MaxConcurrentLogins > 256,
			"admin.max_concurrent_logins (ETHHOOK_ADMIN_MAX_CONCURRENT_LOGINS): must be between 1 and 256, got %d", c.MaxConcurrentLogins),
	)
	if _, err := c.TrustedProxyPrefixes(); err != nil {
		errs = append(errs, fmt.Errorf("admin.trusted_proxies (ETHHOOK_ADMIN_TRUSTED_PROXIES): %w", err))
	}
	if a, err := mail.ParseAddress(c.BootstrapEmail); err != nil || a.Address != c.BootstrapEmail {
		errs = append(errs, fmt.Errorf("admin.bootstrap_email: %q is not an email address", c.BootstrapEmail))
	}
	if c.IngestStallAfter != 0 && (c.IngestStallAfter < time.Second || c.IngestStallAfter > 24*time.Hour) {
		errs = append(errs, fmt.Errorf("admin.ingest_stall_after (ETHHOOK_ADMIN_INGEST_STALL_AFTER): must be 0 (off) or 1s..24h, got %s", c.IngestStallAfter))
	}
	errs = append(errs, atLeast("admin.quota_release_interval", c.QuotaReleaseInterval, time.Second))
	for _, t := range []struct {
		key string
		d   time.Duration
	}{
		{"read_header_timeout", c.ReadHeaderTimeout}, {"read_timeout", c.ReadTimeout},
		{"write_timeout", c.WriteTimeout}, {"idle_timeout", c.IdleTimeout},
	} {
		if t.d < time.Second || t.d > time.Hour {
			key := "admin." + t.key
			errs = append(errs, fmt.Errorf("%s (%s): must be between 1s and 1h, got %s", key, EnvNames(key)[0], t.d))
		}
	}
	if c.ReadHeaderTimeout > c.ReadTimeout {
		errs = append(errs, fmt.Errorf("admin.read_header_timeout (ETHHOOK_ADMIN_READ_HEADER_TIMEOUT): must not be longer than admin.read_timeout (%s), got %s", c.ReadTimeout, c.ReadHeaderTimeout))
	}
	errs = append(errs, orMore("admin.max_apps_per_user (ETHHOOK_ADMIN_MAX_APPS_PER_USER)", c.MaxAppsPerUser, "no cap"))
	if c.DefaultPlan == "" {
		errs = append(errs, fmt.Errorf("admin.default_plan (ETHHOOK_ADMIN_DEFAULT_PLAN): must name a plan, e.g. unlimited or free"))
	}
	return errors.Join(errs...)
}

// TrustedProxyPrefixes parses TrustedProxies.
func (c Admin) TrustedProxyPrefixes() ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(c.TrustedProxies))
	for _, s := range c.TrustedProxies {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR like 10.0.0.0/8 (a single proxy is 10.0.0.7/32)", s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
