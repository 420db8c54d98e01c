package ingest

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/modules/ingest/rpc"
)

// Finality stages from the node. Ethereum, OP Stack chains and Arbitrum
// answer eth_getBlockByNumber("safe") and ("finalized"); ingest polls both
// per chain and publishes them as a finality entry in the events stream, so
// process applies them in stream order: every removal published before the
// entry is handled before an event is released at that stage.
//
// The answers are untrusted. A tag is published only at a block ingest has
// committed with the same hash (or, below the window, when the node agrees
// with the window's oldest block), never above the cursor (a jump past it
// waits for the commits), never below what was published before (a tag that
// goes backwards is logged and counted, the old value kept), and a finalized
// block answered with another hash than the one reported ends the session
// as a broken or foreign node (see foreign.go).

var (
	//go:embed finality.lua
	finalitySrc    string
	finalityScript = rueidis.NewLuaScript(guardSrc + finalitySrc)
)

// finalityTags are the tags polled, lowest stage first.
var finalityTags = [2]string{hook.StageSafe, hook.StageFinalized}

// finality is a chain's finality state (only the chain's goroutine
// touches it).
type finality struct {
	published   hook.Finality // what the stream carries
	next        time.Time     // next poll
	unsupported [2]bool       // the node answered that it has no such tag
	backwards   [2]bool       // a tag is below the published one (logged once)
	refused     [2]string     // the last tagged hash refused (logged once per hash)
	loaded      bool
}

// firstRefusal reports whether hash is a new refusal of tag i (to log it
// once, not at every poll while the node keeps answering it).
func (f *finality) firstRefusal(i int, hash string) bool {
	if f.refused[i] == hash {
		return false
	}
	f.refused[i] = hash
	return true
}

func (f *finality) tag(i int) *hook.Cursor {
	if i == 0 {
		return &f.published.Safe
	}
	return &f.published.Finalized
}

// finalityInterval is how often the tags are polled.
func (r *chainRunner) finalityInterval() time.Duration {
	if r.ing.FinalityPollInterval > 0 {
		return r.ing.FinalityPollInterval
	}
	return r.pollInterval()
}

// finalityKey is `<prefix>{<chain>}:finality`: "<safe cursor>|<finalized cursor>".
func (r *chainRunner) finalityKey() string { return r.st.keys.Chain(r.ch.ID, "finality") }

// loadFinality reads what was published before: Redis's record, and the
// finalized block kept in Postgres (which survives Redis losing its state).
func (r *chainRunner) loadFinality(ctx context.Context) error {
	f := &r.fin
	raw, err := r.st.rdb.Do(ctx, r.st.rdb.B().Get().Key(r.finalityKey()).Build()).ToString()
	switch {
	case rueidis.IsRedisNil(err):
	case err != nil:
		return fmt.Errorf("load finality: %w", err)
	default:
		rec, err := hook.ParseFinalityRecord(raw)
		if err != nil {
			return fmt.Errorf("load finality: %w", err)
		}
		for i, c := range []cursor{rec.Safe, rec.Finalized} {
			if c.Set && (c.Number > f.tag(i).Number || !f.tag(i).Set) {
				*f.tag(i) = c
			}
		}
	}
	if r.m.cursors != nil {
		c, err := r.m.cursors.Finalized(ctx, r.ch.ID)
		if err != nil {
			r.log.Warn("cannot read the recorded finalized block; going on with Redis's", zap.Error(err))
		} else if c.Set && (!f.published.Finalized.Set || c.Number > f.published.Finalized.Number) {
			f.published.Finalized = c
		}
	}
	f.loaded = true
	if f.published.Finalized.Set {
		r.mFinality.WithLabelValues(hook.StageFinalized).Set(float64(f.published.Finalized.Number))
	}
	if f.published.Safe.Set {
		r.mFinality.WithLabelValues(hook.StageSafe).Set(float64(f.published.Safe.Number))
	}
	return nil
}

