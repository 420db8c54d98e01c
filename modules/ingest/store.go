package ingest

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/redis/rueidis"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/streams"
)

var (
	//go:embed commit.lua
	commitSrc string
	//go:embed rewind.lua
	rewindSrc string
	//go:embed lease.lua
	leaseSrc string
	//go:embed release.lua
	releaseSrc string
	//go:embed trim.lua
	trimSrc string
	//go:embed guard.lua
	guardSrc string
	// writePrelude defines trim_events and the guards (fenced, moved) for
	// the scripts that write the stream and the cursor.
	writePrelude = fmt.Sprintf("local events_group = %q\n", hook.EventsGroup) + trimSrc + guardSrc

	commitScript  = rueidis.NewLuaScript(writePrelude + commitSrc)
	rewindScript  = rueidis.NewLuaScript(writePrelude + rewindSrc)
	leaseScript   = rueidis.NewLuaScript(leaseSrc)
	releaseScript = rueidis.NewLuaScript(releaseSrc)
)

// Errors the commit scripts answer with; both mean "our view is stale".
var (
	errFenced       = errors.New("fenced: another ingester holds the chain's lease")
	errCursorMoved  = errors.New("cursor moved under us")
	errLeaseLost    = errors.New("lease lost")
	errNotCanonical = errors.New("chain changed while fetching")
)

// cursor is the last committed block of a chain (one format for every
// module: hook.Cursor).
type cursor = hook.Cursor

func parseCursor(s string) (cursor, error) { return hook.ParseCursor(s) }

// winEntry is one block of the canonical-chain window.
type winEntry struct{ Hash, Parent string }

// store is a chain's Redis state: cursor, window, lease, stream.
type store struct {
	rdb      rueidis.Client
	chainID  uint64
	keys     hook.Keys
	fence    string
	lease    string
	cursor   string
	window   string
	events   string
	maxLen   string
	dedupTTL string
}

func newStore(rdb rueidis.Client, prefix string, chainID uint64, maxLen int64, dedupTTL time.Duration) *store {
	k := hook.Keys{Prefix: prefix}
	return &store{
		rdb:      rdb,
		chainID:  chainID,
		keys:     k,
		fence:    k.Chain(chainID, "fence"),
		lease:    k.Chain(chainID, "lease"),
		cursor:   k.Chain(chainID, "cursor"),
		window:   k.Chain(chainID, "window"),
		events:   k.Events(chainID),
		maxLen:   strconv.FormatInt(maxLen, 10),
		dedupTTL: strconv.FormatInt(int64(dedupTTL/time.Second), 10),
	}
}

func (s *store) blkKey(hash string) string  { return s.keys.Chain(s.chainID, "blk:"+hash) }
func (s *store) blogKey(hash string) string { return s.keys.Chain(s.chainID, "blog:"+hash) }

// load reads the cursor and the window.
func (s *store) load(ctx context.Context) (cursor, map[uint64]winEntry, error) {
	var cur cursor
	raw, err := s.rdb.Do(ctx, s.rdb.B().Get().Key(s.cursor).Build()).ToString()
	switch {
	case rueidis.IsRedisNil(err):
	case err != nil:
		return cur, nil, fmt.Errorf("load cursor: %w", err)
	default:
		if cur, err = parseCursor(raw); err != nil {
			return cur, nil, fmt.Errorf("load cursor: %w", err)
		}
	}
	m, err := s.rdb.Do(ctx, s.rdb.B().Hgetall().Key(s.window).Build()).AsStrMap()
	if err != nil {
		return cur, nil, fmt.Errorf("load window: %w", err)
	}
	win := make(map[uint64]winEntry, len(m))
	for k, v := range m {
		n, err := strconv.ParseUint(k, 10, 64)
		h, p, ok := strings.Cut(v, ":")
		if err != nil || !ok {
			return cur, nil, fmt.Errorf("load window: bad entry %q=%q", k, v)
		}
		win[n] = winEntry{Hash: h, Parent: p}
	}
	return cur, win, nil
}

func scriptErr(op string, err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "FENCED"):
		return fmt.Errorf("%s: %w", op, errFenced)
	case strings.Contains(msg, "CURSOR"):
		return fmt.Errorf("%s: %w (%s)", op, errCursorMoved, msg)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// commitReq is one commit: blocks in chain order on top of expect.
type commitReq struct {
	token  int64
	expect cursor
	blocks []*block
	// storeFrom: blocks numbered >= storeFrom keep their entries (blog)
	// for reorg removal; older backfilled blocks are beyond any reorg.
	storeFrom uint64
	// trim gives the block whose stored entries block n pushes out, if any.
	trim func(n uint64) (uint64, string, bool)
	// trimWindow gives the window entry block n pushes out; nil: trim's.
	trimWindow func(n uint64) (uint64, bool)
	// chainName is the event's chain.name.
	chainName string
}

