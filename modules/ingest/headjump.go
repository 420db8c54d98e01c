package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/ethhook/ethhook/internal/sleep"
	"github.com/ethhook/ethhook/modules/ingest/rpc"
)

// errHeadRefused: a head claim jumped more than ingest.max_head_jump past
// the known head and could not be confirmed. The session is given up (the
// URL's breaker counts it) so the next URL is tried.
var errHeadRefused = errors.New("head jump not confirmed")

// knownHead is what a head claim is measured against: where a backfill
// towards it would start, the cursor or the configured start block. Not
// the highest head seen: claims just under the bound, each accepted, must
// not ratchet it up. ok is false when nothing is known yet (a new chain
// without start_block commits only the head itself: no backfill to bound).
func (r *chainRunner) knownHead() (n uint64, ok bool) {
	switch {
	case r.cur.Set:
		return r.cur.Number, true
	case r.ch.StartBlock != nil:
		return *r.ch.StartBlock, true
	}
	return 0, false
}

// checkHead lets ingest act on the head claim h (a newHeads notification
// or an eth_getBlockByNumber("latest") answer) only when it is at most
// ingest.max_head_jump past the known head, or when the jump is confirmed:
// the session's node answers eth_chainId with the chain's id,
// eth_blockNumber with at least h's number and eth_getBlockByNumber(h's
// number) with h's hash, and, when the chain has more than one URL,
// another provider knows h's hash at h's number. A legitimate catch-up
// after downtime passes that in a few calls; a node that claims block
// 2^50 does not.
func (r *chainRunner) checkHead(ctx context.Context, h header) error {
	known, ok := r.knownHead()
	n := uint64(h.Number)
	if !ok || n <= known || n-known <= r.ing.MaxHeadJump {
		return nil
	}
	log := r.log.With(zap.Uint64("head", n), zap.String("hash", h.Hash), zap.Uint64("known_head", known), zap.String("url", r.url))
	by, err := r.confirmHead(ctx, h)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.mHeadJumps.WithLabelValues("refused").Inc()
		log.Error("head jumps too far and was not confirmed; giving up this node", zap.Uint64("max_head_jump", r.ing.MaxHeadJump), zap.Error(err))
		if errors.Is(err, errWrongChain) {
			return err
		}
		return fmt.Errorf("%w: block %d is %d past the known head %d: %w", errHeadRefused, n, n-known, known, err)
	}
	r.mHeadJumps.WithLabelValues("confirmed").Inc()
	log.Info("head jump confirmed; catching up", zap.Uint64("blocks", n-known), zap.Strings("confirmed_by", by))
	return nil
}

// confirmHead runs the checks of checkHead and returns who confirmed.
func (r *chainRunner) confirmHead(ctx context.Context, h header) ([]string, error) {
	n := uint64(h.Number)
	if err := r.checkChainID(ctx, r.ws, r.url); err != nil {
		return nil, err
	}
	var bn quantity
	if err := r.retry(ctx, func() error { return r.ws.Call(ctx, &bn, "eth_blockNumber") }); err != nil {
		return nil, fmt.Errorf("eth_blockNumber: %w", err)
	}
	if uint64(bn) < n || uint64(bn) > maxBlockNumber {
		return nil, fmt.Errorf("eth_blockNumber answers %d", uint64(bn))
	}
	again, err := r.getHeader(ctx, "eth_getBlockByNumber", hexNum(n))
	if err != nil {
		return nil, err
	}
	if again.Hash != h.Hash {
		return nil, fmt.Errorf("eth_getBlockByNumber(%d) answers %s", n, again.Hash)
	}
	by := []string{r.url}
	if len(r.eps) < 2 {
		return by, nil
	}
	var errs []error
	for _, ep := range r.eps {
		if ep == r.eps[r.epIdx] {
			continue
		}
		err := r.confirmElsewhere(ctx, ep, h)
		if err == nil {
			return append(by, ep.redacted), nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		errs = append(errs, fmt.Errorf("%s: %w", ep.redacted, err))
	}
	return nil, fmt.Errorf("no other provider knows block %d %s: %w", n, h.Hash, errors.Join(errs...))
}

// secondLookups is how many times another provider is asked for a
// claimed head (it may lag by a block or two), 100 ms, 200 ms ... apart.
const secondLookups = 4

// confirmElsewhere asks another URL of the chain whether it knows h.
func (r *chainRunner) confirmElsewhere(ctx context.Context, ep *endpoint, h header) error {
	ws, err := rpc.DialWS(ctx, ep.url, r.rpcOptions(ep.url))
	if err != nil {
		return err
	}
	defer ws.Close()
	if err := r.checkChainID(ctx, ws, ep.redacted); err != nil {
		if errors.Is(err, errWrongChain) {
			// That URL is refused, not the session's (checkChainID logged it).
			ep.refuse(time.Now(), wrongChainOpen)
			return errors.New("wrong chain id")
		}
		return err
	}
	for attempt := 0; ; attempt++ {
		var p *header
		err := r.retry(ctx, func() error { p = nil; return ws.Call(ctx, &p, "eth_getBlockByHash", h.Hash, false) })
		if err != nil {
			return err
		}
		if p != nil {
			if err := p.normalize(); err != nil {
				r.invalid("eth_getBlockByHash", err)
				return err
			}
			if p.Number != h.Number || p.Hash != h.Hash {
				return fmt.Errorf("block %s is number %d there", h.Hash, uint64(p.Number))
			}
			return nil
		}
		if attempt+1 >= secondLookups {
			return fmt.Errorf("block %s unknown", h.Hash)
		}
		if !sleep.For(ctx, callPause.After(attempt)) {
			return ctx.Err()
		}
	}
}
