package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/decode"
	"github.com/ethhook/ethhook/filter"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/modules/ingest/rpc"
	"github.com/ethhook/ethhook/tenant"
)

// Bounds of a preview (a dry run of a subscription over a block range).
const (
	MaxPreviewBlocks = 10_000 // to_block - from_block + 1
	MaxPreviewLogs   = 10_000 // logs the node returns for the addresses/topics; beyond, the count is cut short (truncated)
	MaxPreviewSample = 20
	defaultSample    = 5
	previewSpan      = 2_000 // first eth_getLogs span; halved on a provider's range error
)

type (
	previewRequest struct {
		Filter    hook.Filter `json:"filter"`
		FromBlock *uint64     `json:"from_block"`
		ToBlock   *uint64     `json:"to_block,omitempty"` // default: the chain's committed head
		Sample    int         `json:"sample,omitempty"`   // events to show, 0-20 (default 5)
	}
	previewEvent struct {
		Event       hook.Event      `json:"event"`
		Decoded     *decode.Decoded `json:"decoded,omitempty"`
		DecodeError string          `json:"decode_error,omitempty"`
	}
	previewView struct {
		ChainID   uint64 `json:"chain_id"`
		FromBlock uint64 `json:"from_block"`
		ToBlock   uint64 `json:"to_block"`
		// ScannedTo is the last block counted (below ToBlock when truncated).
		ScannedTo uint64             `json:"scanned_to"`
		Truncated bool               `json:"truncated"` // more than MaxPreviewLogs logs: counts cover from_block..scanned_to
		Logs      int                `json:"logs"`      // logs of the filter's addresses/topics
		Matches   int                `json:"matches"`   // messages the subscription would create: deliveries counted against the quota
		Sample    []previewEvent     `json:"sample"`
		Quota     tenant.QuotaStatus `json:"quota"` // the application's standing this month
	}
)

func (m *Module) previewRoutes() []route {
	if m.endpoints == nil {
		return nil
	}
	return []route{
		{method: http.MethodPost, path: "/applications/:app_id/endpoints/preview", id: "previewEndpoint",
			summary: "Dry run: what a subscription's filter matches in a block range (counts and a sample); sends nothing", tag: "endpoints",
			auth: authUser, body: previewRequest{}, resp: previewView{}, status: 200, h: m.handlePreview},
	}
}

