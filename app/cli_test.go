package app

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/ethhook/ethhook/internal/testenv"
)

// runRoot runs the whole command tree as main does and returns stdout,
// stderr and the exit status.
func runRoot(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	root := NewRoot()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	code := 0
	if cmd, err := root.ExecuteContextC(context.Background()); err != nil {
		code = report(&errOut, cmd, err)
	}
	return out.String(), errOut.String(), code
}

// cliEnv points the command line at a fresh database and Redis prefix.
func cliEnv(t *testing.T) {
	t.Helper()
	t.Setenv("ETHHOOK_DATABASE_URL", testenv.PGURL(t))
	t.Setenv("ETHHOOK_REDIS_URL", testenv.RedisURL())
	_, prefix := testenv.Redis(t)
	t.Setenv("ETHHOOK_REDIS_PREFIX", prefix)
	t.Setenv("ETHHOOK_SECRET_KEY", testSecretKey)
	t.Setenv("ETHHOOK_JWT_SECRET", testJWTSecret)
	t.Setenv("ETHHOOK_LOG_LEVEL", "error")
}

func TestUsageErrorsExitTwoWithAHintOnStderr(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"app", "creat"}, `unknown command "creat" for "ethhook app"; did you mean create?`},
		{[]string{"bogus"}, `unknown command "bogus" for "ethhook"`},
		{[]string{"endpoint", "show"}, "accepts 1 arg(s), received 0"},
		{[]string{"app", "create"}, `required flag(s) "name" not set`},
		{[]string{"version", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"config", "env", "extra"}, `unknown command "extra" for "ethhook config env"`},
		{[]string{"app", "list", "--limit", "201"}, "--limit must be between 1 and 200, got 201"},
		{[]string{"message", "list", "--limit", "0"}, "--limit must be between 1 and 200, got 0"},
		{[]string{"listen", "--status", "201", "--forward-to", "http://127.0.0.1:1/"}, "--status and --forward-to exclude each other"},
	} {
		out, errOut, code := runRoot(t, "", c.args...)
		if code != exitUsage || out != "" || !strings.Contains(errOut, c.want) || !strings.Contains(errOut, "--help' for usage") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2, nothing on stdout, %q and a hint", c.args, code, out, errOut, c.want)
		}
	}
	// A group alone shows its help, as gh does; a failure that is no
	// usage error exits 1 without the hint.
	if out, _, code := runRoot(t, "", "app"); code != 0 || !strings.Contains(out, "Available Commands") {
		t.Errorf("ethhook app: exit %d\n%s", code, out)
	}
	t.Setenv("ETHHOOK_DELIVERY_TIMEOUT", "abc")
	if _, errOut, code := runRoot(t, "", "config", "print"); code != exitFailure || strings.Contains(errOut, "for usage") || !strings.Contains(errOut, "ETHHOOK_DELIVERY_TIMEOUT=abc") {
		t.Errorf("config error: exit %d, stderr %q", code, errOut)
	}
}

func TestManagementCommandsDoNotListServerFlags(t *testing.T) {
	help := func(args ...string) string {
		out, _, code := runRoot(t, "", append(args, "--help")...)
		if code != 0 {
			t.Fatalf("%v --help: exit %d", args, code)
		}
		return out
	}
	for _, args := range [][]string{{"app", "create"}, {"endpoint", "list"}, {"message", "replay"}, {"user", "create"}, {"migrate", "up"}} {
		if h := help(args...); strings.Contains(h, "--http-addr") || strings.Contains(h, "--metrics-port") || !strings.Contains(h, "--database-url") {
			t.Errorf("%v --help lists server flags or lacks --database-url:\n%s", args, h)
		}
	}
	for _, args := range [][]string{{"serve"}, {"ingest"}, {"deliver"}, {"devnet"}} {
		if h := help(args...); !strings.Contains(h, "--http-addr") || !strings.Contains(h, "--metrics-port") {
			t.Errorf("%v --help lacks the server flags:\n%s", args, h)
		}
	}
}