// finalized is the highest block reported finalized (unset: none).
func (r *chainRunner) finalized() cursor { return r.fin.published.Finalized }

// pollFinality polls the tags when their interval has passed and publishes
// what moved forward. Only a contradiction of a finalized block is an error
// (the node is broken or foreign); every other problem is logged and the
// poll tried again later, so finality can never stop ingestion.
func (r *chainRunner) pollFinality(ctx context.Context) error {
	now := time.Now()
	if now.Before(r.fin.next) || !r.cur.Set {
		return nil
	}
	r.fin.next = now.Add(r.finalityInterval())
	if !r.fin.loaded {
		if err := r.loadFinality(ctx); err != nil {
			r.log.Warn("finality: load", zap.Error(err))
			return nil
		}
	}
	var got [2]*header
	for i, tag := range finalityTags {
		if r.fin.unsupported[i] {
			continue
		}
		var h *header
		err := r.retry(ctx, func() error { h = nil; return r.ws.Call(ctx, &h, "eth_getBlockByNumber", tag, false) })
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil && isTagUnsupported(err), err == nil && h == nil:
			r.fin.unsupported[i] = true
			r.log.Info("node does not report this block tag; endpoints at that stage wait for a node that does",
				zap.String("tag", tag), zap.String("url", r.url), zap.Error(err))
			continue
		case err != nil:
			return nil // logged by the transport; next poll
		}
		if err := h.normalize(); err != nil {
			r.invalid("eth_getBlockByNumber("+tag+")", err)
			return nil
		}
		got[i] = h
	}
	if got[0] != nil && got[1] != nil && got[1].Number > got[0].Number {
		r.mFinalityRefused.WithLabelValues("order").Inc()
		r.log.Warn("node reports a finalized block above its safe block; ignoring both",
			zap.Uint64("safe", uint64(got[0].Number)), zap.Uint64("finalized", uint64(got[1].Number)), zap.String("url", r.url))
		return nil
	}
	next := r.fin.published
	changed := false
	for i, tag := range finalityTags {
		h := got[i]
		if h == nil {
			continue
		}
		c, ok, err := r.verifyTag(ctx, i, tag, h)
		if err != nil {
			return err
		}
		if ok {
			if i == 0 {
				next.Safe = c
			} else {
				next.Finalized = c
			}
			changed = true
		}
	}
	// The safe block is never below the finalized one in what is published.
	if next.Finalized.Set && (!next.Safe.Set || next.Safe.Number < next.Finalized.Number) {
		next.Safe, changed = next.Finalized, true
	}
	if !changed || next == r.fin.published {
		return nil
	}
	return r.publishFinality(ctx, next)
}

