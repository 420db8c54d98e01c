package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/modules/deliver/listen"
)

// listenSecretEnv holds the secrets of `ethhook listen` (comma-separated),
// so they need not be on the command line, where `ps` shows them.
const listenSecretEnv = "ETHHOOK_LISTEN_SECRET"

func init() { config.KnownEnv(listenSecretEnv) }

// newListenCmd is `ethhook listen`: a local receiver to watch signed
// webhooks arrive (and to answer with an error status to watch retries),
// or to forward them, verified, to an app under development.
func newListenCmd(rt *Runtime) *cobra.Command {
	var (
		secrets    []string
		secretFile string
		addr       string
		status     int
		forwardTo  string
		asJSON     bool
	)
	cmd := &cobra.Command{
		Use:   "listen [--secret-file PATH | --secret whsec_...|whpk_...] [--addr :9000] [--status 200 | --forward-to URL]",
		Short: "Receive webhooks locally: verify signatures and timestamps, print or forward them",
		Long: `Run a local webhook receiver. Every request is checked as a customer's
receiver should (Standard Webhooks: webhook-id, webhook-timestamp within 5
minutes, webhook-signature: v1 HMAC-SHA256 with a whsec_ endpoint secret,
or v1a ed25519 with the whpk_ public key of an ed25519 endpoint); valid
webhooks are printed and answered with --status (default 200; try 503 to
watch retries, 410 to watch the endpoint get disabled), invalid ones get 401.

With --forward-to URL each valid webhook is sent on to URL (same method,
headers and body) and answered with that app's status and body, so the
app's answer drives EthHook's retries (like stripe listen --forward-to).

The secret (whsec_) or public key (whpk_; see ethhook endpoint secret) comes
from ` + listenSecretEnv + ` (comma-separated for a rotation),
--secret-file (one secret a line) or --secret (repeatable; visible in ps).
--json prints one JSON object a line per request.`,
		Annotations: map[string]string{noConfig: "true"},
		Args:        cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			var fwd *url.URL
			if forwardTo != "" {
				if c.Flags().Changed("status") {
					return usageErrorf("--status and --forward-to exclude each other: the forwarded-to app's answer is the status")
				}
				var err error
				if fwd, err = url.Parse(forwardTo); err != nil || (fwd.Scheme != "http" && fwd.Scheme != "https") || fwd.Host == "" {
					return usageErrorf("--forward-to=%q: want an http(s) URL like http://localhost:3000/webhooks", forwardTo)
				}
			}
			all, err := listenSecrets(secrets, secretFile, os.Getenv(listenSecretEnv))
			if err != nil {
				return err
			}
			h, err := newListenHandler(all, status, fwd, asJSON, c.OutOrStdout())
			if err != nil {
				return usageError{err}
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", addr, err)
			}
			answer := fmt.Sprintf("answering %d", status)
			if fwd != nil {
				answer = "forwarding to " + fwd.String()
			}
			// A hint, not output: stdout stays the webhooks (JSON lines with --json).
			fmt.Fprintf(c.ErrOrStderr(), "listening on http://%s (%s); point an endpoint's --url here\n", ln.Addr(), answer)
			srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
			ctx := c.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			go func() {
				<-ctx.Done()
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				srv.Shutdown(sctx)
			}()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&secrets, "secret", nil, "endpoint signing secret whsec_... or public key whpk_... (repeatable; prefer "+listenSecretEnv+" or --secret-file: argv is visible in ps)")
	cmd.Flags().StringVar(&secretFile, "secret-file", "", "file with the signing secrets, one a line")
	cmd.Flags().StringVar(&addr, "addr", ":9000", "address to listen on")
	cmd.Flags().IntVar(&status, "status", 200, "HTTP status to answer valid webhooks with")
	cmd.Flags().StringVar(&forwardTo, "forward-to", "", "forward valid webhooks to this URL and answer with its status")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object a line per request")
	return cmd
}

// listenSecrets gathers the secrets from the flags, the file and the
// environment variable's value (all of them, for a rotation).
func listenSecrets(flags []string, file, env string) ([]string, error) {
	out := append([]string(nil), flags...)
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--secret-file: %w", err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if s := strings.TrimSpace(line); s != "" && !strings.HasPrefix(s, "#") {
				out = append(out, s)
			}
		}
		if len(out) == len(flags) {
			return nil, fmt.Errorf("--secret-file %s holds no secret", file)
		}
	}
	for _, s := range strings.Split(env, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, usageErrorf("no signing secret: set %s, or give --secret-file or --secret", listenSecretEnv)
	}
	return out, nil
}

