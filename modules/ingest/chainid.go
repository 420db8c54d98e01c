package ingest

import (
	"context"
	"fmt"

	"github.com/ethhook/ethhook/config"
)

// deepReorg: before a reorg of more than this many blocks is acted on, the
// node's chain id is asked again. Real reorgs this deep are rare (the
// check costs one call); a node that switched chains mid-connection looks
// exactly like one, and its blocks must never be committed.
const deepReorg = 2

// recheckChainID asks the session's node(s) for eth_chainId again: at the
// ingest.chain_id_check_interval and before a deep reorg. A wrong answer
// from the WebSocket node ends the session with errWrongChain (the URL is
// refused for wrongChainOpen, see active); one from http_url ends it too,
// and the next session backfills over the WebSocket when http_url stays
// wrong.
func (r *chainRunner) recheckChainID(ctx context.Context) error {
	if err := r.checkChainID(ctx, r.ws, r.url); err != nil {
		return err
	}
	if r.bf != caller(r.ws) {
		if err := r.checkChainID(ctx, r.bf, config.RedactURL(r.ch.HTTPURL)); err != nil {
			return fmt.Errorf("http_url: %v", err) // not the WebSocket URL's fault
		}
	}
	return nil
}
