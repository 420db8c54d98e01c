// Package config is EthHook's typed configuration: defaults, loading through
// viper (flags > environment > YAML file > defaults), the built-in chain
// registry and validation that names the offending key.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ethhook/ethhook/internal/redact"
)

// Config is the whole effective configuration of one ethhook process.
// Every leaf has an environment name: ETHHOOK_ + its key path upper-cased
// with dots as underscores (log.level -> ETHHOOK_LOG_LEVEL), plus the aliases
// listed in envAliases.
type Config struct {
	DatabaseURL string `mapstructure:"database_url" secret:"password"`
	Redis       Redis  `mapstructure:"redis"`
	HTTPAddr    string `mapstructure:"http_addr"`
	MetricsPort int    `mapstructure:"metrics_port"`
	// MetricsAddr is where /metrics listens (host:port). Empty: on
	// MetricsPort, on http_addr's host when that is a loopback address
	// (127.0.0.1:8080 gives 127.0.0.1:9090), else on every interface.
	MetricsAddr     string        `mapstructure:"metrics_addr"`
	Log             Log           `mapstructure:"log"`
	DedupTTLSeconds int           `mapstructure:"dedup_ttl_seconds"`
	ShutdownGrace   time.Duration `mapstructure:"shutdown_grace"`
	// SecretKey seals endpoint signing secrets at rest (AES-256-GCM); 32
	// bytes, base64 or hex. Changing it makes existing secrets unreadable.
	SecretKey string `mapstructure:"secret_key" secret:"true"`
	// SecretKeyPrevious is the key being rotated away from: secrets sealed
	// under it still open (and are re-sealed under SecretKey by
	// `ethhook secrets rotate-key`), so a fleet can switch keys one process
	// at a time.
	SecretKeyPrevious string `mapstructure:"secret_key_previous" secret:"true"`
	// DevInsecure accepts well-known and low-entropy secrets (with a WARN
	// line at start), for throwaway development setups only.
	DevInsecure bool `mapstructure:"dev_insecure"`
	// Chains lists the chains to watch: the built-in ones given a URL by
	// ETHEREUM_WS_URL and friends, plus the YAML `chains:` entries.
	Chains   []Chain  `mapstructure:"chains"`
	Ingest   Ingest   `mapstructure:"ingest"`
	Process  Process  `mapstructure:"process"`
	Delivery Delivery `mapstructure:"delivery"`
	Admin    Admin    `mapstructure:"admin"`
	Devnet   Devnet   `mapstructure:"devnet"`
	// Retention bounds messages, delivery_history and audit_log.
	Retention Retention `mapstructure:"retention"`
}

// Redis is the connection to the Redis server that holds streams and queues.
type Redis struct {
	URL    string `mapstructure:"url" secret:"password"`
	Prefix string `mapstructure:"prefix"`
}

// Log configures zap.
type Log struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"`
}

// Defaults is the configuration with nothing set.
func Defaults() Config {
	return Config{
		DatabaseURL:     "postgres://postgres:postgres@127.0.0.1:5432/ethhook?sslmode=disable",
		Redis:           Redis{URL: "redis://127.0.0.1:6379/0", Prefix: "ethhook:"},
		HTTPAddr:        ":8080",
		MetricsPort:     9090,
		Log:             Log{Level: "info", Format: "json"},
		DedupTTLSeconds: 86400,
		ShutdownGrace:   30 * time.Second,
		Ingest:          DefaultIngest(),
		Process:         DefaultProcess(),
		Delivery:        DefaultDelivery(),
		Admin:           DefaultAdmin(),
		Devnet:          DefaultDevnet(),
		Retention:       DefaultRetention(),
	}
}

// MetricsListenAddr is the address /metrics listens on, "" when off:
// MetricsAddr when set, else MetricsPort (0: off) on http_addr's host when
// that is a loopback address, else on every interface.
func (c Config) MetricsListenAddr() string {
	if c.MetricsAddr != "" {
		return c.MetricsAddr
	}
	if c.MetricsPort == 0 {
		return ""
	}
	host, _, err := net.SplitHostPort(c.HTTPAddr)
	if err != nil || !isLoopback(host) {
		host = ""
	}
	return net.JoinHostPort(host, strconv.Itoa(c.MetricsPort))
}

