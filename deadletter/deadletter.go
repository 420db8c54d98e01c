// Package deadletter owns the chains' dead-letter streams,
// `<prefix>{<chain_id>}:deadletters`: stream entries that process failed
// on process.poison_tries times in a row with an error of the entry's own
// (a data error, not an outage). Process moves an entry there atomically
// with its acknowledgement (so it no longer holds later entries and
// confirmations back); an admin lists them and replays one, which puts its
// original fields back on the chain's events stream once the cause is fixed.
package deadletter

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/internal/streams"
)

// MaxError bounds the stored error text (bytes).
const MaxError = 2000

// MaxLen caps a dead-letter stream (approximate trim): a flood of bad
// entries must not grow Redis without bound.
const MaxLen = 100_000

// field prefix of the original entry's fields.
const orig = "f:"

// Letter is one dead-lettered stream entry.
type Letter struct {
	ID      string            `json:"id"` // "<chain id>-<dead-letter entry id>", for replay
	ChainID uint64            `json:"chain_id"`
	EntryID string            `json:"entry_id"` // the events stream entry it was
	Error   string            `json:"error"`
	Tries   int               `json:"tries"`
	At      time.Time         `json:"at"`
	Fields  map[string]string `json:"fields"` // the original entry (id, type, event)
}

// Key is the chain's dead-letter stream.
func Key(k hook.Keys, chainID uint64) string { return k.Chain(chainID, "deadletters") }

var (
	//go:embed move.lua
	moveSrc string
	//go:embed replay.lua
	replaySrc string
	//go:embed fail.lua
	failSrc string

	moveScript   = rueidis.NewLuaScript(moveSrc)   // acknowledge the entry, append the letter if it was pending
	replayScript = rueidis.NewLuaScript(replaySrc) // the letter's fields back on the events stream
	failScript   = rueidis.NewLuaScript(failSrc)   // count a failed try of each entry
)

// TriesKey is the chain's hash of try counts, entry id -> how many times a
// read holding it failed on its data, shared by every process of the
// group and kept across restarts (TriesTTL after the last failure).
func TriesKey(k hook.Keys, chainID uint64) string { return k.Chain(chainID, "poison") }

// TriesTTL is how long try counts outlive the chain's last failure.
const TriesTTL = 24 * time.Hour

// Fail counts one failure of a read for each of its entries and returns
// the highest count among them (over every process and restart).
func Fail(ctx context.Context, rdb rueidis.Client, k hook.Keys, chainID uint64, ids []string) (int, error) {
	args := append([]string{strconv.Itoa(int(TriesTTL / time.Second))}, ids...)
	n, err := failScript.Exec(ctx, rdb, []string{TriesKey(k, chainID)}, args).AsInt64()
	if err != nil {
		return 0, fmt.Errorf("count failed tries of %d entries of chain %d: %w", len(ids), chainID, err)
	}
	return int(n), nil
}

// Forget drops the try counts of entries that were handled.
func Forget(ctx context.Context, rdb rueidis.Client, k hook.Keys, chainID uint64, ids []string) error {
	if err := rdb.Do(ctx, rdb.B().Hdel().Key(TriesKey(k, chainID)).Field(ids...).Build()).Error(); err != nil {
		return fmt.Errorf("forget tries of %d entries of chain %d: %w", len(ids), chainID, err)
	}
	return nil
}

// Move dead-letters entry (of the events stream) with its error.
func Move(ctx context.Context, rdb rueidis.Client, k hook.Keys, chainID uint64, entry rueidis.XRangeEntry, cause error, tries int) error {
	msg := cause.Error()
	if len(msg) > MaxError {
		msg = msg[:MaxError]
	}
	args := []string{hook.EventsGroup, entry.ID, strconv.Itoa(MaxLen),
		"entry", entry.ID, "error", msg, "tries", strconv.Itoa(tries), "at", strconv.FormatInt(time.Now().UnixMilli(), 10)}
	keys := make([]string, 0, len(entry.FieldValues))
	for f := range entry.FieldValues {
		keys = append(keys, f)
	}
	sort.Strings(keys)
	for _, f := range keys {
		args = append(args, orig+f, entry.FieldValues[f])
	}
	if err := moveScript.Exec(ctx, rdb, []string{k.Events(chainID), Key(k, chainID), TriesKey(k, chainID)}, args).Error(); err != nil {
		return fmt.Errorf("dead-letter entry %s of chain %d: %w", entry.ID, chainID, err)
	}
	return nil
}

func parse(chainID uint64, e rueidis.XRangeEntry) Letter {
	l := Letter{ID: strconv.FormatUint(chainID, 10) + "-" + e.ID, ChainID: chainID, Fields: map[string]string{}}
	for f, v := range e.FieldValues {
		switch {
		case strings.HasPrefix(f, orig):
			l.Fields[f[len(orig):]] = v
		case f == "entry":
			l.EntryID = v
		case f == "error":
			l.Error = v
		case f == "tries":
			l.Tries, _ = strconv.Atoi(v)
		case f == "at":
			ms, _ := strconv.ParseInt(v, 10, 64)
			l.At = time.UnixMilli(ms).UTC()
		}
	}
	return l
}

// List returns up to limit letters of the chains, newest first.
func List(ctx context.Context, rdb rueidis.Client, k hook.Keys, chains []uint64, limit int) ([]Letter, error) {
	var out []Letter
	for _, c := range chains {
		es, err := rdb.Do(ctx, rdb.B().Xrevrange().Key(Key(k, c)).End("+").Start("-").Count(int64(limit)).Build()).AsXRange()
		if err != nil && !rueidis.IsRedisNil(err) {
			return nil, fmt.Errorf("list dead letters of chain %d: %w", c, err)
		}
		for _, e := range es {
			out = append(out, parse(c, e))
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.After(out[j].At) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// ErrBadID: the id is not "<chain id>-<ms>-<seq>".
var ErrBadID = errors.New(`dead letter id must be "<chain id>-<ms>-<seq>"`)

// ParseID splits a Letter.ID.
func ParseID(id string) (uint64, string, error) {
	c, rest, ok := strings.Cut(id, "-")
	chain, err := strconv.ParseUint(c, 10, 64)
	_, errEntry := streams.ParseID(rest)
	if !ok || err != nil || errEntry != nil || len(id) > 64 {
		return 0, "", fmt.Errorf("%w, got %q", ErrBadID, id)
	}
	return chain, rest, nil
}

// Replay puts the letter's original entry back on its chain's events
// stream (process handles it like any new entry) and removes the letter. A
// letter that never was, or was replayed already, is hook.ErrNotFound.
func Replay(ctx context.Context, rdb rueidis.Client, k hook.Keys, id string) (Letter, error) {
	chain, entry, err := ParseID(id)
	if err != nil {
		return Letter{}, err
	}
	es, err := rdb.Do(ctx, rdb.B().Xrange().Key(Key(k, chain)).Start(entry).End(entry).Build()).AsXRange()
	if err != nil && !rueidis.IsRedisNil(err) {
		return Letter{}, fmt.Errorf("read dead letter %s: %w", id, err)
	}
	if len(es) == 0 {
		return Letter{}, hook.NotFound("dead letter", id) // never was, or replayed already
	}
	n, err := replayScript.Exec(ctx, rdb, []string{Key(k, chain), k.Events(chain)}, []string{entry}).AsInt64()
	if err != nil {
		return Letter{}, fmt.Errorf("replay dead letter %s: %w", id, err)
	}
	if n == 0 {
		return Letter{}, hook.NotFound("dead letter", id) // never was, or replayed already
	}
	return parse(chain, es[0]), nil
}
