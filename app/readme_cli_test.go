package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/ethhook/ethhook/internal/testenv"
)

// The README's command-line examples: every command that starts with
// `ethhook` in a ```sh or plain ``` block of README.md.
// TestReadmeCLIExamplesRunAgainstALiveServer runs each of them, in README
// order and as written (in bash, with `ethhook` on the PATH), against a live
// `serve --modules=deliver,admin` on a real Postgres and Redis:
//
//   - a command runs to completion and must exit 0; one whose comment says
//     what it prints (readmeCLIClaims) must print that, and the comment of a
//     `show` is a line of its output;
//   - a command that only reads (list, show, config, version, status) runs a
//     second time with --json, and its output must have the shape the README
//     states (readmeJSONShape); a README example written with --json is
//     checked the same way;
//   - a long-running role (serve, ingest, deliver, devnet, listen) must start,
//     answer /readyz when it has one, stay up, and exit 0 on SIGTERM;
//   - a synopsis (`a|b|c` alternatives, `[optional ...]`, a bare `...` for
//     arguments the README does not give) is expanded into each command; the
//     ones runnable as written are run, the rest and the commands in
//     readmeCLINotRun are checked with --help: the command path must exist
//     and every flag written must parse.
//
// The README's placeholders are the ids a reader would have at that point:
// app_01... / app_... the application the last `app create` printed,
// ep_01... the endpoint the last `endpoint create` printed, whsec_... its
// secret, msg_01... a delivered message (the test's own test event). Before
// the README creates them, the test's own application and endpoint stand in.

// cliShimEnv makes this test binary act as the ethhook binary (as main
// does: app.Execute), so the examples run a real process.
const cliShimEnv = "ETHHOOK_README_CLI_SHIM"

func init() {
	if os.Getenv(cliShimEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		root := NewRoot()
		root.SetArgs(os.Args[1:])
		code := 0
		if cmd, err := root.ExecuteContextC(ctx); err != nil {
			code = report(os.Stderr, cmd, err)
		}
		stop()
		os.Exit(code)
	}
}

// readmeCLINotRun are the commands (path after "ethhook") that are only
// checked with --help, and why.
var readmeCLINotRun = map[string]string{
	"migrate down":       "rolls back the newest migration of the database the live server uses (TestMigrateUpDownStatus runs it)",
	"secrets rotate-key": "re-seals every endpoint secret under a new key, which the live server then cannot open (TestSecretsRotateKeyReSealsEveryEndpointSecretUnderTheNewKey runs it)",
	"bench":              "a 35 s load run at 1,000 events/s over 100 endpoints, too heavy beside the other tests on a shared machine (TestBenchRunsThePipelineAndReportsConsistentFigures runs a small one)",
}

// readmeCLILongRunning are the roles that run until stopped.
var readmeCLILongRunning = []string{"serve", "ingest", "deliver", "devnet", "listen"}

var (
	appIDRe    = regexp.MustCompile(`\bapp_[0-9A-HJKMNP-TV-Z]{26}\b`)
	epIDRe     = regexp.MustCompile(`\bep_[0-9A-HJKMNP-TV-Z]{26}\b`)
	secretRe   = regexp.MustCompile(`\bwhsec_[A-Za-z0-9+/=]+`)
	alternRe   = regexp.MustCompile(`^[a-z][a-z0-9-]*(\|[a-z][a-z0-9-]*)+$`)
	flagWordRe = regexp.MustCompile(`^--[a-z][a-z0-9-]*`)
)

// readmeCLIClaims: what a comment beside a command says it prints.
var readmeCLIClaims = map[string]func(stdout string) bool{
	"prints the application id": func(out string) bool {
		return appIDRe.MatchString(out) && appIDRe.FindString(out) == strings.TrimSpace(out)
	},
	"prints the endpoint id and its secret, once": func(out string) bool {
		return epIDRe.MatchString(out) && secretRe.MatchString(out)
	},
}

// hasLine says whether out has a line that is want, blanks aside.
func hasLine(out, want string) bool {
	w := strings.Join(strings.Fields(want), " ")
	for _, l := range strings.Split(out, "\n") {
		if strings.Join(strings.Fields(l), " ") == w {
			return true
		}
	}
	return false
}

// readmeCLIExample is one `ethhook` command of the README.
type readmeCLIExample struct {
	line    int
	text    string // as written, without the comment
	comment string
}

