package bench

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethhook/ethhook/sign"
)

// tolerance is how far webhook-timestamp may be from the receiver's clock.
const tolerance = 5 * time.Minute

// receiver is the built-in webhook receiver: endpoint i posts to /e/<i>,
// whose signature is checked with endpoint i's secret (the package sign
// Verify a customer's receiver would use). It answers 200 to a valid
// webhook and 401 to anything else, and times each valid one against the
// moment its block was mined.
type receiver struct {
	keys []sign.Verifier // by endpoint index; set before the pipeline starts

	ws, we time.Time // measured window; set before mining starts

	mu        sync.Mutex
	blocks    map[string]minedBlock // block hash -> when mined, which block
	minedWin  int64                 // logs of blocks mined in the window
	latencyMS []float64             // mined -> received, valid webhooks of blocks mined in the window
	latBlock  []int32               // minedBlock.seq of each latencyMS sample (4 bytes a webhook)

	total, ok, bad, okInWindow atomic.Int64
}

// minedBlock is a block the pipeline mined: when, and its number in the
// run (0, 1, ...), which samples name their block by.
type minedBlock struct {
	at  time.Time
	seq int32
}

func newReceiver() *receiver {
	return &receiver{blocks: map[string]minedBlock{}}
}

func (r *receiver) setWindow(ws, we time.Time) { r.ws, r.we = ws, we }

func (r *receiver) inWindow(t time.Time) bool { return !t.Before(r.ws) && t.Before(r.we) }

func (r *receiver) mined(hash string, at time.Time, logs int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.blocks[hash] = minedBlock{at: at, seq: int32(len(r.blocks))}
	if r.inWindow(at) {
		r.minedWin += int64(logs)
	}
}

func (r *receiver) minedAt(hash string) (minedBlock, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.blocks[hash]
	return b, ok
}

func (r *receiver) minedInWindow() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.minedWin
}

func (r *receiver) latencies() []float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]float64(nil), r.latencyMS...)
}

// streamLatencies is the latencies from the stream entry: each sample less
// the time its block took from mined to its first stream entry
// (toStream[seq], ms; a block with none is left out). The first entry of a
// block is its earliest, so a later entry's latency is over-stated by the
// few milliseconds ingest takes to write a block, never under-stated.
func (r *receiver) streamLatencies(toStream map[int32]float64) []float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]float64, 0, len(r.latencyMS))
	for i, ms := range r.latencyMS {
		if d, ok := toStream[r.latBlock[i]]; ok {
			out = append(out, ms-d)
		}
	}
	return out
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	r.total.Add(1)
	body, err := io.ReadAll(io.LimitReader(req.Body, 4<<20))
	idx, perr := strconv.Atoi(strings.TrimPrefix(req.URL.Path, "/e/"))
	if err != nil || perr != nil || idx < 0 || idx >= len(r.keys) {
		r.bad.Add(1)
		http.Error(w, "unknown endpoint path", http.StatusNotFound)
		return
	}
	id := req.Header.Get("webhook-id")
	if err := r.keys[idx].Verify(id, req.Header.Get("webhook-timestamp"), req.Header.Get("webhook-signature"), body, now, tolerance); err != nil {
		r.bad.Add(1)
		http.Error(w, "invalid webhook: "+err.Error(), http.StatusUnauthorized)
		return
	}
	w.WriteHeader(http.StatusOK)
	r.ok.Add(1)
	if r.inWindow(now) {
		r.okInWindow.Add(1)
	}
	r.mu.Lock()
	if b, found := r.blocks[blockHashOf(id)]; found && r.inWindow(b.at) {
		r.latencyMS = append(r.latencyMS, float64(now.Sub(b.at))/float64(time.Millisecond))
		r.latBlock = append(r.latBlock, b.seq)
	}
	r.mu.Unlock()
}