// commit publishes the blocks' logs and moves the cursor, atomically.
func (s *store) commit(ctx context.Context, r commitReq) (published, skipped int64, err error) {
	nlogs, size := 0, 0
	for _, b := range r.blocks {
		nlogs += len(b.logs)
		for i := range b.logs {
			size += b.logs[i].approxJSONBytes() + 2*len(b.Hash) + 64 + len(r.chainName)
		}
	}
	keys := make([]string, 0, 4+3*len(r.blocks))
	keys = append(keys, s.fence, s.cursor, s.events, s.window)
	args := make([]string, 0, 6+6*len(r.blocks)+2*nlogs)
	args = append(args, strconv.FormatInt(r.token, 10), r.expect.String(), s.maxLen, s.dedupTTL, s.dedupTTL, strconv.Itoa(len(r.blocks)))

	// Encode every event into one buffer sized up front, then view it as
	// one string (never written again, so no copy is needed) and slice the
	// arguments from it. The buffer lives only as long as this commit.
	buf := make([]byte, 0, size)
	type span struct{ id, ev [2]int }
	spans := make([]span, 0, nlogs)
	for _, b := range r.blocks {
		for i := range b.logs {
			l := &b.logs[i]
			var sp span
			sp.id[0] = len(buf)
			buf = append(buf, hook.EventID(s.chainID, b.Hash, uint(l.LogIndex))...)
			sp.id[1] = len(buf)
			id := buf[sp.id[0]:sp.id[1]]
			sp.ev[0] = len(buf)
			buf = appendEventJSON(buf, string(id), hook.TypeLog, s.chainID, r.chainName, &b.header, l)
			sp.ev[1] = len(buf)
			spans = append(spans, sp)
		}
	}
	all := unsafe.String(unsafe.SliceData(buf), len(buf))
	si := 0
	for _, b := range r.blocks {
		num := uint64(b.Number)
		store := "0"
		if num >= r.storeFrom {
			store = "1"
		}
		trim, trimBlog := "", s.blogKey(b.Hash) // the block's own blog key: nothing to trim
		if tn, th, ok := r.trim(num); ok {
			trim, trimBlog = strconv.FormatUint(tn, 10), s.blogKey(th)
		}
		if r.trimWindow != nil {
			trim = ""
			if tn, ok := r.trimWindow(num); ok {
				trim = strconv.FormatUint(tn, 10)
			}
		}
		keys = append(keys, s.blkKey(b.Hash), s.blogKey(b.Hash), trimBlog)
		args = append(args, strconv.FormatUint(num, 10), b.Hash, b.ParentHash, store, trim, strconv.Itoa(len(b.logs)))
		for range b.logs {
			sp := spans[si]
			si++
			args = append(args, all[sp.id[0]:sp.id[1]], all[sp.ev[0]:sp.ev[1]])
		}
	}
	res, err := commitScript.Exec(ctx, s.rdb, keys, args).ToArray()
	if err != nil {
		return 0, 0, scriptErr("commit script", err)
	}
	if len(res) != 2 {
		return 0, 0, fmt.Errorf("commit script: unexpected answer of %d elements", len(res))
	}
	published, _ = res[0].AsInt64()
	skipped, _ = res[1].AsInt64()
	return published, skipped, nil
}

// backlog is how many entries of the events stream the process group has
// not acknowledged: unread plus pending. ok is false when the group does
// not exist (process has never run) or Redis cannot tell its lag.
func (s *store) backlog(ctx context.Context) (n int64, ok bool, err error) {
	g, found, err := streams.Info(ctx, s.rdb, s.events, hook.EventsGroup)
	if err != nil || !found {
		return 0, false, err
	}
	if !g.LagKnown {
		// Redis cannot tell the lag (entries were deleted after what the
		// group read; ethhook never does that). Not knowing, do not hold
		// ingest back: the stream length would count acknowledged history
		// too and could hold it forever.
		return 0, false, nil
	}
	return g.Lag + g.Pending, true, nil
}

// orphan is a block being unwound by a reorg.
type orphan struct {
	Number uint64
	Hash   string
}

