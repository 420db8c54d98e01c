package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethhook/ethhook/internal/testenv"
)

// The README's "## Admin API" section (between <!-- api:start --> and
// <!-- api:end -->) holds a ```sh session of curl examples, each followed by
// `# -> STATUS`. TestReadmeAPIExamplesRunAgainstALiveServer runs them, in
// order and as written, against `ethhook serve --modules=deliver,admin`.

const (
	readmePath      = "../README.md"
	apiSectionStart = "<!-- api:start -->"
	apiSectionEnd   = "<!-- api:end -->"
	// jqShimEnv makes this test binary act as a tiny jq (see jqShim) for
	// machines without jq; ETHHOOK_TEST_JQ_SHIM=1 forces the shim.
	jqShimEnv = "ETHHOOK_README_JQ_SHIM"
)

func init() {
	if os.Getenv(jqShimEnv) == "1" {
		os.Exit(jqShim(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
}

// readmeExample is one shell command of the README's session.
type readmeExample struct {
	line    int    // first line in README.md
	text    string // as written, comments included
	want    int    // the status after "# ->", 0 for commands without curl
	assigns string // the variable the command sets (NAME=...), if any
}

var (
	wantStatusRe = regexp.MustCompile(`#\s*->\s*(\d{3})\b`)
	assignRe     = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)=`)
	curlWordRe   = regexp.MustCompile(`(^|[\s(|;&$])curl\s`)
)

// readmeAPISection returns the API section of README.md and the line its
// first line is on.
func readmeAPISection(t *testing.T) (string, int) {
	t.Helper()
	b, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i, j := strings.Index(s, apiSectionStart), strings.Index(s, apiSectionEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md has no %s ... %s section", apiSectionStart, apiSectionEnd)
	}
	return s[i:j], strings.Count(s[:i], "\n") + 1
}

// fencedBlocks returns the bodies of the ```lang blocks of s with the line
// (in the README) of each body's first line.
func fencedBlocks(s string, firstLine int, lang string) (bodies []string, lines []int) {
	ls := strings.Split(s, "\n")
	for i := 0; i < len(ls); i++ {
		if strings.TrimSpace(ls[i]) != "```"+lang {
			continue
		}
		start := i + 1
		for i++; i < len(ls) && strings.TrimSpace(ls[i]) != "```"; i++ {
		}
		bodies = append(bodies, strings.Join(ls[start:min(i, len(ls))], "\n")+"\n")
		lines = append(lines, firstLine+start)
	}
	return bodies, lines
}

// splitShell splits a shell script into its top-level commands the way the
// shell does: a newline ends a command unless it is escaped, inside quotes
// or inside $( ... ); comments run to the end of the line.
func splitShell(script string, firstLine int) ([]readmeExample, error) {
	var out []readmeExample
	var cur strings.Builder
	var comments []string
	start, line := firstLine, firstLine
	inSingle, inDouble, depth, hasCode := false, false, 0, false
	flush := func() {
		text := strings.TrimSpace(cur.String())
		if hasCode {
			ex := readmeExample{line: start, text: text}
			for _, c := range comments {
				if m := wantStatusRe.FindStringSubmatch(c); m != nil {
					ex.want, _ = strconv.Atoi(m[1])
				}
			}
			if m := assignRe.FindStringSubmatch(text); m != nil {
				ex.assigns = m[1]
			}
			out = append(out, ex)
		}
		cur.Reset()
		comments, hasCode = nil, false
	}
	for i := 0; i < len(script); i++ {
		c := script[i]
		if c == '\n' {
			line++
		}
		switch {
		case inSingle:
			if c == '\'' {
				inSingle = false
			}
		case c == '\\' && i+1 < len(script):
			cur.WriteByte(c)
			i++
			c = script[i]
			if c == '\n' {
				line++
			}
		case inDouble:
			if c == '"' {
				inDouble = false
			}
		case c == '\'':
			inSingle, hasCode = true, true
		case c == '"':
			inDouble, hasCode = true, true
		case c == '(':
			depth++
		case c == ')':
			depth--
			if depth < 0 {
				return nil, fmt.Errorf("README.md line %d: unbalanced )", line)
			}
		case c == '#' && (i == 0 || strings.ContainsRune(" \t\n;", rune(script[i-1]))):
			end := strings.IndexByte(script[i:], '\n')
			if end < 0 {
				end = len(script) - i
			}
			comments = append(comments, script[i:i+end])
			cur.WriteString(script[i : i+end])
			i += end - 1
			continue
		case c == '\n' && depth == 0:
			flush()
			start = line
			continue
		case c != ' ' && c != '\t' && c != '\n':
			if !hasCode {
				start = line
			}
			hasCode = true
		}
		cur.WriteByte(c)
	}
	if inSingle || inDouble || depth != 0 {
		return nil, fmt.Errorf("README.md line %d: the sh block ends inside a quote or $( ... )", start)
	}
	flush()
	return out, nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// TestReadmeAPIExamplesRunAgainstALiveServer runs every command of the
// README's Admin API session, in order and as written, against a live
// server, and checks each curl answers the status after its "# ->". BASE,
// PASSWORD and HOOK_URL, which the README asks the reader to set, point at
// the test's server, admin and receiver.
func TestReadmeAPIExamplesRunAgainstALiveServer(t *testing.T) {
	for _, tool := range []string{"bash", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: the README's examples need it (apt-get install %s)", tool, tool)
		}
	}
	section, sectionLine := readmeAPISection(t)
	if !strings.Contains(section, "\n## Admin API\n") {
		t.Fatal(`the API section has no "## Admin API" heading`)
	}
	scripts, lines := fencedBlocks(section, sectionLine, "sh")
	if len(scripts) == 0 {
		t.Fatal("the API section has no ```sh block")
	}
	var examples []readmeExample
	for i, s := range scripts {
		exs, err := splitShell(s, lines[i])
		if err != nil {
			t.Fatal(err)
		}
		examples = append(examples, exs...)
	}

	// Inputs the README asks the reader to set, and the variables it sets.
	receiverHits := atomic.Int64{}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		receiverHits.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(receiver.Close)
	const password = "readme-admin-password"
	httpPort := freePort(t)
	vars := map[string]string{
		"BASE":     fmt.Sprintf("http://127.0.0.1:%d/api/v1", httpPort),
		"PASSWORD": password,
		"HOOK_URL": receiver.URL + "/hooks",
	}
	inputs := map[string]bool{"BASE": true, "PASSWORD": true, "HOOK_URL": true}
	var names []string // the variables the session sets, carried from one example to the next
	seenInput := map[string]bool{}
	curls := 0
	for _, ex := range examples {
		n := len(curlWordRe.FindAllString(ex.text, -1))
		switch {
		case n > 1:
			t.Fatalf("README.md line %d: one curl per example, so its status can be checked:\n%s", ex.line, ex.text)
		case n == 1 && ex.want == 0:
			t.Fatalf("README.md line %d: a curl example without its status (# -> NNN):\n%s", ex.line, ex.text)
		case n == 0 && ex.want != 0:
			t.Fatalf("README.md line %d: a status (# -> %d) on a command without curl:\n%s", ex.line, ex.want, ex.text)
		}
		curls += n
		if ex.assigns != "" {
			if !inputs[ex.assigns] && !seenInput[ex.assigns] {
				names = append(names, ex.assigns)
			}
			seenInput[ex.assigns] = true
		}
	}
	for in := range inputs {
		if !seenInput[in] {
			t.Fatalf("the README's session does not set %s, which its examples use", in)
		}
	}
	if curls < 20 {
		t.Fatalf("only %d curl examples found in the API section", curls)
	}

	// A live server: migrate, create the admin the README logs in as, serve.
	url := testenv.PGURL(t)
	clearMetricsEnv(t) // METRICS_PORT below, not make run's exported port
	env := map[string]string{
		"ETHHOOK_LOG_LEVEL":            "error",
		"ETHHOOK_DATABASE_URL":         url,
		"ETHHOOK_HTTP_ADDR":            fmt.Sprintf("127.0.0.1:%d", httpPort),
		"METRICS_PORT":                 "0",
		"ETHHOOK_SECRET_KEY":           testSecretKey,
		"ETHHOOK_JWT_SECRET":           testJWTSecret,
		"ETHHOOK_DELIVERY_ALLOW_CIDRS": "127.0.0.0/8",
		// Chain 1 is configured (the admin module never dials it), so the
		// chain examples have a chain to show.
		"ETHEREUM_WS_URL": "wss://eth.invalid/v2/readme",
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	_, prefix := testenv.Redis(t)
	t.Setenv("ETHHOOK_REDIS_PREFIX", prefix)
	if out, err := run(t, nil, "migrate", "up"); err != nil {
		t.Fatalf("migrate up: %v\n%s", err, out)
	}
	root := NewRoot()
	var out bytes.Buffer
	root.SetIn(strings.NewReader(password + "\n"))
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"user", "create", "--email", "admin@ethhook.local", "--admin"})
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("user create: %v\n%s", err, out.String())
	}

	startServe(t, httpPort, "serve", "--modules=deliver,admin")
	client := &http.Client{Timeout: 10 * time.Second}

	// jq: the machine's, or this test binary acting as a tiny one.
	dir := t.TempDir()
	path := os.Getenv("PATH")
	if _, err := exec.LookPath("jq"); err != nil || os.Getenv("ETHHOOK_TEST_JQ_SHIM") == "1" {
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		shim := fmt.Sprintf("#!/bin/sh\n%s=1 exec %s \"$@\"\n", jqShimEnv, shellQuote(exe))
		if err := os.WriteFile(filepath.Join(dir, "jq"), []byte(shim), 0o755); err != nil {
			t.Fatal(err)
		}
		path = dir + string(os.PathListSeparator) + path
		t.Logf("jq is not installed (or ETHHOOK_TEST_JQ_SHIM=1): the examples use this test's jq substitute")
	}

	hdrs, varsFile := filepath.Join(dir, "headers"), filepath.Join(dir, "vars")
	var errorBodies []any // bodies of 4xx answers, for the documented error shape
	for _, ex := range examples {
		if inputs[ex.assigns] {
			continue // the test's own value stands
		}
		var script strings.Builder
		keys := make([]string, 0, len(vars))
		for k := range vars {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&script, "%s=%s\n", k, shellQuote(vars[k]))
		}
		fmt.Fprintf(&script, "curl() { command curl -D %s \"$@\"; }\n", shellQuote(hdrs))
		script.WriteString(ex.text + "\n__rc=$?\n")
		fmt.Fprintf(&script, "for __v in %s; do printf '%%s=%%s\\0' \"$__v\" \"${!__v-}\"; done > %s\nexit $__rc\n",
			strings.Join(names, " "), shellQuote(varsFile))
		_ = os.Remove(hdrs)
		cmd := exec.Command("bash", "-c", script.String())
		cmd.Env = append(os.Environ(), "PATH="+path)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		where := fmt.Sprintf("README.md line %d:\n%s\n-- stdout:\n%s\n-- stderr:\n%s", ex.line, ex.text, stdout.String(), stderr.String())
		if err != nil {
			t.Fatalf("%s\n-- the command failed: %v", where, err)
		}
		if ex.want != 0 {
			got := lastStatus(hdrs)
			if got != ex.want {
				t.Fatalf("%s\n-- answered %d, the README says %d", where, got, ex.want)
			}
			t.Logf("README.md line %d: %d %.160s", ex.line, got, strings.TrimSpace(stdout.String()))
			if got >= 400 && got < 500 {
				var v any
				if json.Unmarshal(stdout.Bytes(), &v) == nil {
					errorBodies = append(errorBodies, v)
				}
			}
		}
		b, err := os.ReadFile(varsFile)
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00") {
			if k, v, ok := strings.Cut(kv, "="); ok && v != "" {
				vars[k] = v
			}
		}
		if ex.assigns != "" {
			if v := vars[ex.assigns]; v == "" || v == "null" {
				t.Fatalf("%s\n-- left %s = %q", where, ex.assigns, v)
			}
		}
		if ex.assigns == "MSG" {
			// A reader looks at the message after it was delivered: wait
			// for the test event to reach the receiver.
			waitForMessageState(t, client, vars, "succeeded")
			if receiverHits.Load() == 0 {
				t.Fatal("the test event succeeded without reaching the receiver")
			}
		}
	}

	// The error shape the section shows is a real answer of an example.
	jsons, _ := fencedBlocks(section, sectionLine, "json")
	if len(jsons) == 0 {
		t.Fatal("the API section shows no error (```json block)")
	}
	var shown any
	if err := json.Unmarshal([]byte(jsons[0]), &shown); err != nil {
		t.Fatalf("the API section's JSON block is not JSON: %v", err)
	}
	found := false
	for _, b := range errorBodies {
		found = found || reflect.DeepEqual(b, shown)
	}
	if !found {
		t.Fatalf("the error shown in the API section is not what any example answered; the 4xx answers were %v", errorBodies)
	}
}

