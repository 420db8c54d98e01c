package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// HTTP is a JSON-RPC client over HTTP POST, for ranged backfill.
type HTTP struct {
	url    string
	opt    Options
	client *http.Client
	nextID atomic.Uint64
}

// NewHTTP returns a client for url (which may carry an API key; errors
// never include it).
func NewHTTP(url string, opt Options) *HTTP {
	opt = opt.withDefaults()
	return &HTTP{url: url, opt: opt, client: &http.Client{}}
}

func (h *HTTP) post(ctx context.Context, body any) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(b))
	if err != nil {
		return nil, errors.New("build http request: bad url")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ethhook-ingest")
	resp, err := h.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: http: %v", ErrClosed, scrub(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, h.opt.ReadLimit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read http body: %v", ErrClosed, scrub(err))
	}
	if int64(len(data)) > h.opt.ReadLimit {
		return nil, fmt.Errorf("%w (%d bytes)", ErrTooLarge, h.opt.ReadLimit)
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		return nil, ErrRateLimited
	}
	if resp.StatusCode/100 != 2 && firstByte(data) != '{' && firstByte(data) != '[' {
		return nil, fmt.Errorf("%w: http status %d", ErrClosed, resp.StatusCode)
	}
	return data, nil
}

// Call invokes method over HTTP; see WS.Call.
func (h *HTTP) Call(ctx context.Context, out any, method string, params ...any) (err error) {
	start := time.Now()
	defer func() {
		if h.opt.Observe != nil {
			h.opt.Observe(method, time.Since(start), err)
		}
	}()
	if params == nil {
		params = []any{}
	}
	ctx, cancel := context.WithTimeout(ctx, h.opt.CallTimeout)
	defer cancel()
	data, err := h.post(ctx, request{JSONRPC: "2.0", ID: h.nextID.Add(1), Method: method, Params: params})
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	msgs, err := parseFrame(data)
	if err != nil || len(msgs) != 1 {
		if err == nil {
			err = fmt.Errorf("%w: %d messages for one call", ErrMalformed, len(msgs))
		}
		if h.opt.Malformed != nil {
			h.opt.Malformed(err)
		}
		return fmt.Errorf("%s: %w", method, err)
	}
	if err := msgs[0].validate(); err != nil {
		if h.opt.Malformed != nil {
			h.opt.Malformed(err)
		}
		return fmt.Errorf("%s: %w", method, err)
	}
	return decodeResult(&msgs[0], method, out)
}

// Batch sends elems in one HTTP request; see WS.Batch.
func (h *HTTP) Batch(ctx context.Context, elems []BatchElem) (err error) {
	if len(elems) == 0 {
		return nil
	}
	start := time.Now()
	defer func() {
		if h.opt.Observe != nil {
			h.opt.Observe("batch:"+elems[0].Method, time.Since(start), err)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, h.opt.CallTimeout)
	defer cancel()
	reqs := make([]request, len(elems))
	byID := make(map[uint64]int, len(elems))
	for i, e := range elems {
		p := e.Params
		if p == nil {
			p = []any{}
		}
		id := h.nextID.Add(1)
		byID[id] = i
		reqs[i] = request{JSONRPC: "2.0", ID: id, Method: e.Method, Params: p}
	}
	data, err := h.post(ctx, reqs)
	if err != nil {
		return fmt.Errorf("batch: %w", err)
	}
	msgs, err := parseFrame(data)
	if err != nil {
		if h.opt.Malformed != nil {
			h.opt.Malformed(err)
		}
		return fmt.Errorf("batch: %w", err)
	}
	if len(msgs) == 1 && msgs[0].Error != nil && len(msgs[0].ID) == 0 {
		return fmt.Errorf("batch: %w", msgs[0].Error) // whole batch refused (e.g. rate limit)
	}
	seen := 0
	for i := range msgs {
		m := &msgs[i]
		id, ok := numericID(m.ID)
		idx, known := byID[id]
		if !ok || !known || m.validate() != nil {
			if h.opt.Malformed != nil {
				h.opt.Malformed(fmt.Errorf("%w: batch response with unknown id %s", ErrMalformed, m.ID))
			}
			continue
		}
		delete(byID, id)
		elems[idx].Error = decodeResult(m, elems[idx].Method, elems[idx].Result)
		seen++
	}
	if seen != len(elems) {
		return fmt.Errorf("batch: %w: %d of %d responses", ErrMalformed, seen, len(elems))
	}
	return nil
}