// readmeBlocks returns every fenced block of README.md with its language
// and the line of its first body line.
func readmeBlocks(t *testing.T) (langs, bodies []string, lines []int) {
	t.Helper()
	b, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	ls := strings.Split(string(b), "\n")
	for i := 0; i < len(ls); i++ {
		l := strings.TrimSpace(ls[i])
		if !strings.HasPrefix(l, "```") {
			continue
		}
		start := i + 1
		for i++; i < len(ls) && strings.TrimSpace(ls[i]) != "```"; i++ {
		}
		langs = append(langs, strings.TrimPrefix(l, "```"))
		bodies = append(bodies, strings.Join(ls[start:min(i, len(ls))], "\n")+"\n")
		lines = append(lines, start+1)
	}
	return langs, bodies, lines
}

// readmeCLIExamples parses the `ethhook` commands out of the README's
// shell blocks the way the curl examples are parsed (splitShell).
func readmeCLIExamples(t *testing.T) []readmeCLIExample {
	t.Helper()
	langs, bodies, lines := readmeBlocks(t)
	var out []readmeCLIExample
	for i, body := range bodies {
		if langs[i] != "sh" && langs[i] != "" {
			continue
		}
		if !regexp.MustCompile(`(?m)^ethhook `).MatchString(body) {
			continue // e.g. the diagram of "How it works"
		}
		exs, err := splitShell(body, lines[i])
		if err != nil {
			t.Fatal(err)
		}
		for _, ex := range exs {
			if !strings.HasPrefix(ex.text, "ethhook ") {
				continue
			}
			text, comment := ex.text, ""
			if j := commentStart(text); j >= 0 {
				text, comment = strings.TrimSpace(text[:j]), strings.TrimSpace(strings.TrimPrefix(text[j:], "#"))
			}
			out = append(out, readmeCLIExample{line: ex.line, text: text, comment: comment})
		}
	}
	return out
}

// commentStart is where a shell comment starts in a one-command text (a #
// after blank space and outside quotes), or -1.
func commentStart(s string) int {
	inS, inD := false, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case inS:
			inS = c != '\''
		case inD:
			inD = c != '"'
		case c == '\\':
			i++
		case c == '\'':
			inS = true
		case c == '"':
			inD = true
		case c == '#' && i > 0 && (s[i-1] == ' ' || s[i-1] == '\t'):
			return i
		}
	}
	return -1
}

// shellWords splits a command into words, keeping quotes as written.
func shellWords(s string) []string {
	var words []string
	var cur strings.Builder
	inS, inD := false, false
	flush := func() {
		if cur.Len() > 0 {
			words = append(words, cur.String())
			cur.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inS:
			inS = c != '\''
		case inD:
			inD = c != '"'
		case c == '\\' && i+1 < len(s) && s[i+1] == '\n':
			i++
			flush()
			continue
		case c == '\'':
			inS = true
		case c == '"':
			inD = true
		case c == ' ' || c == '\t' || c == '\n':
			flush()
			continue
		}
		cur.WriteByte(c)
	}
	flush()
	return words
}

// expandSynopsis turns a synopsis into commands: `a|b` words into one
// command each, `[...]` into its content (a bare ... dropped). partial
// reports a bare `...` outside brackets: arguments the README leaves out.
func expandSynopsis(words []string) (cmds [][]string, partial bool) {
	cmds = [][]string{nil}
	for _, w := range words {
		w = strings.TrimPrefix(w, "[")
		w = strings.TrimSuffix(w, "]")
		switch {
		case w == "":
			continue
		case w == "...":
			// A bare "..." right after an optional part only repeats it.
			partial = partial || !strings.Contains(strings.Join(words, " "), "...]")
			continue
		case alternRe.MatchString(w):
			var next [][]string
			for _, c := range cmds {
				for _, alt := range strings.Split(w, "|") {
					next = append(next, append(slices.Clone(c), alt))
				}
			}
			cmds = next
			continue
		}
		for i := range cmds {
			cmds[i] = append(cmds[i], w)
		}
	}
	return cmds, partial
}

// commandPath is the subcommand words of args ("endpoint show"), the words
// before the first flag or placeholder that name commands of the tree.
func commandPath(args []string) string {
	p, _, _ := resolveCommand(args)
	return p
}

