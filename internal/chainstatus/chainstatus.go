// Package chainstatus is the one reader of a chain's ingest status: the
// keys ingest writes under `<prefix>{<chain_id>}:` (cursor, head, lease,
// finality, providers) and the chain's events stream. The admin chains API,
// the web UI's dashboard, admin's stall watch, process's releaser and the
// endpoint service's history check read it here, and every value is parsed
// with its hook format (hook.ParseCursor, hook.ParseFinalityRecord,
// hook.ParseProviders, hook.ParseEntry), never by hand.
package chainstatus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/streams"
)

// Status is what ingest says about one chain. A value that is missing or
// unreadable is left unset: a reader shows "not known", never a made-up
// number.
type Status struct {
	// Cursor is the last block committed to the events stream; unset
	// before the first commit.
	Cursor hook.Cursor
	// Head is the newest head ingest saw (`:head`, a decimal block number
	// written best effort and expiring), when HasHead.
	Head    uint64
	HasHead bool
	// Lease is the active ingester's holder id (its host and pid); "" when
	// no ingester holds the chain's lease.
	Lease string
	// Finality is the node's safe and finalized heads as ingest last
	// published them (`:finality`); either is unset when not reported.
	Finality hook.Finality
	// Providers is each provider's health when the chain has a quorum set
	// (`:providers`); nil otherwise.
	Providers []hook.ProviderHealth
	// StreamLength is the events stream's length (0 when it does not exist).
	StreamLength int64
	// Added is the stream's entries-added counter, when HasAdded (a rate
	// is two reads of it).
	Added    uint64
	HasAdded bool
	// LastBlock and LastAt are the newest stream entry's block and when
	// ingest published it (the entry id's time), when HasLast.
	LastBlock uint64
	LastAt    time.Time
	HasLast   bool
}

// Lag is how far the committed cursor is behind the head (0 when it is not
// behind); ok is false unless both are known.
func (s Status) Lag() (lag uint64, ok bool) {
	if !s.HasHead || !s.Cursor.Set {
		return 0, false
	}
	if s.Head > s.Cursor.Number {
		return s.Head - s.Cursor.Number, true
	}
	return 0, true
}

// Reader reads chain status from Redis.
type Reader struct {
	rdb  rueidis.Client
	keys hook.Keys
}

// New returns the reader of the chains under keys.
func New(rdb rueidis.Client, keys hook.Keys) *Reader { return &Reader{rdb: rdb, keys: keys} }

// ErrBadCursor is returned by Cursor for a stored cursor that does not
// parse (never written by ingest).
var ErrBadCursor = errors.New("unreadable chain cursor")

// Cursor reads the chain's committed cursor alone (one GET); it is unset,
// with no error, when nothing was committed yet.
func (r *Reader) Cursor(ctx context.Context, chainID uint64) (hook.Cursor, error) {
	raw, err := r.rdb.Do(ctx, r.rdb.B().Get().Key(r.keys.Chain(chainID, "cursor")).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return hook.Cursor{}, nil
	}
	if err != nil {
		return hook.Cursor{}, fmt.Errorf("read cursor of chain %d: %w", chainID, err)
	}
	c, err := hook.ParseCursor(raw)
	if err != nil {
		return hook.Cursor{}, fmt.Errorf("chain %d: %w: %w", chainID, ErrBadCursor, err)
	}
	return c, nil
}

// Read reads the chain's whole status in one round trip. It fills in what
// it could read and returns the first Redis error as Redis gave it (a
// missing key is not one); the stream's counters and newest entry are best
// effort.
func (r *Reader) Read(ctx context.Context, chainID uint64) (Status, error) {
	var s Status
	b := r.rdb.B()
	res := r.rdb.DoMulti(ctx,
		b.Get().Key(r.keys.Chain(chainID, "cursor")).Build(),
		b.Get().Key(r.keys.Chain(chainID, "lease")).Build(),
		b.Get().Key(r.keys.Chain(chainID, "head")).Build(),
		b.Get().Key(r.keys.Chain(chainID, "providers")).Build(),
		b.Get().Key(r.keys.Chain(chainID, "finality")).Build(),
		b.Xlen().Key(r.keys.Events(chainID)).Build(),
		b.XinfoStream().Key(r.keys.Events(chainID)).Build(),
		b.Xrevrange().Key(r.keys.Events(chainID)).End("+").Start("-").Count(1).Build(),
	)
	var first error
	str := func(res rueidis.RedisResult) string {
		v, err := res.ToString()
		if err != nil && !rueidis.IsRedisNil(err) && first == nil {
			first = err
		}
		return v
	}
	if c, err := hook.ParseCursor(str(res[0])); err == nil {
		s.Cursor = c
	}
	s.Lease = str(res[1])
	if n, err := strconv.ParseUint(str(res[2]), 10, 64); err == nil {
		s.Head, s.HasHead = n, true
	}
	if p := str(res[3]); p != "" {
		s.Providers, _ = hook.ParseProviders(p) // unreadable: not shown
	}
	if f, err := hook.ParseFinalityRecord(str(res[4])); err == nil {
		s.Finality = f
	}
	n, err := res[5].AsInt64()
	if err != nil && !rueidis.IsRedisNil(err) && first == nil {
		first = err
	}
	s.StreamLength = n
	if info, err := res[6].AsMap(); err == nil { // no stream: an error, and nothing to show
		if v, ok := info["entries-added"]; ok {
			if n, err := v.AsInt64(); err == nil && n >= 0 {
				s.Added, s.HasAdded = uint64(n), true
			}
		}
	}
	if entries, err := res[7].AsXRange(); err == nil && len(entries) > 0 {
		if ev, err := hook.ParseEntry(entries[0].FieldValues); err == nil {
			s.LastBlock, s.HasLast = ev.Block.Number, true
			// Ingest appends with XADD *: the entry id is its time in ms.
			if id, err := streams.ParseID(entries[0].ID); err == nil && id.MS > 0 {
				s.LastAt = id.Time()
			}
		}
	}
	return s, first
}