func (m *Module) handlePreview(c echo.Context) error {
	ctx := c.Request().Context()
	appID := c.Param("app_id")
	var in previewRequest
	if err := m.bindVisible(c, appID, &in); err != nil {
		return err
	}
	filter.Normalize(&in.Filter)
	mt, err := filter.Compile(in.Filter)
	if err != nil {
		var fe filter.Errors
		if errors.As(err, &fe) {
			fields := map[string]string{}
			for _, f := range fe {
				fields["filter."+f.Field] = f.Msg
			}
			return &apiError{Status: http.StatusBadRequest, Code: "invalid_request", Message: "invalid filter: " + err.Error(), Fields: fields}
		}
		return fieldError("filter", err.Error())
	}
	if len(in.Filter.Chains) != 1 {
		return fieldError("filter.chains", fmt.Sprintf("a preview covers exactly one chain, got %d", len(in.Filter.Chains)))
	}
	ch, ok := m.chainByID(in.Filter.Chains[0])
	if !ok || (ch.HTTPURL == "" && len(ch.WSURLs) == 0) {
		return fieldError("filter.chains", fmt.Sprintf("chain %d is not configured with a node URL here", in.Filter.Chains[0]))
	}
	if in.FromBlock == nil {
		return fieldError("from_block", "required")
	}
	if in.Sample < 0 || in.Sample > MaxPreviewSample {
		return fieldError("sample", fmt.Sprintf("must be 0..%d, got %d", MaxPreviewSample, in.Sample))
	}
	if in.Sample == 0 {
		in.Sample = defaultSample
	}
	conn, closeConn, err := dialChain(ctx, ch)
	if err != nil {
		return &apiError{Status: http.StatusBadGateway, Code: "node_unavailable", Message: "chain " + ch.Name + ": " + err.Error()}
	}
	defer closeConn()
	to := uint64(0)
	if in.ToBlock != nil {
		to = *in.ToBlock
	} else if to, err = m.previewHead(ctx, conn); err != nil {
		return &apiError{Status: http.StatusBadGateway, Code: "node_unavailable", Message: "chain " + ch.Name + ": " + err.Error()}
	}
	from := *in.FromBlock
	switch {
	case to < from:
		return fieldError("to_block", fmt.Sprintf("%d is before from_block %d", to, from))
	case to-from+1 > MaxPreviewBlocks:
		return fieldError("to_block", fmt.Sprintf("the range %d..%d is %d blocks; at most %d (MaxPreviewBlocks)", from, to, to-from+1, MaxPreviewBlocks))
	}
	out := previewView{ChainID: ch.ID, FromBlock: from, ToBlock: to, Sample: []previewEvent{}}
	if err := previewScan(ctx, conn, ch, mt, in.Filter, from, to, in.Sample, &out); err != nil {
		if errors.Is(err, context.Canceled) {
			return err
		}
		return &apiError{Status: http.StatusBadGateway, Code: "node_error", Message: "chain " + ch.Name + ": " + err.Error()}
	}
	if out.Quota, err = m.store.Usage(ctx, scopeOf(c), appID); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (m *Module) chainByID(id uint64) (config.Chain, bool) {
	for _, c := range m.chains {
		if c.ID == id {
			return c, true
		}
	}
	return config.Chain{}, false
}

// caller is what both rpc transports offer.
type caller interface {
	Call(ctx context.Context, out any, method string, params ...any) error
	Batch(ctx context.Context, elems []rpc.BatchElem) error
}

func dialChain(ctx context.Context, ch config.Chain) (caller, func(), error) {
	opt := rpc.Options{ReadLimit: 32 << 20}
	if ch.HTTPURL != "" {
		return rpc.NewHTTP(ch.HTTPURL, opt), func() {}, nil
	}
	ws, err := rpc.DialWS(ctx, ch.WSURLs[0], opt)
	if err != nil {
		return nil, nil, fmt.Errorf("connect: %s", config.RedactURL(err.Error()))
	}
	return ws, func() { _ = ws.Close() }, nil
}

func (m *Module) previewHead(ctx context.Context, conn caller) (uint64, error) {
	var n string
	if err := conn.Call(ctx, &n, "eth_blockNumber"); err != nil {
		return 0, fmt.Errorf("eth_blockNumber: %w", err)
	}
	return parseQuantity(n)
}

func parseQuantity(s string) (uint64, error) {
	var n uint64
	if _, err := fmt.Sscanf(strings.ToLower(s), "0x%x", &n); err != nil {
		return 0, fmt.Errorf("bad quantity %q", s)
	}
	return n, nil
}

// previewLog is the part of an eth_getLogs element a preview needs.
type previewLog struct {
	Address     string   `json:"address"`
	Topics      []string `json:"topics"`
	Data        string   `json:"data"`
	BlockNumber string   `json:"blockNumber"`
	BlockHash   string   `json:"blockHash"`
	TxHash      string   `json:"transactionHash"`
	TxIndex     string   `json:"transactionIndex"`
	LogIndex    string   `json:"logIndex"`
}

// previewScan counts the logs of from..to that the filter matches, in
// spans halved on a provider's range error, and keeps the first sample.
func previewScan(ctx context.Context, conn caller, ch config.Chain, mt *filter.Matcher, f hook.Filter, from, to uint64, sample int, out *previewView) error {
	q := map[string]any{}
	if len(mt.Addresses) > 0 {
		q["address"] = mt.Addresses
	}
	topics := []any{nil}
	if len(mt.Topic0s) > 0 {
		topics[0] = mt.Topic0s
	}
	for i := 1; i < len(f.Topics) && i < 4; i++ {
		var v any
		if len(f.Topics[i]) > 0 {
			v = f.Topics[i]
		}
		topics = append(topics, v)
	}
	for len(topics) > 0 && topics[len(topics)-1] == nil {
		topics = topics[:len(topics)-1]
	}
	if len(topics) > 0 {
		q["topics"] = topics
	}
	span := uint64(previewSpan)
	if ch.MaxLogRange > 0 {
		span = min(span, ch.MaxLogRange)
	}
	var cache filter.Cache
	for next := from; next <= to; {
		end := min(next+span-1, to)
		p := map[string]any{"fromBlock": fmt.Sprintf("0x%x", next), "toBlock": fmt.Sprintf("0x%x", end)}
		for k, v := range q {
			p[k] = v
		}
		var logs []previewLog
		err := conn.Call(ctx, &logs, "eth_getLogs", p)
		if err != nil {
			if rpc.IsRangeError(err) && end > next {
				span = max(1, (end-next+1)/2)
				continue
			}
			return fmt.Errorf("eth_getLogs %d..%d: %w", next, end, err)
		}
		for i := range logs {
			if out.Logs >= MaxPreviewLogs {
				out.Truncated = true
				return nil
			}
			ev, err := previewEventOf(ch, &logs[i])
			if err != nil {
				return err
			}
			out.Logs++
			out.ScannedTo = max(out.ScannedTo, ev.Block.Number)
			cache.Reset()
			r, ok := mt.Match(&ev, &cache)
			if !ok {
				continue
			}
			out.Matches++
			if len(out.Sample) < sample {
				pe := previewEvent{Event: ev, Decoded: r.Decoded}
				if r.DecodeErr != nil {
					pe.DecodeError = r.DecodeErr.Error()
				}
				out.Sample = append(out.Sample, pe)
			}
		}
		out.ScannedTo = end
		next = end + 1
	}
	// Timestamps of the sample's blocks (eth_getLogs has none).
	for i := range out.Sample {
		var h struct {
			Timestamp string `json:"timestamp"`
		}
		if err := conn.Call(ctx, &h, "eth_getBlockByHash", out.Sample[i].Event.Block.Hash, false); err == nil {
			out.Sample[i].Event.Block.Timestamp, _ = parseQuantity(h.Timestamp)
		}
	}
	return nil
}

func previewEventOf(ch config.Chain, l *previewLog) (hook.Event, error) {
	num, err1 := parseQuantity(l.BlockNumber)
	txi, err2 := parseQuantity(l.TxIndex)
	li, err3 := parseQuantity(l.LogIndex)
	if err := errors.Join(err1, err2, err3); err != nil || len(l.BlockHash) != 66 {
		return hook.Event{}, fmt.Errorf("eth_getLogs answered a malformed log: %v", err)
	}
	ev := hook.Event{
		ID: hook.EventID(ch.ID, l.BlockHash, uint(li)), Type: hook.TypeLog, Chain: hook.Chain{ID: ch.ID, Name: ch.Name},
		Block:       hook.Block{Number: num, Hash: strings.ToLower(l.BlockHash)},
		Transaction: hook.Transaction{Hash: strings.ToLower(l.TxHash), Index: uint(txi)},
		Log:         hook.Log{Address: strings.ToLower(l.Address), Data: strings.ToLower(l.Data), Index: uint(li), Topics: make([]string, len(l.Topics))},
	}
	for i, t := range l.Topics {
		ev.Log.Topics[i] = strings.ToLower(t)
	}
	return ev, nil
}