// resolveCommand finds the command args name. bad is a word right after
// it that looks like a subcommand but names none, where the command has
// subcommands (`endpoint delet`); words after a command without
// subcommands are its arguments (`devnet control reorg`).
func resolveCommand(args []string) (path string, c *cobra.Command, bad string) {
	c = NewRoot()
	c.InitDefaultCompletionCmd() // added by Execute, as the binary has it
	var words []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			break
		}
		sub := findSub(c, a)
		if sub == nil {
			if c.HasSubCommands() && regexp.MustCompile(`^[a-z][a-z0-9-]*$`).MatchString(a) {
				bad = a
			}
			break
		}
		c = sub
		words = append(words, a)
	}
	return strings.Join(words, " "), c, bad
}

func findSub(c *cobra.Command, name string) *cobra.Command {
	for _, s := range c.Commands() {
		if s.Name() == name || slices.Contains(s.Aliases, name) {
			return s
		}
	}
	return nil
}

func TestReadmeCLIExamplesRunAgainstALiveServer(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed: the README's examples need it")
	}
	examples := readmeCLIExamples(t)
	if len(examples) < 20 {
		t.Fatalf("only %d ethhook examples found in README.md", len(examples))
	}

	// The live server, as in the API test; chains 1 and 8453 are configured
	// (never dialled by admin), so --chain 1 --chain 8453 and --chain base work.
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(receiver.Close)
	httpPort := freePort(t)
	clearMetricsEnv(t) // METRICS_PORT below, not make run's exported port
	env := map[string]string{
		"ETHHOOK_LOG_LEVEL":            "error",
		"ETHHOOK_DATABASE_URL":         testenv.PGURL(t),
		"ETHHOOK_HTTP_ADDR":            fmt.Sprintf("127.0.0.1:%d", httpPort),
		"METRICS_PORT":                 "0",
		"ETHHOOK_SECRET_KEY":           testSecretKey,
		"ETHHOOK_JWT_SECRET":           testJWTSecret,
		"ETHHOOK_DELIVERY_ALLOW_CIDRS": "127.0.0.0/8",
		"ETHEREUM_WS_URL":              "wss://eth.invalid/v2/readme",
		"BASE_WS_URL":                  "wss://base.invalid/v2/readme",
		"ETHHOOK_REDIS_URL":            testenv.RedisURL(),
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	_, prefix := testenv.Redis(t)
	t.Setenv("ETHHOOK_REDIS_PREFIX", prefix)
	if out, err := run(t, nil, "migrate", "up"); err != nil {
		t.Fatalf("migrate up: %v\n%s", err, out)
	}
	const password = "readme-admin-password"
	if out, errOut, code := runRoot(t, password+"\n", "user", "create", "--email", "admin@ethhook.local", "--admin"); code != 0 {
		t.Fatalf("user create: %s %s", out, errOut)
	}
	startServe(t, httpPort, "serve", "--modules=deliver,admin")
	base := fmt.Sprintf("http://127.0.0.1:%d/api/v1", httpPort)

	// The ids before the README makes its own, and a delivered message.
	cur := map[string]string{}
	jsonOut := func(args ...string) map[string]any {
		t.Helper()
		out, errOut, code := runRoot(t, "", append(args, "--json")...)
		var v map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &v) != nil {
			t.Fatalf("%v: exit %d %s\n%s", args, code, errOut, out)
		}
		return v
	}
	cur["app"] = jsonOut("app", "create", "--name", "readme-setup")["id"].(string)
	ep := jsonOut("endpoint", "create", "--app", cur["app"], "--url", receiver.URL+"/hooks", "--chain", "1")
	cur["ep"], cur["secret"] = ep["id"].(string), ep["secret"].(string)
	cur["msg"] = readmeTestMessage(t, base, password, cur["app"], cur["ep"])

	// This test binary as `ethhook` on the PATH.
	dir := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	shim := fmt.Sprintf("#!/bin/sh\n%s=1 exec %s \"$@\"\n", cliShimEnv, shellQuote(exe))
	if err := os.WriteFile(filepath.Join(dir, "ethhook"), []byte(shim), 0o755); err != nil {
		t.Fatal(err)
	}
	path := dir + string(os.PathListSeparator) + os.Getenv("PATH")

	placeholders := []struct{ re, key string }{
		{`\bapp_01\.\.\.`, "app"}, {`\bapp_\.\.\.`, "app"}, {`\bep_01\.\.\.`, "ep"}, {`\bmsg_01\.\.\.`, "msg"}, {`\bwhsec_\.\.\.`, "secret"},
	}
	substitute := func(s string) string {
		for _, p := range placeholders {
			s = regexp.MustCompile(p.re).ReplaceAllLiteralString(s, cur[p.key])
		}
		return s
	}
	bash := func(script, stdin string, extraEnv ...string) *exec.Cmd {
		cmd := exec.Command("bash", "-c", script)
		cmd.Env = append(append(os.Environ(), "PATH="+path), extraEnv...)
		cmd.Stdin = strings.NewReader(stdin)
		return cmd
	}
	runOnce := func(where, script string) (string, string) {
		t.Helper()
		cmd := bash(script, "correct-horse-battery-staple\n")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s\n-- ran: %s\n-- failed: %v\n-- stdout:\n%s\n-- stderr:\n%s", where, script, err, stdout.String(), stderr.String())
		}
		return stdout.String(), stderr.String()
	}
	checkHelp := func(where string, words []string, why string) {
		t.Helper()
		p, _, badWord := resolveCommand(words[1:])
		script := strings.Join(words, " ") + " --help"
		out, _ := runOnce(where, script)
		if !strings.Contains(out, "\n  ethhook "+p) || badWord != "" {
			t.Fatalf("%s\n-- %s: no such command (the help printed is of `ethhook %s`)", where, strings.Join(words, " "), p)
		}
		t.Logf("README.md %s: checked with --help (%s)", strings.Join(words, " "), why)
	}
	ran, helped, long := 0, 0, 0
	for _, ex := range examples {
		where := fmt.Sprintf("README.md line %d: %s", ex.line, ex.text)
		words := shellWords(substitute(ex.text))
		cmds, partial := expandSynopsis(words)
		for _, w := range cmds {
			p := commandPath(w[1:])
			if p == "" {
				t.Fatalf("%s\n-- %q is no ethhook command", where, strings.Join(w, " "))
			}
			if left := strings.Join(w, " "); strings.Contains(left, "...") {
				t.Fatalf("%s\n-- a placeholder the test does not know: %s", where, left)
			}
			top := strings.Fields(p)[0]
			switch why, notRun := readmeCLINotRun[p]; {
			case partial:
				checkHelp(where, w, "the README leaves the arguments out (...)")
				helped++
			case notRun:
				checkHelp(where, w, why)
				helped++
			case slices.Contains(readmeCLILongRunning, top) && !strings.HasPrefix(p, "devnet control"):
				var during []string
				for _, m := range regexp.MustCompile("`(ethhook [^`]+)`").FindAllStringSubmatch(ex.comment, -1) {
					during = append(during, m[1])
				}
				runLongRunning(t, where, w, p, during, bash)
				long++
			default:
				out, _ := runOnce(where, strings.Join(w, " "))
				ran++
				for claim, ok := range readmeCLIClaims {
					if strings.Contains(ex.comment, claim) && !ok(out) {
						t.Fatalf("%s\n-- the README says it %s; it printed:\n%s", where, claim, out)
					}
				}
				// The comment of a show is a line it prints ("ordering  fifo by topic1").
				if strings.HasSuffix(p, " show") && ex.comment != "" && !hasLine(out, ex.comment) {
					t.Fatalf("%s\n-- the README shows the line %q; it printed:\n%s", where, ex.comment, out)
				}
				if slices.Contains(w, "--json") {
					checkJSONShape(t, where, p, out)
				} else if readOnly(p) {
					out, _ := runOnce(where+" (with --json)", strings.Join(w, " ")+" --json")
					checkJSONShape(t, where+" (with --json)", p, out)
				}
				switch p {
				case "app create":
					cur["app"] = appIDRe.FindString(out)
				case "endpoint create":
					cur["ep"], cur["secret"] = epIDRe.FindString(out), secretRe.FindString(out)
				}
				t.Logf("README.md line %d: %s -> %.120q", ex.line, strings.Join(w, " "), strings.TrimSpace(out))
			}
		}
	}
	t.Logf("%d README CLI commands run, %d long-running roles started and stopped, %d checked with --help", ran, long, helped)
	if ran < 10 || long < 5 {
		t.Fatalf("only %d commands run and %d roles started: the parser lost examples", ran, long)
	}
}