// DedupTTL is how long a committed block hash is remembered.
func (c Config) DedupTTL() time.Duration { return time.Duration(c.DedupTTLSeconds) * time.Second }

// Chain returns the configured chain with that name, or false.
func (c Config) Chain(name string) (Chain, bool) {
	for _, ch := range c.Chains {
		if ch.Name == name {
			return ch, true
		}
	}
	return Chain{}, false
}

// Validate checks every setting and reports all problems at once, each
// naming its key (or the environment variable it came from).
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		bad("database_url (ETHHOOK_DATABASE_URL)", "must be a postgres:// URL")
	}
	if u, err := url.Parse(c.Redis.URL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
		bad("redis.url (ETHHOOK_REDIS_URL)", "must be a redis://, rediss:// or unix:// URL")
	}
	if c.Redis.Prefix == "" || strings.ContainsAny(c.Redis.Prefix, "{} \t\n") {
		bad("redis.prefix (ETHHOOK_REDIS_PREFIX)", "must be non-empty without braces or spaces, got %q", c.Redis.Prefix)
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		bad("http_addr (ETHHOOK_HTTP_ADDR)", "must be host:port or :port, got %q", c.HTTPAddr)
	}
	if c.MetricsPort < 0 || c.MetricsPort > 65535 {
		bad("metrics_port (METRICS_PORT)", "must be 0..65535 (0 disables), got %d", c.MetricsPort)
	}
	if c.MetricsAddr != "" {
		if _, port, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			bad("metrics_addr (ETHHOOK_METRICS_ADDR)", "must be host:port, got %q", c.MetricsAddr)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			bad("metrics_addr (ETHHOOK_METRICS_ADDR)", "port must be 0..65535, got %q", c.MetricsAddr)
		}
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level (ETHHOOK_LOG_LEVEL)", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	if c.Log.Format != "json" && c.Log.Format != "console" {
		bad("log.format (ETHHOOK_LOG_FORMAT)", "must be json or console, got %q", c.Log.Format)
	}
	if c.DedupTTLSeconds < 60 {
		bad("dedup_ttl_seconds (DEDUP_TTL_SECONDS)", "must be at least 60, got %d", c.DedupTTLSeconds)
	}
	if c.ShutdownGrace <= 0 {
		bad("shutdown_grace (ETHHOOK_SHUTDOWN_GRACE)", "must be a positive duration, got %s", c.ShutdownGrace)
	}
	if c.SecretKey != "" {
		if _, err := DecodeKey(c.SecretKey); err != nil {
			bad("secret_key (ETHHOOK_SECRET_KEY)", "%v", err)
		}
	}
	if c.SecretKeyPrevious != "" {
		if _, err := DecodeKey(c.SecretKeyPrevious); err != nil {
			bad("secret_key_previous (ETHHOOK_SECRET_KEY_PREVIOUS)", "%v", err)
		}
		if c.SecretKey == "" {
			bad("secret_key_previous (ETHHOOK_SECRET_KEY_PREVIOUS)", "is set without secret_key (ETHHOOK_SECRET_KEY), the key to rotate to")
		} else if cur, err := DecodeKey(c.SecretKey); err == nil {
			if prev, err := DecodeKey(c.SecretKeyPrevious); err == nil && bytes.Equal(cur, prev) {
				bad("secret_key_previous (ETHHOOK_SECRET_KEY_PREVIOUS)", "is the same key as secret_key; set it to the key being rotated away from")
			}
		}
	}
	if !c.DevInsecure {
		for _, p := range c.secretProblems() {
			errs = append(errs, fmt.Errorf("%s; generate one with `openssl rand -hex 32` (or `ethhook secrets init`); "+
				"only a throwaway development setup may set ETHHOOK_DEV_INSECURE=1 to accept it", p))
		}
	}
	errs = append(errs, validateChains(c.Chains)...)
	for _, err := range []error{c.Ingest.Validate(), c.Process.Validate(), c.Delivery.Validate(), c.Admin.Validate(), c.Devnet.Validate(), c.Retention.Validate()} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid config: %w", errors.Join(errs...))
	}
	return nil
}

