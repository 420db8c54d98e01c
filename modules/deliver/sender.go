package deliver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	endpointsvc "github.com/ethhook/ethhook/endpoint"
	"github.com/ethhook/ethhook/internal/redact"
	"github.com/ethhook/ethhook/modules/deliver/retry"
	"github.com/ethhook/ethhook/modules/deliver/ssrf"
	"github.com/ethhook/ethhook/sign"
)

// responseLimit is how much of a response is read and kept.
const responseLimit = 64 << 10

// maxRedirects bounds redirect chains of endpoints that allow redirects.
const maxRedirects = 5

// keptResponseHeaders are stored with each attempt (so at most this many).
var keptResponseHeaders = []string{"Content-Type", "Content-Length", "Retry-After", "Location", "Server", "X-Request-Id"}

// Bounds on what a receiver's response head costs: the transport fails an
// attempt whose head is over maxResponseHeaderBytes (Go's default is 10 MB,
// held in memory), and of the headers it accepts, each stored value is cut
// to maxHeaderValue and all of them together to maxStoredHeaders, so a
// receiver cannot fill delivery_history (a 4 MB header was stored whole).
const (
	maxResponseHeaderBytes = 64 << 10
	maxHeaderValue         = 1 << 10
	maxStoredHeaders       = 8 << 10
)

// truncatedMark ends a stored header value that was cut.
const truncatedMark = "...[truncated]"

// newClients builds the HTTP clients: one that never follows redirects and
// one that follows a few; both dial through the SSRF guard, so every hop is
// checked on the address actually connected to. No proxy is used: a proxy
// would dial for us and bypass the guard.
func newClients(guard *ssrf.Guard, connectTimeout time.Duration, maxConns int) (noRedirect, follow *http.Client) {
	dialer := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second, Control: guard.Control}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           maxConns,
		MaxIdleConnsPerHost:    maxConns,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    connectTimeout,
		ExpectContinueTimeout:  time.Second,
		DisableCompression:     true,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
	}
	noRedirect = &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	follow = &http.Client{Transport: tr, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxRedirects {
			return errTooManyRedirects
		}
		return nil
	}}
	return noRedirect, follow
}

var errTooManyRedirects = errors.New("too many redirects")

// attempt is the record of one HTTP attempt.
type attempt struct {
	status      int
	errClass    string
	errText     string
	reqHeaders  map[string]string
	respHeaders map[string]string
	excerpt     string
	retryAfter  time.Duration
	latency     time.Duration
}

// post sends one signed webhook and classifies the answer.
func (m *Module) post(ctx context.Context, ep *endpoint, j *job) attempt {
	now := m.now()
	ts := now.Unix()
	sig := sign.HeaderOf(ep.keys(now), j.webhookID, ts, j.payload)
	var a attempt
	a.reqHeaders = map[string]string{
		"content-type":      "application/json",
		"user-agent":        m.userAgent,
		"webhook-id":        j.webhookID,
		"webhook-timestamp": strconv.FormatInt(ts, 10),
		"webhook-signature": sig,
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.url, bytes.NewReader(j.payload))
	if err != nil {
		a.errClass, a.errText = "request", fmt.Sprintf("build request: %v", err)
		return a
	}
	// Custom headers first, so the headers below always win; a reserved
	// name is skipped here too, whatever a row written around the
	// endpoint service holds.
	for k, v := range ep.headers {
		if endpointsvc.Reserved(k) {
			continue
		}
		req.Header.Set(k, v)
		// The attempt log shows which headers went out; a value that looks
		// like a credential (Authorization, X-Api-Key, ...) is masked there.
		if redact.Sensitive(k) {
			v = redact.Mask
		}
		a.reqHeaders[strings.ToLower(k)] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", m.userAgent)
	req.Header.Set("webhook-id", j.webhookID)
	req.Header.Set("webhook-timestamp", a.reqHeaders["webhook-timestamp"])
	req.Header.Set("webhook-signature", sig)
	client := m.client
	if ep.allowRedirects {
		client = m.follow
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		a.latency = time.Since(start)
		a.errClass, a.errText = classify(err)
		return a
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, responseLimit))
	resp.Body.Close()
	a.latency = time.Since(start)
	a.status = resp.StatusCode
	a.excerpt = cleanText(body)
	a.respHeaders = storedHeaders(resp.Header)
	switch {
	case a.status >= 200 && a.status < 300:
		if rerr != nil && ctx.Err() != nil { // the answer is in; a slow body does not undo it
			a.errText = "response body cut short: " + rerr.Error()
		}
	case a.status >= 300 && a.status < 400:
		a.errClass, a.errText = "redirect", fmt.Sprintf("HTTP %d redirect not followed", a.status)
		if ep.allowRedirects {
			a.errText = fmt.Sprintf("HTTP %d redirect without a usable Location", a.status)
		}
	case a.status >= 400 && a.status < 500:
		a.errClass, a.errText = "http_4xx", fmt.Sprintf("HTTP %d", a.status)
	default:
		a.errClass, a.errText = "http_5xx", fmt.Sprintf("HTTP %d", a.status)
	}
	if a.status == http.StatusTooManyRequests || a.status == http.StatusServiceUnavailable || a.status >= 500 {
		a.retryAfter = retry.ParseRetryAfter(resp.Header.Get("Retry-After"), now)
	}
	return a
}

// storedHeaders picks the headers kept with an attempt, within
// maxHeaderValue each and maxStoredHeaders in all (names included).
func storedHeaders(h http.Header) map[string]string {
	out := map[string]string{}
	total := 0
	for _, name := range keptResponseHeaders {
		v := h.Get(name)
		if v == "" {
			continue
		}
		key := strings.ToLower(name)
		v = truncate(cleanText([]byte(v)), min(maxHeaderValue, maxStoredHeaders-total-len(key)))
		if v == "" {
			break // no room left
		}
		out[key] = v
		total += len(key) + len(v)
	}
	return out
}

// truncate cuts s to at most n bytes, on a character boundary, ending in
// truncatedMark when it cut; "" when n leaves no room for the mark.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len(truncatedMark)
	if cut <= 0 {
		return ""
	}
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + truncatedMark
}

// classify names a transport error: ssrf, dns, timeout, connect, redirect,
// tls. The text names the URL without its query values and userinfo (a
// receiver's token often rides in the query), as it goes to logs and the
// attempt log.
func classify(err error) (string, string) {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		uerr.URL = redact.URL(uerr.URL)
	}
	text := err.Error()
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.Is(err, ssrf.ErrRefused):
		return "ssrf", text
	case errors.Is(err, errTooManyRedirects):
		return "redirect", text
	case errors.As(err, &dnsErr):
		return "dns", text
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timeout", text
	case strings.Contains(text, "tls:"), strings.Contains(text, "x509:"):
		return "tls", text
	}
	return "connect", text
}

// cleanText makes response bytes storable as Postgres text (valid UTF-8, no NUL).
func cleanText(b []byte) string {
	s := string(b)
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.ReplaceAll(s, "\x00", "")
}
