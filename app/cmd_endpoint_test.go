package app

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/internal/testenv"
)

func runCmd(t *testing.T, cmd *cobra.Command, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

// cliRuntime is the runtime management commands run on in these tests:
// a database and key prefix of the test's own.
func cliRuntime(t *testing.T) *Runtime {
	t.Helper()
	cfg := config.Defaults()
	cfg.DatabaseURL = testenv.PGURL(t)
	cfg.Redis.URL = testenv.RedisURL()
	_, prefix := testenv.Redis(t)
	cfg.Redis.Prefix = prefix
	cfg.SecretKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	rt := &Runtime{Cfg: cfg}
	t.Cleanup(rt.Close)
	return rt
}

// cliApp creates an application with `ethhook app create --json`.
func cliApp(t *testing.T, rt *Runtime, name string) string {
	t.Helper()
	out, err := runCmd(t, newAppCmd(rt), "create", "--name", name, "--json")
	if err != nil {
		t.Fatalf("app create: %v\n%s", err, out)
	}
	var app struct{ ID string }
	if err := json.Unmarshal([]byte(out), &app); err != nil || !strings.HasPrefix(app.ID, "app_") {
		t.Fatalf("app create --json: %q", out)
	}
	return app.ID
}

func TestAppAndEndpointCommandsRoundTrip(t *testing.T) {
	rt := cliRuntime(t)

	out, err := runCmd(t, newAppCmd(rt), "create", "--name", "shop", "--json")
	if err != nil {
		t.Fatalf("app create: %v\n%s", err, out)
	}
	var app struct{ ID string }
	if err := json.Unmarshal([]byte(out), &app); err != nil || !strings.HasPrefix(app.ID, "app_") {
		t.Fatalf("app create --json: %q", out)
	}
	if out, err := runCmd(t, newAppCmd(rt), "list"); err != nil || !strings.Contains(out, app.ID) {
		t.Fatalf("app list: %v\n%s", err, out)
	}

	abi := filepath.Join(t.TempDir(), "erc20.json")
	os.WriteFile(abi, []byte(`[{"type":"event","name":"Transfer","inputs":[{"name":"from","type":"address","indexed":true},{"name":"to","type":"address","indexed":true},{"name":"value","type":"uint256"}]}]`), 0o600)
	out, err = runCmd(t, newEndpointCmd(rt), "create", "--app", app.ID, "--url", "https://example.com/h", "--chain", "eth", "--chain", "8453",
		"--address", "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", "--event", "Transfer(address,address,uint256)", "--abi", abi,
		"--where", "value >= 1000", "--confirmations", "2", "--batch-max", "10", "--batch-wait-ms", "200", "--rate-limit", "5",
		"--retry-schedule", "0s,5s", "--json")
	if err != nil {
		t.Fatalf("endpoint create: %v\n%s", err, out)
	}
	var created struct{ ID, Secret string }
	if err := json.Unmarshal([]byte(out), &created); err != nil || !strings.HasPrefix(created.Secret, "whsec_") {
		t.Fatalf("endpoint create --json: %q", out)
	}
	_, err = runCmd(t, newEndpointCmd(rt), "create", "--app", app.ID, "--url", "https://example.com/h", "--chain", "1",
		"--event", "Transfer(address,address,uint256)", "--where", "vaule >= 1000")
	if err == nil || !strings.Contains(err.Error(), `where[0]: unknown argument "vaule"`) {
		t.Fatalf("bad condition: %v", err)
	}
	if out, err = runCmd(t, newEndpointCmd(rt), "update", "--app", app.ID, created.ID, "--where", "value >= 5", "--json"); err != nil ||
		!strings.Contains(out, `"value \u003e= 5"`) || !strings.Contains(out, `"confirmations": 2`) {
		t.Fatalf("update: %v\n%s", err, out)
	}
	if out, err = runCmd(t, newEndpointCmd(rt), "update", "--app", app.ID, created.ID, "--ordering", "fifo", "--json"); err != nil ||
		!strings.Contains(out, `"ordering": "fifo"`) {
		t.Fatalf("update --ordering fifo: %v\n%s", err, out)
	}
	if out, err = runCmd(t, newEndpointCmd(rt), "update", "--app", app.ID, created.ID, "--fifo-key", "topic1"); err == nil ||
		!strings.Contains(err.Error(), "fifo_key") || !strings.Contains(err.Error(), "batch") {
		t.Fatalf("update --fifo-key with batching: %v\n%s", err, out)
	}
	if out, err = runCmd(t, newEndpointCmd(rt), "update", "--app", app.ID, created.ID, "--batch-max", "0", "--fifo-key", "topic1"); err != nil ||
		!strings.Contains(out, "fifo by topic1") {
		t.Fatalf("update --fifo-key: %v\n%s", err, out)
	}
	if out, err = runCmd(t, newEndpointCmd(rt), "disable", "--app", app.ID, created.ID, "--json"); err != nil || !strings.Contains(out, `"enabled": false`) {
		t.Fatalf("disable: %v\n%s", err, out)
	}
	if out, err = runCmd(t, newEndpointCmd(rt), "enable", "--app", app.ID, created.ID); err != nil || !strings.Contains(out, "true") {
		t.Fatalf("enable: %v\n%s", err, out)
	}
	if out, err = runCmd(t, newEndpointCmd(rt), "secret", "--app", app.ID, created.ID, "--json"); err != nil || !strings.Contains(out, created.Secret) {
		t.Fatalf("secret: %v\n%s", err, out)
	}
	if out, err = runCmd(t, newEndpointCmd(rt), "list", "--app", app.ID); err != nil || !strings.Contains(out, created.ID) {
		t.Fatalf("list: %v\n%s", err, out)
	}
	if out, err = runCmd(t, newEndpointCmd(rt), "show", "--app", app.ID, created.ID); err != nil || !strings.Contains(out, "https://example.com/h") {
		t.Fatalf("show: %v\n%s", err, out)
	}
	if out, err = runCmd(t, newEndpointCmd(rt), "delete", "--app", app.ID, created.ID, "--json"); err != nil {
		t.Fatalf("delete: %v\n%s", err, out)
	}
	if _, err = runCmd(t, newEndpointCmd(rt), "show", "--app", app.ID, created.ID); err == nil {
		t.Fatal("deleted endpoint still shown")
	}
}
