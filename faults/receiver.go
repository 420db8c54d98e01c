//go:build faults

package faults

import (
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethhook/ethhook/sign"
)

// policy is how one endpoint's receiver answers.
type policy int

const (
	answerOK     policy = iota // 200 to everything
	fail20                     // 500 to about one request in five (chosen per attempt), else 200
	hangSome                   // holds about one request in five past the delivery timeout, else 200
	gone410After               // 200 to the first goneAfter requests, then 410 forever
)

const goneAfter = 30

// receiver is the webhook receiver of every endpoint of a scenario, one
// path per endpoint. It verifies each request's Standard Webhooks signature
// with the endpoint's secret and records each webhook-id: how often it
// arrived, how often it was acknowledged (answered 2xx), and when first.
type receiver struct {
	t   testing.TB
	srv *http.Server
	ln  net.Listener

	mu   sync.Mutex
	eps  map[string]*recvEndpoint // by path
	last time.Time                // last request of any endpoint

	hold time.Duration // how long hangSome holds a request (past the delivery timeout)

	// light (the soak) keeps no record per webhook-id, which an hour at
	// 1,000 webhooks/s would make millions of: every verified webhook is
	// answered 200 and handed to onAck instead.
	light bool
	onAck func(path string, body []byte, now time.Time)
}

type recvEndpoint struct {
	key      []byte
	policy   policy
	requests int
	badSig   int
	ids      map[string]*arrival
	gone     time.Time // first 410 answered
	lastReq  time.Time
}

type arrival struct {
	requests int // every arrival, answered or not
	acks     int // answered 2xx
	firstAck time.Time
}

func newReceiver(t testing.TB, hold time.Duration) *receiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{t: t, ln: ln, eps: map[string]*recvEndpoint{}, hold: hold}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go r.srv.Serve(ln)
	t.Cleanup(func() { r.srv.Close() })
	return r
}

// addr is host:port, for the SSRF allow-list.
func (r *receiver) addr() string { return r.ln.Addr().String() }

func (r *receiver) url(path string) string { return "http://" + r.addr() + "/" + path }

// register adds an endpoint's path with its secret (known only once the
// endpoint exists, so before any webhook for it can arrive).
func (r *receiver) register(path, secret string, p policy) {
	r.t.Helper()
	key, err := sign.Key(secret)
	if err != nil {
		r.t.Fatalf("secret of %s: %v", path, err)
	}
	r.mu.Lock()
	r.eps[path] = &recvEndpoint{key: key, policy: p, ids: map[string]*arrival{}}
	r.mu.Unlock()
}

var attemptSeq atomic.Uint64

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 8<<20))
	now := time.Now()
	path := strings.TrimPrefix(req.URL.Path, "/")
	id := req.Header.Get("webhook-id")
	r.mu.Lock()
	ep := r.eps[path]
	r.last = now
	if ep == nil || err != nil || id == "" {
		r.mu.Unlock()
		w.WriteHeader(http.StatusNotFound)
		return
	}
	ep.requests++
	ep.lastReq = now
	if sign.Verify(ep.key, id, req.Header.Get("webhook-timestamp"), req.Header.Get("webhook-signature"), body, now, 5*time.Minute) != nil {
		ep.badSig++
		r.mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.light {
		onAck := r.onAck
		r.mu.Unlock()
		if onAck != nil {
			onAck(path, body, now)
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	a := ep.ids[id]
	if a == nil {
		a = &arrival{}
		ep.ids[id] = a
	}
	a.requests++
	status := http.StatusOK
	hang := false
	// One pseudo-random draw per attempt, not per id, so that a retry of a
	// failed webhook may succeed.
	h := fnv.New32a()
	h.Write([]byte(id))
	roll := (h.Sum32() + uint32(attemptSeq.Add(1))*2654435761) % 5
	switch ep.policy {
	case fail20:
		if roll == 0 {
			status = http.StatusInternalServerError
		}
	case hangSome:
		hang = roll == 0
	case gone410After:
		if ep.requests > goneAfter {
			status = http.StatusGone
			if ep.gone.IsZero() {
				ep.gone = now
			}
		}
	}
	r.mu.Unlock()

	if hang {
		// Held past the sender's timeout: the sender gives up (a timeout),
		// so this arrival is not an acknowledgement even if 200 follows.
		select {
		case <-req.Context().Done():
		case <-time.After(r.hold):
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	if status == http.StatusOK {
		r.mu.Lock()
		a.acks++
		if a.firstAck.IsZero() {
			a.firstAck = now
		}
		r.mu.Unlock()
	}
	w.WriteHeader(status)
}

// lastRequest is when any webhook last arrived.
func (r *receiver) lastRequest() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// snapshot copies one endpoint's records.
func (r *receiver) snapshot(path string) recvEndpoint {
	r.mu.Lock()
	defer r.mu.Unlock()
	ep := r.eps[path]
	out := *ep
	out.ids = make(map[string]*arrival, len(ep.ids))
	for k, v := range ep.ids {
		c := *v
		out.ids[k] = &c
	}
	return out
}
