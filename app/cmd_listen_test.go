package app

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethhook/ethhook/sign"
)

func signedPost(t *testing.T, h http.Handler, secret, id, body string) *httptest.ResponseRecorder {
	t.Helper()
	key, err := sign.Key(secret)
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Now().Unix()
	r := httptest.NewRequest(http.MethodPost, "/webhook", strings.NewReader(body))
	r.Header.Set("webhook-id", id)
	r.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	r.Header.Set("webhook-signature", sign.Header([][]byte{key}, id, ts, []byte(body)))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestListenForwardsVerifiedWebhooksAndAnswersWithTheAppsStatus(t *testing.T) {
	secret, _ := sign.NewSecret()
	other, _ := sign.NewSecret()
	var got []*http.Request
	var gotBody []string
	local := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got, gotBody = append(got, r), append(gotBody, string(b))
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "db is down")
	}))
	defer local.Close()
	fwd, _ := url.Parse(local.URL + "/hooks")
	var out bytes.Buffer
	h, err := newListenHandler([]string{secret}, 200, fwd, true, &out)
	if err != nil {
		t.Fatal(err)
	}
	body := `{"id":"1:0xab:0","type":"log"}`
	w := signedPost(t, h, secret, "msg_1", body)
	if w.Code != http.StatusServiceUnavailable || w.Body.String() != "db is down" || w.Header().Get("Retry-After") != "7" {
		t.Fatalf("answer %d %q %v, want the app's 503 with its body and Retry-After", w.Code, w.Body.String(), w.Header())
	}
	if len(got) != 1 || got[0].URL.Path != "/hooks" || gotBody[0] != body || got[0].Header.Get("webhook-id") != "msg_1" || got[0].Header.Get("webhook-signature") == "" {
		t.Fatalf("the app got %d requests: %+v %q", len(got), got, gotBody)
	}
	// A webhook signed with another secret is refused and never reaches the app.
	if w := signedPost(t, h, other, "msg_2", body); w.Code != http.StatusUnauthorized || len(got) != 1 {
		t.Fatalf("wrong secret: %d, app called %d times", w.Code, len(got))
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("--json lines: %q", out.String())
	}
	var first, second listenRecord
	if json.Unmarshal([]byte(lines[0]), &first) != nil || json.Unmarshal([]byte(lines[1]), &second) != nil {
		t.Fatalf("not JSON lines: %q", out.String())
	}
	if !first.Verified || first.Status != 503 || first.Forwarded != fwd.String() || first.WebhookID != "msg_1" || string(first.Payload) != body {
		t.Fatalf("first line %+v", first)
	}
	if second.Verified || second.Status != 401 || second.Error == "" || second.Forwarded != "" {
		t.Fatalf("second line %+v", second)
	}
}

func TestListenTakesTheSecretFromTheEnvironmentOrAFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(file, []byte("# the endpoint's secret\nwhsec_b\n\n"), 0o600)
	got, err := listenSecrets(nil, file, "whsec_c, whsec_d")
	if err != nil || strings.Join(got, " ") != "whsec_b whsec_c whsec_d" {
		t.Fatalf("secrets %q %v", got, err)
	}
	if _, err := listenSecrets(nil, "", ""); err == nil || exitCode(err) != exitUsage || !strings.Contains(err.Error(), listenSecretEnv) {
		t.Fatalf("no secret: %v", err)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	if _, err := listenSecrets(nil, empty, ""); err == nil || !strings.Contains(err.Error(), "holds no secret") {
		t.Fatalf("empty file: %v", err)
	}
	// Through the command: the secret from the environment, nothing on argv.
	secret, _ := sign.NewSecret()
	t.Setenv(listenSecretEnv, secret)
	root := NewRoot()
	var stderr bytes.Buffer
	root.SetErr(&stderr)
	root.SetArgs([]string{"listen", "--addr", "256.0.0.1:1"}) // fails to listen: the secret was accepted
	err = root.Execute()
	if err == nil || !strings.Contains(err.Error(), "listen on 256.0.0.1:1") {
		t.Fatalf("listen with the secret from %s: %v", listenSecretEnv, err)
	}
}