// listenRecord is one request in `ethhook listen --json`.
type listenRecord struct {
	WebhookID string          `json:"webhook_id"`
	Timestamp string          `json:"timestamp"`
	Method    string          `json:"method"`
	Path      string          `json:"path"`
	Verified  bool            `json:"verified"`
	Error     string          `json:"error,omitempty"`
	Status    int             `json:"status"`              // what the receiver answered
	Forwarded string          `json:"forwarded,omitempty"` // the --forward-to URL, when sent on
	Payload   json.RawMessage `json:"payload,omitempty"`   // the body, when it is JSON
	Body      string          `json:"body,omitempty"`      // the body, when it is not
}

// listenHandler verifies with listen.Handler and then prints (text or
// JSON) and answers, or forwards and answers with the forwarded-to app's
// answer.
type listenHandler struct {
	verify  *listen.Handler
	forward *url.URL
	client  *http.Client
	asJSON  bool
	out     io.Writer
	mu      sync.Mutex // one request's lines at a time
}

// forwardedStatus is what listen.Handler answers a valid webhook with when
// forwarding: any status other than 401 (its answer to an invalid one).
const forwardedStatus = http.StatusAccepted

func newListenHandler(secrets []string, status int, forward *url.URL, asJSON bool, out io.Writer) (*listenHandler, error) {
	h := &listenHandler{forward: forward, asJSON: asJSON, out: out,
		// No redirects: the local app answers, not whatever it points at.
		client: &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	var verifyOut io.Writer = out
	if asJSON || forward != nil {
		verifyOut = io.Discard // this handler prints instead
	}
	if forward != nil {
		status = forwardedStatus
	}
	v, err := listen.New(secrets, status, verifyOut)
	if err != nil {
		return nil, err
	}
	h.verify = v
	return h, nil
}

func (h *listenHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := httptest.NewRecorder()
	h.verify.ServeHTTP(rec, r)
	verified := rec.Code != http.StatusUnauthorized && rec.Code != http.StatusBadRequest
	out := listenRecord{WebhookID: r.Header.Get("webhook-id"), Timestamp: r.Header.Get("webhook-timestamp"),
		Method: r.Method, Path: r.URL.Path, Verified: verified, Status: rec.Code}
	if json.Valid(body) {
		out.Payload = body
	} else if len(body) > 0 {
		out.Body = string(body)
	}
	answerHeader, answerBody := rec.Header(), rec.Body.Bytes()
	if !verified {
		out.Error = strings.TrimSpace(strings.TrimPrefix(rec.Body.String(), "invalid webhook: "))
	} else if h.forward != nil {
		out.Forwarded = h.forward.String()
		out.Status, answerHeader, answerBody, err = h.send(r, body)
		if err != nil {
			out.Status, answerBody = http.StatusBadGateway, []byte("forward: "+err.Error()+"\n")
			out.Error = "forward: " + err.Error()
			answerHeader = http.Header{"Content-Type": {"text/plain; charset=utf-8"}}
		}
	}
	h.print(out)
	for k, vs := range answerHeader {
		w.Header()[k] = vs
	}
	w.WriteHeader(out.Status)
	w.Write(answerBody)
}

// send forwards one verified webhook and returns the app's answer.
func (h *listenHandler) send(r *http.Request, body []byte) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, h.forward.String(), bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	for k, vs := range r.Header {
		if k != "Host" && k != "Content-Length" {
			req.Header[k] = vs
		}
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("read the answer of %s: %w", h.forward, err)
	}
	hdr := http.Header{}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		hdr.Set("Content-Type", ct)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		hdr.Set("Retry-After", ra)
	}
	return resp.StatusCode, hdr, b, nil
}

func (h *listenHandler) print(r listenRecord) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.asJSON:
		b, _ := json.Marshal(r)
		fmt.Fprintf(h.out, "%s\n", b)
	case h.forward != nil:
		if !r.Verified {
			fmt.Fprintf(h.out, "%s %s  webhook-id=%q  REJECTED: %s -> %d\n", r.Method, r.Path, r.WebhookID, r.Error, r.Status)
			return
		}
		note := ""
		if r.Error != "" {
			note = " (" + r.Error + ")"
		}
		fmt.Fprintf(h.out, "%s %s  webhook-id=%s  signature ok, forwarded to %s -> %d%s\n", r.Method, r.Path, r.WebhookID, r.Forwarded, r.Status, note)
	}
	// Otherwise listen.Handler has printed it.
}
