package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// WS is a JSON-RPC connection over one WebSocket. All methods are safe for
// concurrent use. When the socket fails every pending call returns an error
// wrapping ErrClosed (or ErrTooLarge) and Done is closed; a WS is never
// reused: dial a new one.
type WS struct {
	c      *websocket.Conn
	opt    Options
	nextID atomic.Uint64

	mu      sync.Mutex
	pending map[uint64]*call
	subs    map[string]*Subscription

	done    chan struct{}
	errOnce sync.Once
	err     error
}

type call struct {
	ch     chan message // buffered 1
	subscr *Subscription
}

// Subscription receives eth_subscription notifications. They wait in a
// queue bounded in count (Options.SubBuffer) and in bytes
// (Options.SubBufferBytes); one that does not fit pushes the oldest out,
// and one larger than the whole byte budget is dropped itself. Either way
// it is counted in Dropped: notifications are hints (a head that is lost
// is found again by the caller's own polling and gap logic), so the read
// loop never waits for a busy reader and never holds more than the bound.
type Subscription struct {
	ID string
	// C receives a value when notifications are queued (read them with
	// Next) and is closed when the subscription or the connection ends.
	C <-chan struct{}
	// Dropped counts notifications dropped to keep the queue in bounds.
	Dropped atomic.Uint64

	ready    chan struct{} // C, buffered 1
	mu       sync.Mutex
	q        []json.RawMessage
	head     int // q[head:] is queued
	bytes    int64
	peak     int64
	maxN     int
	maxBytes int64
	closed   bool
	ws       *WS
}

func newSubscription(w *WS) *Subscription {
	s := &Subscription{ready: make(chan struct{}, 1), maxN: w.opt.SubBuffer, maxBytes: w.opt.SubBufferBytes, ws: w}
	s.C = s.ready
	return s
}

// push queues a notification, dropping the oldest ones it does not fit
// beside.
func (s *Subscription) push(raw json.RawMessage) {
	n := int64(len(raw))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if n > s.maxBytes {
		s.Dropped.Add(1)
		return
	}
	for len(s.q)-s.head > 0 && (s.bytes+n > s.maxBytes || len(s.q)-s.head >= s.maxN) {
		s.bytes -= int64(len(s.q[s.head]))
		s.q[s.head] = nil
		s.head++
		s.Dropped.Add(1)
	}
	if s.head > 0 && s.head == len(s.q) {
		s.q, s.head = s.q[:0], 0
	} else if s.head > len(s.q)/2 {
		s.q, s.head = append(s.q[:0], s.q[s.head:]...), 0
	}
	s.q = append(s.q, raw)
	s.bytes += n
	s.peak = max(s.peak, s.bytes)
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// Next returns the oldest queued notification, or false when none is.
func (s *Subscription) Next() (json.RawMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.head == len(s.q) {
		return nil, false
	}
	raw := s.q[s.head]
	s.q[s.head] = nil
	s.head++
	s.bytes -= int64(len(raw))
	if s.head == len(s.q) {
		s.q, s.head = s.q[:0], 0
	}
	return raw, true
}

// QueuedBytes is what the queued notifications hold now.
func (s *Subscription) QueuedBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// PeakBytes is the most bytes the queue ever held at once.
func (s *Subscription) PeakBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

func (s *Subscription) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.q, s.head, s.bytes = nil, 0, 0
		close(s.ready)
	}
}

// DialWS opens a WebSocket JSON-RPC connection. url may carry credentials
// (provider API keys): errors never include it.
func DialWS(ctx context.Context, url string, opt Options) (*WS, error) {
	opt = opt.withDefaults()
	dctx, cancel := context.WithTimeout(ctx, opt.CallTimeout)
	defer cancel()
	c, resp, err := websocket.Dial(dctx, url, &websocket.DialOptions{
		HTTPHeader:      http.Header{"User-Agent": []string{"ethhook-ingest"}},
		CompressionMode: websocket.CompressionDisabled,
	})
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		// coder/websocket errors may quote the URL: keep only the status.
		if resp != nil {
			return nil, fmt.Errorf("websocket dial: http status %d", resp.StatusCode)
		}
		return nil, fmt.Errorf("websocket dial: %w", scrub(err))
	}
	c.SetReadLimit(opt.ReadLimit)
	w := &WS{c: c, opt: opt, pending: map[uint64]*call{}, subs: map[string]*Subscription{}, done: make(chan struct{})}
	go w.readLoop()
	go w.pingLoop()
	return w, nil
}

