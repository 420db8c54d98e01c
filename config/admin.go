package config

import (
	"errors"
	"fmt"
	"time"
)

// Admin configures the admin API and web UI (owned by modules/admin).
type Admin struct {
	// JWTSecret signs login tokens (HS256); also read from ETHHOOK_JWT_SECRET.
	JWTSecret string        `mapstructure:"jwt_secret" secret:"true"`
	JWTTTL    time.Duration `mapstructure:"jwt_ttl"`
}

// DefaultAdmin holds the admin defaults.
func DefaultAdmin() Admin {
	return Admin{JWTTTL: 12 * time.Hour}
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
	return errors.Join(errs...)
}