// Commands that print something a script could read take --json; the
// long-running roles log (JSON with --log-format json) instead.
func TestEveryCommandTakesJSON(t *testing.T) {
	roles := map[string]bool{"ethhook serve": true, "ethhook ingest": true, "ethhook deliver": true, "ethhook devnet": true,
		"ethhook secrets init": true, "ethhook secrets rotate-key": true}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		path := c.CommandPath()
		if !c.Runnable() || c.HasSubCommands() && c.Annotations[groupAnnotation] == "true" || roles[path] ||
			strings.HasPrefix(path, "ethhook completion") || c.Name() == "help" {
			return
		}
		if c.Flag("json") == nil {
			t.Errorf("%s has no --json", path)
		}
	}
	walk(NewRoot())
}

func TestJSONOutputHasTheAPIShapes(t *testing.T) {
	cliEnv(t)
	run := func(args ...string) map[string]any {
		t.Helper()
		out, errOut, code := runRoot(t, "a-long-password\n", append(args, "--json")...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("%v --json: %v\n%s", args, err, out)
		}
		return v
	}
	if _, errOut, code := runRoot(t, "", "migrate", "up"); code != 0 {
		t.Fatalf("migrate up: %s", errOut)
	}
	// POST /api/v1/applications answers the application.
	app := run("app", "create", "--name", "shop")
	if !strings.HasPrefix(app["id"].(string), "app_") || app["name"] != "shop" || app["plan_id"] != "unlimited" || app["created_at"] == nil {
		t.Fatalf("app create: %v", app)
	}
	appID := app["id"].(string)
	// POST .../endpoints answers the endpoint with its secret beside its fields.
	ep := run("endpoint", "create", "--app", appID, "--url", "https://example.com/h", "--chain", "eth")
	if !strings.HasPrefix(ep["id"].(string), "ep_") || !strings.HasPrefix(ep["secret"].(string), "whsec_") || ep["url"] != "https://example.com/h" || ep["endpoint"] != nil {
		t.Fatalf("endpoint create: %v", ep)
	}
	epID := ep["id"].(string)
	if s := run("endpoint", "secret", "--app", appID, epID); len(s) != 2 || s["secret"] != ep["secret"] || s["signature"] != "hmac" {
		t.Fatalf("endpoint secret: %v", s)
	}
	// Every list is {"data": [...], "next_cursor": ""}.
	for _, args := range [][]string{{"app", "list"}, {"endpoint", "list", "--app", appID}, {"message", "list", "--app", appID}} {
		l := run(args...)
		if _, ok := l["data"].([]any); !ok || l["next_cursor"] == nil || len(l) != 2 {
			t.Errorf("%v: %v, want data and next_cursor", args, l)
		}
	}
	if u := run("user", "create", "--email", "ops@example.com", "--admin"); u["email"] != "ops@example.com" || u["role"] != "admin" || u["password_hash"] != nil {
		t.Fatalf("user create: %v", u)
	}
	if v := run("version"); v["version"] == nil || v["commit"] == nil || v["goversion"] == nil {
		t.Fatalf("version: %v", v)
	}
	if c := run("config", "print"); c["secret_key"] != "********" || c["admin"].(map[string]any)["default_plan"] != "unlimited" {
		t.Fatalf("config print: %v", c)
	}
	for _, args := range [][]string{{"config", "env"}, {"migrate", "status"}} {
		out, errOut, code := runRoot(t, "", append(args, "--json")...)
		var rows []map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &rows) != nil || len(rows) < 5 {
			t.Fatalf("%v --json: exit %d %s\n%s", args, code, errOut, out)
		}
	}
	devnet := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"number":7}`)) }))
	defer devnet.Close()
	if h := run("devnet", "control", "head", "--url", devnet.URL); h["number"] != float64(7) {
		t.Fatalf("devnet control: %v", h)
	}
}

func TestNotFoundNamesWhatWasNotFound(t *testing.T) {
	cliEnv(t)
	if _, errOut, code := runRoot(t, "", "migrate", "up"); code != 0 {
		t.Fatalf("migrate up: %s", errOut)
	}
	out, _, _ := runRoot(t, "", "app", "create", "--name", "shop")
	appID := strings.TrimSpace(out)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"endpoint", "show", "--app", appID, "ep_x"}, "endpoint ep_x not found in application " + appID},
		{[]string{"endpoint", "list", "--app", "app_x"}, "application app_x not found"},
		{[]string{"message", "show", "msg_x"}, "message msg_x not found"},
		{[]string{"message", "replay", "msg_x"}, "message msg_x not found"},
	} {
		_, errOut, code := runRoot(t, "", c.args...)
		if code != exitFailure || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", c.args, code, errOut, c.want)
		}
	}
}
