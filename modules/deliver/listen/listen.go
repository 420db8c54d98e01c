// Package listen is the local webhook receiver behind `ethhook listen`: it
// verifies Standard Webhooks signatures and timestamps, prints each webhook
// and answers with a chosen status (to try retries).
package listen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/ethhook/ethhook/sign"
)

// Tolerance is how far webhook-timestamp may be from now.
const Tolerance = 5 * time.Minute

const maxBody = 10 << 20

// Handler verifies and prints webhooks.
type Handler struct {
	keys   []sign.Verifier
	status int
	out    io.Writer
	now    func() time.Time

	mu sync.Mutex
	n  int
}

// New makes a receiver that accepts signatures by any of secrets (whsec_...
// for v1 HMAC signatures, whpk_... public keys for v1a ed25519 ones) and
// answers valid webhooks with status.
func New(secrets []string, status int, out io.Writer) (*Handler, error) {
	if len(secrets) == 0 {
		return nil, fmt.Errorf("at least one --secret whsec_... (or whpk_... public key) is required")
	}
	if status < 100 || status > 599 {
		return nil, fmt.Errorf("status must be an HTTP status 100..599, got %d", status)
	}
	h := &Handler{status: status, out: out, now: time.Now}
	for _, s := range secrets {
		k, err := sign.NewVerifier(s)
		if err != nil {
			return nil, fmt.Errorf("secret: %w", err)
		}
		h.keys = append(h.keys, k)
	}
	return h, nil
}

// ServeHTTP checks one webhook: 401 when the signature or timestamp is
// wrong, else the configured status.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	id, ts, sig := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature")
	verr := sign.ErrNoMatch
	if id != "" && sig != "" {
		for _, k := range h.keys {
			if verr = k.Verify(id, ts, sig, body, h.now(), Tolerance); verr == nil {
				break
			}
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n++
	stamp := h.now().Format("15:04:05.000")
	if verr != nil {
		fmt.Fprintf(h.out, "#%d %s %s %s  webhook-id=%q  REJECTED: %v -> 401\n", h.n, stamp, r.Method, r.URL.Path, id, verr)
		http.Error(w, "invalid webhook: "+verr.Error(), http.StatusUnauthorized)
		return
	}
	fmt.Fprintf(h.out, "#%d %s %s %s  webhook-id=%s  timestamp=%s  signature ok -> %d\n", h.n, stamp, r.Method, r.URL.Path, id, ts, h.status)
	var pretty bytes.Buffer
	if json.Indent(&pretty, body, "  ", "  ") == nil {
		fmt.Fprintf(h.out, "  %s\n", pretty.Bytes())
	} else {
		fmt.Fprintf(h.out, "  %q\n", body)
	}
	w.WriteHeader(h.status)
}
