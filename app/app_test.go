package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ethhook/ethhook/internal/testenv"
	"github.com/ethhook/ethhook/migrations"
)

// run executes the ethhook command line in-process with args and env.
func run(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	root := NewRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestMigrateUpDownStatus(t *testing.T) {
	env := map[string]string{"ETHHOOK_DATABASE_URL": testenv.EmptyPGURL(t), "ETHHOOK_LOG_LEVEL": "error"}
	out, err := run(t, env, "migrate", "status")
	if err != nil || !strings.Contains(out, "pending  00001_init.sql") {
		t.Fatalf("status before up: %v\n%s", err, out)
	}
	out, err = run(t, env, "migrate", "up")
	if err != nil || !strings.Contains(out, "applied 00001_init.sql") {
		t.Fatalf("up: %v\n%s", err, out)
	}
	out, err = run(t, env, "migrate", "up")
	if err != nil || !strings.Contains(out, "schema is up to date") {
		t.Fatalf("second up is not idempotent: %v\n%s", err, out)
	}
	out, err = run(t, env, "migrate", "status")
	if err != nil || strings.Contains(out, "pending") || !strings.Contains(out, "applied  00001_init.sql") {
		t.Fatalf("status after up: %v\n%s", err, out)
	}
	// Roll everything back one by one, then the base schema is gone.
	for i := 0; i < 100; i++ {
		out, err = run(t, env, "migrate", "down")
		if err != nil {
			t.Fatalf("down: %v\n%s", err, out)
		}
		if strings.Contains(out, "nothing to roll back") {
			break
		}
	}
	out, _ = run(t, env, "migrate", "status")
	if strings.Contains(out, "applied") {
		t.Fatalf("after full rollback:\n%s", out)
	}
}

func TestConcurrentMigrateUpAppliesEachMigrationOnce(t *testing.T) {
	url := testenv.EmptyPGURL(t)
	ctx := context.Background()
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	applied := make([]int, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool, err := pgxpool.New(ctx, url)
			if err != nil {
				errs[i] = err
				return
			}
			defer pool.Close()
			m, err := migrations.New(pool)
			if err != nil {
				errs[i] = err
				return
			}
			defer m.Close()
			res, err := m.Up(ctx)
			applied[i], errs[i] = len(res), err
		}()
	}
	wg.Wait()
	total := 0
	for i := range errs {
		if errs[i] != nil {
			t.Fatalf("runner %d: %v", i, errs[i])
		}
		total += applied[i]
	}
	pool, _ := pgxpool.New(ctx, url)
	defer pool.Close()
	m, _ := migrations.New(pool)
	defer m.Close()
	st, err := m.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if total != len(st) {
		t.Fatalf("%d runners applied %d migrations in all; there are %d", n, total, len(st))
	}
	var dupes int
	if err := pool.QueryRow(ctx, "SELECT count(*) - count(DISTINCT version_id) FROM goose_db_version").Scan(&dupes); err != nil || dupes != 0 {
		t.Fatalf("duplicate versions recorded: %d (%v)", dupes, err)
	}
}

func TestServeRefusesToStartWithPendingMigrations(t *testing.T) {
	spec := moduleSpec{name: "pgprobe", needsPG: true, build: func(ctx context.Context, rt *Runtime, o runOptions) (Module, error) {
		return &testModule{name: "pgprobe", rec: &recorder{}}, nil
	}}
	moduleSpecs = append(moduleSpecs, spec)
	t.Cleanup(func() { moduleSpecs = moduleSpecs[:len(moduleSpecs)-1] })
	clearMetricsEnv(t)
	env := map[string]string{"ETHHOOK_DATABASE_URL": testenv.EmptyPGURL(t), "ETHHOOK_LOG_LEVEL": "error", "ETHHOOK_HTTP_ADDR": fmt.Sprintf("127.0.0.1:%d", freePort(t)), "METRICS_PORT": "0"}
	_, err := run(t, env, "serve", "--modules=pgprobe")
	if err == nil || !strings.Contains(err.Error(), "pending migration(s): 00001_init.sql") || !strings.Contains(err.Error(), "ethhook migrate up") {
		t.Fatalf("err = %v", err)
	}
}