// lastStatus reads the status of the last response in a curl -D dump.
func lastStatus(file string) int {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	status := 0
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && strings.HasPrefix(f[0], "HTTP/") {
			status, _ = strconv.Atoi(f[1])
		}
	}
	return status
}

func waitForMessageState(t *testing.T, client *http.Client, vars map[string]string, want string) {
	t.Helper()
	url := fmt.Sprintf("%s/applications/%s/messages/%s", vars["BASE"], vars["APP"], vars["MSG"])
	deadline := time.Now().Add(30 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+vars["TOKEN"])
		if resp, err := client.Do(req); err == nil {
			var d struct {
				Message struct {
					State string `json:"state"`
				} `json:"message"`
			}
			err = json.NewDecoder(resp.Body).Decode(&d)
			resp.Body.Close()
			if err == nil && d.Message.State == want {
				return
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, d.Message.State)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("message %s did not become %s within 30s (last: %s)", vars["MSG"], want, last)
}

var jqPathRe = regexp.MustCompile(`^(\.[A-Za-z_][A-Za-z0-9_]*|\[[0-9]+\])`)

// jqShim is the part of jq the README uses: `jq [-r] FILTER`, where FILTER
// is `.` or a path of .field and [index] steps, on one JSON value on stdin.
func jqShim(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	raw, filter := false, ""
	for _, a := range args {
		switch {
		case a == "-r":
			raw = true
		case filter == "" && strings.HasPrefix(a, "."):
			filter = a
		default:
			fmt.Fprintf(stderr, "jq substitute: unsupported argument %q (only -r and a .field[index] path)\n", a)
			return 2
		}
	}
	var v any
	if err := json.NewDecoder(stdin).Decode(&v); err != nil {
		fmt.Fprintf(stderr, "jq substitute: %v\n", err)
		return 2
	}
	out, err := jqPath(v, filter)
	if err != nil {
		fmt.Fprintf(stderr, "jq substitute: %v\n", err)
		return 3
	}
	if s, ok := out.(string); ok && raw {
		fmt.Fprintln(stdout, s)
		return 0
	}
	b, _ := json.Marshal(out)
	fmt.Fprintln(stdout, string(b))
	return 0
}

func jqPath(v any, filter string) (any, error) {
	if filter == "" {
		return nil, fmt.Errorf("no filter")
	}
	rest := strings.TrimPrefix(filter, ".")
	if rest != "" {
		rest = filter
	}
	for rest != "" {
		step := jqPathRe.FindString(rest)
		if step == "" {
			return nil, fmt.Errorf("unsupported filter %q", filter)
		}
		rest = rest[len(step):]
		switch x := v.(type) {
		case nil:
		case map[string]any:
			if step[0] != '.' {
				return nil, fmt.Errorf("cannot index object with %s", step)
			}
			v = x[step[1:]]
		case []any:
			if step[0] != '[' {
				return nil, fmt.Errorf("cannot index array with %s", step)
			}
			n, _ := strconv.Atoi(step[1 : len(step)-1])
			if n < len(x) {
				v = x[n]
			} else {
				v = nil
			}
		default:
			return nil, fmt.Errorf("cannot index %T with %s", x, step)
		}
	}
	return v, nil
}

func TestReadmeJQSubstituteFollowsFieldAndIndexPaths(t *testing.T) {
	in := `{"token": "abc", "data": [{"id": "key_1"}, {"id": "key_2"}], "n": 3}`
	for filter, want := range map[string]string{".token": "abc\n", ".data[1].id": "key_2\n", ".n": "3\n", ".missing": "null\n",
		".data[5].id": "null\n", ".": `{"data":[{"id":"key_1"},{"id":"key_2"}],"n":3,"token":"abc"}` + "\n"} {
		var out, errb bytes.Buffer
		if rc := jqShim([]string{"-r", filter}, strings.NewReader(in), &out, &errb); rc != 0 || out.String() != want {
			t.Errorf("jq -r %s = %d %q %s, want %q", filter, rc, out.String(), errb.String(), want)
		}
	}
	var out, errb bytes.Buffer
	if rc := jqShim([]string{"-r", ".data | length"}, strings.NewReader(in), &out, &errb); rc == 0 {
		t.Errorf("an unsupported filter passed: %q", out.String())
	}
}
