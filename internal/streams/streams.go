// Package streams owns the Redis stream plumbing that several modules
// share: consumer groups (create, read, reclaim, acknowledge, inspect),
// stream entry ids, and the one offer of delivery jobs (hook.Job) to the
// DeliverJobs stream. The modules keep their loops and their choice of
// group, count and timeouts; the commands and the parsing of their replies
// are here, once.
package streams

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/ethhook/ethhook/hook"
)

// EnsureGroup creates group on the stream key (and the stream) from the
// stream's start, so nothing added before the group's first reader is
// skipped. A group that exists already (BUSYGROUP) is not an error.
func EnsureGroup(ctx context.Context, rdb rueidis.Client, key, group string) error {
	err := rdb.Do(ctx, rdb.B().XgroupCreate().Key(key).Group(group).Id("0").Mkstream().Build()).Error()
	if err != nil && !strings.Contains(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("create consumer group on %s: %w", key, err)
	}
	return nil
}

// IsNoGroup reports whether err says the group (or its stream) is gone, as
// after a Redis restart without persistence: the reader creates it again.
func IsNoGroup(err error) bool { return err != nil && strings.Contains(err.Error(), "NOGROUP") }

// Read is XREADGROUP of group on one stream as consumer, from id ("0":
// the consumer's own unacknowledged entries; ">": new ones), at most count
// entries, blocking up to block (zero: not at all). A blocked read that
// ends with nothing returns no entries and no error.
func Read(ctx context.Context, rdb rueidis.Client, key, group, consumer, id string, count int64, block time.Duration) ([]rueidis.XRangeEntry, error) {
	b := rdb.B().Xreadgroup().Group(group, consumer).Count(count)
	var cmd rueidis.Completed
	if block > 0 {
		cmd = b.Block(block.Milliseconds()).Streams().Key(key).Id(id).Build()
	} else {
		cmd = b.Streams().Key(key).Id(id).Build()
	}
	res, err := rdb.Do(ctx, cmd).AsXRead()
	if rueidis.IsRedisNil(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return res[key], nil
}

// Autoclaim is XAUTOCLAIM: consumer takes over up to count entries of group
// idle longer than minIdle (a dead consumer's), scanning from start. next
// is where the scan goes on; "0-0" when it went round the whole list.
func Autoclaim(ctx context.Context, rdb rueidis.Client, key, group, consumer string, minIdle time.Duration, start string, count int64) (entries []rueidis.XRangeEntry, next string, err error) {
	arr, err := rdb.Do(ctx, rdb.B().Xautoclaim().Key(key).Group(group).Consumer(consumer).
		MinIdleTime(strconv.FormatInt(minIdle.Milliseconds(), 10)).Start(start).Count(count).Build()).ToArray()
	if err != nil {
		return nil, start, err
	}
	if len(arr) < 2 {
		return nil, "0-0", fmt.Errorf("XAUTOCLAIM: unexpected reply of %d elements", len(arr))
	}
	if next, err = arr[0].ToString(); err != nil {
		return nil, start, err
	}
	if entries, err = arr[1].AsXRange(); err != nil {
		return nil, start, err
	}
	return entries, next, nil
}

// PendingIdle lists the ids of consumer's entries in group's pending list
// that were idle at least minIdle (XPENDING with IDLE), at most count, from
// start: "-" for the first, "(" + the last id returned to go on after it.
func PendingIdle(ctx context.Context, rdb rueidis.Client, key, group, consumer string, minIdle time.Duration, start string, count int64) ([]string, error) {
	arr, err := rdb.Do(ctx, rdb.B().Xpending().Key(key).Group(group).Idle(minIdle.Milliseconds()).
		Start(start).End("+").Count(count).Consumer(consumer).Build()).ToArray()
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(arr))
	for _, e := range arr {
		f, err := e.ToArray() // id, consumer, idle ms, deliveries
		if err != nil || len(f) == 0 {
			return nil, fmt.Errorf("XPENDING: unexpected entry of %d elements: %v", len(f), err)
		}
		id, err := f[0].ToString()
		if err != nil {
			return nil, fmt.Errorf("XPENDING: entry id: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// Claim is XCLAIM: consumer takes over those of ids that are still pending
// in group and were idle at least minIdle. A claim resets the idle time, so
// of two claimers with the same minIdle only the first gets an entry.
func Claim(ctx context.Context, rdb rueidis.Client, key, group, consumer string, minIdle time.Duration, ids ...string) ([]rueidis.XRangeEntry, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	return rdb.Do(ctx, rdb.B().Xclaim().Key(key).Group(group).Consumer(consumer).
		MinIdleTime(strconv.FormatInt(minIdle.Milliseconds(), 10)).Id(ids...).Build()).AsXRange()
}

// Ack acknowledges ids of group.
func Ack(ctx context.Context, rdb rueidis.Client, key, group string, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	return rdb.Do(ctx, rdb.B().Xack().Key(key).Group(group).Id(ids...).Build()).Error()
}

// AckDelete acknowledges ids of group and deletes them from the stream, for
// a stream whose length is its backlog (the jobs and history streams).
func AckDelete(ctx context.Context, rdb rueidis.Client, key, group string, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	for _, res := range rdb.DoMulti(ctx,
		rdb.B().Xack().Key(key).Group(group).Id(ids...).Build(),
		rdb.B().Xdel().Key(key).Id(ids...).Build()) {
		if err := res.Error(); err != nil {
			return err
		}
	}
	return nil
}

// GroupInfo is one group's line of XINFO GROUPS.
type GroupInfo struct {
	Pending       int64  // read, not acknowledged
	Lag           int64  // not read yet; meaningful only when LagKnown
	LagKnown      bool   // false when Redis cannot tell (entries deleted after what the group read)
	LastDelivered string // id of the last entry the group read
}

// Caught reports whether the group has read and acknowledged everything.
func (g GroupInfo) Caught() bool { return g.LagKnown && g.Lag == 0 && g.Pending == 0 }

// Info reads group's line of XINFO GROUPS on key. found is false when the
// stream or the group does not exist.
func Info(ctx context.Context, rdb rueidis.Client, key, group string) (g GroupInfo, found bool, err error) {
	groups, err := rdb.Do(ctx, rdb.B().XinfoGroups().Key(key).Build()).ToArray()
	if err != nil {
		if rueidis.IsRedisNil(err) || strings.Contains(err.Error(), "no such key") {
			return GroupInfo{}, false, nil
		}
		return GroupInfo{}, false, fmt.Errorf("XINFO GROUPS %s: %w", key, err)
	}
	for _, e := range groups {
		info, err := e.AsMap()
		if err != nil {
			return GroupInfo{}, false, fmt.Errorf("XINFO GROUPS %s: %w", key, err)
		}
		nameMsg, pendMsg, lagMsg, lastMsg := info["name"], info["pending"], info["lag"], info["last-delivered-id"]
		if name, _ := nameMsg.ToString(); name != group {
			continue
		}
		if g.Pending, err = pendMsg.AsInt64(); err != nil {
			return GroupInfo{}, false, fmt.Errorf("XINFO GROUPS %s pending: %w", key, err)
		}
		lag, err := lagMsg.AsInt64()
		g.Lag, g.LagKnown = lag, err == nil
		g.LastDelivered, _ = lastMsg.ToString()
		return g, true, nil
	}
	return GroupInfo{}, false, nil
}

// ID is a stream entry id, "<ms>-<seq>".
type ID struct{ MS, Seq uint64 }

// ParseID parses "<ms>-<seq>".
func ParseID(s string) (ID, error) {
	a, b, ok := strings.Cut(s, "-")
	ms, err1 := strconv.ParseUint(a, 10, 64)
	seq, err2 := strconv.ParseUint(b, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return ID{}, fmt.Errorf("bad stream entry id %q", s)
	}
	return ID{ms, seq}, nil
}

// String is the id's text form.
func (a ID) String() string {
	return strconv.FormatUint(a.MS, 10) + "-" + strconv.FormatUint(a.Seq, 10)
}

// Less orders ids as Redis does.
func (a ID) Less(b ID) bool { return a.MS < b.MS || (a.MS == b.MS && a.Seq < b.Seq) }

// Time is when an entry added with XADD * was added (its ms part).
func (a ID) Time() time.Time { return time.UnixMilli(int64(a.MS)) }

// Offer XADDs a delivery job per element of jobs to the DeliverJobs
// stream (pipelined). It is the only writer of that stream; the messages
// must be pending in Postgres first (a lost job is found by deliver's
// sweep, a duplicated one is harmless).
func Offer(ctx context.Context, rdb rueidis.Client, keys hook.Keys, jobs ...hook.Job) error {
	if len(jobs) == 0 {
		return nil
	}
	key := keys.DeliverJobs()
	cmds := make(rueidis.Commands, 0, len(jobs))
	for _, j := range jobs {
		fv, f := rdb.B().Xadd().Key(key).Id("*").FieldValue(), j.Fields()
		for i := 0; i+1 < len(f); i += 2 {
			fv = fv.FieldValue(f[i], f[i+1])
		}
		cmds = append(cmds, fv.Build())
	}
	for _, res := range rdb.DoMulti(ctx, cmds...) {
		if err := res.Error(); err != nil {
			return fmt.Errorf("offer %d delivery jobs: %w", len(jobs), err)
		}
	}
	return nil
}