// scrub drops URL-bearing detail from dial errors.
func scrub(err error) error {
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		return errors.New("timeout")
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err
	}
	return errors.New("connection failed")
}

// Done is closed when the connection has failed or was closed.
func (w *WS) Done() <-chan struct{} { return w.done }

// Err is why the connection ended (nil while it is up).
func (w *WS) Err() error {
	select {
	case <-w.done:
		return w.err
	default:
		return nil
	}
}

// Close ends the connection.
func (w *WS) Close() error {
	w.fail(ErrClosed)
	return nil
}

func (w *WS) fail(err error) {
	w.errOnce.Do(func() {
		w.err = err
		_ = w.c.CloseNow()
		close(w.done)
		w.mu.Lock()
		for _, s := range w.subs {
			s.close()
		}
		w.subs = map[string]*Subscription{}
		w.mu.Unlock()
	})
}

func (w *WS) readLoop() {
	var buf bytes.Buffer
	for {
		_, r, err := w.c.Reader(context.Background())
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			if errors.Is(err, websocket.ErrMessageTooBig) {
				w.fail(fmt.Errorf("%w (%d bytes)", ErrTooLarge, w.opt.ReadLimit))
			} else {
				w.fail(fmt.Errorf("%w: read: %v", ErrClosed, err))
			}
			return
		}
		msgs, err := parseFrame(buf.Bytes())
		if err != nil {
			w.malformed(err)
			continue
		}
		for i := range msgs {
			w.dispatch(&msgs[i])
		}
	}
}

func (w *WS) malformed(err error) {
	if w.opt.Malformed != nil {
		w.opt.Malformed(err)
	}
}

func (w *WS) dispatch(m *message) {
	if err := m.validate(); err != nil {
		w.malformed(err)
		return
	}
	if len(m.ID) == 0 || string(m.ID) == "null" {
		if m.Method == "eth_subscription" {
			w.notify(m)
			return
		}
		if m.Error != nil {
			w.malformed(fmt.Errorf("%w: error without id: %v", ErrMalformed, m.Error))
			return
		}
		w.malformed(fmt.Errorf("%w: message without id or known method %q", ErrMalformed, m.Method))
		return
	}
	id, ok := numericID(m.ID)
	w.mu.Lock()
	c := w.pending[id]
	delete(w.pending, id)
	if ok && c != nil && c.subscr != nil && m.Error == nil {
		// Register before reading the next frame so no notification is lost.
		var sid string
		if json.Unmarshal(m.Result, &sid) == nil && sid != "" {
			c.subscr.ID = sid
			w.subs[sid] = c.subscr
		}
	}
	w.mu.Unlock()
	if !ok || c == nil {
		w.malformed(fmt.Errorf("%w: response for unknown id %s", ErrMalformed, m.ID))
		return
	}
	c.ch <- *m
}

func (w *WS) notify(m *message) {
	var p struct {
		Subscription string          `json:"subscription"`
		Result       json.RawMessage `json:"result"`
	}
	// Params are bounded by the read limit; the result is bounded again by
	// the subscription's byte budget in push.
	if err := json.Unmarshal(m.Params, &p); err != nil {
		w.malformed(fmt.Errorf("%w: notification params: %v", ErrMalformed, err))
		return
	}
	w.mu.Lock()
	s := w.subs[p.Subscription]
	w.mu.Unlock()
	if s == nil {
		w.malformed(fmt.Errorf("%w: notification for unknown subscription %q", ErrMalformed, p.Subscription))
		return
	}
	s.push(p.Result)
}

func (w *WS) pingLoop() {
	t := time.NewTicker(w.opt.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-w.done:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), w.opt.CallTimeout)
		err := w.c.Ping(ctx)
		cancel()
		if err != nil {
			w.fail(fmt.Errorf("%w: keepalive ping: %v", ErrClosed, err))
			return
		}
	}
}

func (w *WS) register(sub *Subscription) (uint64, *call) {
	id := w.nextID.Add(1)
	c := &call{ch: make(chan message, 1), subscr: sub}
	w.mu.Lock()
	w.pending[id] = c
	w.mu.Unlock()
	return id, c
}

