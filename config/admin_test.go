package config

import (
	"strings"
	"testing"
)

func TestAdminLoginSettingsLoadFromTheEnvironmentWithSafeDefaults(t *testing.T) {
	clearEnv(t)
	cfg, err := Load(Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Admin
	if len(a.TrustedProxies) != 0 || a.LoginAccountRateLimit != 10 || a.MaxConcurrentLogins != 4 {
		t.Fatalf("defaults %+v: want no trusted proxies, 10 attempts per account, 4 hashes at once", a)
	}
	t.Setenv("ETHHOOK_ADMIN_TRUSTED_PROXIES", "10.0.0.0/8,fd00::/8")
	t.Setenv("ETHHOOK_ADMIN_LOGIN_ACCOUNT_RATE_LIMIT", "3")
	t.Setenv("ETHHOOK_ADMIN_MAX_CONCURRENT_LOGINS", "2")
	cfg, err = Load(Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := cfg.Admin.TrustedProxyPrefixes()
	if err != nil || len(p) != 2 || p[0].String() != "10.0.0.0/8" || p[1].String() != "fd00::/8" {
		t.Fatalf("trusted proxies %v %v", p, err)
	}
	if cfg.Admin.LoginAccountRateLimit != 3 || cfg.Admin.MaxConcurrentLogins != 2 {
		t.Fatalf("admin %+v", cfg.Admin)
	}
}

func TestAdminLoginSettingsAreValidatedNamingKeyAndValue(t *testing.T) {
	for _, tc := range []struct{ env, val, want string }{
		{"ETHHOOK_ADMIN_TRUSTED_PROXIES", "10.0.0.0/8,proxy.internal", `admin.trusted_proxies (ETHHOOK_ADMIN_TRUSTED_PROXIES=10.0.0.0/8,proxy.internal): "proxy.internal" is not a CIDR`},
		{"ETHHOOK_ADMIN_TRUSTED_PROXIES", "10.0.0.7", `"10.0.0.7" is not a CIDR`},
		{"ETHHOOK_ADMIN_TRUSTED_PROXIES", "10.0.0.0/33", `"10.0.0.0/33"`},
		{"ETHHOOK_ADMIN_LOGIN_ACCOUNT_RATE_LIMIT", "-1", "admin.login_account_rate_limit (ETHHOOK_ADMIN_LOGIN_ACCOUNT_RATE_LIMIT): must be 0 (off) or more, got -1"},
		{"ETHHOOK_ADMIN_MAX_CONCURRENT_LOGINS", "0", "admin.max_concurrent_logins (ETHHOOK_ADMIN_MAX_CONCURRENT_LOGINS): must be between 1 and 256, got 0"},
	} {
		clearEnv(t)
		t.Setenv(tc.env, tc.val)
		_, err := Load(Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s=%s: %v, want %q", tc.env, tc.val, err, tc.want)
		}
	}
}
