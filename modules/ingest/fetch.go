package ingest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"go.uber.org/zap"

	"github.com/ethhook/ethhook/internal/sleep"
	"github.com/ethhook/ethhook/modules/ingest/rpc"
)

// checkLogs verifies an answer for one block: every log carries the block's
// hash and number, none is removed, indexes are unique; sorts by index.
func checkLogs(h *header, logs []ethLog) error {
	for i := range logs {
		l := &logs[i]
		if !strings.EqualFold(l.BlockHash, h.Hash) || uint64(l.BlockNumber) != uint64(h.Number) || l.Removed {
			return fmt.Errorf("log %d carries block %d %s, want %d %s", uint64(l.LogIndex), uint64(l.BlockNumber), l.BlockHash, uint64(h.Number), h.Hash)
		}
	}
	if !sort.SliceIsSorted(logs, func(i, j int) bool { return logs[i].LogIndex < logs[j].LogIndex }) {
		sort.Slice(logs, func(i, j int) bool { return logs[i].LogIndex < logs[j].LogIndex })
	}
	for i := 1; i < len(logs); i++ {
		if logs[i].LogIndex == logs[i-1].LogIndex {
			return fmt.Errorf("duplicate log index %d", uint64(logs[i].LogIndex))
		}
	}
	return nil
}

// logsByHash is the one eth_getLogs({blockHash}) of a head, checked
// against the header and fetched again when the answer is wrong or empty
// despite a non-empty logsBloom.
func (r *chainRunner) logsByHash(ctx context.Context, h *header) ([]ethLog, error) {
	for attempt := 0; ; attempt++ {
		var logs []ethLog
		err := r.retry(ctx, func() error {
			logs = nil
			return r.ws.Call(ctx, &logs, "eth_getLogs", map[string]any{"blockHash": h.Hash})
		})
		if err != nil {
			return nil, fmt.Errorf("fetch logs for block %d: %w", uint64(h.Number), err)
		}
		problem := validateLogs(logs)
		if problem != nil {
			r.invalid("eth_getLogs", problem)
		} else {
			problem = checkLogs(h, logs)
		}
		if problem == nil && (len(logs) > 0 || h.bloomEmpty()) {
			return logs, nil
		}
		if errors.Is(problem, errInvalidAnswer) {
			r.log.Warn("invalid eth_getLogs answer; fetching again", zap.Uint64("block", uint64(h.Number)), zap.String("hash", h.Hash))
		} else if problem != nil {
			r.mRejected.Inc()
			r.log.Warn("rejected eth_getLogs answer; fetching again", zap.Uint64("block", uint64(h.Number)), zap.Error(problem))
		} else {
			r.mEmpty.Inc()
			r.log.Info("eth_getLogs answered [] for a block whose logsBloom is not empty; fetching again",
				zap.Uint64("block", uint64(h.Number)), zap.Int("attempt", attempt+1))
		}
		if attempt >= r.ing.EmptyLogsRetries {
			if problem == nil {
				problem = errors.New("no logs despite a non-empty logsBloom")
			}
			return nil, fmt.Errorf("fetch logs for block %d %s: not accepted after %d attempts: %w", uint64(h.Number), h.Hash, attempt+1, problem)
		}
		if !sleep.For(ctx, callPause.After(attempt)) {
			return nil, ctx.Err()
		}
	}
}