func (w *WS) forget(ids ...uint64) {
	w.mu.Lock()
	for _, id := range ids {
		delete(w.pending, id)
	}
	w.mu.Unlock()
}

func (w *WS) write(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	if err := w.c.Write(ctx, websocket.MessageText, b); err != nil {
		w.fail(fmt.Errorf("%w: write: %v", ErrClosed, err))
		return w.err
	}
	return nil
}

func (w *WS) wait(ctx context.Context, c *call) (message, error) {
	select {
	case m := <-c.ch:
		return m, nil
	case <-w.done:
		// A response may have raced the failure.
		select {
		case m := <-c.ch:
			return m, nil
		default:
		}
		return message{}, w.err
	case <-ctx.Done():
		return message{}, ctx.Err()
	}
}

func (w *WS) observe(method string, start time.Time, err error) {
	if w.opt.Observe != nil {
		w.opt.Observe(method, time.Since(start), err)
	}
}

// Call invokes method with params and decodes the result into out (nil to
// discard). The call is bounded by ctx and by Options.CallTimeout.
func (w *WS) Call(ctx context.Context, out any, method string, params ...any) (err error) {
	return w.call(ctx, nil, out, method, params...)
}

func (w *WS) call(ctx context.Context, sub *Subscription, out any, method string, params ...any) (err error) {
	start := time.Now()
	defer func() { w.observe(method, start, err) }()
	if params == nil {
		params = []any{}
	}
	ctx, cancel := context.WithTimeout(ctx, w.opt.CallTimeout)
	defer cancel()
	id, c := w.register(sub)
	if err := w.write(ctx, request{JSONRPC: "2.0", ID: id, Method: method, Params: params}); err != nil {
		w.forget(id)
		return fmt.Errorf("%s: %w", method, err)
	}
	m, err := w.wait(ctx, c)
	if err != nil {
		w.forget(id)
		return fmt.Errorf("%s: %w", method, err)
	}
	return decodeResult(&m, method, out)
}

// Batch sends every element in one frame and fills in their results and
// errors. The returned error is for the batch as a whole (transport,
// timeout); per-element failures are in each BatchElem.Error.
func (w *WS) Batch(ctx context.Context, elems []BatchElem) (err error) {
	if len(elems) == 0 {
		return nil
	}
	start := time.Now()
	defer func() { w.observe("batch:"+elems[0].Method, start, err) }()
	ctx, cancel := context.WithTimeout(ctx, w.opt.CallTimeout)
	defer cancel()
	reqs := make([]request, len(elems))
	ids := make([]uint64, len(elems))
	calls := make([]*call, len(elems))
	for i, e := range elems {
		ids[i], calls[i] = w.register(nil)
		p := e.Params
		if p == nil {
			p = []any{}
		}
		reqs[i] = request{JSONRPC: "2.0", ID: ids[i], Method: e.Method, Params: p}
	}
	if err := w.write(ctx, reqs); err != nil {
		w.forget(ids...)
		return fmt.Errorf("batch: %w", err)
	}
	for i, c := range calls {
		m, err := w.wait(ctx, c)
		if err != nil {
			w.forget(ids...)
			return fmt.Errorf("batch of %d %s: %w", len(elems), elems[0].Method, err)
		}
		elems[i].Error = decodeResult(&m, elems[i].Method, elems[i].Result)
	}
	return nil
}

// Subscribe calls eth_subscribe with args (e.g. "newHeads") and returns the
// subscription whose channel receives each notification's result.
func (w *WS) Subscribe(ctx context.Context, args ...any) (*Subscription, error) {
	s := newSubscription(w)
	var id string
	if err := w.call(ctx, s, &id, "eth_subscribe", args...); err != nil {
		return nil, err
	}
	if id == "" {
		return nil, fmt.Errorf("eth_subscribe: %w: empty subscription id", ErrMalformed)
	}
	return s, nil
}

// Unsubscribe cancels the subscription on the node.
func (s *Subscription) Unsubscribe(ctx context.Context) error {
	s.ws.mu.Lock()
	delete(s.ws.subs, s.ID)
	s.ws.mu.Unlock()
	s.close()
	return s.ws.Call(ctx, nil, "eth_unsubscribe", s.ID)
}
