package config

import (
	"errors"
	"fmt"
	"net/mail"
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
	// LoginRateLimit is the login attempts per minute allowed per client IP.
	LoginRateLimit int `mapstructure:"login_rate_limit"`
	// BootstrapEmail is the admin created on a first run with no users; its
	// random password is printed once to the log.
	BootstrapEmail string `mapstructure:"bootstrap_email"`
	// QuotaReleaseInterval is how often messages held at quota are checked
	// for release (plan raised, month turned).
	QuotaReleaseInterval time.Duration `mapstructure:"quota_release_interval"`
}

// DefaultAdmin holds the admin defaults.
func DefaultAdmin() Admin {
	return Admin{
		JWTTTL:               12 * time.Hour,
		BodyLimit:            1 << 20,
		RateLimit:            600,
		LoginRateLimit:       20,
		BootstrapEmail:       "admin@ethhook.local",
		QuotaReleaseInterval: 10 * time.Second,
	}
}

// Validate checks the admin settings.
func (c Admin) Validate() error {
	var errs []error
	if c.JWTSecret != "" && len(c.JWTSecret) < 32 {
		errs = append(errs, fmt.Errorf("admin.jwt_secret (ETHHOOK_JWT_SECRET): must be at least 32 characters"))
	}
	if c.JWTTTL < time.Minute {
		errs = append(errs, fmt.Errorf("admin.jwt_ttl: must be at least 1m, got %s", c.JWTTTL))
	}
	if c.BodyLimit < 1024 || c.BodyLimit > 64<<20 {
		errs = append(errs, fmt.Errorf("admin.body_limit: must be between 1024 and %d bytes, got %d", 64<<20, c.BodyLimit))
	}
	if c.RateLimit < 0 {
		errs = append(errs, fmt.Errorf("admin.rate_limit: must be 0 (off) or more, got %d", c.RateLimit))
	}
	if c.LoginRateLimit < 0 {
		errs = append(errs, fmt.Errorf("admin.login_rate_limit: must be 0 (off) or more, got %d", c.LoginRateLimit))
	}
	if a, err := mail.ParseAddress(c.BootstrapEmail); err != nil || a.Address != c.BootstrapEmail {
		errs = append(errs, fmt.Errorf("admin.bootstrap_email: %q is not an email address", c.BootstrapEmail))
	}
	if c.QuotaReleaseInterval < time.Second {
		errs = append(errs, fmt.Errorf("admin.quota_release_interval: must be at least 1s, got %s", c.QuotaReleaseInterval))
	}
	return errors.Join(errs...)
}