func readOnly(path string) bool {
	return strings.HasSuffix(path, " list") || strings.HasSuffix(path, " show") || path == "version" ||
		path == "config print" || path == "config env" || path == "migrate status"
}

// checkJSONShape checks a --json output against what the README says it
// is (Endpoints and applications from the command line; FIFO ordering).
func checkJSONShape(t *testing.T, where, path, out string) {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%s\n-- --json printed no JSON: %v\n%s", where, err, out)
	}
	obj, _ := v.(map[string]any)
	bad := func(want string) {
		t.Helper()
		t.Fatalf("%s\n-- the README says --json prints %s; it printed:\n%s", where, want, out)
	}
	switch {
	case strings.HasSuffix(path, " list"):
		if _, ok := obj["data"].([]any); !ok || obj["next_cursor"] == nil || len(obj) != 2 {
			bad(`{"data": [...], "next_cursor": "..."}`)
		}
	case path == "app create":
		if id, _ := obj["id"].(string); !strings.HasPrefix(id, "app_") || obj["name"] == nil {
			bad("the application")
		}
	case path == "endpoint create":
		if id, _ := obj["id"].(string); !strings.HasPrefix(id, "ep_") || obj["secret"] == nil || obj["endpoint"] != nil {
			bad("the endpoint with its secret beside its fields")
		}
	case path == "endpoint show" || path == "endpoint update":
		if obj["id"] == nil || obj["ordering"] == nil {
			bad(`the endpoint, with "ordering"`)
		}
	case path == "message show":
		if obj["message"] == nil || obj["attempts"] == nil || len(obj) != 2 {
			bad(`{"message", "attempts"}`)
		}
	case path == "message replay-range":
		if _, ok := obj["replayed"].(float64); !ok || len(obj) != 1 {
			bad(`{"replayed": n}`)
		}
	case path == "endpoint secret" || path == "endpoint rotate-secret":
		if obj["secret"] == nil {
			bad(`{"secret": ...}`)
		}
	}
}