// removals reads the published entries of the orphaned blocks (newest
// first) and turns each into its log.removed entry: same id, same body,
// type rewritten.
func (s *store) removals(ctx context.Context, orphans []orphan) ([]string, error) {
	if len(orphans) == 0 {
		return nil, nil
	}
	cmds := make(rueidis.Commands, len(orphans))
	for i, o := range orphans {
		cmds[i] = s.rdb.B().Get().Key(s.blogKey(o.Hash)).Build()
	}
	var out []string
	for i, r := range s.rdb.DoMulti(ctx, cmds...) {
		raw, err := r.AsBytes()
		if rueidis.IsRedisNil(err) {
			continue // a block without logs
		}
		if err != nil {
			return nil, fmt.Errorf("read entries of orphaned block %d: %w", orphans[i].Number, err)
		}
		lines := bytes.Split(raw, []byte{'\n'})
		// Undo newest first: last log of the block first.
		for j := len(lines) - 1; j >= 0; j-- {
			ev, id, err := asRemoved(lines[j])
			if err != nil {
				return nil, fmt.Errorf("orphaned block %d: %w", orphans[i].Number, err)
			}
			out = append(out, id, ev)
		}
	}
	return out, nil
}

// asRemoved rewrites `{"id":"<id>","type":"log",...` into the same body
// with type log.removed, returning it and the id.
func asRemoved(line []byte) (string, string, error) {
	const pre = `{"id":"`
	if !bytes.HasPrefix(line, []byte(pre)) {
		return "", "", fmt.Errorf("stored entry does not start with an id")
	}
	end := bytes.IndexByte(line[len(pre):], '"')
	if end < 0 {
		return "", "", fmt.Errorf("stored entry has a bad id")
	}
	id := string(line[len(pre) : len(pre)+end])
	rest := line[len(pre)+end+1:]
	const typ = `,"type":"log"`
	if !bytes.HasPrefix(rest, []byte(typ)) {
		return "", "", fmt.Errorf("stored entry %s is not a log", id)
	}
	var b strings.Builder
	b.Grow(len(line) + 8)
	b.WriteString(pre)
	b.WriteString(id)
	b.WriteString(`","type":"log.removed"`)
	b.Write(rest[len(typ):])
	return b.String(), id, nil
}

// rewind publishes removals and moves the cursor back to the ancestor.
func (s *store) rewind(ctx context.Context, token int64, expect, to cursor, orphans []orphan, removals []string, blocks []hook.BlockRemoved) error {
	keys := make([]string, 0, 4+2*len(orphans))
	keys = append(keys, s.fence, s.cursor, s.events, s.window)
	args := make([]string, 0, 6+len(orphans)+len(removals))
	args = append(args, strconv.FormatInt(token, 10), expect.String(), to.String(), s.maxLen, strconv.Itoa(len(orphans)))
	for _, o := range orphans {
		keys = append(keys, s.blkKey(o.Hash), s.blogKey(o.Hash))
		args = append(args, strconv.FormatUint(o.Number, 10))
	}
	args = append(args, strconv.Itoa(len(removals)/2))
	args = append(args, removals...)
	args = append(args, strconv.Itoa(len(blocks)))
	for _, b := range blocks {
		args = append(args, b.Block.String())
	}
	return scriptErr("rewind script", rewindScript.Exec(ctx, s.rdb, keys, args).Error())
}

// acquire tries to take the lease; it returns the fencing token or 0.
func (s *store) acquire(ctx context.Context, holder string, ttl time.Duration) (int64, error) {
	n, err := leaseScript.Exec(ctx, s.rdb, []string{s.lease, s.fence}, []string{holder, strconv.FormatInt(ttl.Milliseconds(), 10), "acquire"}).AsInt64()
	if err != nil {
		return 0, fmt.Errorf("acquire lease: %w", err)
	}
	return n, nil
}

// renewal is the answer of a lease renewal.
type renewal int

const (
	leaseGone    renewal = iota // another holder has it, or the fence moved
	leaseRenewed                // extended
	leaseRetaken                // had lapsed, nobody took it: ours again, same token
)

// redisDoer is a rueidis.Client or a rueidis.DedicatedClient.
type redisDoer interface {
	B() rueidis.Builder
	Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult
}

// renew extends our lease on c (a dedicated connection, so that a renewal
// never queues behind a large pipelined commit). A lapsed lease that
// nobody took since (the fence is still token) is taken again: commits with
// token stay valid exactly as long as no other ingester acquired.
func (s *store) renew(ctx context.Context, c redisDoer, holder string, ttl time.Duration, token int64) (renewal, error) {
	n, err := c.Do(ctx, c.B().Eval().Script(leaseSrc).Numkeys(2).Key(s.lease, s.fence).
		Arg(holder, strconv.FormatInt(ttl.Milliseconds(), 10), "renew", strconv.FormatInt(token, 10)).Build()).AsInt64()
	if err != nil {
		return leaseGone, fmt.Errorf("renew lease: %w", err)
	}
	return renewal(n), nil
}

func (s *store) release(ctx context.Context, holder string) error {
	return releaseScript.Exec(ctx, s.rdb, []string{s.lease}, []string{holder}).Error()
}
