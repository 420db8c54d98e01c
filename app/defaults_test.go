package app

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.yaml.in/yaml/v3"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/testenv"
	"github.com/ethhook/ethhook/modules/deliver/ssrf"
	"github.com/ethhook/ethhook/seal"
	"github.com/ethhook/ethhook/tenant"
)

// secretSettings are the settings no shipped file may give a value.
var secretSettings = []string{"ETHHOOK_SECRET_KEY", "ETHHOOK_SECRET_KEY_PREVIOUS", "ETHHOOK_JWT_SECRET", "POSTGRES_PASSWORD"}

// literalSecretRe finds what looks like a key in a file: 32+ hex digits,
// or one of the strings that used to be shipped.
var literalSecretRe = regexp.MustCompile(`(?i)\b[0-9a-f]{32,}\b|change-me|jwt-secret`)

func TestShippedComposeFileRequiresEverySecretAndAllowsNoLoopback(t *testing.T) {
	raw, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	if m := literalSecretRe.Find(raw); m != nil {
		t.Fatalf("docker-compose.yml holds a literal secret: %q", m)
	}
	var doc struct {
		Services map[string]struct {
			Environment map[string]string `yaml:"environment"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	required := regexp.MustCompile(`^\$\{([A-Z_]+):\?[^}]+\}$`)
	optional := regexp.MustCompile(`^\$\{([A-Z_]+):-\}$`)
	seen := map[string]bool{}
	for name, svc := range doc.Services {
		for k, v := range svc.Environment {
			if k == "ETHHOOK_DELIVERY_ALLOW_CIDRS" || strings.Contains(v, "127.0.0.0/8") {
				t.Errorf("service %s: %s=%s opens the SSRF guard to the host", name, k, v)
			}
			for _, s := range secretSettings {
				if k != s {
					continue
				}
				seen[s] = true
				m := required.FindStringSubmatch(v)
				if s == "ETHHOOK_SECRET_KEY_PREVIOUS" && m == nil {
					m = optional.FindStringSubmatch(v)
				}
				if m == nil || m[1] != s {
					t.Errorf("service %s: %s is %q, want ${%s:?...} (required from .env, no default)", name, k, v, s)
				}
			}
		}
	}
	for _, s := range []string{"ETHHOOK_SECRET_KEY", "ETHHOOK_JWT_SECRET", "POSTGRES_PASSWORD"} {
		if !seen[s] {
			t.Errorf("docker-compose.yml does not pass %s", s)
		}
	}
	if !strings.Contains(string(raw), "postgres:${POSTGRES_PASSWORD:?") {
		t.Error("the database URL does not take the password from .env")
	}
}

// makeRunEnv is the environment `make run` gives ethhook: RUN_ENV's
// assignments, with $${VAR:-default} read as its default.
func makeRunEnv(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	src := string(raw)
	if m := literalSecretRe.FindString(src); m != "" {
		t.Fatalf("the Makefile holds a literal secret: %q", m)
	}
	i := strings.Index(src, "RUN_ENV :=")
	if i < 0 {
		t.Fatal("the Makefile has no RUN_ENV")
	}
	var def strings.Builder
	for _, line := range strings.Split(src[i+len("RUN_ENV :="):], "\n") {
		def.WriteString(strings.TrimSuffix(line, "\\") + " ")
		if !strings.HasSuffix(line, "\\") {
			break
		}
	}
	env := map[string]string{}
	dflt := regexp.MustCompile(`^\$\$\{[A-Z_]+:-(.*)\}$`)
	for _, f := range strings.Fields(def.String()) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			t.Fatalf("RUN_ENV word %q is not NAME=value", f)
		}
		if m := dflt.FindStringSubmatch(v); m != nil {
			v = m[1]
		}
		env[k] = v
	}
	for _, s := range secretSettings {
		if _, ok := env[s]; ok {
			t.Errorf("RUN_ENV sets %s: make run's secrets come from `ethhook secrets init`, never from the Makefile", s)
		}
	}
	if strings.Contains(src, "ALLOW_CIDRS") {
		t.Error("the Makefile sets ETHHOOK_DELIVERY_ALLOW_CIDRS: only the demo receiver may be reached on loopback")
	}
	for _, want := range []string{"secrets init --file $(SECRETS_FILE)", "$(LOAD_SECRETS) && $(RUN_ENV) $(BIN) migrate up"} {
		if !strings.Contains(src, want) {
			t.Errorf("make run lacks %q", want)
		}
	}
	return env
}

func TestMakeRunDeliversToTheDemoReceiverButNotToTheDevnetOrMetrics(t *testing.T) {
	env := makeRunEnv(t)
	for k, v := range env {
		t.Setenv(k, v)
	}
	// Stand-ins on loopback: the demo receiver, the devnet's JSON-RPC and
	// control API, and /metrics.
	listen := func() (net.Listener, string) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		return ln, ln.Addr().String()
	}
	_, demoAddr := listen()
	_, devnetAddr := listen()
	_, metricsAddr := listen()
	secrets := filepath.Join(t.TempDir(), "secrets.env")
	if out, err := run(t, nil, "secrets", "init", "--file", secrets); err != nil {
		t.Fatalf("secrets init: %v\n%s", err, out)
	}
	loadSecretsFile(t, secrets)
	t.Setenv("ETHHOOK_DEVNET_DEMO_ADDR", demoAddr)
	t.Setenv("ETHHOOK_DEVNET_ADDR", devnetAddr)
	t.Chdir(t.TempDir())
	cfg, err := config.Load(config.Options{})
	if err != nil {
		t.Fatalf("make run's settings do not load: %v", err)
	}
	if w := cfg.Warnings(); len(w) > 0 {
		t.Fatalf("make run starts with warnings: %v", w)
	}
	cfg = cfg.WithDevnet()
	d := allowDemoReceiver(cfg)
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	prefixes, exact, err := d.Allowed()
	if err != nil {
		t.Fatal(err)
	}
	dialer := net.Dialer{Timeout: 5 * time.Second, Control: ssrf.New(prefixes, exact...).Control}
	c, err := dialer.DialContext(context.Background(), "tcp", demoAddr)
	if err != nil {
		t.Fatalf("the demo receiver %s is not reached: %v", demoAddr, err)
	}
	c.Close()
	_, demoPort, _ := net.SplitHostPort(demoAddr)
	for _, addr := range []string{devnetAddr, metricsAddr, "127.0.0.2:" + demoPort, "localhost:" + strings.Split(devnetAddr, ":")[1]} {
		c, err := dialer.DialContext(context.Background(), "tcp", addr)
		if err == nil {
			c.Close()
			t.Errorf("a tenant endpoint at %s was reached under make run's settings", addr)
		} else if !errors.Is(err, ssrf.ErrRefused) {
			t.Errorf("dial %s: %v, want an SSRF refusal", addr, err)
		}
	}
}

// loadSecretsFile sets the KEY=value lines of a secrets file, as make run's
// LOAD_SECRETS does.
func loadSecretsFile(t *testing.T, path string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && strings.HasPrefix(k, "ETHHOOK_") {
			t.Setenv(k, v)
		}
	}
}

func TestSecretsInitCreatesAPrivateFileAndKeepsIt(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".ethhook")
	path := filepath.Join(dir, "secrets.env")
	if out, err := run(t, nil, "secrets", "init", "--file", path); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("secrets file mode %o, want 600", st.Mode().Perm())
	}
	if dst, _ := os.Stat(dir); dst.Mode().Perm() != 0o700 {
		t.Fatalf("secrets dir mode %o, want 700", dst.Mode().Perm())
	}
	first, _ := os.ReadFile(path)
	for _, k := range []string{"ETHHOOK_SECRET_KEY=", "ETHHOOK_JWT_SECRET="} {
		if !bytes.Contains(first, []byte(k)) {
			t.Fatalf("secrets file lacks %s:\n%s", k, first)
		}
	}
	if out, err := run(t, nil, "secrets", "init", "--file", path); err != nil || !strings.Contains(out, "secrets kept") {
		t.Fatalf("second init: %v\n%s", err, out)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, first) {
		t.Fatal("a second init changed the secrets")
	}
	// The generated values pass the strict checks.
	clearConfigEnv(t)
	loadSecretsFile(t, path)
	t.Chdir(t.TempDir())
	cfg, err := config.Load(config.Options{})
	if err != nil || cfg.SecretKey == "" || cfg.Admin.JWTSecret == "" || len(cfg.Warnings()) > 0 {
		t.Fatalf("generated secrets: %v %v", err, cfg.Warnings())
	}

	// A file with only one of them gets the other, and keeps its own.
	partial := filepath.Join(t.TempDir(), "partial.env")
	os.WriteFile(partial, []byte("ETHHOOK_JWT_SECRET="+testJWTSecret), 0o644)
	if out, err := run(t, nil, "secrets", "init", "--file", partial); err != nil || !strings.Contains(out, "generated ETHHOOK_SECRET_KEY") {
		t.Fatalf("init on a partial file: %v\n%s", err, out)
	}
	body, _ := os.ReadFile(partial)
	if !strings.Contains(string(body), "ETHHOOK_JWT_SECRET="+testJWTSecret+"\n") || strings.Count(string(body), "ETHHOOK_JWT_SECRET=") != 1 {
		t.Fatalf("partial file:\n%s", body)
	}
	if st, _ := os.Stat(partial); st.Mode().Perm() != 0o600 {
		t.Fatalf("partial file mode %o, want 600", st.Mode().Perm())
	}

	out, err := run(t, nil, "secrets", "init")
	if err != nil || strings.Count(out, "ETHHOOK_SECRET_KEY=") != 1 || strings.Count(out, "ETHHOOK_JWT_SECRET=") != 1 {
		t.Fatalf("init without --file: %v\n%s", err, out)
	}
}

// clearConfigEnv unsets the variables a test before may have set.
func clearConfigEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "ETHHOOK_") || k == "METRICS_PORT" {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
}

// clearMetricsEnv unsets the names that win over METRICS_PORT, so that a
// test setting METRICS_PORT is not overridden by the caller's environment
// (seen: `make test` with ETHHOOK_METRICS_PORT exported for `make run`).
func clearMetricsEnv(t *testing.T) {
	for _, k := range []string{"ETHHOOK_METRICS_PORT", "ETHHOOK_METRICS_ADDR"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

func TestDevInsecureStartsWithAWarnLine(t *testing.T) {
	clearConfigEnv(t)
	t.Chdir(t.TempDir())
	t.Setenv("ETHHOOK_SECRET_KEY", strings.Repeat("0", 63)+"1")
	if _, err := run(t, nil, "config", "print"); err == nil || !strings.Contains(err.Error(), "secret_key (ETHHOOK_SECRET_KEY) is a well-known key") {
		t.Fatalf("the old shipped key without the flag: %v", err)
	}
	t.Setenv("ETHHOOK_DEV_INSECURE", "1")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := os.Stderr
	os.Stderr = w
	_, runErr := run(t, nil, "config", "print")
	os.Stderr = stderr
	w.Close()
	logged, _ := io.ReadAll(r)
	if runErr != nil {
		t.Fatalf("with ETHHOOK_DEV_INSECURE=1: %v", runErr)
	}
	if !regexp.MustCompile(`"level":"warn".*INSECURE: dev_insecure \(ETHHOOK_DEV_INSECURE\) is set.*secret_key \(ETHHOOK_SECRET_KEY\) is a well-known key`).Match(logged) {
		t.Fatalf("no WARN line at start:\n%s", logged)
	}
	if bytes.Contains(logged, []byte(strings.Repeat("0", 63)+"1")) {
		t.Fatal("the warning shows the key")
	}
}

func TestMetricsListenOnLoopbackWhenTheAPIDoes(t *testing.T) {
	probe := &testModule{name: "probe", rec: &recorder{}}
	moduleSpecs = append(moduleSpecs, moduleSpec{name: "probe", build: func(ctx context.Context, rt *Runtime, o runOptions) (Module, error) { return probe, nil }})
	t.Cleanup(func() { moduleSpecs = moduleSpecs[:len(moduleSpecs)-1] })
	get := func(addr string) error {
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get("http://" + addr + "/metrics")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}

	// Only METRICS_PORT: on http_addr's loopback host, not every interface.
	clearMetricsEnv(t)
	httpPort, metricsPort := freePort(t), freePort(t)
	t.Setenv("ETHHOOK_LOG_LEVEL", "error")
	t.Setenv("ETHHOOK_HTTP_ADDR", fmt.Sprintf("127.0.0.1:%d", httpPort))
	t.Setenv("METRICS_PORT", fmt.Sprint(metricsPort))
	startServe(t, httpPort, "serve", "--modules=probe")
	waitFor(t, "metrics on 127.0.0.1", func() bool { return get(fmt.Sprintf("127.0.0.1:%d", metricsPort)) == nil })
	// 127.0.0.2 is loopback too, but not the address bound: a listener on
	// every interface would answer there.
	if err := get(fmt.Sprintf("127.0.0.2:%d", metricsPort)); err == nil {
		t.Fatal("metrics answer on another address than http_addr's loopback host")
	}
}

func TestMetricsAddrSetsTheListener(t *testing.T) {
	probe := &testModule{name: "probe", rec: &recorder{}}
	moduleSpecs = append(moduleSpecs, moduleSpec{name: "probe", build: func(ctx context.Context, rt *Runtime, o runOptions) (Module, error) { return probe, nil }})
	t.Cleanup(func() { moduleSpecs = moduleSpecs[:len(moduleSpecs)-1] })
	clearMetricsEnv(t)
	httpPort, metricsPort := freePort(t), freePort(t)
	t.Setenv("ETHHOOK_LOG_LEVEL", "error")
	t.Setenv("ETHHOOK_HTTP_ADDR", fmt.Sprintf("127.0.0.1:%d", httpPort))
	t.Setenv("ETHHOOK_METRICS_ADDR", fmt.Sprintf("127.0.0.2:%d", metricsPort))
	startServe(t, httpPort, "serve", "--modules=probe")
	waitFor(t, "metrics on 127.0.0.2", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.2:%d/metrics", metricsPort))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func TestSecretsRotateKeyReSealsEveryEndpointSecretUnderTheNewKey(t *testing.T) {
	clearConfigEnv(t)
	t.Chdir(t.TempDir())
	dbURL := testenv.PGURL(t)
	_, prefix := testenv.Redis(t)
	oldKey := testSecretKey
	newKey := "7a0c3e91b5d2f8460e1ab7c3d9f25e8a6b4c0d1e2f3a5b7c9d8e6f4a2b1c3d5e"
	ctx := context.Background()

	// Endpoints created by a process running with the old key.
	rt := &Runtime{Cfg: config.Defaults()}
	rt.Cfg.DatabaseURL, rt.Cfg.Redis.Prefix, rt.Cfg.SecretKey = dbURL, prefix, oldKey
	defer rt.Close()
	pg, rdb, box, err := rt.storage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	app, err := tenant.New(pg).CreateApplication(ctx, hook.Operator, "shop", "")
	if err != nil {
		t.Fatal(err)
	}
	eps := endpoint.New(pg, box, rdb, rt.Keys(), nil)
	in := endpoint.Input{URL: "https://example.com/hook", Filter: hook.Filter{Chains: []uint64{1}, Events: []string{"Transfer(address,address,uint256)"}}}
	a, secretA, err := eps.Create(ctx, hook.Operator, app.ID, in)
	if err != nil {
		t.Fatal(err)
	}
	b, secretB, err := eps.Create(ctx, hook.Operator, app.ID, in)
	if err != nil {
		t.Fatal(err)
	}

	// Step 1 of the rollout: new key, old one as previous; both open.
	env := map[string]string{"ETHHOOK_DATABASE_URL": dbURL, "ETHHOOK_REDIS_PREFIX": prefix, "ETHHOOK_LOG_LEVEL": "error",
		"ETHHOOK_SECRET_KEY": newKey, "ETHHOOK_SECRET_KEY_PREVIOUS": oldKey}
	// Step 2: rotate-key, keys from the configuration.
	out, err := run(t, env, "secrets", "rotate-key")
	if err != nil || !strings.Contains(out, "sealed 2 of 2 secrets (2 endpoints) again") || !strings.Contains(out, "remove ETHHOOK_SECRET_KEY_PREVIOUS") {
		t.Fatalf("rotate-key: %v\n%s", err, out)
	}
	nk, _ := hex.DecodeString(newKey)
	newOnly, _ := seal.New(nk)
	check := func(box *seal.Box) {
		t.Helper()
		svc := endpoint.New(pg, box, rdb, rt.Keys(), nil)
		for id, want := range map[string]string{a.ID: secretA, b.ID: secretB} {
			if got, err := svc.Secret(ctx, hook.Operator, app.ID, id); err != nil || got != want {
				t.Fatalf("%s: %q %v", id, got, err)
			}
		}
	}
	check(newOnly) // step 3: the previous key can go
	if _, err := box.Open(a.ID, mustSealed(t, pg, a.ID)); err == nil {
		t.Fatal("the old key still opens a rotated secret")
	}
	if out, err := run(t, env, "secrets", "rotate-key"); err != nil || !strings.Contains(out, "sealed 0 of 2") {
		t.Fatalf("second rotate-key: %v\n%s", err, out)
	}

	// Back again with keys from a file and an environment variable (not
	// argv), and no previous key configured.
	keyFile := filepath.Join(t.TempDir(), "old.key")
	os.WriteFile(keyFile, []byte(newKey+"\n"), 0o600)
	t.Setenv("ETHHOOK_SECRET_KEY_PREVIOUS", "")
	t.Setenv("ROTATE_TO", oldKey)
	out, err = run(t, map[string]string{"ETHHOOK_SECRET_KEY": newKey}, "secrets", "rotate-key", "--old-key", "file:"+keyFile, "--new-key", "env:ROTATE_TO")
	if err != nil || !strings.Contains(out, "sealed 2 of 2") || strings.Contains(out, "visible in ps") {
		t.Fatalf("rotate-key with file: and env: keys: %v\n%s", err, out)
	}
	ok, _ := hex.DecodeString(oldKey)
	oldOnly, _ := seal.New(ok)
	check(oldOnly)

	// A wrong old key changes nothing and names the endpoint.
	t.Setenv("WRONG", "1f2e3d4c5b6a79881726354453627180a9b8c7d6e5f40312a1b2c3d4e5f60718")
	if _, err := run(t, nil, "secrets", "rotate-key", "--old-key", "env:WRONG", "--new-key", "env:ROTATE_TO"); err != nil {
		t.Fatalf("rotating to the key already in use should change nothing: %v", err)
	}
	t.Setenv("ROTATE_NEW", newKey)
	if _, err := run(t, nil, "secrets", "rotate-key", "--old-key", "env:WRONG", "--new-key", "env:ROTATE_NEW"); err == nil ||
		!strings.Contains(err.Error(), "nothing changed") || !strings.Contains(err.Error(), "endpoint ep_") {
		t.Fatalf("rotate-key with a wrong old key: %v", err)
	}
	check(oldOnly)
	// A weak new key is refused.
	t.Setenv("WEAK", strings.Repeat("00", 32))
	if _, err := run(t, nil, "secrets", "rotate-key", "--new-key", "env:WEAK"); err == nil || !strings.Contains(err.Error(), "new key: is all zeros") {
		t.Fatalf("weak new key: %v", err)
	}
}

func mustSealed(t *testing.T, pg *pgxpool.Pool, id string) []byte {
	t.Helper()
	var sealed []byte
	if err := pg.QueryRow(context.Background(), `SELECT secret_enc FROM endpoints WHERE id = $1`, id).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	return sealed
}
