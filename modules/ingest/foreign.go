package ingest

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"
)

// A node can answer the right chain id and still not be the chain ingest
// follows: another devnet on the same port, a node restored from another
// snapshot, a fork, a broken or lying provider. To ingest it looks like a
// reorg, and acting on it would unwind local state and retract what was
// delivered. So a reorg deeper than the chain's max_reorg_depth, or one
// whose common ancestor is below the block reported finalized, or a node
// that answers another hash for that finalized block, is taken as a sign
// of a wrong or broken node: nothing is unwound or published, the session
// ends with errForeignNode, the URL is refused for foreignOpen (the next
// URL of the chain is tried; a lone URL is retried at the reconnect
// backoff), one error line is logged and ethhook_ingest_foreign_node_total
// counts it.
var errForeignNode = errors.New("node contradicts the committed chain (wrong or broken node)")

// foreign logs and counts a node taken as foreign and returns the error
// that ends the session. reason is the metric label.
func (r *chainRunner) foreign(ctx context.Context, reason, detail string) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	r.mForeign.WithLabelValues(reason).Inc()
	r.log.Error("node contradicts the chain ingest committed; not unwinding anything, giving this provider up",
		zap.String("url", r.url), zap.String("reason", reason), zap.String("detail", detail),
		zap.Uint64("block", r.cur.Number), zap.String("finalized", r.finalized().String()))
	return fmt.Errorf("%w: %s", errForeignNode, detail)
}