// validateChains checks names, ids and URLs; a ws URL must be wss://, or
// ws:// to a loopback host (plain text to anything else would expose the
// node's API key and let an on-path attacker feed us forged logs).
func validateChains(chains []Chain) []error {
	var errs []error
	names := map[string]bool{}
	ids := map[uint64]bool{}
	for i, ch := range chains {
		key := fmt.Sprintf("chains[%d]", i)
		if ch.Name != "" {
			key = fmt.Sprintf("chains[%s]", ch.Name)
		}
		switch {
		case ch.Name == "" || strings.ContainsAny(ch.Name, " ,{}:"):
			errs = append(errs, fmt.Errorf("%s.name: must be a non-empty word, got %q", key, ch.Name))
		case names[ch.Name]:
			errs = append(errs, fmt.Errorf("%s.name: chain %q is configured twice", key, ch.Name))
		}
		names[ch.Name] = true
		if ch.ID == 0 {
			errs = append(errs, fmt.Errorf("%s.id: required for a chain not in the built-in registry", key))
		} else if ids[ch.ID] {
			errs = append(errs, fmt.Errorf("%s.id: chain id %d is configured twice", key, ch.ID))
		}
		ids[ch.ID] = true
		if len(ch.WSURLs) == 0 {
			errs = append(errs, fmt.Errorf("%s.ws_urls: at least one ws:// or wss:// URL is required", key))
		}
		for j, raw := range ch.WSURLs {
			name := ch.source
			if name == "" {
				name = fmt.Sprintf("%s.ws_urls[%d]", key, j)
			}
			if err := checkWSURL(raw); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
		}
		if ch.HTTPURL != "" {
			if u, err := url.Parse(ch.HTTPURL); err != nil || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
				errs = append(errs, fmt.Errorf("%s.http_url: must be https://, or http:// to a loopback host, got %q", key, redactURL(ch.HTTPURL)))
			}
		}
		if ch.Confirmations < 0 || ch.Confirmations > 1000 {
			errs = append(errs, fmt.Errorf("%s.confirmations: must be 0..1000, got %d", key, ch.Confirmations))
		}
		if ch.ReorgDepth < 1 || ch.ReorgDepth > 10000 {
			errs = append(errs, fmt.Errorf("%s.reorg_depth: must be 1..10000, got %d", key, ch.ReorgDepth))
		}
		if ch.MaxReorgDepth != 0 && (ch.MaxReorgDepth < ch.ReorgDepth || ch.MaxReorgDepth > 100000) {
			errs = append(errs, fmt.Errorf("%s.max_reorg_depth: must be reorg_depth (%d)..100000 or 0 (4 x reorg_depth), got %d", key, ch.ReorgDepth, ch.MaxReorgDepth))
		}
		if q := ch.Quorum; q != nil && (*q < 1 || *q > len(ch.WSURLs)) {
			errs = append(errs, fmt.Errorf("%s.quorum: must be 1..%d (the number of ws_urls), got %d", key, len(ch.WSURLs), *q))
		}
		if ch.BlockTime < 0 {
			errs = append(errs, fmt.Errorf("%s.block_time: must not be negative", key))
		}
	}
	return errs
}

func checkWSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("not a URL: %q", redactURL(raw))
	}
	switch u.Scheme {
	case "wss":
		return nil
	case "ws":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("ws:// is only allowed to a loopback host; use wss:// for %s", u.Hostname())
	default:
		return fmt.Errorf("scheme must be wss:// (or ws:// to a loopback host), got %q", u.Scheme+"://")
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redactURL hides the password and any path or query that may hold a
// provider API key (https://eth-mainnet.g.alchemy.com/v2/<key>).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "<unparseable URL>"
	}
	if u.User != nil {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	masked := u.Scheme + "://" + u.Host
	if u.User != nil {
		masked = u.Scheme + "://" + u.User.String() + "@" + u.Host
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		masked += "/xxxxx"
	}
	return masked
}

// redactPassword hides the credentials of a URL whose path names a
// database, not a credential (database and Redis URLs): the password and
// sensitive query parameters (?password=, ?token=, ...).
func redactPassword(raw string) string { return redact.Credentials(raw) }

// RedactURL is redactURL for other packages' logs.
func RedactURL(raw string) string { return redactURL(raw) }
