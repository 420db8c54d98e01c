package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// clearEnv isolates a test from the developer's environment.
func clearEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "ETHHOOK_") || strings.HasSuffix(k, "_WS_URL") || strings.HasPrefix(k, "REDIS_") || k == "METRICS_PORT" || k == "DEDUP_TTL_SECONDS" {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	t.Chdir(t.TempDir()) // no ./ethhook.yaml
}

func writeFile(t *testing.T, body string) string {
	p := filepath.Join(t.TempDir(), "ethhook.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultsAreValid(t *testing.T) {
	clearEnv(t)
	cfg, err := Load(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Redis.Prefix != "ethhook:" || cfg.HTTPAddr != ":8080" || cfg.MetricsPort != 9090 || cfg.DedupTTLSeconds != 86400 || cfg.ShutdownGrace != 30*time.Second {
		t.Fatalf("defaults: %+v", cfg)
	}
	if len(cfg.Chains) != 0 {
		t.Fatalf("chains without any URL: %+v", cfg.Chains)
	}
}

func TestPrecedenceFlagsOverEnvOverFileOverDefaults(t *testing.T) {
	clearEnv(t)
	file := writeFile(t, "log:\n  level: warn\n  format: console\nhttp_addr: \":7000\"\nmetrics_port: 7001\n")
	flags := pflag.NewFlagSet("x", pflag.ContinueOnError)
	flags.String("log-level", "info", "")
	keys := map[string]string{"log-level": "log.level"}

	cfg, err := Load(Options{File: file, Flags: flags, FlagKeys: keys})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Log.Level != "warn" || cfg.Log.Format != "console" || cfg.HTTPAddr != ":7000" {
		t.Fatalf("file did not beat defaults: %+v", cfg)
	}

	t.Setenv("ETHHOOK_LOG_LEVEL", "error")
	t.Setenv("METRICS_PORT", "7002")
	cfg, err = Load(Options{File: file, Flags: flags, FlagKeys: keys})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Log.Level != "error" || cfg.MetricsPort != 7002 {
		t.Fatalf("env did not beat file: level %s port %d", cfg.Log.Level, cfg.MetricsPort)
	}

	if err := flags.Set("log-level", "debug"); err != nil {
		t.Fatal(err)
	}
	cfg, err = Load(Options{File: file, Flags: flags, FlagKeys: keys})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Log.Level != "debug" {
		t.Fatalf("flag did not beat env: %s", cfg.Log.Level)
	}
}

func TestEthhookNameWinsOverLegacyAlias(t *testing.T) {
	clearEnv(t)
	t.Setenv("METRICS_PORT", "7002")
	t.Setenv("ETHHOOK_METRICS_PORT", "7003")
	t.Setenv("DEDUP_TTL_SECONDS", "120")
	cfg, err := Load(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MetricsPort != 7003 || cfg.DedupTTLSeconds != 120 {
		t.Fatalf("port %d ttl %d", cfg.MetricsPort, cfg.DedupTTLSeconds)
	}
}

func TestDefaultFileIsReadFromWorkingDirectory(t *testing.T) {
	clearEnv(t)
	if err := os.WriteFile(DefaultFile, []byte("redis:\n  prefix: \"custom:\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Redis.Prefix != "custom:" {
		t.Fatalf("prefix %q", cfg.Redis.Prefix)
	}
}

func TestLegacyRedisVariablesBuildTheURL(t *testing.T) {
	clearEnv(t)
	t.Setenv("REDIS_HOST", "redis.internal")
	t.Setenv("REDIS_PORT", "6380")
	t.Setenv("REDIS_PASSWORD", "s3cret")
	cfg, err := Load(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Redis.URL != "redis://:s3cret@redis.internal:6380/0" {
		t.Fatalf("url %q", cfg.Redis.URL)
	}
	t.Setenv("ETHHOOK_REDIS_URL", "redis://other:6379/1")
	cfg, err = Load(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Redis.URL != "redis://other:6379/1" {
		t.Fatalf("ETHHOOK_REDIS_URL did not win: %q", cfg.Redis.URL)
	}
}

func TestChainsFromEnvironmentAndFile(t *testing.T) {
	clearEnv(t)
	t.Setenv("ETHEREUM_WS_URL", "wss://a.example/v2/key, wss://b.example/v2/key")
	t.Setenv("BASE_WS_URL", "ws://127.0.0.1:8546")
	file := writeFile(t, `
chains:
  - name: polygon
    id: 137
    ws_urls: ["wss://polygon.example"]
    http_url: https://polygon.example
    confirmations: 64
    max_log_range: 2000
    start_block: 123
  - name: base
    ws_urls: ["wss://from-file.example"]
    confirmations: 3
`)
	cfg, err := Load(Options{File: file})
	if err != nil {
		t.Fatal(err)
	}
	eth, ok := cfg.Chain("eth")
	if !ok || eth.ID != 1 || len(eth.WSURLs) != 2 || eth.WSURLs[1] != "wss://b.example/v2/key" {
		t.Fatalf("eth: %+v", eth)
	}
	poly, _ := cfg.Chain("polygon")
	if poly.ID != 137 || poly.StartBlock == nil || *poly.StartBlock != 123 || poly.MaxLogRange != 2000 || poly.Confirmations != 64 || poly.ReorgDepth != 64 {
		t.Fatalf("polygon: %+v", poly)
	}
	base, _ := cfg.Chain("base")
	if base.ID != 8453 || base.WSURLs[0] != "ws://127.0.0.1:8546" || base.Confirmations != 3 {
		t.Fatalf("base: env should win over file URLs and keep file settings: %+v", base)
	}
}

func TestValidationNamesTheKey(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		file string
		want string
	}{
		{"plain ws to remote host", map[string]string{"ETHEREUM_WS_URL": "ws://node.example:8546"}, "", "ETHEREUM_WS_URL: ws:// is only allowed to a loopback host"},
		{"http scheme", map[string]string{"BASE_WS_URL": "https://node.example"}, "", "BASE_WS_URL: scheme must be wss://"},
		{"not a url", map[string]string{"OPTIMISM_WS_URL": "::::"}, "", "OPTIMISM_WS_URL: not a URL"},
		{"yaml chain ws", nil, "chains:\n  - {name: poly, id: 137, ws_urls: [\"ws://10.0.0.1\"]}\n", "chains[poly].ws_urls[0]: ws:// is only allowed"},
		{"unknown chain without id", nil, "chains:\n  - {name: mystery, ws_urls: [\"wss://x.example\"]}\n", "chains[mystery].id: required"},
		{"chain without urls", nil, "chains:\n  - {name: poly, id: 137}\n", "chains[poly].ws_urls: at least one"},
		{"duplicate chain id", nil, "chains:\n  - {name: a, id: 5, ws_urls: [\"wss://a\"]}\n  - {name: b, id: 5, ws_urls: [\"wss://b\"]}\n", "chains[b].id: chain id 5 is configured twice"},
		{"quorum above urls", nil, "chains:\n  - {name: a, id: 5, ws_urls: [\"wss://a\", \"wss://b\"], quorum: 3}\n", "chains[a].quorum: must be 1..2 (the number of ws_urls), got 3"},
		{"quorum zero", nil, "chains:\n  - {name: a, id: 5, ws_urls: [\"wss://a\", \"wss://b\"], quorum: 0}\n", "chains[a].quorum: must be 1..2 (the number of ws_urls), got 0"},
		{"http url plain", nil, "chains:\n  - {name: a, id: 5, ws_urls: [\"wss://a\"], http_url: \"http://a.example\"}\n", "chains[a].http_url"},
		{"log level", map[string]string{"ETHHOOK_LOG_LEVEL": "loud"}, "", "log.level (ETHHOOK_LOG_LEVEL): must be debug"},
		{"log format", map[string]string{"ETHHOOK_LOG_FORMAT": "xml"}, "", "log.format (ETHHOOK_LOG_FORMAT)"},
		{"metrics port", map[string]string{"METRICS_PORT": "70000"}, "", "metrics_port (METRICS_PORT)"},
		{"metrics port not a number", map[string]string{"METRICS_PORT": "abc"}, "", "metrics_port"},
		{"dedup ttl", map[string]string{"DEDUP_TTL_SECONDS": "5"}, "", "dedup_ttl_seconds (DEDUP_TTL_SECONDS)"},
		{"database url", map[string]string{"ETHHOOK_DATABASE_URL": "mysql://x"}, "", "database_url (ETHHOOK_DATABASE_URL=mysql://x): must be"},
		{"redis url", map[string]string{"ETHHOOK_REDIS_URL": "http://x"}, "", "redis.url (ETHHOOK_REDIS_URL=http://x): must be"},
		{"redis prefix", map[string]string{"ETHHOOK_REDIS_PREFIX": "a{b}"}, "", "redis.prefix (ETHHOOK_REDIS_PREFIX)"},
		{"http addr", map[string]string{"ETHHOOK_HTTP_ADDR": "8080"}, "", "http_addr (ETHHOOK_HTTP_ADDR)"},
		{"grace", map[string]string{"ETHHOOK_SHUTDOWN_GRACE": "-1s"}, "", "shutdown_grace"},
		{"grace not a duration", map[string]string{"ETHHOOK_SHUTDOWN_GRACE": "soon"}, "", "shutdown_grace"},
		{"secret key", map[string]string{"ETHHOOK_SECRET_KEY": "short"}, "", "secret_key (ETHHOOK_SECRET_KEY): must be 32 bytes"},
		{"retry schedule", map[string]string{"ETHHOOK_DELIVERY_RETRY_SCHEDULE": "0s,soon"}, "", "delivery.retry_schedule (ETHHOOK_DELIVERY_RETRY_SCHEDULE=0s,soon): item 2 \"soon\""},
		{"allow cidrs", map[string]string{"ETHHOOK_DELIVERY_ALLOW_CIDRS": "127.0.0.0/33"}, "", "delivery.allow_cidrs (ETHHOOK_DELIVERY_ALLOW_CIDRS)"},
		{"jwt secret", map[string]string{"ETHHOOK_JWT_SECRET": "short"}, "", "admin.jwt_secret (ETHHOOK_JWT_SECRET)"},
		{"allow entry", map[string]string{"ETHHOOK_DELIVERY_ALLOW_CIDRS": "localhost:9000"}, "", "delivery.allow_cidrs (ETHHOOK_DELIVERY_ALLOW_CIDRS): \"localhost:9000\" is neither"},
		{"metrics addr", map[string]string{"ETHHOOK_METRICS_ADDR": "9090"}, "", "metrics_addr (ETHHOOK_METRICS_ADDR): must be host:port, got \"9090\""},
		{"metrics addr port", map[string]string{"ETHHOOK_METRICS_ADDR": "127.0.0.1:http"}, "", "metrics_addr (ETHHOOK_METRICS_ADDR): port must be 0..65535"},
		{"demo addr not loopback", map[string]string{"ETHHOOK_DEVNET_DEMO_ADDR": "0.0.0.0:9000"}, "", "devnet.demo_addr (ETHHOOK_DEVNET_DEMO_ADDR=0.0.0.0:9000): must be a loopback address and port"},
		{"previous key alone", map[string]string{"ETHHOOK_SECRET_KEY_PREVIOUS": testKey}, "", "secret_key_previous (ETHHOOK_SECRET_KEY_PREVIOUS): is set without secret_key"},
		{"previous key malformed", map[string]string{"ETHHOOK_SECRET_KEY": testKey, "ETHHOOK_SECRET_KEY_PREVIOUS": "xyz"}, "", "secret_key_previous (ETHHOOK_SECRET_KEY_PREVIOUS): must be 32 bytes"},
		{"read timeout", map[string]string{"ETHHOOK_ADMIN_READ_TIMEOUT": "0s"}, "", "admin.read_timeout (ETHHOOK_ADMIN_READ_TIMEOUT): must be between 1s and 1h, got 0s"},
		{"idle timeout", map[string]string{"ETHHOOK_ADMIN_IDLE_TIMEOUT": "2h"}, "", "admin.idle_timeout (ETHHOOK_ADMIN_IDLE_TIMEOUT): must be between 1s and 1h, got 2h0m0s"},
		{"header timeout over read timeout", map[string]string{"ETHHOOK_ADMIN_READ_HEADER_TIMEOUT": "40s"}, "", "admin.read_header_timeout (ETHHOOK_ADMIN_READ_HEADER_TIMEOUT): must not be longer than admin.read_timeout"},
		{"max apps per user", map[string]string{"ETHHOOK_ADMIN_MAX_APPS_PER_USER": "-1"}, "", "admin.max_apps_per_user (ETHHOOK_ADMIN_MAX_APPS_PER_USER)"},
		{"partition width not dividing a day", map[string]string{"ETHHOOK_RETENTION_PARTITION_WIDTH": "7m"}, "", "retention.partition_width (ETHHOOK_RETENTION_PARTITION_WIDTH=7m): must be whole minutes from 5m to 24h dividing a day evenly"},
		{"partition width too narrow", map[string]string{"ETHHOOK_RETENTION_PARTITION_WIDTH": "1m"}, "", "retention.partition_width (ETHHOOK_RETENTION_PARTITION_WIDTH=1m)"},
		{"partition width over a day", map[string]string{"ETHHOOK_RETENTION_PARTITION_WIDTH": "48h"}, "", "retention.partition_width (ETHHOOK_RETENTION_PARTITION_WIDTH=48h)"},
		{"retention shorter than a partition", map[string]string{"ETHHOOK_RETENTION_PARTITION_WIDTH": "10m", "ETHHOOK_RETENTION_MESSAGES": "5m", "ETHHOOK_RETENTION_INTERVAL": "1m"}, "", "retention.messages (ETHHOOK_RETENTION_MESSAGES=5m): must be at least retention.partition_width (10m0s), got 5m0s"},
		{"retention under a day with day partitions", map[string]string{"ETHHOOK_RETENTION_MESSAGES": "10m"}, "", "retention.messages (ETHHOOK_RETENTION_MESSAGES=10m): must be at least retention.partition_width (24h0m0s)"},
		{"interval longer than a partition", map[string]string{"ETHHOOK_RETENTION_PARTITION_WIDTH": "10m", "ETHHOOK_RETENTION_MESSAGES": "30m"}, "", "retention.interval: must be between 1m and 10m0s"},
		{"unknown yaml key", nil, "log:\n  levle: debug\n", "levle"},
		{"bad yaml", nil, "log: [\n", "read config file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			opts := Options{}
			if tc.file != "" {
				opts.File = writeFile(t, tc.file)
			}
			_, err := Load(opts)
			if err == nil {
				t.Fatalf("no error, want one containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// Short retention in narrow partitions is a valid configuration (the soak's).
func TestShortRetentionInNarrowPartitionsIsValid(t *testing.T) {
	clearEnv(t)
	for k, v := range map[string]string{"ETHHOOK_RETENTION_PARTITION_WIDTH": "5m", "ETHHOOK_RETENTION_MESSAGES": "10m",
		"ETHHOOK_RETENTION_AUDIT": "30m", "ETHHOOK_RETENTION_INTERVAL": "1m"} {
		t.Setenv(k, v)
	}
	cfg, err := Load(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg.Retention; r.PartitionWidth != 5*time.Minute || r.Messages != 10*time.Minute {
		t.Errorf("retention %+v", r)
	}
	clearEnv(t)
	if cfg, err := Load(Options{}); err != nil || cfg.Retention.PartitionWidth != 24*time.Hour {
		t.Errorf("default partition width %s (%v), want 24h", cfg.Retention.PartitionWidth, err)
	}
}

func TestMissingConfigFileIsAnError(t *testing.T) {
	clearEnv(t)
	if _, err := Load(Options{File: "/nonexistent/ethhook.yaml"}); err == nil || !strings.Contains(err.Error(), "/nonexistent/ethhook.yaml") {
		t.Fatalf("err = %v", err)
	}
}

func TestMaskedYAMLHidesSecrets(t *testing.T) {
	clearEnv(t)
	t.Setenv("ETHHOOK_DATABASE_URL", "postgres://app:dbpass@db:5432/ethhook?sslmode=require&password=querydbpass")
	t.Setenv("ETHHOOK_REDIS_URL", "redis://:redispass@redis:6379/0?token=queryredistoken")
	t.Setenv("ETHHOOK_SECRET_KEY", testKey)
	t.Setenv("ETHHOOK_SECRET_KEY_PREVIOUS", testKey2)
	t.Setenv("ETHHOOK_JWT_SECRET", testJWT)
	t.Setenv("ETHEREUM_WS_URL", "wss://eth-mainnet.g.alchemy.com/v2/alchemykey123")
	cfg, err := Load(Options{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := cfg.MaskedYAML()
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, secret := range []string{"dbpass", "redispass", "querydbpass", "queryredistoken", testKey, testKey2, testJWT, "alchemykey123"} {
		if strings.Contains(s, secret) {
			t.Fatalf("config print shows %q:\n%s", secret, s)
		}
	}
	for _, want := range []string{"db:5432/ethhook", "sslmode=require", "password=***", "token=***", "eth-mainnet.g.alchemy.com", "secret_key: '********'", "secret_key_previous: '********'"} {
		if !strings.Contains(s, want) {
			t.Fatalf("config print lacks %q:\n%s", want, s)
		}
	}
}

func TestWithDevnetMakesDevnetTheOnlyChain(t *testing.T) {
	clearEnv(t)
	cfg, err := Load(Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.WithDevnet()
	if len(d.Chains) != 1 || d.Chains[0].ID != DevnetChainID || d.Chains[0].WSURLs[0] != "ws://127.0.0.1:8545/" {
		t.Fatalf("%+v", d.Chains)
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
}