func TestServeUnknownModuleIsAnError(t *testing.T) {
	_, err := run(t, map[string]string{"ETHHOOK_LOG_LEVEL": "error"}, "serve", "--modules=nope")
	if err == nil || !strings.Contains(err.Error(), `unknown module "nope"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestServeExposesHealthReadinessAndMetrics(t *testing.T) {
	probe := &testModule{name: "probe", rec: &recorder{}}
	moduleSpecs = append(moduleSpecs, moduleSpec{name: "probe", build: func(ctx context.Context, rt *Runtime, o runOptions) (Module, error) { return probe, nil }})
	t.Cleanup(func() { moduleSpecs = moduleSpecs[:len(moduleSpecs)-1] })
	httpPort, metricsPort := freePort(t), freePort(t)
	clearMetricsEnv(t)
	for k, v := range map[string]string{"ETHHOOK_LOG_LEVEL": "error", "ETHHOOK_HTTP_ADDR": fmt.Sprintf("127.0.0.1:%d", httpPort), "METRICS_PORT": fmt.Sprint(metricsPort)} {
		t.Setenv(k, v)
	}
	startServe(t, httpPort, "serve", "--modules=probe")

	get := func(port int, path string) (int, string) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if c, body := get(httpPort, "/healthz"); c != 200 || !strings.Contains(body, `"status":"ok"`) {
		t.Fatalf("healthz %d %s", c, body)
	}
	probe.ready.Store(false)
	if c, body := get(httpPort, "/readyz"); c != 503 || !strings.Contains(body, `"not_ready":["probe"]`) {
		t.Fatalf("readyz with an unready module: %d %s", c, body)
	}
	probe.ready.Store(true)
	waitFor(t, "metrics", func() bool { c, _ := get(metricsPort, "/metrics"); return c == 200 })
	_, body := get(metricsPort, "/metrics")
	for _, want := range []string{"ethhook_build_info{", "go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(body, want) {
			t.Fatalf("/metrics lacks %s", want)
		}
	}
	// startServe's cleanup checks serve drains and returns nil on cancel.
}

func TestConfigPrintMasksSecrets(t *testing.T) {
	out, err := run(t, map[string]string{"ETHHOOK_DATABASE_URL": "postgres://u:topsecret@db/x", "ETHHOOK_LOG_LEVEL": "error"}, "config", "print")
	if err != nil || strings.Contains(out, "topsecret") || !strings.Contains(out, "database_url: postgres://u:***@db/x") {
		t.Fatalf("%v\n%s", err, out)
	}
	// A password may also ride in the query string.
	out, err = run(t, map[string]string{
		"ETHHOOK_DATABASE_URL": "postgres://u@db/x?sslmode=require&password=querysecret",
		"ETHHOOK_REDIS_URL":    "redis://redis:6379/0?password=redissecret",
		"ETHHOOK_LOG_LEVEL":    "error",
	}, "config", "print")
	if err != nil || strings.Contains(out, "querysecret") || strings.Contains(out, "redissecret") ||
		!strings.Contains(out, "postgres://u@db/x?password=***&sslmode=require") || !strings.Contains(out, "redis://redis:6379/0?password=***") {
		t.Fatalf("%v\n%s", err, out)
	}
}

func TestInvalidConfigFailsFastNamingTheVariable(t *testing.T) {
	_, err := run(t, map[string]string{"ETHEREUM_WS_URL": "ws://node.example"}, "serve")
	if err == nil || !strings.Contains(err.Error(), "ETHEREUM_WS_URL") {
		t.Fatalf("err = %v", err)
	}
}

func TestHelpListsEnvironmentVariables(t *testing.T) {
	for _, args := range [][]string{{"serve", "--help"}, {"ingest", "--help"}, {"deliver", "--help"}, {"migrate", "--help"}} {
		out, err := run(t, nil, args...)
		if err != nil || !strings.Contains(out, "ETHHOOK_") {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	out, _ := run(t, nil, "--help")
	for _, want := range []string{"--log-level", "ETHHOOK_LOG_LEVEL"} {
		if !strings.Contains(out, want) {
			t.Fatalf("root help lacks %s", want)
		}
	}
	// The listeners' flags belong to the roles that listen.
	out, _ = run(t, nil, "serve", "--help")
	if !strings.Contains(out, "METRICS_PORT") {
		t.Fatalf("serve help lacks METRICS_PORT")
	}
}

// TestSIGTERMDrainsAndExitsZero runs the real binary and signals it.
func TestSIGTERMDrainsAndExitsZero(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "ethhook")
	build := exec.Command("go", "build", "-o", bin, "github.com/ethhook/ethhook")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	httpPort := freePort(t)
	cmd := exec.Command(bin, "serve", "--modules=devnet", "--http-addr", fmt.Sprintf("127.0.0.1:%d", httpPort), "--metrics-port", "0")
	cmd.Env = append(os.Environ(), "ETHHOOK_LOG_LEVEL=info", fmt.Sprintf("ETHHOOK_DEVNET_ADDR=127.0.0.1:%d", freePort(t)))
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "readyz", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", httpPort))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
	}
	if !strings.Contains(logs.String(), "shutdown requested, draining") {
		t.Fatalf("no drain logged:\n%s", logs.String())
	}
}