// verifyTag checks one answer against what was published and committed; it
// returns the cursor to publish when the tag moved forward onto a block we
// committed.
func (r *chainRunner) verifyTag(ctx context.Context, i int, tag string, h *header) (cursor, bool, error) {
	n, pub := uint64(h.Number), *r.fin.tag(i)
	log := r.log.With(zap.String("tag", tag), zap.Uint64("block", n), zap.String("hash", h.Hash), zap.String("url", r.url))
	switch {
	case pub.Set && n == pub.Number && h.Hash != pub.Hash:
		if i == 1 {
			return cursor{}, false, r.foreign(ctx, "finalized_changed", fmt.Sprintf("finalized block %d is %s here, %s was reported finalized before", n, h.Hash, pub.Hash))
		}
		if r.fin.firstRefusal(i, h.Hash) {
			log.Warn("node's safe block changed hash (a reorg of a safe block); keeping the one published")
		}
		return cursor{}, false, nil
	case pub.Set && n < pub.Number:
		if !r.fin.backwards[i] {
			r.fin.backwards[i] = true
			r.mFinalityRefused.WithLabelValues("backwards").Inc()
			log.Warn("node's block tag went backwards; keeping the one published until it passes it", zap.Uint64("published", pub.Number))
		}
		return cursor{}, false, nil
	case pub.Set && n == pub.Number:
		r.fin.backwards[i] = false
		return cursor{}, false, nil
	case n > r.cur.Number:
		return cursor{}, false, nil // a jump past what we committed: published once we did
	}
	r.fin.backwards[i] = false
	if e, ok := r.win[n]; ok {
		if e.Hash != h.Hash {
			// Our branch disagrees with the node's tag: a reorg we have not
			// followed yet (the next head unwinds it), or a broken node.
			// Either way nothing is published on that block.
			return r.notCommitted(log, i, h.Hash, "node's tagged block is not the one committed; not publishing it", zap.String("committed", e.Hash))
		}
		return cursor{Number: n, Hash: h.Hash, Set: true}, true, nil
	}
	// Below the window: the node must agree with the window's oldest block
	// (then every block below it is ours too, by the parent hashes).
	low, ok := r.oldestWindow()
	if !ok || n > low.Number {
		return cursor{}, false, nil
	}
	at, err := r.getHeader(ctx, "eth_getBlockByNumber", hexNum(low.Number))
	if err != nil {
		return cursor{}, false, nil
	}
	if at.Hash != low.Hash {
		return r.notCommitted(log, i, h.Hash, "node's chain does not hold the window's oldest block; not publishing the tag", zap.Uint64("window_start", low.Number))
	}
	return cursor{Number: n, Hash: h.Hash, Set: true}, true, nil
}

// notCommitted refuses tag i at a block that is not on the branch we
// committed, so nothing is published: counted and logged once per tagged
// hash.
func (r *chainRunner) notCommitted(log *zap.Logger, i int, hash, msg string, f zap.Field) (cursor, bool, error) {
	if r.fin.firstRefusal(i, hash) {
		r.mFinalityRefused.WithLabelValues("not_committed").Inc()
		log.Warn(msg, f)
	}
	return cursor{}, false, nil
}

// oldestWindow is the lowest block of the window.
func (r *chainRunner) oldestWindow() (cursor, bool) {
	var low cursor
	for n, e := range r.win {
		if !low.Set || n < low.Number {
			low = cursor{Number: n, Hash: e.Hash, Set: true}
		}
	}
	return low, low.Set
}

// publishFinality appends the finality entry and records it.
func (r *chainRunner) publishFinality(ctx context.Context, f hook.Finality) error {
	err := finalityScript.Exec(ctx, r.st.rdb, []string{r.st.fence, r.st.events, r.finalityKey()},
		[]string{fmt.Sprint(r.token), f.Safe.String(), f.Finalized.String(), f.Record()}).Error()
	if err := scriptErr("finality script", err); err != nil {
		if errors.Is(err, errFenced) {
			return err
		}
		r.out.Redis.Fail("publish finality", err)
		return nil
	}
	r.out.Redis.OK()
	old := r.fin.published
	r.fin.published = f
	if f.Safe.Set {
		r.mFinality.WithLabelValues(hook.StageSafe).Set(float64(f.Safe.Number))
	}
	if f.Finalized.Set {
		r.mFinality.WithLabelValues(hook.StageFinalized).Set(float64(f.Finalized.Number))
		if r.m.cursors != nil && f.Finalized != old.Finalized {
			err := r.m.cursors.RecordFinalized(ctx, r.ch.ID, f.Finalized)
			if ctx.Err() == nil {
				r.out.Postgres.Report("record finalized block", err)
			}
		}
	}
	r.log.Debug("finality published", zap.String("safe", f.Safe.String()), zap.String("finalized", f.Finalized.String()))
	return nil
}

// isTagUnsupported reports an error answer that means the node has no such
// block tag (pre-merge nodes, some L2s and proxies): invalid params or a
// message naming the tag.
func isTagUnsupported(err error) bool {
	switch rpc.Code(err) {
	case 0:
		return false // transport: try again later
	case -32602, -39001:
		return true
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "not supported") || strings.Contains(msg, "unknown block") || strings.Contains(msg, "invalid block")
}