// fetchRange fetches headers (batched) and logs (one ranged eth_getLogs)
// of blocks from..end and checks them against each other. bytes is the
// estimated size of the eth_getLogs answer.
func (r *chainRunner) fetchRange(ctx context.Context, from, end uint64) (blocks []*block, bytes int64, err error) {
	n := int(end - from + 1)
	blocks = make([]*block, n)
	for i := 0; i < n; i += headerBatch {
		k := min(headerBatch, n-i)
		ptrs := make([]*header, k)
		elems := make([]rpc.BatchElem, k)
		for j := range elems {
			elems[j] = rpc.BatchElem{Method: "eth_getBlockByNumber", Params: []any{hexNum(from + uint64(i+j)), false}, Result: &ptrs[j]}
		}
		err := r.retry(ctx, func() error {
			if err := r.bf.Batch(ctx, elems); err != nil {
				return err
			}
			for _, e := range elems {
				if e.Error != nil {
					return e.Error
				}
			}
			return nil
		})
		if err != nil {
			return nil, 0, fmt.Errorf("fetch headers %d..%d: %w", from+uint64(i), from+uint64(i+k-1), err)
		}
		for j, p := range ptrs {
			num := from + uint64(i+j)
			if p == nil {
				return nil, 0, fmt.Errorf("%w: block %d not available", errNotCanonical, num)
			}
			if err := p.normalize(); err != nil {
				r.invalid("eth_getBlockByNumber", err)
				return nil, 0, fmt.Errorf("fetch headers %d..%d: %w", from, end, err)
			}
			if uint64(p.Number) != num {
				return nil, 0, fmt.Errorf("header for block %d has number %d", num, uint64(p.Number))
			}
			blocks[i+j] = &block{header: *p}
		}
	}
	for i := 1; i < n; i++ {
		if blocks[i].ParentHash != blocks[i-1].Hash {
			return nil, 0, fmt.Errorf("%w: block %d does not link to %d", errNotCanonical, from+uint64(i), from+uint64(i-1))
		}
	}
	var logs []ethLog
	get := func() error {
		logs = nil
		return r.bf.Call(ctx, &logs, "eth_getLogs", map[string]any{"fromBlock": hexNum(from), "toBlock": hexNum(end)})
	}
	if n == 1 {
		err = r.retry(ctx, get)
	} else {
		// A timeout of a multi-block request may be its weight: the caller
		// shrinks rather than asking the same again.
		err = r.retryRateLimit(ctx, get)
	}
	if err != nil {
		if rpc.IsRangeError(err) && n == 1 && !errors.Is(err, rpc.ErrTooLarge) {
			// One block is over the provider's limit: by hash has none.
			if blocks[0].logs, err = r.logsByHash(ctx, &blocks[0].header); err != nil {
				return nil, 0, err
			}
			return blocks, estimateBytes(blocks[0].logs), nil
		}
		return nil, 0, fmt.Errorf("eth_getLogs %d..%d: %w", from, end, err)
	}
	if err := validateLogs(logs); err != nil {
		r.invalid("eth_getLogs", err)
		return nil, 0, fmt.Errorf("eth_getLogs %d..%d: %w", from, end, err)
	}
	bytes = estimateBytes(logs)
	// Split per block by slicing the answer (no copy); answers are in chain
	// order, but do not rely on it.
	for i := range logs {
		num := uint64(logs[i].BlockNumber)
		if num < from || num > end {
			return nil, 0, fmt.Errorf("%w: eth_getLogs %d..%d returned a log of block %d", errNotCanonical, from, end, num)
		}
	}
	byBlock := func(i, j int) bool { return logs[i].BlockNumber < logs[j].BlockNumber }
	if !sort.SliceIsSorted(logs, byBlock) {
		sort.SliceStable(logs, byBlock)
	}
	for i := 0; i < len(logs); {
		j := i + 1
		for j < len(logs) && logs[j].BlockNumber == logs[i].BlockNumber {
			j++
		}
		blocks[uint64(logs[i].BlockNumber)-from].logs = logs[i:j:j]
		i = j
	}
	for _, b := range blocks {
		if err := checkLogs(&b.header, b.logs); err != nil {
			r.mRejected.Inc()
			return nil, 0, fmt.Errorf("%w: %v", errNotCanonical, err)
		}
		if len(b.logs) == 0 && !b.bloomEmpty() {
			r.mEmpty.Inc()
			if b.logs, err = r.logsByHash(ctx, &b.header); err != nil {
				return nil, 0, err
			}
		}
	}
	return blocks, bytes, nil
}

func estimateBytes(logs []ethLog) int64 {
	n := int64(2)
	for i := range logs {
		n += int64(logs[i].approxJSONBytes()) + 1
	}
	return n
}