// runLongRunning starts a role as written on ports of its own, waits for
// /readyz when it serves one, checks it stays up, and stops it with SIGTERM:
// it must exit 0.
// during are commands (from the example's comment) run while it is up.
func runLongRunning(t *testing.T, where string, words []string, path string, during []string, bash func(string, string, ...string) *exec.Cmd) {
	t.Helper()
	httpPort, devnetPort, demoPort := freePort(t), freePort(t), freePort(t)
	extra := []string{
		fmt.Sprintf("ETHHOOK_HTTP_ADDR=127.0.0.1:%d", httpPort),
		fmt.Sprintf("ETHHOOK_DEVNET_ADDR=127.0.0.1:%d", devnetPort),
		fmt.Sprintf("ETHHOOK_DEVNET_DEMO_ADDR=127.0.0.1:%d", demoPort),
	}
	script := strings.Join(words, " ")
	readyURL := fmt.Sprintf("http://127.0.0.1:%d/readyz", httpPort)
	if path == "devnet" {
		readyURL = fmt.Sprintf("http://127.0.0.1:%d/control/head", devnetPort) // the standalone devnet has no /readyz
	}
	if path == "listen" {
		// listen answers on --addr (:9000 as written); a busy 9000 (a
		// `make run` demo on this machine) gets a free port instead.
		if ln, err := net.Listen("tcp", ":9000"); err == nil {
			ln.Close()
			readyURL = "http://127.0.0.1:9000/"
		} else {
			p := freePort(t)
			script += fmt.Sprintf(" --addr 127.0.0.1:%d", p)
			readyURL = fmt.Sprintf("http://127.0.0.1:%d/", p)
			t.Logf("%s: port 9000 is busy, listening on %d", where, p)
		}
	}
	// exec, so that the signal reaches the role itself.
	cmd := bash("exec "+script, "", extra...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	fail := func(format string, args ...any) {
		t.Helper()
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("%s\n-- %s\n-- stdout:\n%s\n-- stderr:\n%s", where, fmt.Sprintf(format, args...), stdout.String(), stderr.String())
	}
	// Ready: /readyz 200 (listen: any HTTP answer). ingest and serve --all
	// dial chain nodes that do not exist here, so they are not ready;
	// for them staying up is what is checked.
	wantReady := !(path == "ingest" || path == "serve" && slices.Contains(words, "--all"))
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(45 * time.Second)
	ready := false
	for !ready && time.Now().Before(deadline) {
		select {
		case err := <-done:
			done <- err
			fail("exited while starting: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
		if resp, err := client.Get(readyURL); err == nil {
			resp.Body.Close()
			ready = resp.StatusCode == http.StatusOK || path == "listen"
		}
		if !wantReady && time.Until(deadline) < 40*time.Second {
			break // five seconds up is enough for a role that cannot be ready here
		}
	}
	if wantReady && !ready {
		fail("not ready within 45s (%s)", readyURL)
	}
	select {
	case err := <-done:
		done <- err
		fail("exited on its own: %v", err)
	default:
	}
	for _, c := range during {
		dc := bash(c, "", extra...)
		b, err := dc.CombinedOutput()
		if err != nil {
			fail("while it runs, `%s` (in its comment) failed: %v\n%s", c, err, b)
		}
		t.Logf("README.md %s, while %s runs: %.120q", c, script, strings.TrimSpace(string(b)))
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s\n-- exit after SIGTERM: %v\n-- stderr:\n%s", where, err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		fail("did not stop within 60s of SIGTERM")
	}
	t.Logf("README.md %s: started (ready: %v), stopped on SIGTERM with exit 0", script, ready)
}

// readmeTestMessage sends a test event to the endpoint through the API and
// returns its message id once delivered.
func readmeTestMessage(t *testing.T, base, password, appID, epID string) string {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	do := func(method, url, token, body string, out any) {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode >= 300 {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, b)
		}
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	var login struct{ Token string }
	do(http.MethodPost, base+"/auth/login", "", fmt.Sprintf(`{"email": "admin@ethhook.local", "password": %q}`, password), &login)
	var sent struct {
		MessageID string `json:"message_id"`
	}
	do(http.MethodPost, fmt.Sprintf("%s/applications/%s/endpoints/%s/test", base, appID, epID), login.Token, "", &sent)
	vars := map[string]string{"BASE": base, "APP": appID, "MSG": sent.MessageID, "TOKEN": login.Token}
	waitForMessageState(t, client, vars, "succeeded")
	return sent.MessageID
}

// TestReadmeInlineCLICommandsExist checks every `ethhook ...` the README's
// prose quotes (inline code outside the fenced blocks): each command path
// exists and every flag written parses, by running it with --help. A word
// in capitals (`ethhook COMMAND --help`) is a placeholder for any command.
func TestReadmeInlineCLICommandsExist(t *testing.T) {
	b, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	// The prose: every line outside the fences, joined (a span may wrap).
	var prose strings.Builder
	in := false
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			in = !in
			prose.WriteString("\n")
			continue
		}
		if !in {
			prose.WriteString(l + "\n")
		}
	}
	spans := regexp.MustCompile("`(ethhook\\s[^`]+)`").FindAllStringSubmatch(prose.String(), -1)
	if len(spans) < 20 {
		t.Fatalf("only %d inline ethhook commands found", len(spans))
	}
	checked := 0
	for _, m := range spans {
		text := m[1]
		if i := strings.Index(text, ">>"); i >= 0 {
			text = text[:i] // a shell redirection
		}
		words := shellWords(text)
		if slices.ContainsFunc(words, func(w string) bool { return regexp.MustCompile(`^[A-Z]+$`).MatchString(w) }) {
			continue
		}
		for i, w := range words {
			if w == "..." && i > 0 && strings.HasPrefix(words[i-1], "--") {
				words[i] = "x" // a flag's value left out
			}
		}
		cmds, _ := expandSynopsis(words)
		for _, w := range cmds {
			p, c, bad := resolveCommand(w[1:])
			if p == "" || bad != "" {
				t.Errorf("README.md quotes `%s`: %q is no ethhook command (what exists of it: `%s`)", m[1], strings.Join(w, " "), strings.TrimSpace("ethhook "+p))
				continue
			}
			for _, a := range w[1:] {
				name := flagWordRe.FindString(a)
				if name == "" {
					continue
				}
				if c.Flags().Lookup(name[2:]) == nil && c.InheritedFlags().Lookup(name[2:]) == nil {
					t.Errorf("README.md quotes `%s`: `ethhook %s` has no flag %s", m[1], p, name)
				}
			}
			checked++
		}
	}
	t.Logf("%d inline commands checked", checked)
}
